"""The GRPO-family losses against TRL 1.16 as the oracle, on the same tensors.

TRL's `GRPOTrainer._compute_loss` and `RLOOTrainer._compute_loss` are run unbound on a stand-in
`self` that carries the trainer's settings and returns the given per-token log-probs instead of a
forward pass (TRL 1.16 computes them through a fused LM head, which is not what is compared here:
the loss on the same log-probs is). Loss and gradient must agree within 1e-5, and the metrics
Swift logs (KL, clip ratios) with TRL's. Advantages are checked against TRL's formulas on rewards
with ties and unscorable (None) completions.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

B, T, G = 8, 6, 4


class _Accelerator:
    num_processes = 1

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(B, T, generator=g).mul(0.3).sub(1.5).requires_grad_(True)
    mask = torch.ones(B, T)
    for i, n in enumerate([6, 3, 5, 1, 6, 2, 4, 6]):
        mask[i, n:] = 0
    old = (
        theta.detach() + torch.randn(B, T, generator=g) * 0.25 + torch.randn(B, 1, generator=g) * 0.3
    ).clone()
    ref = (theta.detach() + torch.randn(B, T, generator=g) * 0.1).clone()
    adv = torch.randn(B, generator=g)
    return theta, mask, old, ref, adv


def _trl_self(trainer_class, loss_type: str, beta: float, theta, **extra):
    from collections import defaultdict

    stub = SimpleNamespace(
        loss_type=loss_type,
        beta=beta,
        epsilon_low=0.2,
        epsilon_high=0.28,
        importance_sampling_level=extra.get("level", "token"),
        top_entropy_quantile=1.0,
        aux_loss_enabled=False,
        off_policy_mask_threshold=None,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=T + 2,
        accelerator=_Accelerator(),
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
        _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    stub._get_per_token_logps_and_entropies = lambda *a, **k: (theta, torch.zeros_like(theta), None)
    return stub


def _trl_grpo(loss_type, beta, theta, mask, old, ref, adv, level="token"):
    stub = _trl_self(trl.GRPOTrainer, loss_type, beta, theta, level=level)
    inputs = {
        "prompt_ids": torch.zeros(B, 2, dtype=torch.long),
        "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": adv,
        "old_per_token_logps": old,
        "num_items_in_batch": mask.sum(),
    }
    if beta:
        inputs["ref_per_token_logps"] = ref
    loss = trl.GRPOTrainer._compute_loss(stub, None, inputs)
    return loss, {k: v[-1] for k, v in stub._metrics["train"].items()}


def _swift(name, beta, theta, mask, old, ref, adv):
    from swift_core.align.base import LossConfig
    from swift_core.rl.base import RolloutLogps
    from swift_core.rl.options import GRPOOptions
    from swift_core.testing import builtin_manager

    loss_fn = builtin_manager().load("alignment_losses", name)()
    config = LossConfig(beta=beta, options=GRPOOptions(epsilon=0.2, epsilon_high=0.28))
    batch = RolloutLogps(
        per_token_logps=theta,
        mask=mask,
        advantages=adv,
        old_per_token_logps=old,
        ref_per_token_logps=ref if beta else None,
        num_items_in_batch=mask.sum(),
        max_completion_length=T + 2,
    )
    return loss_fn(batch, config)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize(
    "name, trl_type, level",
    [
        ("grpo", "grpo", "token"),
        ("bnpo", "bnpo", "token"),
        ("dr_grpo", "dr_grpo", "token"),
        ("dapo", "dapo", "token"),
        ("gspo", "grpo", "sequence"),
    ],
)
def test_grpo_family_loss_and_gradient_match_trl(name, trl_type, level, beta):
    theta, mask, old, ref, adv = _inputs(1)
    expected, trl_metrics = _trl_grpo(trl_type, beta, theta, mask, old, ref, adv, level)
    (g_expected,) = torch.autograd.grad(expected, theta)
    out = _swift(name, beta, theta, mask, old, ref, adv)
    (g_out,) = torch.autograd.grad(out.loss, theta)
    assert abs(out.loss.item() - expected.item()) < 1e-5
    assert torch.allclose(g_out, g_expected, atol=1e-5)
    keys = ["clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"] + (
        ["kl"] if beta else []
    )
    for key in keys:
        assert abs(out.metrics[key] - trl_metrics[key]) < 1e-5, key
    assert trl_metrics["clip_ratio/region_mean"] > 0  # the inputs exercise the clipping


def test_rloo_loss_matches_trl():
    theta, mask, old, ref, adv = _inputs(2)
    stub = _trl_self(trl.RLOOTrainer, "rloo", 0.0, theta)
    inputs = {
        "prompt_ids": torch.zeros(B, 2, dtype=torch.long),
        "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": adv,
        "old_logps": (old * mask).sum(1),
    }
    expected = trl.RLOOTrainer._compute_loss(stub, None, inputs)
    (g_expected,) = torch.autograd.grad(expected, theta)
    out = _swift("rloo", 0.0, theta, mask, old, ref, adv)
    (g_out,) = torch.autograd.grad(out.loss, theta)
    assert abs(out.loss.item() - expected.item()) < 1e-5
    assert torch.allclose(g_out, g_expected, atol=1e-5)


def _trl_group_advantages(rewards, scale):
    """TRL 1.16's GRPO advantages (grpo_trainer.py, _generate_and_score_completions), one process."""
    from trl.trainer.utils import nanstd

    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
    if scale == "batch":
        std = nanstd(rewards).expand_as(rewards)
    else:
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0), torch.isclose(std, torch.zeros_like(std))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_match_trl(scale):
    from swift_core.align.base import LossConfig
    from swift_core.rl.options import GRPOOptions
    from swift_core.testing import builtin_manager

    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 2.0, float("nan"), 0.0, 1.0])
    expected, tied = _trl_group_advantages(rewards, scale)
    loss = builtin_manager().load("alignment_losses", "grpo")()
    out = loss.advantages(rewards, G, LossConfig(options=GRPOOptions(scale_rewards=scale)))
    assert torch.allclose(out.values, expected, atol=1e-6)
    assert out.tied.tolist() == tied.tolist()
    if scale == "group":
        assert out.tied.view(-1, G)[:, 0].tolist() == [False, True, False]  # the all-0.5 group ties


def test_rloo_advantages_are_leave_one_out_with_the_kl_penalty():
    from swift_core.align.base import LossConfig
    from swift_core.testing import builtin_manager

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    kl = torch.tensor([0.5, 0.0, 0.0, 0.0])
    loss = builtin_manager().load("alignment_losses", "rloo")()
    out = loss.advantages(rewards, 4, LossConfig(beta=0.2), seq_kl=kl)
    r = rewards - 0.2 * kl  # 0.9, 0, 0, 1
    expected = torch.stack([r[i] - (r.sum() - r[i]) / 3 for i in range(4)])
    assert torch.allclose(out.values, expected, atol=1e-6)
