"""One bar chart PNG per dataset: a bar per model (or predictions file), its score on top."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from swift_core.eval.report import model_label


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "dataset"


def write_charts(results: list[dict[str, Any]], output_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from swift_core.atomic import write_bytes_atomic

    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_dataset.setdefault(f"{r['dataset']['name']} ({r['metric']})", []).append(r)
    paths = []
    for title, rows in by_dataset.items():
        labels = [model_label(r) for r in rows]
        values = [float(r["score"]) for r in rows]
        fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 2), 3.6))
        bars = ax.bar(range(len(rows)), values, color="#4c72b0")
        ax.set_xticks(
            range(len(rows)),
            labels,
            rotation=15 if len(rows) > 2 else 0,
            ha="right" if len(rows) > 2 else "center",
        )
        lower = rows[0].get("higher_is_better", True) is False
        ax.set_ylabel(rows[0]["metric"] + (" (lower is better)" if lower else ""))
        ax.set_title(title)
        top = max(values + [1.0 if max(values + [0]) <= 1 else max(values)])
        ax.set_ylim(0, top * 1.15)
        for bar, value in zip(bars, values):
            ax.text(
                bar.get_x() + bar.get_width() / 2, value, f"{value:.3g}", ha="center", va="bottom", fontsize=9
            )
        fig.tight_layout()
        path = output_dir / f"{_slug(title.split(' (')[0])}_{_slug(rows[0]['metric'])}.png"
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths
