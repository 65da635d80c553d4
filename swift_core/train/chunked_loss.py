"""The causal-LM loss from hidden states, in chunks, at trained positions only: no full logits.

A causal LM's forward returns `batch x length x vocab` logits, which the loss upcasts to fp32 and
softmaxes, and autograd keeps for the backward: at a 150k vocabulary that is 0.6 MB per token,
more than all the layers' activations of a small model, and on prompt tokens (label -100) it is
pure waste. Here the model runs to its last hidden state (`logits_to_keep=1`: one position's
logits), the hidden states of trained positions are picked, and `FusedLinearCrossEntropy`
computes, chunk by chunk, the logits, the loss and their gradients at once, so at most one chunk
of logits exists at any time and nothing is recomputed in the backward. Liger-Kernel does this with
Triton kernels (CUDA only); nothing in the stack does it on the CPU, hence this module.

The model's own head might not be a plain `hidden @ W.T (+ b)` (Gemma's logit soft-capping,
Cohere's logit scale): `check_against_model` compares against the model's own loss on the first
batch, and the trainer falls back to the model's loss when they differ.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
# Elements of fp32 logits per chunk: 16M (64 MB), whatever the vocabulary.
CHUNK_ELEMENTS = 1 << 24


def _fused_function() -> Any:
    import torch

    class FusedLinearCrossEntropy(torch.autograd.Function):
        """sum over rows of CE(hidden @ W.T + b, target) * scale, gradients made in the forward."""

        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, bias: Any, targets: Any, scale: float) -> Any:
            n, vocab = hidden.shape[0], weight.shape[0]
            chunk = max(1, CHUNK_ELEMENTS // vocab)
            w32 = weight.float()
            b32 = bias.float() if bias is not None else None
            need_w = weight.requires_grad
            need_b = bias is not None and bias.requires_grad
            grad_hidden = torch.empty_like(hidden) if hidden.requires_grad else None
            grad_w = torch.zeros_like(w32) if need_w else None
            grad_b = torch.zeros_like(b32) if need_b else None
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            for a in range(0, n, chunk):
                h = hidden[a : a + chunk].float()
                t = targets[a : a + chunk]
                logits = h @ w32.T
                if b32 is not None:
                    logits += b32
                lse = torch.logsumexp(logits, dim=-1)
                total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
                # d(loss)/d(logits) = softmax - onehot, in place over the chunk's logits.
                logits.sub_(lse[:, None]).exp_()
                logits[torch.arange(t.shape[0], device=t.device), t] -= 1.0
                logits.mul_(scale)
                if grad_hidden is not None:
                    grad_hidden[a : a + chunk] = (logits @ w32).to(hidden.dtype)
                if grad_w is not None:
                    grad_w.addmm_(logits.T, h)
                if grad_b is not None:
                    grad_b += logits.sum(0)
            ctx.save_for_backward(
                *(g if g is not None else torch.empty(0) for g in (grad_hidden, grad_w, grad_b))
            )
            ctx.has = (grad_hidden is not None, grad_w is not None, grad_b is not None)
            ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
            return total * scale

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            grad_hidden, grad_w, grad_b = ctx.saved_tensors
            has_h, has_w, has_b = ctx.has
            return (
                grad_hidden * grad_out.to(grad_hidden.dtype) if has_h else None,
                (grad_w * grad_out).to(ctx.dtypes[0]) if has_w else None,
                (grad_b * grad_out).to(ctx.dtypes[1]) if has_b else None,
                None,
                None,
            )

    return FusedLinearCrossEntropy


_FUNCTION: Any = None


def fused_linear_cross_entropy(hidden: Any, weight: Any, bias: Any, targets: Any, scale: float) -> Any:
    global _FUNCTION
    if _FUNCTION is None:
        _FUNCTION = _fused_function()
    return _FUNCTION.apply(hidden, weight, bias, targets, scale)


def causal_lm_loss(hidden: Any, head: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """transformers' causal-LM loss (shift by one, -100 ignored, sum / items) without full logits.

    `hidden`: the last hidden states (batch, length, dim); `head`: the output `nn.Linear`;
    `num_items_in_batch`: the trained-token count of the whole accumulated step (as transformers
    passes it), else the mean over this batch's trained tokens."""
    import torch

    shifted = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]
    keep = shifted != IGNORE_INDEX
    targets = shifted[keep]
    picked = hidden[keep]
    count = num_items_in_batch if num_items_in_batch is not None else targets.numel()
    count = float(count.item() if torch.is_tensor(count) else count)
    if targets.numel() == 0:
        return hidden.sum() * 0.0
    return fused_linear_cross_entropy(picked, head.weight, head.bias, targets, 1.0 / max(count, 1.0))


def output_head(model: Any) -> Any:
    """The model's output projection if it is a plain, whole `nn.Linear`, else None (no chunked loss)."""
    import torch

    try:
        head = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if type(head) is not torch.nn.Linear:
        return None
    weight = head.weight
    # A weight sharded by ZeRO-3 (an empty placeholder outside the forward) or FSDP (a DTensor
    # shard) cannot be multiplied here: those runs keep the model's own loss.
    if type(weight) is not torch.nn.Parameter or hasattr(weight, "ds_id"):
        return None
    return head if tuple(weight.shape) == (head.out_features, head.in_features) else None
