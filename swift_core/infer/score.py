"""`swift infer` on a reward model: score (prompt, response) rows instead of generating.

A reward model (trained with `swift rlhf --rlhf_type rm`) answers with a number, not text, so it
does not go through an inference engine: it is loaded with its head (`models.heads.REWARD`:
transformers' `AutoModelForSequenceClassification`, plus its LoRA adapter and saved score head)
by the same loader as training, exactly as it was trained (same template, same pad token), and
rows are scored in length-sorted batches.

Each row's conversation, final answer included, is scored; a preference row also gets its
rejected answer scored, and the summary reports how often the chosen answer scores higher. The
results jsonl has one line per row, in input order, written atomically at the end.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from swift_core.engines.protocol import EngineConfig
from swift_core.errors import SwiftError


def scores_only(config: EngineConfig) -> bool:
    """Whether `config.model` is a model that scores instead of writing (its head says so: the
    checkpoint's args.json, else the model's config.json)."""
    from swift_core.models.checkpoint import model_head

    return not model_head(str(config.model), config.extra.get("base_model")).generates


@dataclass
class ScoredRow:
    score: float | None
    rejected_score: float | None = None
    error: str | None = None


class RewardScorer:
    """A reward model (plus adapter) turning conversations into scalar rewards."""

    def __init__(self, config: EngineConfig, manager: Any = None):
        import torch

        from swift_core.models.heads import REWARD
        from swift_core.models.loader import load_for_inference

        loaded = load_for_inference(
            str(config.model),
            base_model=config.extra.get("base_model"),
            model_type=config.model_type,
            template=config.template,
            head=REWARD,
            device=config.device,
            torch_dtype=config.torch_dtype,
            trust_remote_code=config.trust_remote_code,
            manager=manager,
        )
        self.tokenizer, self.template, self.model, self.device = (
            loaded.tokenizer,
            loaded.template,
            loaded.model,
            loaded.device,
        )
        self.pad_id = loaded.head.pad_token_id(self.tokenizer)  # the one the head's config reads
        self.max_length = int(
            config.max_model_len or getattr(self.model.config, "max_position_embeddings", None) or 2048
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

    from swift_core.atomic import write_jsonl_atomic

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
    write_jsonl_atomic(result_path, records)
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
