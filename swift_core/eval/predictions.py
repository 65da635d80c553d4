"""Predictions files: what a model answered, to be scored without the model.

Two shapes are read, row by row:

* Swift's own: `{id, prompt, prediction, reference, choices?, meta?}` (what `swift eval --model`
  writes; `prompt` may be chat `messages`);
* the results file of `swift infer --val_dataset`: `{messages, response, reference, error?}`.

With `--dataset` the references (and choices) come from the dataset instead, matched by `id`, or
by position when the file has no ids; a row the dataset does not have is an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError
from swift_core.eval.files import read_rows, sha256_of
from swift_core.eval.rows import ScoredRow, TaskRow
from swift_core.eval.tasks import Task, _choices, _letter, _task_kind

PREDICTION_KEYS = ("prediction", "response", "output")


def _prediction(raw: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """(prediction, error) of a row; a failed row of swift infer has response null and an error."""
    key = next((k for k in PREDICTION_KEYS if k in raw), None)
    if key is None:
        raise SwiftError(f"{where}, field 'prediction': missing (give one of {', '.join(PREDICTION_KEYS)})")
    value = raw[key]
    if value is None:
        return None, str(raw.get("error") or "no prediction")
    if not isinstance(value, str):
        raise SwiftError(f"{where}, field '{key}': expected a string, got {type(value).__name__}")
    return value, None


def _own_row(raw: dict[str, Any], where: str, index: int) -> TaskRow:
    if isinstance(raw.get("messages"), list):
        messages = [dict(m) for m in raw["messages"]]
    elif raw.get("prompt") is not None:
        messages = [{"role": "user", "content": str(raw["prompt"])}]
    else:
        messages = []
    if "reference" not in raw or raw["reference"] is None:
        raise SwiftError(
            f"{where}, field 'reference': missing (or give --dataset to take the references from it)"
        )
    choices = _choices(raw.get("choices"), where)
    reference = _letter(raw["reference"], choices, where) if choices else raw["reference"]
    meta = dict(raw.get("meta") or {})
    return TaskRow(str(raw.get("id", index)), messages, reference, choices, meta, where)


def read_predictions(path: Path, task: Task | None = None) -> tuple[Task, list[ScoredRow]]:
    """The task the predictions answer (from the file, or `task` when --dataset is given) and the
    predictions, one `ScoredRow` per row, not yet scored."""
    if not path.is_file():
        raise SwiftError(f"--model_outputs {path}: no such file")
    raws = list(read_rows(path))
    if not raws:
        raise SwiftError(f"--model_outputs {path}: no rows")
    out: list[ScoredRow] = []
    wheres = [f"{path}, line {line}" for line, _ in raws]
    if task is None:
        rows = [_own_row(raw, where, i) for i, ((_, raw), where) in enumerate(zip(raws, wheres))]
        info = {
            "source": "predictions file",
            "path": str(path.resolve()),
            "sha256": sha256_of([path]),
            "revision": None,
            "rows": len(rows),
        }
        task = Task(path.stem, _task_kind(rows), rows, info)
    else:
        by_id = {r.id: r for r in task.rows}
        have_ids = all("id" in raw for _, raw in raws)
        if not have_ids and len(raws) != len(task.rows):
            raise SwiftError(
                f"--model_outputs {path}: {len(raws)} rows without ids, but --dataset {task.info.get('spec')} has "
                f"{len(task.rows)}: give each prediction the id of its row"
            )
        rows = []
        for i, ((_, raw), where) in enumerate(zip(raws, wheres)):
            if have_ids:
                found = by_id.get(str(raw["id"]))
                if found is None:
                    raise SwiftError(
                        f"{where}, field 'id': {raw['id']!r} is not a row of --dataset {task.info.get('spec')}"
                    )
                rows.append(found)
            else:
                rows.append(task.rows[i])
        task = Task(
            task.name,
            task.kind,
            rows,
            dict(
                task.info,
                rows=len(rows),
                predictions=str(path.resolve()),
                predictions_sha256=sha256_of([path]),
            ),
            task.shots,
        )
    for (_, raw), where, row in zip(raws, wheres, task.rows):
        prediction, error = _prediction(raw, where)
        out.append(ScoredRow(row, prediction, error=error))
    return task, out
