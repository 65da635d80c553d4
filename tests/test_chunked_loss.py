"""The chunked causal-LM loss (`swift_core.train.chunked_loss`) against transformers' own loss."""

from __future__ import annotations

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from swift_core.train import chunked_loss
from swift_core.train.chunked_loss import causal_lm_loss


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("items", [None, 37])
def test_loss_and_every_gradient_equal_the_full_logits_loss(monkeypatch, bias, items):
    monkeypatch.setattr(chunked_loss, "CHUNK_ELEMENTS", 3 * 50)  # 3 rows per chunk: many chunks
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 11, 16, generator=g)
    head = torch.nn.Linear(16, 50, bias=bias)
    labels = torch.randint(0, 50, (3, 11), generator=g)
    labels[0, :4] = -100
    labels[2, 7:] = -100

    h1 = hidden.clone().requires_grad_()
    ours = causal_lm_loss(h1, head, labels, items)
    ours.backward()
    mine = (h1.grad.clone(), head.weight.grad.clone(), head.bias.grad.clone() if bias else None)
    head.zero_grad()

    h2 = hidden.clone().requires_grad_()
    ref = ForCausalLMLoss(head(h2), labels, vocab_size=50, num_items_in_batch=items)
    ref.backward()
    assert torch.allclose(ours, ref, atol=1e-6), (ours.item(), ref.item())
    assert torch.allclose(mine[0], h2.grad, atol=1e-6)
    assert torch.allclose(mine[1], head.weight.grad, atol=1e-6)
    if bias:
        assert torch.allclose(mine[2], head.bias.grad, atol=1e-6)


def test_a_frozen_head_gets_no_gradient_and_bf16_hidden_keeps_its_dtype():
    head = torch.nn.Linear(8, 20, bias=False).requires_grad_(False)
    hidden = torch.randn(2, 5, 8).to(torch.bfloat16).requires_grad_()
    labels = torch.randint(0, 20, (2, 5))
    loss = causal_lm_loss(hidden, head, labels)
    loss.backward()
    assert head.weight.grad is None
    assert hidden.grad.dtype == torch.bfloat16 and hidden.grad.abs().sum() > 0
    ref = ForCausalLMLoss(head(hidden.float()), labels, vocab_size=20)
    assert abs(loss.item() - ref.item()) < 1e-2


def test_no_trained_token_gives_a_zero_loss_that_still_backpropagates():
    hidden = torch.randn(1, 4, 8, requires_grad=True)
    loss = causal_lm_loss(hidden, torch.nn.Linear(8, 10), torch.full((1, 4), -100))
    loss.backward()
    assert loss.item() == 0.0 and hidden.grad is not None


def test_only_a_whole_plain_linear_head_is_used():
    """A LoRA-wrapped head, a ZeRO-3 placeholder (empty weight with `ds_id`) and a shard keep
    the model's own loss."""
    from swift_core.train.chunked_loss import output_head

    class Model(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def get_output_embeddings(self):
            return self.head

    plain = torch.nn.Linear(8, 20)
    assert output_head(Model(plain)) is plain
    assert output_head(Model(torch.nn.Sequential(plain))) is None
    zero3 = torch.nn.Linear(8, 20)
    zero3.weight = torch.nn.Parameter(torch.empty(0))
    zero3.weight.ds_id = 3
    assert output_head(Model(zero3)) is None
    shard = torch.nn.Linear(8, 20)
    shard.weight = torch.nn.Parameter(torch.empty(10, 8))
    assert output_head(Model(shard)) is None
