"""Which plugins may load.

Restrictions come from several places and all of them apply (strictest wins):

* policy files: the system-wide `/etc/swift/policy.toml` when it exists, every path in
  `SWIFT_POLICY` (separated by the OS path separator), and `swift --policy PATH`;
* `SWIFT_LOAD_PLUGINS=a,b`: only these plugins (by plugin or distribution name); set but empty
  means none, built-ins included;
* `SWIFT_DISABLE_PLUGINS=a,b` and `swift --disable-plugin NAME`.

The CLI turns its options into these environment variables, so every child process (each
torchrun worker) makes the same decision. A policy file is TOML:

    allow_builtins = true          # default true
    deny = ["swift-untrusted"]     # plugin or distribution names
    [allow]                        # when present, only these distributions load
    swift-vllm = ">=0.1,<1"        # PEP 440 specifier; "" or "*" for any version
    allow_remote_code = false      # forbid --trust_remote_code (a model folder's own Python); default true
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from swift_core.errors import PolicyError

SYSTEM_POLICY_PATH = Path("/etc/swift/policy.toml")
CORE_DISTRIBUTION = "swift-core"
_KNOWN_KEYS = {"allow", "deny", "allow_builtins", "allow_remote_code"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first line that starts with `needle` (for error messages)."""
    key = re.escape(needle)
    pattern = re.compile(rf"^[ \t]*(?:[\"']?{key}[\"']?[ \t]*=|\[[ \t]*{key}[ \t]*\])", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


@dataclass(frozen=True)
class PolicyFile:
    path: str
    allow: dict[str, SpecifierSet] | None = None
    deny: frozenset[str] = frozenset()
    allow_builtins: bool = True
    allow_remote_code: bool = True

    @classmethod
    def load(cls, path: str | Path) -> PolicyFile:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"policy file {path}: cannot read: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            line = re.search(r"line (\d+)", msg)
            if line:
                where = f", line {line.group(1)}"
            else:  # "at end of document"
                where = f", line {max(1, len(text.splitlines()))}"
            raise PolicyError(f"policy file {path}{where}: invalid TOML: {msg}") from None
        for key in data:
            if key not in _KNOWN_KEYS:
                raise PolicyError(
                    f"policy file {path}, line {_line_of(text, key)}: unknown key {key!r}; "
                    f"expected {', '.join(sorted(_KNOWN_KEYS))}"
                )
        allow_builtins = data.get("allow_builtins", True)
        if not isinstance(allow_builtins, bool):
            raise PolicyError(
                f"policy file {path}, line {_line_of(text, 'allow_builtins')}: allow_builtins must be true or false"
            )
        allow_remote_code = data.get("allow_remote_code", True)
        if not isinstance(allow_remote_code, bool):
            raise PolicyError(
                f"policy file {path}, line {_line_of(text, 'allow_remote_code')}: allow_remote_code must be "
                "true or false"
            )
        deny = data.get("deny", [])
        if not isinstance(deny, list) or not all(isinstance(d, str) for d in deny):
            raise PolicyError(
                f"policy file {path}, line {_line_of(text, 'deny')}: deny must be a list of names"
            )
        allow: dict[str, SpecifierSet] | None = None
        if "allow" in data:
            raw = data["allow"]
            if not isinstance(raw, dict):
                raise PolicyError(
                    f"policy file {path}, line {_line_of(text, 'allow')}: allow must be a table "
                    'of distribution = "version specifier"'
                )
            allow = {}
            for dist, spec in raw.items():
                if not isinstance(spec, str):
                    raise PolicyError(
                        f"policy file {path}, line {_line_of(text, dist)}: the version of {dist!r} must be "
                        f'a string such as ">=1.0", got {spec!r}'
                    )
                try:
                    allow[_normalize(dist)] = SpecifierSet("" if spec.strip() == "*" else spec)
                except InvalidSpecifier:
                    raise PolicyError(
                        f"policy file {path}, line {_line_of(text, dist)}: {spec!r} is not a PEP 440 "
                        f"version specifier (for {dist!r})"
                    ) from None
        return cls(
            str(path), allow, frozenset(_normalize(d) for d in deny), allow_builtins, allow_remote_code
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class Policy:
    """Every restriction in force; `check` applies them all."""

    files: list[PolicyFile] = field(default_factory=list)
    load_only: frozenset[str] | None = None
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, system_path: Path | None = None) -> Policy:
        env = os.environ if environ is None else environ
        system = SYSTEM_POLICY_PATH if system_path is None else system_path
        paths: list[str] = []
        if system.is_file():
            paths.append(str(system))
        paths += [p for p in env.get("SWIFT_POLICY", "").split(os.pathsep) if p.strip()]
        load_only = None
        if "SWIFT_LOAD_PLUGINS" in env:
            load_only = frozenset(_normalize(n) for n in env["SWIFT_LOAD_PLUGINS"].split(",") if n.strip())
        disabled = frozenset(
            _normalize(n) for n in env.get("SWIFT_DISABLE_PLUGINS", "").split(",") if n.strip()
        )
        return cls([PolicyFile.load(p) for p in paths], load_only, disabled)

    def check(self, plugin: str, distribution: str, version: str, builtin: bool) -> Decision:
        names = {_normalize(plugin), _normalize(distribution)}
        if names & self.disabled:
            return Decision(False, "disabled (--disable-plugin / SWIFT_DISABLE_PLUGINS)")
        if self.load_only is not None and not names & self.load_only:
            return Decision(False, "not listed in SWIFT_LOAD_PLUGINS")
        for pf in self.files:
            if names & pf.deny:
                return Decision(False, f"denied by policy {pf.path}")
            if pf.allow is None:
                continue
            if builtin:
                if not pf.allow_builtins and _normalize(distribution) not in pf.allow:
                    return Decision(False, f"built-in plugins are not allowed by policy {pf.path}")
                continue
            spec = pf.allow.get(_normalize(distribution))
            if spec is None:
                return Decision(
                    False, f"distribution {distribution!r} is not in the allow list of policy {pf.path}"
                )
            if str(spec):
                try:
                    ok = spec.contains(Version(version), prereleases=True)
                except InvalidVersion:
                    ok = False
                if not ok:
                    return Decision(
                        False,
                        f"{distribution} {version} does not satisfy {str(spec)!r} pinned by policy {pf.path}",
                    )
        return Decision(True)

    def remote_code_decision(self) -> Decision:
        """Whether `--trust_remote_code true` may run a model folder's own Python."""
        for pf in self.files:
            if not pf.allow_remote_code:
                return Decision(
                    False, f"remote code is forbidden by policy {pf.path} (allow_remote_code = false)"
                )
        return Decision(True)

    def unknown_load_names(self, known: set[str]) -> list[str]:
        """Names in SWIFT_LOAD_PLUGINS that match no installed plugin or distribution."""
        if self.load_only is None:
            return []
        known_norm = {_normalize(k) for k in known}
        return sorted(self.load_only - known_norm)

    def describe(self) -> dict[str, object]:
        """The policy in force, for `swift env` and bug reports."""
        return {
            "files": [
                {
                    "path": pf.path,
                    "allow": None if pf.allow is None else {k: str(v) or "*" for k, v in pf.allow.items()},
                    "deny": sorted(pf.deny),
                    "allow_builtins": pf.allow_builtins,
                    "allow_remote_code": pf.allow_remote_code,
                }
                for pf in self.files
            ],
            "load_only": None if self.load_only is None else sorted(self.load_only),
            "disabled": sorted(self.disabled),
        }

    def install_check(self, distribution: str) -> tuple[Decision, str]:
        """Whether `swift plugins install` may install a distribution, and the pin to install with."""
        names = {_normalize(distribution)}
        if names & self.disabled:
            return Decision(False, "it is disabled (--disable-plugin / SWIFT_DISABLE_PLUGINS)"), ""
        pins: list[str] = []
        for pf in self.files:
            if names & pf.deny:
                return Decision(False, f"it is denied by policy {pf.path}"), ""
            if pf.allow is not None:
                spec = pf.allow.get(_normalize(distribution))
                if spec is None:
                    return Decision(False, f"it is not in the allow list of policy {pf.path}"), ""
                if str(spec):
                    pins.append(str(spec))
        return Decision(True), ",".join(pins)
