"""Which model family a `--model` argument belongs to.

`--model` is a local folder, a hub id (Hugging Face or ModelScope, matched case-insensitively)
or a model alias (`qwen2_5-7b-instruct`). Families come from the `model_families` registry, so
plugins can add their own. A local folder is recognised from its config.json: the architecture
first, then `model_type`. When several families share the architecture (Qwen2ForCausalLM is
Qwen2, Qwen2.5 and DeepSeek-R1-Distill-Qwen), the evidence in the folder decides, strongest
first:

1. a known hub id or alias naming the folder (Hugging Face / ModelScope cache folders,
   `_name_or_path` in config.json, `name_or_path` in tokenizer_config.json);
2. the chat template (tokenizer_config.json, chat_template.jinja, chat_template.json) against
   each family's `template_hints`: all must occur, `!hint` must not; more hints matched wins;
3. the folder name / `_name_or_path` against each family's `name_hints` (regular expressions);
4. config.json values against each family's `config_hints`;
5. the family's `priority` (the highest is the architecture's default), then its name.

The choice is therefore always deterministic, and `ResolvedModel.how` says what decided it.
`--model_type` overrides all of this. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.descriptors import ModelFamily
from swift_core.errors import SwiftError, UnknownNameError, nearest

# "org/name" as on the Hugging Face Hub and ModelScope.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MISSING = object()


@dataclass(frozen=True)
class ResolvedModel:
    """A `--model` argument resolved to its family."""

    family: ModelFamily
    model: str  # the absolute local folder, or the hub id (canonical spelling when known)
    is_local: bool
    hub_id: str | None  # the hub id, also for a local folder whose origin is known
    how: str  # why this family, in a few words


def alias_key(name: str) -> str:
    """The normal form model aliases are compared in: lower case, `.` -> `_`."""
    return name.strip().lower().replace(".", "_")


class _Index:
    """Hub ids and aliases of every registered family, case-insensitive."""

    def __init__(self, registry: Any):
        self.registry = registry
        self.families: list[ModelFamily] = list(registry)  # sorted by name: deterministic
        # Exact spelling first (openbmb/MiniCPM3-4B on Hugging Face is OpenBMB/MiniCPM3-4B on
        # ModelScope), then any case.
        self.exact: dict[str, tuple[ModelFamily, str, str]] = {}
        self.ids: dict[str, tuple[ModelFamily, str, str]] = {}
        self.aliases: dict[str, tuple[ModelFamily, str]] = {}
        for family in self.families:
            for hub_ids, hub in ((family.hf_ids, "Hugging Face"), (family.ms_ids, "ModelScope")):
                for hub_id in hub_ids:
                    known = self.exact.get(hub_id)
                    if known is None:
                        self.exact[hub_id] = (family, hub_id, hub)
                    elif known[0] is family and known[2] != hub:
                        self.exact[hub_id] = (family, hub_id, "Hugging Face and ModelScope")
        for hub_id, entry in self.exact.items():
            self.ids.setdefault(hub_id.lower(), entry)
        for family in self.families:
            for alias, target in family.model_aliases:
                self.aliases.setdefault(alias_key(alias), (family, target))

    def lookup(self, text: str) -> tuple[ModelFamily, str, str] | None:
        return self.exact.get(text) or self.ids.get(text.lower())

    def family_names(self) -> str:
        return ", ".join(f.name for f in self.families) or "(none: see swift plugins list)"


def resolve_model(model: str, model_type: str | None = None, manager: Any = None) -> ResolvedModel:
    """Resolve `--model` (and `--model_type`) to a `ResolvedModel`; user mistakes raise `SwiftError`."""
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    index = _Index(manager.registry("model_families"))
    text = os.fspath(model).strip() if model is not None else ""
    if not text:
        raise SwiftError("--model is empty: pass a local model folder, a hub id (org/name) or a model alias")
    forced = _family_by_type(index, model_type) if model_type else None

    path = Path(text).expanduser()
    if path.is_dir():
        return _resolve_local(Path(os.path.abspath(path)), forced, model_type, index)
    if path.exists():
        raise SwiftError(f"--model {text}: {path} is a file; pass the folder that holds config.json")
    if _looks_like_path(text):
        raise SwiftError(f"--model {text}: no such folder {path}")

    known = index.lookup(text)
    if known is not None:
        family, hub_id, hub = known
        how = f"known {hub} id of family {family.name}"
        return ResolvedModel(forced or family, hub_id, False, hub_id, _overridden(how, forced, model_type))

    aliased = index.aliases.get(alias_key(text))
    if aliased is not None:
        family, hub_id = aliased
        how = f"alias {text!r} of {hub_id} (family {family.name})"
        return ResolvedModel(forced or family, hub_id, False, hub_id, _overridden(how, forced, model_type))

    if _HUB_ID.match(text):
        if forced is not None:
            return ResolvedModel(forced, text, False, text, f"--model_type {model_type}")
        close = nearest(text.lower(), list(index.ids))
        hint = f" Did you mean {', '.join(repr(index.ids[c][1]) for c in close)}?" if close else ""
        raise SwiftError(
            f"{text!r} is neither a local folder nor a hub id Swift knows, so its model family cannot "
            f"be guessed.{hint} Pass --model_type with one of: {index.family_names()}."
        )
    raise UnknownNameError(_unknown_message(text, index))


# --- helpers ------------------------------------------------------------------------------------


def _overridden(how: str, forced: ModelFamily | None, model_type: str | None) -> str:
    if forced is None:
        return how
    return f"--model_type {model_type} (overrides the {how})"


def _family_by_type(index: _Index, model_type: str) -> ModelFamily:
    registry = index.registry
    name = model_type.strip()
    for candidate in (name, name.lower().replace("-", "_").replace(".", "_")):
        if candidate in registry:
            return registry.get(candidate)
    try:
        return registry.get(name)
    except UnknownNameError as exc:
        raise UnknownNameError(f"--model_type: {exc}") from None


def _looks_like_path(text: str) -> bool:
    """Clearly a path rather than `org/name`: absolute, relative with ./ or ~, or several levels."""
    return (
        text.startswith(("/", "./", "../", "~", "\\", ".\\", "..\\"))
        or bool(re.match(r"^[A-Za-z]:[\\/]", text))
        or "\\" in text
        or text.count("/") > 1
        or text in (".", "..")
    )


def _unknown_message(text: str, index: _Index) -> str:
    parts = [f"unknown model {text!r}: it is not a local folder, a known hub id (org/name) or a model alias."]
    if text in index.registry:
        parts.append(f"{text!r} is a model family: pass it as --model_type next to --model.")
    close = nearest(alias_key(text), list(index.aliases))
    if close:
        parts.append(f"Did you mean {', '.join(repr(c) for c in close)}?")
    parts.append(f"Model families: {index.family_names()}.")
    return " ".join(parts)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from an optional file; {} when absent or unreadable (hints only)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        message = f"{folder} has no config.json, so it is not a model folder"
        adapter = folder / "adapter_config.json"
        if adapter.is_file():
            base = _read_json(adapter).get("base_model_name_or_path")
            of = f" for {base}" if isinstance(base, str) and base else ""
            message += (
                f"; it holds a LoRA adapter{of}: pass the base model as --model and load this folder "
                "as the adapter"
            )
        else:
            message += "; pass the folder that holds config.json and the weights, or a hub id"
        raise SwiftError(message)
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SwiftError(f"{config_path}, line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SwiftError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(data, dict):
        raise SwiftError(f"{config_path}: expected a JSON object, got {type(data).__name__}")
    return data


def _name_texts(
    folder: Path, config: dict[str, Any], tokenizer_config: dict[str, Any]
) -> list[tuple[str, str]]:
    """(where, text) pairs that may name the model, strongest source first."""
    texts: list[tuple[str, str]] = []
    parts = folder.parts
    for part in parts:
        if part.startswith("models--"):  # Hugging Face cache: models--org--name/snapshots/<hash>
            texts.append(("the Hugging Face cache folder", part[len("models--") :].replace("--", "/")))
    texts.append(("the folder name", "/".join(parts[-2:])))
    for where, data, key in (
        ("config.json", config, "_name_or_path"),
        ("tokenizer_config.json", tokenizer_config, "name_or_path"),
    ):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            texts.append((f"{key} in {where}", value.strip()))
    # The ModelScope cache spells "." as "___" (Qwen/Qwen2___5-7B-Instruct).
    return [(where, text.replace("___", ".")) for where, text in texts]


def _exact_ids(texts: list[tuple[str, str]], index: _Index) -> list[tuple[str, ModelFamily, str]]:
    """(where, family, hub id) for every text that is a known hub id or alias."""
    found = []
    for where, text in texts:
        cleaned = text.rstrip("/\\").replace("\\", "/")
        tail = cleaned.split("/")
        for candidate in dict.fromkeys((cleaned, "/".join(tail[-2:]))):
            known = index.lookup(candidate)
            if known is not None:
                found.append((where, known[0], known[1]))
        aliased = index.aliases.get(alias_key(tail[-1]))
        if aliased is not None:
            found.append((where, aliased[0], aliased[1]))
    return found


def _chat_template(folder: Path, tokenizer_config: dict[str, Any]) -> str:
    pieces: list[str] = []
    template = tokenizer_config.get("chat_template")
    if isinstance(template, str):
        pieces.append(template)
    elif isinstance(template, list):
        pieces += [
            t["template"] for t in template if isinstance(t, dict) and isinstance(t.get("template"), str)
        ]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        pieces.append((folder / "chat_template.jinja").read_text(encoding="utf-8"))
    separate = _read_json(folder / "chat_template.json").get("chat_template")
    if isinstance(separate, str):
        pieces.append(separate)
    return "\n".join(pieces)


def _template_score(hints: tuple[str, ...], template: str) -> int:
    """Number of hints found when all are satisfied (`!x`: x must be absent), else 0."""
    if not hints or not template:
        return 0
    matched = 0
    for hint in hints:
        if hint.startswith("!"):
            if hint[1:] in template:
                return 0
        elif hint in template:
            matched += 1
        else:
            return 0
    return matched


def _config_value(config: dict[str, Any], key: str) -> Any:
    """`a.b` in config.json; `x|y` tries x, then y."""
    for alternative in key.split("|"):
        value: Any = config
        for part in alternative.split("."):
            if not isinstance(value, dict) or part not in value:
                value = _MISSING
                break
            value = value[part]
        if value is not _MISSING:
            return value
    return _MISSING


def _config_score(hints: tuple[tuple[str, Any], ...], config: dict[str, Any]) -> int:
    if not hints:
        return 0
    for key, wanted in hints:
        value = _config_value(config, key)
        if value is _MISSING or value != wanted:
            return 0
    return len(hints)


def _name_match(patterns: tuple[str, ...], texts: list[tuple[str, str]]) -> str | None:
    for where, text in texts:
        for pattern in patterns:
            if re.search(pattern, text, re.IGNORECASE):
                return f"{where} ({text})"
    return None


def _resolve_local(
    folder: Path, forced: ModelFamily | None, model_type: str | None, index: _Index
) -> ResolvedModel:
    config = _read_config(folder)
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    texts = _name_texts(folder, config, tokenizer_config)
    exact = _exact_ids(texts, index)
    if forced is not None:
        hub_id = exact[0][2] if exact else None
        return ResolvedModel(forced, str(folder), True, hub_id, f"--model_type {model_type}")

    archs = config.get("architectures") or []
    if isinstance(archs, str):
        archs = [archs]
    model_type_in_config = config.get("model_type")
    candidates: list[ModelFamily] = []
    source = ""
    for arch in archs:
        candidates = [f for f in index.families if arch in f.architectures]
        if candidates:
            source = f"architecture {arch} in config.json"
            break
    if not candidates and isinstance(model_type_in_config, str):
        candidates = [f for f in index.families if model_type_in_config in f.model_types]
        source = f"model_type {model_type_in_config!r} in config.json"
    if not candidates:
        raise SwiftError(
            f"cannot tell which model family {folder} belongs to: its config.json has architectures "
            f"{list(archs) or 'none'} and model_type {model_type_in_config!r}, which no registered family "
            f"lists. Pass --model_type with one of: {index.family_names()}."
        )

    matching_ids = [e for e in exact if e[1] in candidates]
    if len(candidates) == 1:
        hub_id = next((e[2] for e in matching_ids), None)
        return ResolvedModel(candidates[0], str(folder), True, hub_id, source)

    template = _chat_template(folder, tokenizer_config)
    ranked = []
    for family in candidates:
        id_hit = next((e for e in matching_ids if e[1] is family), None)
        name_hit = _name_match(family.name_hints, texts)
        score = (
            1 if id_hit else 0,
            _template_score(family.template_hints, template),
            1 if name_hit else 0,
            _config_score(family.config_hints, config),
            family.priority,
        )
        ranked.append((score, family, id_hit, name_hit))
    ranked.sort(key=lambda r: (tuple(-s for s in r[0]), r[1].name))
    score, family, id_hit, name_hit = ranked[0]
    hub_id = id_hit[2] if id_hit else None
    if id_hit:
        reason = f"{id_hit[0]} names {id_hit[2]}"
    elif score[1]:
        reason = f"the chat template matches {family.name}"
    elif name_hit:
        reason = f"{name_hit} matches {family.name}"
    elif score[3]:
        reason = "config.json values " + ", ".join(f"{k.split('|')[0]}={v}" for k, v in family.config_hints)
    else:
        reason = f"{family.name} is the default (no hint in the folder; pass --model_type to choose another)"
    shared = ", ".join(f.name for f in candidates)
    return ResolvedModel(family, str(folder), True, hub_id, f"{source} (shared by {shared}): {reason}")
