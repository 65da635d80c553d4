"""The reward head: what training (`swift rlhf --rlhf_type rm`) and scoring (`swift infer`) share.

A reward model is transformers' `AutoModelForSequenceClassification` with one output. Its head
reads the score at the last token that is not `config.pad_token_id`, so the pad id batches are
padded with must be the one in the config, the same when training and when scoring; both take it
from here.
"""

from __future__ import annotations

from typing import Any

# from_pretrained overrides that turn a causal LM checkpoint into a reward model.
REWARD_CONFIG = {"num_labels": 1}
# args.json key recording what a checkpoint scores with (AlignmentLossDescriptor.scores).
SCORES_KEY = "scores"


def reward_pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad token, else its end-of-sequence token, else 0."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


def reward_config(tokenizer: Any) -> dict[str, Any]:
    return {**REWARD_CONFIG, "pad_token_id": reward_pad_token_id(tokenizer)}
