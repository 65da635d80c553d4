"""The report: every result with what it depends on, as JSON and as a terminal table.

A number is only comparable with another measured the same way, so each result carries the model,
adapters, template and its flags, system prompt, few-shot count, engine, generation settings,
backend, and the dataset's path or hub id, revision and sha256.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

from swift_core.atomic import write_json_atomic


def build_report(results: list[dict[str, Any]], argv: list[str] | None = None) -> dict[str, Any]:
    from swift_core import __version__

    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "swift_version": __version__,
        "command": list(argv if argv is not None else sys.argv),
        "results": results,
    }


def write_report(report: dict[str, Any], output_dir: Path) -> Path:
    path = output_dir / "eval_report.json"
    write_json_atomic(path, report)
    return path


def model_label(result: dict[str, Any]) -> str:
    path = Path(str(result.get("model") or "?"))
    label = path.name or str(result.get("model"))
    if label.startswith("checkpoint-") and len(path.parts) >= 3:  # OUTPUT_DIR/vN-stamp/checkpoint-N
        label = f"{path.parent.parent.name}/{label}"
    adapters = result.get("adapters") or []
    if adapters:
        label += " + " + ", ".join(Path(a.split("=")[-1]).name for a in adapters)
    return label


def format_table(results: list[dict[str, Any]]) -> str:
    headers = ("model", "dataset", "metric", "score", "rows", "failed")
    lines = []
    for r in results:
        lines.append(
            (
                model_label(r),
                str(r["dataset"]["name"]),
                f"{r['metric']}{'' if r.get('higher_is_better', True) else ' (lower is better)'}",
                f"{r['score']:.4f}",
                str(r.get("n", "")),
                str(r.get("failed", 0)),
            )
        )
        for group, value in (r.get("groups") or {}).items():
            lines.append(("", f"  {group}", r["metric"], f"{value:.4f}", "", ""))
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(line.rstrip() for line in out)
