"""Predictions from a model: every row of a task asked through an engine plugin, cached.

All rows are submitted at once, so the engine batches them (the transformers engine groups
concurrent requests; vLLM schedules them). The predictions file is written atomically under a
name derived from everything that changes the answers (model, adapters, template, its options,
system prompt, few-shot examples, generation settings, engine, dataset hash and rows): the same
command again reuses it instead of generating; a change of any of them generates anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from swift_core.atomic import write_jsonl_atomic
from swift_core.engines.protocol import GenerationRequest, InferenceEngine, UnsupportedRequest
from swift_core.eval.rows import ScoredRow, TaskRow
from swift_core.eval.tasks import Task


def few_shot_messages(shots: list[TaskRow]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for shot in shots:
        question = [m for m in shot.messages if m.get("role") != "system"]
        reference = shot.reference[0] if isinstance(shot.reference, list) else shot.reference
        turns += [*question, {"role": "assistant", "content": str(reference)}]
    return turns


def prompt_messages(row: TaskRow, shots: list[TaskRow], system: str | None) -> list[dict[str, Any]]:
    own_system = [m for m in row.messages if m.get("role") == "system"]
    rest = [m for m in row.messages if m.get("role") != "system"]
    head = own_system or ([{"role": "system", "content": system}] if system else [])
    return [*head, *few_shot_messages(shots), *rest]


def cache_key(settings: dict[str, Any], task: Task) -> str:
    blob = json.dumps(
        {
            "settings": settings,
            "dataset": task.info.get("sha256"),
            "rows": [r.id for r in task.rows],
            "shots": [s.id for s in task.shots],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_cached(path: Path, task: Task) -> list[ScoredRow] | None:
    if not path.is_file():
        return None
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except ValueError:
        return None
    if [str(r.get("id")) for r in records] != [row.id for row in task.rows]:
        return None
    return [
        ScoredRow(row, rec.get("prediction"), error=rec.get("error")) for row, rec in zip(task.rows, records)
    ]


def generate(
    engine: InferenceEngine, tasks: list[Task], request_for: Any, system: str | None
) -> list[list[ScoredRow]]:
    """Ask every row of every task in one event loop (the engine batches across tasks too), then
    close the engine; a row the engine refuses (too long, ...) is kept with its error."""
    from tqdm import tqdm

    results: list[list[ScoredRow | None]] = [[None] * len(t.rows) for t in tasks]
    jobs = [(k, i) for k, t in enumerate(tasks) for i in range(len(t.rows))]

    async def one(k: int, i: int) -> tuple[int, int, Any]:
        task = tasks[k]
        try:
            request: GenerationRequest = request_for(prompt_messages(task.rows[i], task.shots, system))
            return k, i, await engine.generate(request)
        except UnsupportedRequest as exc:
            return k, i, exc

    async def run_all() -> None:
        names = ", ".join(t.name for t in tasks)
        try:
            with tqdm(
                total=len(jobs), desc=f"eval {names}", unit="row", file=sys.stderr, dynamic_ncols=True
            ) as bar:
                for done in asyncio.as_completed([one(k, i) for k, i in jobs]):
                    k, i, outcome = await done
                    row = tasks[k].rows[i]
                    if isinstance(outcome, BaseException):
                        results[k][i] = ScoredRow(row, None, error=str(outcome))
                    else:
                        results[k][i] = ScoredRow(row, outcome.choices[0].text)
                    bar.update(1)
        finally:
            await engine.close()

    asyncio.run(run_all())
    return [[r for r in rows if r is not None] for rows in results]


def write_predictions(path: Path, rows: list[ScoredRow]) -> None:
    """Swift's predictions format (swift_core.eval.predictions reads it back)."""
    records = []
    for r in rows:
        record: dict[str, Any] = {
            "id": r.row.id,
            "prompt": r.row.prompt,
            "messages": r.row.messages,
            "prediction": r.prediction,
            "reference": r.row.reference,
        }
        if r.row.choices:
            record["choices"] = r.row.choices
        if r.row.meta:
            record["meta"] = r.row.meta
        if r.error:
            record["error"] = r.error
        records.append(record)
    write_jsonl_atomic(path, records)
