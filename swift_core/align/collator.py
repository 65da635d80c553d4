"""Batches for the preference trainer: chosen and rejected in one padded batch (one forward)."""

from __future__ import annotations

from typing import Any

from swift_core.datasets.collator import PadCollator
from swift_core.datasets.encode import IGNORE_INDEX


def _split(ids: list[int], labels: list[int]) -> tuple[list[int], list[int], list[int]]:
    start = next(i for i, x in enumerate(labels) if x != IGNORE_INDEX)
    return ids[:start], ids[start:], labels[start:]


class PreferenceCollator:
    """Paired rows: rows 0..B-1 are the chosen answers, B..2B-1 the rejected ones.

    Unpaired (KTO) rows: rows 0..B-1 the examples, B..2B-1 each prompt with the next example's
    answer, whose log-probs estimate KL(policy || reference) as KTO's reference point.
    """

    def __init__(self, pad_token_id: int, paired: bool):
        self.pad = PadCollator(pad_token_id)
        self.paired = paired

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        if self.paired:
            rows = [{"input_ids": f["chosen_input_ids"], "labels": f["chosen_labels"]} for f in features]
            rows += [{"input_ids": f["rejected_input_ids"], "labels": f["rejected_labels"]} for f in features]
        else:
            rows = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features]
            parts = [_split(f["input_ids"], f["labels"]) for f in features]
            for i, (prompt, _, _) in enumerate(parts):
                _, answer, answer_labels = parts[(i + 1) % len(parts)]
                rows.append(
                    {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer_labels}
                )
        batch = self.pad(rows)
        if not self.paired:
            batch["kto_labels"] = torch.tensor([bool(f["label"]) for f in features])
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
        return batch
