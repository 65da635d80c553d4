"""Read a YAML or JSON config file into a flat mapping of argument names to values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def is_config_path(token: str) -> bool:
    return not token.startswith("-") and token.lower().endswith(CONFIG_SUFFIXES)


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SwiftError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SwiftError(f"config file {path}, line {exc.lineno}: invalid JSON: {exc.msg}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise SwiftError(
                f"config file {path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SwiftError(
            f"config file {path}: expected a mapping of argument names to values, got {type(data).__name__}"
        )
    return data
