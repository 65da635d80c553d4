"""The docs stay true to the code."""

import inspect

import tomllib
from helpers import REPO

from swift_core import hookspecs
from swift_core.cli.main import CORE_COMMANDS


def _hookspecs():
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "swift_spec"):
            yield name, fn


def test_every_hook_is_documented_with_its_signature():
    text = (REPO / "docs" / "plugins.md").read_text()
    specs = dict(_hookspecs())
    assert len(specs) >= 17
    for name, fn in specs.items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"`{name}({params})`" in text, f"docs/plugins.md lacks `{name}({params})`"


def test_every_core_command_is_in_the_readme():
    text = (REPO / "README.md").read_text()
    for name in CORE_COMMANDS:
        assert f"swift {name}" in text, f"README.md does not mention `swift {name}`"


def test_readme_opens_with_the_two_commands():
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.strip()]
    commands = [line.split("#")[0].strip() for line in lines[:12] if line.strip().startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_plugin_package_is_under_import_contracts():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["type"]: c for c in config["contracts"]}
    packages = sorted(
        p.parent.name
        for root in ("plugins", "hw_adapters")
        for p in (REPO / root).glob("*/swift_*/__init__.py")
    )
    assert packages, "no plugin packages found"
    for pkg in packages:
        assert pkg in config["root_packages"], pkg
        assert pkg in contracts["forbidden"]["forbidden_modules"], pkg
        assert pkg in contracts["independence"]["modules"], pkg


def test_generated_docs_are_current():
    """docs/models.md, templates.md, datasets.md come from the registries (`make docs`)."""
    from swift_core.docgen import generate

    for name, text in generate().items():
        assert (REPO / "docs" / name).read_text() == text, f"docs/{name} is stale: run `make docs`"
