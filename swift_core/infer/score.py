"""`swift infer` on a reward model: score (prompt, response) rows instead of generating.

A reward model (trained with `swift rlhf --rlhf_type rm`) answers with a number, not text, so it
does not go through an inference engine: it is loaded with transformers'
`AutoModelForSequenceClassification` (plus its LoRA adapter and saved score head), exactly as it
was trained (same template, same pad token), and rows are scored in length-sorted batches.

Each row's conversation, final answer included, is scored; a preference row also gets its
rejected answer scored, and the summary reports how often the chosen answer scores higher. The
results jsonl has one line per row, in input order, written atomically at the end.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from swift_core.engines.protocol import EngineConfig
from swift_core.errors import SwiftError


def is_reward_model(config: EngineConfig) -> bool:
    """What the checkpoint's args.json says it scores with, else the model's architecture."""
    from swift_core.align.reward_head import SCORES_KEY
    from swift_core.train.outputs import ARGS_FILE, read_args

    folder = Path(str(config.model)).expanduser()
    if (folder / ARGS_FILE).is_file():
        scores = read_args(folder).get(SCORES_KEY)
        if scores is not None:
            return scores == "reward"
    for candidate in (folder, Path(str(config.extra.get("base_model", ""))).expanduser()):
        config_file = candidate / "config.json"
        if str(candidate) and config_file.is_file():
            try:
                architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures") or []
            except (OSError, ValueError):
                continue
            if any(str(a).endswith("ForSequenceClassification") for a in architectures):
                return True
    return False


@dataclass
class ScoredRow:
    score: float | None
    rejected_score: float | None = None
    error: str | None = None


class RewardScorer:
    """A reward model (plus adapter) turning conversations into scalar rewards."""

    def __init__(self, config: EngineConfig, manager: Any = None):
        import torch
        import transformers

        from swift_core.align.reward_head import reward_config
        from swift_core.engines.transformers.engine import resolve_checkpoint
        from swift_core.models.loading import load_tokenizer, template_for
        from swift_core.models.resolve import resolve_model
        from swift_core.plugins import get_plugin_manager
        from swift_core.runtimes.base import torch_dtype
        from swift_core.runtimes.selection import select_runtime

        manager = manager or get_plugin_manager()
        model_path, template_name, model_type, adapter, tokenizer_path = resolve_checkpoint(config)
        resolved = resolve_model(model_path, model_type, manager)
        self.tokenizer = load_tokenizer(tokenizer_path or resolved.model)
        self.template = template_for(template_name or resolved.family.template, self.tokenizer, manager)
        runtime = select_runtime(config.device, manager)
        runtime.configure()
        self.device = runtime.device(0)
        overrides = reward_config(self.tokenizer)
        self.pad_id = int(overrides["pad_token_id"])
        try:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                resolved.model,
                dtype=torch_dtype(config.torch_dtype or runtime.default_dtype()),
                trust_remote_code=resolved.family.remote_code,
                **overrides,
            )
        except OSError as exc:
            raise SwiftError(f"cannot load the reward model {resolved.model!r}: {exc}") from None
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.to(self.device).eval()
        self.max_length = int(
            config.max_model_len or getattr(model.config, "max_position_embeddings", None) or 2048
        )
        self.batch_size = max(1, int(config.max_batch_size))
        self._torch = torch

    def score_ids(self, sequences: list[list[int]], progress: Any = None) -> list[float]:
        """Scores of token sequences, batched by length (right-padded, as in training)."""
        torch = self._torch
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        scores: list[float] = [0.0] * len(sequences)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(sequences[i]) for i in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
                mask[row, : len(sequences[i])] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            for row, i in enumerate(chunk):
                scores[i] = float(logits[row, 0])
            if progress is not None:
                progress.update(len(chunk))
        return scores

    def score_rows(self, rows: list[dict[str, Any]], progress: Any = None) -> list[ScoredRow]:
        """Each row's final answer scored; with a rejected answer, that one too. The conversations
        are encoded as training encoded them, all in one batch; a row with one longer than the
        context is an error row."""
        from swift_core.align.data import with_answer
        from swift_core.datasets.encode import encode_rows

        candidates: list[tuple[int, str, dict[str, Any]]] = []
        for i, row in enumerate(rows):
            tools = {"tools": row["tools"]} if row.get("tools") else {}
            candidates.append((i, "score", {"messages": row["messages"], **tools}))
            if row.get("rejected_response"):
                rejected = with_answer(row["messages"], row["rejected_response"])
                candidates.append((i, "rejected_score", {"messages": rejected, **tools}))
        encoded = encode_rows(
            self.template,
            self.tokenizer,
            [c[2] for c in candidates],
            max_length=self.max_length,
            truncation="delete",
        )
        results = [ScoredRow(None) for _ in rows]
        for (i, _, _), enc in zip(candidates, encoded):
            if enc is None:
                results[i].error = f"longer than the model's context ({self.max_length} tokens)"
        keep = [k for k, (i, _, _) in enumerate(candidates) if results[i].error is None]
        if progress is not None and len(keep) < len(candidates):
            progress.update(len(candidates) - len(keep))
        scores = self.score_ids([list(encoded[k].input_ids) for k in keep], progress)  # type: ignore[union-attr]
        for k, value in zip(keep, scores):
            i, field, _ = candidates[k]
            setattr(results[i], field, value)
        return results


def run_scoring(
    config: EngineConfig, rows: list[dict[str, Any]], result_path: Path, manager: Any = None
) -> Path:
    """Score every row and write the results jsonl; prints throughput and pair accuracy."""
    from tqdm import tqdm

    from swift_core.infer.run import write_jsonl

    scorer = RewardScorer(config, manager)
    total = sum(2 if row.get("rejected_response") else 1 for row in rows)
    start = time.perf_counter()
    with tqdm(total=total, desc="score", unit="seq", file=sys.stderr, dynamic_ncols=True) as bar:
        scored = scorer.score_rows(rows, bar)
    elapsed = max(time.perf_counter() - start, 1e-9)
    records = []
    for row, result in zip(rows, scored):
        record: dict[str, Any] = {"messages": row["messages"]}
        if row.get("tools"):
            record["tools"] = row["tools"]
        if row.get("rejected_response"):
            record["rejected_response"] = row["rejected_response"]
        if result.error:
            record["error"] = result.error
        else:
            record["score"] = result.score
            if result.rejected_score is not None:
                record["rejected_score"] = result.rejected_score
        records.append(record)
    write_jsonl(result_path, records)
    failed = sum(1 for r in scored if r.error)
    pairs = [r for r in scored if r.rejected_score is not None and r.score is not None]
    line = f"score: {len(rows)} rows ({failed} failed) in {elapsed:.2f}s: {total / elapsed:.1f} sequences/s"
    if pairs:
        wins = sum(1 for r in pairs if r.score > r.rejected_score)  # type: ignore[operator]
        line += f"; chosen scored above rejected in {wins}/{len(pairs)} pairs ({wins / len(pairs):.1%})"
    click.echo(f"{line}; results: {result_path}")
    if failed == len(rows):
        raise SwiftError(f"every row failed, e.g.: {next(r.error for r in scored if r.error)}")
    return result_path
