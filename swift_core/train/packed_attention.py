"""Attention over packed rows without a dense mask: one causal SDPA call per original row.

transformers trains packed or padding-free batches (one long row, `position_ids` restarting per
original row) by building a dense `batch x L x L` mask from the position ids, then running SDPA
with it: the mask rules out SDPA's fast causal kernel and the cost grows with L^2 of the whole
pack (8 rows of 1,024 tokens -> 8,192^2 per head per layer), so packing was slower per token than
padding (issue 20). On CUDA, flash-attention's varlen kernel solves this; nothing in the stack
does on the CPU (flex attention needs a compiler toolchain and compiles per shape), hence this
function: it is registered with transformers' `AttentionInterface` under `swift_packed_sdpa`, and
since no mask function is registered under that name, transformers builds no mask at all. Each
segment (from `cu_seq_lens_q`, which the padding-free collator sends, or else from where
`position_ids` restart) gets `scaled_dot_product_attention(is_causal=True)` on its own slice: the
cost is the sum of the rows' L^2 and no tensor grows with the pack's L^2.
"""

from __future__ import annotations

from typing import Any

NAME = "swift_packed_sdpa"


def segment_bounds(position_ids: Any) -> list[int]:
    """Start offsets of the original rows in a one-row pack, plus the end: where positions restart."""
    import torch

    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0).reshape(-1).tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [*starts, flat.numel()]


def _bounds(kwargs: dict[str, Any], length: int) -> list[int] | None:
    cu = kwargs.get("cu_seq_lens_q")
    if cu is not None:
        return [int(x) for x in cu.tolist()]
    position_ids = kwargs.get("position_ids")
    if position_ids is None or position_ids.shape[-1] != length:
        return None
    return segment_bounds(position_ids)


def packed_sdpa_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention-function signature; (batch, heads, L, dim) in, (batch, L, heads, dim) out."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    bounds = (
        _bounds(kwargs, length)
        if query.shape[0] == 1 and attention_mask is None and key.shape[2] == length
        else None
    )
    if bounds is None:
        # Not a one-row pack (a padded batch, a generation step with a cache): transformers'
        # own SDPA path, with the mask it built.
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    window = kwargs.get("sliding_window")
    gqa = key.shape[1] != query.shape[1]
    # One split per tensor, not a slice per row: a slice's backward writes its gradient into a
    # zero tensor of the whole pack (rows x pack length per layer), a split's is one concatenation.
    sizes = [b - a for a, b in zip(bounds, bounds[1:]) if b > a]
    pieces = zip(*(t.split(sizes, dim=2) for t in (query, key, value)))
    parts = []
    for size, (q, k, v) in zip(sizes, pieces):
        mask = None
        if window and size > window:  # a row longer than the window: causal within the band
            i = torch.arange(size, device=query.device)
            mask = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < window)
        parts.append(
            scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=dropout,
                scale=scaling,
                is_causal=mask is None,
                enable_gqa=gqa,
            )
        )
    # (batch, L, heads, dim) in one copy: the rows' outputs concatenated along L, transposed.
    if len(parts) == 1:
        return parts[0].transpose(1, 2).contiguous(), None
    return torch.cat([p.transpose(1, 2) for p in parts], dim=1), None


def register() -> str:
    """Make `swift_packed_sdpa` a valid `attn_implementation` (idempotent); returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_sdpa_forward)
    return NAME


def use_packed_attention(model: Any, implementation: str | None = None) -> str | None:
    """Switch a loaded model to attention that keeps packed rows apart without a dense mask.

    `implementation` is what the runtime prefers (flash-attention's varlen kernel on CUDA when it
    is installed); otherwise Swift's per-row SDPA. A model whose attention SDPA cannot compute
    (logit soft-capping, Gemma 2) or that takes no other implementation keeps its own, where
    transformers' dense mask from the position ids still keeps rows apart, only slower. Returns
    the implementation now in use, or None where the model kept its own.
    """
    configs = [model.config, *(getattr(model.config, k, None) for k in ("text_config", "language_config"))]
    if any(getattr(c, "attn_logit_softcapping", None) for c in configs if c is not None):
        return None
    name = implementation or register()
    try:
        model.set_attn_implementation(name)
    except (ValueError, ImportError, AttributeError):
        return None
    return name
