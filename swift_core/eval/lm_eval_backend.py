"""`--eval_backend lm-eval`: lm-evaluation-harness against an OpenAI-compatible server.

Swift starts `swift deploy` on the model (or uses `--base_url`), then runs lm-eval in a
subprocess with the Python that has it (`--lm_eval_python`, `$SWIFT_LM_EVAL_PYTHON`, else this
one): its pins (python-dateutil < 3 through pytablewriter) clash with the main environment, so
`make setup-lmeval` gives it a venv of its own (.venv-lmeval). Tasks whose output type is a
loglikelihood (`multiple_choice`, `loglikelihood`, ...) go to `local-completions` (echo + logprobs
on /v1/completions, tokenised by the model's own tokenizer); `generate_until` tasks go to
`local-chat-completions` (the server applies Swift's chat template). The results are folded into
Swift's report with the same provenance fields as native results.

Swift's own small tasks (`swift_mini_mc`, `swift_mini_gen`) ship in `task_files/lm_eval` and are
always on the include path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from swift_core.errors import SwiftError
from swift_core.eval.arguments import EvalArguments
from swift_core.eval.provenance import template_name

TASK_FILES = Path(__file__).parent / "task_files" / "lm_eval"
LOGLIKELIHOOD_TYPES = {"multiple_choice", "loglikelihood", "loglikelihood_rolling"}
SERVED_NAME = "swift-eval"
NOT_METRICS = {"alias", "sample_len", "sample_count"}  # bookkeeping lm-eval puts beside the metrics


def lm_eval_python(args: EvalArguments) -> str:
    return args.lm_eval_python or os.environ.get("SWIFT_LM_EVAL_PYTHON") or sys.executable


def check_lm_eval(python: str) -> str:
    """lm-eval's version in that interpreter, or a one-line error saying how to get it."""
    probe = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('lm_eval'))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SwiftError(
            f"--eval_backend lm-eval: {python} has no lm-eval; run `make setup-lmeval` and pass "
            "--lm_eval_python .venv-lmeval/bin/python (or set SWIFT_LM_EVAL_PYTHON)"
        )
    return probe.stdout.strip()


def prepare_include_path(args: EvalArguments, work: Path) -> Path:
    """Swift's task files (data paths made absolute) plus the user's --lm_eval_include_path."""
    folder = work / "lm_eval_tasks"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for source in [TASK_FILES] + ([Path(args.lm_eval_include_path)] if args.lm_eval_include_path else []):
        if not source.is_dir():
            raise SwiftError(f"--lm_eval_include_path {source}: no such folder")
        for f in source.iterdir():
            if f.suffix in (".yaml", ".yml"):
                text = f.read_text(encoding="utf-8").replace("__TASK_DIR__", str(source.resolve()))
                (folder / f.name).write_text(text, encoding="utf-8")
    return folder


def _yaml_tasks(folder: Path) -> dict[str, dict[str, Any]]:
    import yaml

    found = {}
    for f in sorted(folder.glob("*.y*ml")):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue  # lm-eval's own YAML tags (!function) are lm-eval's business
        if isinstance(doc, dict) and isinstance(doc.get("task"), str):
            found[doc["task"]] = {**doc, "_yaml": str(f)}
    return found


def output_type(task: str, local: dict[str, dict[str, Any]], python: str) -> str:
    """A task's output type: from Swift's/the user's YAML, else from lm-eval's own task index."""
    if task in local and local[task].get("output_type"):
        return str(local[task]["output_type"])
    script = (
        "import json, sys, yaml\n"
        "from lm_eval.tasks import TaskManager\n"
        "info = TaskManager().task_index.get(sys.argv[1])\n"
        "path = info and info.get('yaml_path')\n"
        "doc = {}\n"
        "while path and path != -1:\n"
        "    text = open(path).read()\n"
        "    d = yaml.load(text, Loader=yaml.BaseLoader) or {}\n"
        "    doc = {**d, **doc}\n"
        "    inc = d.get('include')\n"
        "    import os\n"
        "    path = os.path.join(os.path.dirname(path), inc) if inc and 'output_type' not in doc else None\n"
        "print(doc.get('output_type', 'generate_until') if info else '')\n"
    )
    probe = subprocess.run([python, "-c", script, task], capture_output=True, text=True)
    kind = probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""
    if probe.returncode != 0 or not kind:
        raise SwiftError(f"--dataset {task}: lm-eval knows no such task (nor is it in the include path)")
    return kind


@contextmanager
def served(args: EvalArguments, model: str | None, work: Path):
    """The base URL of `swift deploy` started on `model` (or `--base_url`), stopped afterwards."""
    if args.base_url:
        yield args.base_url.rstrip("/"), args.served_model_name or SERVED_NAME
        return
    cmd = [sys.executable, "-m", "swift_core", "deploy", "--port", "0", "--served_model_name", SERVED_NAME]
    if model:
        cmd += ["--model", model]
    if args.adapters:
        cmd += ["--adapters", *args.adapters]
    for flag in (
        "template",
        "engine",
        "engine_kwargs",
        "device",
        "torch_dtype",
        "max_model_len",
        "model_type",
    ):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag}", str(value)]
    cmd += ["--max_batch_size", str(args.max_batch_size)]
    log = (work / "deploy.log").open("w")
    # a server of our own on 127.0.0.1 for lm-eval alone: no API key (lm-eval's local models send none)
    env = {k: v for k, v in os.environ.items() if k != "SWIFT_API_KEY"}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        url = None
        deadline = time.monotonic() + 600
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ready on "):
                url = line.split("ready on ", 1)[1].strip()
                break
            if time.monotonic() > deadline:
                break
        if url is None:
            process.kill()
            raise SwiftError(f"swift deploy did not start (see {work / 'deploy.log'})")
        click.echo(f"eval: swift deploy ready on {url}", err=True)
        yield url, SERVED_NAME
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _model_args(kind: str, url: str, name: str, tokenizer: str | None) -> tuple[str, str]:
    if kind in LOGLIKELIHOOD_TYPES:
        parts = [f"model={name}", f"base_url={url}/v1/completions", "num_concurrent=4", "max_retries=1"]
        parts += [f"tokenizer_backend=huggingface,tokenizer={tokenizer}"] if tokenizer else []
        return "local-completions", ",".join(parts)
    parts = [f"model={name}", f"base_url={url}/v1/chat/completions", "num_concurrent=4", "max_retries=1"]
    return "local-chat-completions", ",".join(parts + ["tokenizer_backend=None"])


def _sha256(path: str) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _dataset_info(task: str, config: dict[str, Any], local: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kwargs = config.get("dataset_kwargs") or {}
    files = kwargs.get("data_files") or {}
    files = files if isinstance(files, dict) else {"data": files}
    paths = [str(v) for v in files.values() if isinstance(v, str)]
    return {
        "name": task,
        "source": "lm-eval",
        "path": config.get("dataset_path"),
        "subset": config.get("dataset_name"),
        "revision": kwargs.get("revision"),
        "files": paths,
        "sha256": _sha256(paths[0]) if len(paths) == 1 else None,
        "task_yaml": local.get(task, {}).get("_yaml"),
    }


def fold_results(
    raw: dict[str, Any], local: dict[str, dict[str, Any]], fields: dict[str, Any]
) -> list[dict[str, Any]]:
    """lm-eval's results JSON -> Swift's result records, one per task and metric."""
    out = []
    for task, metrics in (raw.get("results") or {}).items():
        config = (raw.get("configs") or {}).get(task, {})
        higher = (raw.get("higher_is_better") or {}).get(task, {})
        n = ((raw.get("n-samples") or {}).get(task) or {}).get("effective")
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if "stderr" in metric or not isinstance(value, (int, float)) or metric in NOT_METRICS:
                continue
            out.append(
                {
                    **fields,
                    "dataset": _dataset_info(task, config, local),
                    "metric": metric if filt in ("", "none") else f"{metric} ({filt})",
                    "score": float(value),
                    "stderr": metrics.get(f"{metric}_stderr,{filt}"),
                    "higher_is_better": bool(higher.get(metric, True)),
                    "n": n,
                    "failed": 0,
                    "groups": {},
                    "few_shot": (raw.get("n-shot") or {}).get(task, fields.get("few_shot")),
                }
            )
    return out


def run_lm_eval(args: EvalArguments, manager: Any) -> list[dict[str, Any]]:
    python = lm_eval_python(args)
    version = check_lm_eval(python)
    work = Path(args.output_dir) / "lm_eval"
    work.mkdir(parents=True, exist_ok=True)
    include = prepare_include_path(args, work)
    local = _yaml_tasks(include)
    groups: dict[str, list[str]] = {}
    for task in args.dataset:
        kind = output_type(task, local, python)
        key = "local-completions" if kind in LOGLIKELIHOOD_TYPES else "local-chat-completions"
        groups.setdefault(key, []).append(task)
    results = []
    for model in args.model or [None]:
        fields = {
            "model": model or args.base_url,
            "adapters": list(args.adapters),
            "template": template_name(replace(args, model=model), manager)
            if not args.base_url
            else args.template,
            "template_options": args.chat_template_options(),
            "system": args.system,
            "few_shot": args.few_shot,
            "engine": args.engine if not args.base_url else None,
            "backend": f"lm-eval {version}",
        }
        with served(args, model, work) as (url, name):
            for key, tasks in groups.items():
                kind = "multiple_choice" if key == "local-completions" else "generate_until"
                tokenizer = model or (args.adapters[0] if args.adapters else None)
                lm_model, model_args = _model_args(kind, url, name, tokenizer)
                out = work / f"{lm_model}-{int(time.time() * 1000)}"
                cmd = [python, "-m", "lm_eval", "run", "--model", lm_model, "--model_args", model_args]
                cmd += ["--tasks", *tasks, "--include_path", str(include), "--output_path", str(out)]
                cmd += ["--num_fewshot", str(args.few_shot), "--batch_size", "1"]
                if lm_model == "local-chat-completions":
                    cmd += [
                        "--apply_chat_template"
                    ]  # lm-eval sends messages; the server renders its template
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                if args.system:
                    cmd += ["--system_instruction", args.system]
                if args.seed is not None:
                    cmd += ["--seed", str(args.seed)]
                click.echo(f"eval: lm-eval {' '.join(tasks)} with {lm_model}", err=True)
                env = {
                    **os.environ,
                    "OPENAI_API_KEY": args.api_key or "EMPTY",
                    "TOKENIZERS_PARALLELISM": "false",
                }
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                (work / f"{out.name}.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
                found = sorted(out.rglob("results_*.json"))
                if proc.returncode != 0 or not found:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
                    raise SwiftError(f"lm-eval failed ({tail[0]}); full log: {work / (out.name + '.log')}")
                raw = json.loads(found[-1].read_text(encoding="utf-8"))
                # loglikelihood tasks send raw text to /v1/completions: no chat template is applied
                chat = {"chat_template_applied": lm_model == "local-chat-completions"}
                extra = {**fields, **chat, "lm_eval_model": lm_model, "results_file": str(found[-1])}
                results += fold_results(raw, local, extra)
    return results
