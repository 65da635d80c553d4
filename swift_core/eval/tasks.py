"""`--dataset` specs -> tasks: rows to ask, and where they came from (path, revision, hash).

A spec is

* `PATH`: a task file or folder of the project's own row format (below);
* `BENCHMARK:PATH`: a local copy of a named benchmark, read in that benchmark's format;
* `BENCHMARK` or `BENCHMARK.SUBSET`: the benchmark's hub dataset (`swift_core.eval.benchmarks`).

Row format of task files: `{"messages": [...]}` whose last assistant turn is the reference (what
`swift sft` trains on), or `{"question"|"prompt"|"query": ..., "answer"|"reference"|"response": ...}`;
optional `choices` (a list, or `{"text": [...], "label": [...]}`; the answer is then a letter, an
index or the choice's text), `id`, `system`, `meta` and `kind` ("math", "ocr", ...).

Hub benchmarks fail at once, in one line, when the hub is off (`HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE`)
or cannot be reached; a local path is never looked up on the hub.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from swift_core.errors import SwiftError
from swift_core.eval.benchmarks import BENCHMARKS, Benchmark
from swift_core.eval.files import data_files, read_rows, sha256_of
from swift_core.eval.rows import LETTERS, TaskRow

_TRUE = {"1", "true", "yes", "on"}
QUESTION_KEYS = ("question", "prompt", "query", "input", "instruction")
ANSWER_KEYS = ("answer", "reference", "response", "target", "output", "label")


@dataclass
class Task:
    name: str
    kind: str  # the default scorer's task kind, unless --metric says otherwise
    rows: list[TaskRow]
    info: dict[str, Any] = field(default_factory=dict)  # spec, source, path/hub id, split, revision, sha256
    shots: list[TaskRow] = field(default_factory=list)  # few-shot examples (never scored)


def mc_prompt(question: str, choices: list[str]) -> str:
    lines = [str(question).strip()]
    lines += [f"{LETTERS[i]}. {str(c).strip()}" for i, c in enumerate(choices)]
    lines.append("Answer with the letter of the correct option.")
    return "\n".join(lines)


def _choices(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if not isinstance(value, (list, tuple)) or not value or len(value) > len(LETTERS):
        raise SwiftError(f"{where}, field 'choices': expected a list of 1-26 options, got {value!r}")
    return [str(c) for c in value]


def _letter(answer: Any, choices: list[str], where: str) -> str:
    if isinstance(answer, bool):
        raise SwiftError(f"{where}, field 'answer': expected a letter, an index or a choice, got {answer!r}")
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        index = int(answer)
        if not 0 <= index < len(choices):
            raise SwiftError(f"{where}, field 'answer': index {index} is outside the {len(choices)} choices")
        return LETTERS[index]
    text = str(answer).strip()
    if len(text) == 1 and text.upper() in LETTERS[: len(choices)]:
        return text.upper()
    if text in choices:
        return LETTERS[choices.index(text)]
    raise SwiftError(
        f"{where}, field 'answer': {answer!r} is none of the letters {LETTERS[: len(choices)]} or choices"
    )


def task_row(raw: dict[str, Any], where: str, index: int) -> TaskRow:
    """One row of the project's format (see the module docstring) as a `TaskRow`."""
    meta = dict(raw.get("meta") or {})
    for key in ("task", "subject", "kind"):
        if raw.get(key) is not None:
            meta.setdefault(key, raw[key])
    choices = _choices(raw.get("choices"), where)
    system = raw.get("system")
    if "messages" in raw:
        messages = raw["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise SwiftError(f"{where}, field 'messages': expected a list of {{role, content}} objects")
        messages = [dict(m) for m in messages]
        reference = raw.get("reference", raw.get("answer"))
        if messages and messages[-1].get("role") == "assistant":
            last = messages.pop()
            reference = last.get("content") if reference is None else reference
        if not messages:
            raise SwiftError(f"{where}, field 'messages': no prompt before the answer")
    else:
        question = next((raw[k] for k in QUESTION_KEYS if raw.get(k) is not None), None)
        if question is None:
            raise SwiftError(
                f"{where}, field 'question': missing (give one of {', '.join(QUESTION_KEYS)}, or messages)"
            )
        reference = next((raw[k] for k in ANSWER_KEYS if raw.get(k) is not None), None)
        content = mc_prompt(question, choices) if choices else str(question)
        messages = [{"role": "user", "content": content}]
    if system:
        messages = [{"role": "system", "content": str(system)}, *messages]
    if reference is None:
        raise SwiftError(f"{where}, field 'answer': missing (give one of {', '.join(ANSWER_KEYS)})")
    if choices:
        reference = _letter(reference, choices, where)
    return TaskRow(str(raw.get("id", index)), messages, reference, choices, meta, where)


def _task_kind(rows: list[TaskRow], default: str = "generation") -> str:
    if rows and all(r.choices for r in rows):
        return "multiple_choice"
    kinds = {r.meta.get("kind") for r in rows}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else default


def _read_local(path: Path, benchmark: Benchmark | None, split: str) -> tuple[list[TaskRow], list[Path]]:
    files = data_files(path, split)
    rows: list[TaskRow] = []
    for f in files:
        for line, raw in read_rows(f, csv_header=benchmark.csv_header if benchmark else True):
            where = f"{f}, {'line' if f.suffix in ('.jsonl', '.csv') else 'row'} {line}"
            if benchmark is not None:
                try:
                    raw = benchmark.convert(raw)
                except (KeyError, TypeError, ValueError) as exc:
                    raise SwiftError(f"{where}, field {exc}: not a {benchmark.name} row") from None
            rows.append(task_row(raw, where, len(rows)))
    return rows, files


def hub_offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _hub_reachable(timeout: float = 1.5) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection(
            (endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout=timeout
        ):
            return True
    except OSError:
        return False


def check_hub_available(name: str, hf_id: str) -> None:
    """Fail fast, in one line, before `datasets` is even imported."""
    hint = f"give a local copy: --dataset {name.split('.')[0]}:/path/to/{hf_id.split('/')[-1]}"
    if hub_offline():
        raise SwiftError(
            f"--dataset {name}: {hf_id} is on the Hugging Face hub and the hub is off (HF_HUB_OFFLINE); {hint}"
        )
    if not _hub_reachable():
        raise SwiftError(f"--dataset {name}: cannot reach the Hugging Face hub for {hf_id}; {hint}")


def _read_hub(
    name: str, benchmark: Benchmark, subset: str | None, split: str
) -> tuple[list[TaskRow], dict[str, Any]]:
    if subset is None:
        raise SwiftError(
            f"--dataset {name}: {benchmark.name} needs a subject: --dataset {benchmark.name}.SUBJECT"
        )
    check_hub_available(name, benchmark.hf_id)
    import datasets

    data = datasets.load_dataset(benchmark.hf_id, subset, split=split)
    rows = [
        task_row(benchmark.convert(raw), f"{benchmark.hf_id} ({split}), row {i + 1}", i)
        for i, raw in enumerate(data)
    ]
    revision = None
    try:
        from huggingface_hub import HfApi

        revision = HfApi().dataset_info(benchmark.hf_id).sha
    except Exception:  # the revision is informative; the rows loaded
        pass
    return rows, {
        "hub_id": benchmark.hf_id,
        "revision": revision,
        "sha256": getattr(data, "_fingerprint", None),
    }


def split_spec(spec: str) -> tuple[Benchmark | None, str | None, Path | None]:
    """(benchmark, subset, local path) of a --dataset spec."""
    name, colon, rest = spec.partition(":")
    base, _, subset = name.partition(".")
    if colon and base in BENCHMARKS:
        return BENCHMARKS[base], subset or None, Path(rest)
    if Path(spec).exists():
        return None, None, Path(spec)
    if base in BENCHMARKS and not colon:
        return BENCHMARKS[base], subset or BENCHMARKS[base].subset, None
    raise SwiftError(
        f"--dataset {spec}: neither a file or folder nor a benchmark. Benchmarks: {', '.join(BENCHMARKS)} "
        "(BENCHMARK for the hub, BENCHMARK:PATH for a local copy)"
    )


def load_task(spec: str, few_shot: int = 0, limit: int | None = None) -> Task:
    """The rows of one --dataset spec; `few_shot` examples come from the benchmark's few-shot
    split when the copy has it, else from the start of the rows (and are then not scored)."""
    benchmark, subset, path = split_spec(spec)
    split = benchmark.split if benchmark else ""
    if path is not None:
        rows, files = _read_local(path, benchmark, split)
        info: dict[str, Any] = {
            "source": "local",
            "path": str(path.resolve()),
            "files": [str(f) for f in files],
            "sha256": sha256_of(files),
            "revision": None,
        }
        shots: list[TaskRow] = []
        if (
            few_shot
            and benchmark
            and benchmark.few_shot_split
            and path.is_dir()
            and (path / benchmark.few_shot_split).is_dir()
        ):
            shots = _read_local(path / benchmark.few_shot_split, benchmark, "")[0][:few_shot]
    else:
        assert benchmark is not None
        rows, info = _read_hub(spec, benchmark, subset, split)
        info["source"] = "hub"
        shots = []
        if few_shot and benchmark.few_shot_split:
            shots = _read_hub(spec, benchmark, subset, benchmark.few_shot_split)[0][:few_shot]
    if few_shot and len(shots) < few_shot:
        taken = few_shot - len(shots)
        shots, rows = shots + rows[:taken], rows[taken:]
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise SwiftError(f"--dataset {spec}: no rows to evaluate")
    name = benchmark.name if benchmark else Path(spec).stem
    if subset and benchmark and subset != benchmark.subset:
        name = f"{name}.{subset}"
    info.update(
        spec=spec,
        benchmark=benchmark.name if benchmark else None,
        subset=subset,
        split=split or None,
        rows=len(rows),
    )
    return Task(name, _task_kind(rows, benchmark.kind if benchmark else "generation"), rows, info, shots)
