"""Greedy or sampled generation through a chat template, batched with left padding.

The prompt is built by the same template code that built the training labels, so a model is
asked exactly the way it was trained.
"""

from __future__ import annotations

from typing import Any

from swift_core.datasets.encode import encode_prompt


def generate_batch(
    model: Any,
    tokenizer: Any,
    template: Any,
    conversations: list[list[dict[str, Any]]],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    import torch

    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in template.stop if t in tokenizer.get_vocab()]
    if not stop_ids and tokenizer.eos_token_id is not None:
        stop_ids = [tokenizer.eos_token_id]
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids[0] if stop_ids else 0)
    )
    device = next(model.parameters()).device
    answers: list[str] = []
    model.eval()
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        prompts = [encode_prompt(template, tokenizer, messages) for messages in chunk]
        longest = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad_id] * (longest - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=device)
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=None,
                top_k=None,
                eos_token_id=stop_ids or None,
                pad_token_id=pad_id,
            )
        for row in out[:, longest:].tolist():
            cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
            answers.append(tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
    return answers
