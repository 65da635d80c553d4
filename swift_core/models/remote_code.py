"""Whether a model folder's own Python may run (`trust_remote_code`).

A Hugging Face folder can name Python files of its own in `auto_map` (config.json,
tokenizer_config.json); transformers imports them when asked to trust remote code. That code runs
with the user's rights, so it is the user's decision, never a model family's or the folder's own
`config.json`: the default is off, `--trust_remote_code true` opts in, and a policy file
(`allow_remote_code = false`, see `swift_core.policy`) can forbid opting in. A family that needs its
repository's code (internlm2, minicpm, ...) is refused up front with the flag to pass, before any
tokenizer or weights load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

FLAG = "--trust_remote_code true"
_CONFIG_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def declared_code(model: str | Path) -> list[str]:
    """The `auto_map` entries (module.Class) a local model folder declares, in its config files."""
    folder = Path(model)
    if not folder.is_dir():
        return []
    found: list[str] = []
    for name in _CONFIG_FILES:
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        auto_map = data.get("auto_map") if isinstance(data, dict) else None
        if not isinstance(auto_map, dict):
            continue
        for value in auto_map.values():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, str) and ref and ref not in found:
                    found.append(ref)
    return found


def decide_trust_remote_code(model: str | Path, family: Any, requested: bool, policy: Any = None) -> bool:
    """The `trust_remote_code` to load `model` (a folder or hub id of `family`) with.

    Refuses (SwiftError) opting in where a policy forbids it, and loading a family that needs its
    repository's own code without the user opting in."""
    if requested:
        if policy is None:
            from swift_core.policy import Policy

            policy = Policy.from_env()
        decision = policy.remote_code_decision()
        if not decision.allowed:
            raise SwiftError(f"--trust_remote_code true: {decision.reason}; the model {model} cannot load")
        return True
    if not getattr(family, "remote_code", False):
        return False  # transformers' own classes; a stray auto_map is never imported
    code = declared_code(model)
    where = (
        f"its folder names its own Python code ({', '.join(code)} in auto_map)"
        if code
        else "its hub repository loads through its own Python code"
    )
    raise SwiftError(
        f"model {model} (family {family.name}): {where}, which Swift does not run unasked. If you trust "
        f"it, pass {FLAG} (the code runs with your rights); otherwise use a transformers-native "
        "conversion of the model."
    )
