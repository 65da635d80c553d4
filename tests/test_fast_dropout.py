"""`FastDropout`: nn.Dropout's distribution and scaling from a quarter of the random draws."""

from __future__ import annotations

import torch

from swift_core.train.fast_dropout import FastDropout, use_fast_dropout


def test_keeps_one_minus_p_scales_like_nn_dropout_and_is_seeded():
    drop = FastDropout(0.05).train()
    y = drop(torch.ones(2000, 1000))
    kept = y > 0
    assert abs(kept.float().mean().item() - 0.95) < 0.002
    assert torch.allclose(y[kept], torch.tensor(1 / (1 - 3277 / 65536)))
    torch.manual_seed(3)
    a = drop(torch.ones(64, 33))
    torch.manual_seed(3)
    b = drop(torch.ones(64, 33))
    assert torch.equal(a, b) and not torch.equal(a, drop(torch.ones(64, 33)))


def test_gradient_flows_through_kept_elements_only_and_eval_is_identity():
    drop = FastDropout(0.3).train()
    x = torch.randn(50, 40, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / (1 - round(0.3 * 65536) / 65536))
    drop.eval()
    assert torch.equal(drop(x), x)


def test_swaps_plain_dropouts_with_p_only():
    model = torch.nn.Sequential(
        torch.nn.Dropout(0.1), torch.nn.Sequential(torch.nn.Dropout(0.0), torch.nn.Dropout(0.2))
    )
    assert use_fast_dropout(model) == 2
    assert isinstance(model[0], FastDropout) and model[0].p == 0.1
    assert type(model[1][0]) is torch.nn.Dropout and isinstance(model[1][1], FastDropout)
