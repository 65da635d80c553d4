"""Selecting a chat template by name, and the official jinja texts shipped with Swift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swift_core.templates.base import ChatTemplate

JINJA_DIR = Path(__file__).resolve().parent / "jinja"


def get_template(name: str, manager: Any = None) -> ChatTemplate:
    """An instance of the named template from the templates registry."""
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    factory = manager.load("templates", name)
    template = factory()
    if not isinstance(template, ChatTemplate):
        raise TypeError(f"template {name!r} factory did not return a ChatTemplate")
    return template


def official_jinja(template: ChatTemplate) -> str | None:
    """The official jinja text of the template's family, when Swift ships one."""
    if not template.jinja_name:
        return None
    path = JINJA_DIR / f"{template.jinja_name}.jinja"
    return path.read_text(encoding="utf-8") if path.is_file() else None
