"""Files of a new plugin distribution (`swift plugins new NAME`)."""

from __future__ import annotations

import re
from pathlib import Path

from swift_core.errors import SwiftError

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "swift-{name}"
version = "0.1.0"
description = "A Swift plugin: {name}"
requires-python = ">=3.10"
dependencies = ["swift-core"]

[project.entry-points.swift]
{name} = "swift_{pkg}.plugin"

[tool.setuptools.packages.find]
include = ["swift_{pkg}*"]
"""

_PLUGIN = '''\
"""The swift-{name} plugin: its hooks. Keep this module light; import heavy code in factories."""

from swift_core import hookimpl
from swift_core.descriptors import TemplateDescriptor


@hookimpl
def register_templates(register):
    register(
        TemplateDescriptor(
            name="{name}-template",
            description="An example template registered by swift-{name}",
            factory="swift_{pkg}.template:build",
        )
    )
'''

_TEMPLATE = '''\
"""The factory behind the example template: imported only when the template is selected."""


def build():
    return {{"name": "{name}-template"}}
'''

_TEST = """\
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy


def test_plugin_registers_its_template():
    manager = PluginManager(
        Policy(), [PluginSource("{name}", "swift_{pkg}.plugin", "swift-{name}", "0.1.0")]
    )
    assert manager.plugins["{name}"].status == "loaded"
    assert manager.load("templates", "{name}-template")() == {{"name": "{name}-template"}}
"""

_README = """\
# swift-{name}

A plugin for Swift. Install it next to `swift-core`:

    pip install -e .
    swift plugins list

It registers the template `{name}-template` (see `swift_{pkg}/plugin.py`).
"""


def scaffold_plugin(name: str, directory: Path) -> Path:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise SwiftError(
            f"plugin name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter"
        )
    name = name.removeprefix("swift-")
    pkg = name.replace("-", "_")
    root = directory / f"swift-{name}"
    if root.exists():
        raise SwiftError(f"{root} already exists")
    files = {
        "pyproject.toml": _PYPROJECT,
        f"swift_{pkg}/__init__.py": '"""swift-{name}: a Swift plugin."""\n',
        f"swift_{pkg}/plugin.py": _PLUGIN,
        f"swift_{pkg}/template.py": _TEMPLATE,
        "tests/test_plugin.py": _TEST,
        "README.md": _README,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(name=name, pkg=pkg), encoding="utf-8")
    return root
