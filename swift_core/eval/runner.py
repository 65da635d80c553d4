"""`swift eval` in stages: read and check everything cheap first, then generate, score, report.

1. Tasks (`--dataset`) are read and scorers chosen before any model loads, so a bad row, an
   unknown metric or an offline hub name fails in a second, in one line.
2. Predictions files (`--model_outputs`) are scored as they are.
3. Each `--model` answers each task through the `--engine` plugin (cached predictions are reused;
   the engine is built only when something is not cached), then is scored.
4. `--eval_backend lm-eval` hands the models to lm-evaluation-harness over HTTP instead.
5. One JSON report, a table on the terminal, a bar chart per dataset.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import click

from swift_core.errors import SwiftError
from swift_core.eval.arguments import EvalArguments
from swift_core.eval.provenance import model_settings
from swift_core.eval.rows import ScoredRow
from swift_core.eval.scoring import build_scorer, score_rows, scorer_descriptor
from swift_core.eval.tasks import Task, load_task


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[-80:] or "model"


def _check(args: EvalArguments) -> None:
    if args.eval_backend == "lm-eval":
        if not (args.model or args.base_url):
            raise SwiftError(
                "--eval_backend lm-eval: give --model (swift deploy is started on it) or --base_url"
            )
        if not args.dataset:
            raise SwiftError("--eval_backend lm-eval: give the lm-eval task names with --dataset")
        return
    if not args.model and not args.model_outputs and not args.adapters:
        raise SwiftError(
            "give --model_outputs PREDICTIONS.jsonl to score, or --model MODEL (and --dataset) to evaluate"
        )
    if (args.model or args.adapters) and not args.dataset:
        raise SwiftError("--model: give the tasks to evaluate it on with --dataset")
    if args.model_outputs and len(args.dataset) > 1:
        raise SwiftError("--model_outputs: give at most one --dataset (the one the predictions answer)")


def _result(task: Task, score: Any, **fields: Any) -> dict[str, Any]:
    return {
        **fields,
        "dataset": {"name": task.name, **task.info},
        "metric": score.metric,
        "score": score.value,
        "higher_is_better": score.higher_is_better,
        "n": score.n,
        "failed": score.failed,
        "groups": score.groups,
    }


def _score(task: Task, rows: list[ScoredRow], args: EvalArguments, manager: Any) -> Any:
    descriptor = scorer_descriptor(manager, task.kind, args.metric)
    return score_rows(build_scorer(descriptor, args), descriptor, rows)


def score_predictions_files(args: EvalArguments, tasks: list[Task], manager: Any) -> list[dict[str, Any]]:
    from swift_core.eval.predictions import read_predictions

    results = []
    for spec in args.model_outputs:
        path = Path(spec)
        task, rows = read_predictions(path, tasks[0] if tasks else None)
        score = _score(task, rows, args, manager)
        results.append(
            _result(
                task,
                score,
                model=str(path),
                adapters=[],
                backend="predictions file",
                predictions=str(path.resolve()),
            )
        )
    return results


def evaluate_models(args: EvalArguments, tasks: list[Task], manager: Any) -> list[dict[str, Any]]:
    from swift_core.eval.generate import cache_key, generate, read_cached, write_predictions
    from swift_core.infer.arguments import build_engine

    results = []
    for model in args.model or [None]:
        engine_args, settings = model_settings(args, model, manager)
        label = _slug(model or args.adapters[0]) + (
            f"+{_slug(args.adapters[0])}" if model and args.adapters else ""
        )
        paths = [
            Path(args.output_dir) / "predictions" / label / f"{_slug(t.name)}-{cache_key(settings, t)}.jsonl"
            for t in tasks
        ]
        answered: list[list[ScoredRow] | None] = [
            read_cached(p, t) if args.use_cache else None for p, t in zip(paths, tasks)
        ]
        for path, rows in zip(paths, answered):
            if rows is not None:
                click.echo(f"eval: reusing cached predictions {path}", err=True)
        todo = [k for k, rows in enumerate(answered) if rows is None]
        if todo:  # the engine loads only when something is not cached
            engine = build_engine(engine_args, manager)
            started = time.perf_counter()
            fresh = generate(engine, [tasks[k] for k in todo], args.request, args.system)
            n = sum(len(rows) for rows in fresh)
            click.echo(
                f"eval: {model or args.adapters[0]}: {n} rows answered in {time.perf_counter() - started:.1f}s",
                err=True,
            )
            for k, rows in zip(todo, fresh):
                write_predictions(paths[k], rows)
                answered[k] = rows
        for task, path, rows in zip(tasks, paths, answered):
            assert rows is not None
            score = _score(task, rows, args, manager)
            results.append(
                _result(task, score, **settings, backend="native", predictions=str(path.resolve()))
            )
    return results


def run_eval(args: EvalArguments, manager: Any = None, argv: list[str] | None = None) -> dict[str, Any]:
    from swift_core.eval.chart import write_charts
    from swift_core.eval.report import build_report, format_table, write_report
    from swift_core.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    _check(args)
    if args.metric:
        manager.get("scorers", args.metric)  # an unknown metric fails before anything loads
    if args.eval_backend == "lm-eval":
        from swift_core.eval.lm_eval_backend import run_lm_eval

        results = run_lm_eval(args, manager)
    else:
        tasks = [load_task(spec, args.few_shot, args.limit) for spec in args.dataset]
        for task in tasks:
            scorer_descriptor(manager, task.kind, args.metric).load()  # missing requirements, now
        results = score_predictions_files(args, tasks, manager)
        if args.model or args.adapters:
            results += evaluate_models(args, tasks, manager)
    output_dir = Path(args.output_dir)
    report = build_report(results, argv)
    path = write_report(report, output_dir)
    charts = write_charts(results, output_dir)
    click.echo(format_table(results))
    click.echo(f"eval: {len(results)} result(s); report: {path}; charts: {', '.join(str(c) for c in charts)}")
    return report
