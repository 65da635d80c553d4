"""The built-in alignment losses equal TRL 1.16's on the same log-probabilities; the plugin is light.

TRL is a test-only oracle: its own trainer methods run with a `SimpleNamespace` standing in for
`self` and a fake model that returns fixed per-token log-probabilities (DPO, KTO: TRL's fused LM
head path) or fixed logits (CPO, SimPO, ORPO: TRL computes the log-probs and the NLL itself). The
same numbers are handed to the Swift loss as `PreferenceLogps`.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections import defaultdict

import pytest
import torch
from trl import DPOTrainer, KTOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer

from swift_core.align import AlignmentLoss, LossConfig, PreferenceLogps
from swift_core.align.losses import chosen_nll_loss
from swift_core.errors import SwiftError, UnknownNameError
from swift_core.plugins import PluginManager, PluginSource, builtin_sources
from swift_core.policy import Policy


def loss_config(beta: float = 0.1, rpo_alpha: float | None = None, **options: float) -> LossConfig:
    """The loss's own options (label_smoothing, simpo_gamma, ...) ride in `options`, as the CLI passes them."""
    return LossConfig(beta=beta, rpo_alpha=rpo_alpha, options=types.SimpleNamespace(**options))


BATCH = 8
ATOL = 1e-5
DTYPE = torch.float64

EXPECTED = {  # name: (needs_reference, paired, scores)
    "dpo": (True, True, "logps"),
    "robust": (True, True, "logps"),
    "ipo": (True, True, "logps"),
    "hinge": (True, True, "logps"),
    "simpo": (False, True, "logps"),
    "orpo": (False, True, "logps"),
    "cpo": (False, True, "logps"),
    "kto": (True, False, "logps"),
    "rm": (False, True, "reward"),
}

MYLOSS = PluginSource("myloss", "swift_myloss.plugin", "swift-myloss", "0.1.0")


@pytest.fixture(scope="module")
def builtin_manager():
    return PluginManager(Policy(), builtin_sources())


def swift_loss(manager, name):
    loss = manager.load("alignment_losses", name)()
    assert isinstance(loss, AlignmentLoss)
    return loss


def close(a, b) -> bool:
    return torch.allclose(
        torch.as_tensor(a, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE), atol=ATOL, rtol=ATOL
    )


# -- what TRL's trainers need from `self` ----------------------------------------------------------


def _accelerator():
    return types.SimpleNamespace(
        device=torch.device("cpu"), gather_for_metrics=lambda x: x, gather=lambda x: x
    )


def _fused_trainer_self(**kwargs):
    """`self` for DPOTrainer/KTOTrainer._compute_loss (precomputed reference log-probs)."""
    return types.SimpleNamespace(
        model=types.SimpleNamespace(training=True),
        accelerator=_accelerator(),
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        **kwargs,
    )


class FusedHeadModel:
    """Stands in for a model called with `fused_lm_head=True`: returns fixed per-token log-probs."""

    def __init__(self, *table):
        self.table = table  # (input_ids, per_token_logps) pairs

    def __call__(self, input_ids=None, **kwargs):
        for ids, per_token in self.table:
            if ids is input_ids:
                zeros = torch.zeros_like(per_token)
                return types.SimpleNamespace(
                    log_probs=per_token, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
                )
        raise AssertionError("unexpected input_ids")


def _completion_batch(gen, rows, width=14):
    """Prompt (>= 1 token) then completion then padding; per-token log-probs on completion tokens only."""
    completion_mask = torch.zeros(rows, width, dtype=torch.long)
    attention_mask = torch.zeros(rows, width, dtype=torch.long)
    for i in range(rows):
        prompt = int(torch.randint(1, 5, (1,), generator=gen))
        length = int(torch.randint(1, width - prompt + 1, (1,), generator=gen))
        completion_mask[i, prompt : prompt + length] = 1
        attention_mask[i, : prompt + length] = 1
    input_ids = torch.randint(1, 100, (rows, width), generator=gen)
    # Position j predicts token j + 1: log-probs where the shifted completion mask is 1, 0 elsewhere.
    per_token = -3 * torch.rand(rows, width - 1, generator=gen, dtype=DTYPE) * completion_mask[:, 1:]
    return input_ids, attention_mask, completion_mask, per_token


def _paired_case(seed):
    gen = torch.Generator().manual_seed(seed)
    input_ids, attention_mask, completion_mask, per_token = _completion_batch(gen, 2 * BATCH)
    logps = per_token.sum(1)
    lengths = completion_mask.sum(1)
    ref = logps + torch.randn(2 * BATCH, generator=gen, dtype=DTYPE) * 3
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref[:BATCH],
        "ref_rejected_logps": ref[BATCH:],
    }
    swift = PreferenceLogps(
        chosen_logps=logps[:BATCH],
        rejected_logps=logps[BATCH:],
        ref_chosen_logps=ref[:BATCH],
        ref_rejected_logps=ref[BATCH:],
        chosen_lengths=lengths[:BATCH],
        rejected_lengths=lengths[BATCH:],
        chosen_nll=-logps[:BATCH] / lengths[:BATCH],
    )
    return FusedHeadModel((input_ids, per_token)), inputs, swift


def trl_dpo(loss_types, beta, label_smoothing=0.0, loss_weights=None, seed=0):
    model, inputs, swift = _paired_case(seed)
    trainer = _fused_trainer_self(
        beta=beta,
        label_smoothing=label_smoothing,
        loss_types=list(loss_types),
        loss_weights=list(loss_weights or [1.0] * len(loss_types)),
        ld_alpha=None,
        f_divergence_type="reverse_kl",
        use_weighting=False,
    )
    loss = DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    return loss, trainer._metrics["train"], swift


# -- DPO family: DPOTrainer._compute_loss ----------------------------------------------------------

BETAS = (0.05, 0.1, 0.5, 2.0)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize(
    ("name", "trl_type", "smoothing"),
    [
        ("dpo", "sigmoid", 0.0),
        ("robust", "robust", 0.0),
        ("robust", "robust", 0.1),
        ("robust", "robust", 0.3),
        ("dpo_robust", "robust", 0.2),
        ("ipo", "ipo", 0.0),
        ("hinge", "hinge", 0.0),
    ],
)
def test_reference_losses_match_trl_dpo_trainer(builtin_manager, name, trl_type, smoothing, beta):
    seed = int(beta * 100) + int(smoothing * 10)
    expected, metrics, logps = trl_dpo([trl_type], beta, smoothing, seed=seed)
    out = swift_loss(builtin_manager, name)(logps, loss_config(beta=beta, label_smoothing=smoothing))
    assert close(out.loss, expected), (out.loss, expected)
    assert out.loss.shape == ()
    assert close(out.chosen_rewards.mean(), metrics["rewards/chosen"][-1])
    assert close(out.rejected_rewards.mean(), metrics["rewards/rejected"][-1])
    assert out.chosen_rewards.shape == out.rejected_rewards.shape == (BATCH,)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.25, 0.4])
def test_cdpo_matches_trl_label_smoothed_sigmoid(builtin_manager, beta, smoothing):
    """TRL 1.16's DPO "sigmoid" ignores label_smoothing; its conservative form lives in CPOTrainer.cpo_loss.

    cpo_loss(sigmoid) on the log-ratios log pi - log pi_ref is -(1-ls) logsig(beta h) - ls logsig(-beta h).
    """
    _, _, logps = _paired_case(seed=7 + int(beta * 10) + int(smoothing * 100))
    trainer = types.SimpleNamespace(
        alpha=0.0, loss_type="sigmoid", beta=beta, label_smoothing=smoothing, accelerator=_accelerator()
    )
    losses, _, _ = CPOTrainer.cpo_loss(
        trainer,
        logps.chosen_logps - logps.ref_chosen_logps,
        logps.rejected_logps - logps.ref_rejected_logps,
    )
    out = swift_loss(builtin_manager, "dpo")(logps, loss_config(beta=beta, label_smoothing=smoothing))
    assert close(out.loss, losses.mean())
    if smoothing == 0.0:  # and without smoothing it is DPOTrainer's sigmoid, on the same batch
        expected, _, same = trl_dpo(["sigmoid"], beta, seed=7 + int(beta * 10))
        assert close(swift_loss(builtin_manager, "dpo")(same, loss_config(beta=beta)).loss, expected)


@pytest.mark.parametrize("beta", (0.1, 0.5))
@pytest.mark.parametrize("rpo_alpha", (0.0, 0.5, 1.0, 3.0))
@pytest.mark.parametrize(
    ("name", "trl_type"), [("dpo", "sigmoid"), ("robust", "robust"), ("ipo", "ipo"), ("hinge", "hinge")]
)
def test_rpo_alpha_matches_trl_sft_term(builtin_manager, name, trl_type, rpo_alpha, beta):
    """TRL 1.16 spells the RPO term `loss_type=[..., "sft"], loss_weights=[1, rpo_alpha]`."""
    smoothing = 0.1 if name == "robust" else 0.0
    expected, _, logps = trl_dpo([trl_type, "sft"], beta, smoothing, loss_weights=[1.0, rpo_alpha], seed=11)
    config = loss_config(beta=beta, label_smoothing=smoothing, rpo_alpha=rpo_alpha)
    out = swift_loss(builtin_manager, name)(logps, config)
    assert close(out.loss, expected), (out.loss, expected)
    without = swift_loss(builtin_manager, name)(logps, loss_config(beta=beta, label_smoothing=smoothing))
    if rpo_alpha:
        assert not close(out.loss, without.loss)
    assert "rpo_nll" in out.metrics and "rpo_nll" not in without.metrics


def test_rpo_nll_is_token_weighted_not_a_mean_of_means():
    lengths = torch.tensor([1.0, 9.0])
    logps = PreferenceLogps(
        chosen_logps=torch.zeros(2), chosen_nll=torch.tensor([2.0, 1.0]), chosen_lengths=lengths
    )
    assert close(chosen_nll_loss(logps), (2.0 * 1 + 1.0 * 9) / 10)
    logps.nll_tokens = torch.tensor([3.0, 1.0])  # e.g. ORPO's NLL over prompt + answer tokens
    assert close(chosen_nll_loss(logps), (2.0 * 3 + 1.0 * 1) / 4)
    logps.labels = torch.tensor([False, True])  # unpaired: only the desirable examples
    assert close(chosen_nll_loss(logps), 1.0)


# -- CPO, SimPO, ORPO: trl.experimental, from logits -----------------------------------------------


def _logits_case(seed, width=10, vocab=16):
    gen = torch.Generator().manual_seed(seed)
    batch = {}
    for side in ("chosen", "rejected"):
        ids = torch.randint(1, vocab, (BATCH, width), generator=gen)
        attention = torch.zeros(BATCH, width, dtype=torch.long)
        labels = torch.full((BATCH, width), -100)
        for i in range(BATCH):
            prompt = int(torch.randint(1, 4, (1,), generator=gen))
            length = int(torch.randint(1, width - prompt + 1, (1,), generator=gen))
            attention[i, : prompt + length] = 1
            labels[i, prompt : prompt + length] = ids[i, prompt : prompt + length]
        ids = ids.masked_fill(attention == 0, 0)
        batch |= {f"{side}_input_ids": ids, f"{side}_attention_mask": attention, f"{side}_labels": labels}
    logits = torch.randn(2 * BATCH, width, vocab, generator=gen, dtype=DTYPE) * 2

    # The Swift trainer's side: sums over the answer tokens, their counts, and the chosen NLL.
    token_logps = torch.log_softmax(logits[:, :-1], -1)
    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    labels = torch.cat([batch["chosen_labels"], batch["rejected_labels"]])[:, 1:]
    answer = labels != -100
    answer_logps = (token_logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * answer).sum(1)
    lengths = answer.sum(1)
    whole = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])[:, 1:].bool()
    whole_logps = (token_logps.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) * whole).sum(1)
    whole_lengths = whole.sum(1)
    logps = PreferenceLogps(
        chosen_logps=answer_logps[:BATCH],
        rejected_logps=answer_logps[BATCH:],
        chosen_lengths=lengths[:BATCH],
        rejected_lengths=lengths[BATCH:],
        chosen_nll=-answer_logps[:BATCH] / lengths[:BATCH],
    )
    # TRL's ORPO takes its NLL over prompt + answer (the authors' code), not over the answer only.
    orpo_logps = PreferenceLogps(
        **{**vars(logps), "chosen_nll": -whole_logps[:BATCH] / whole_lengths[:BATCH]},
    )
    orpo_logps.nll_tokens = whole_lengths[:BATCH]

    def model(input_ids, attention_mask=None, use_cache=False, **kwargs):
        assert torch.equal(input_ids, ids)
        return types.SimpleNamespace(logits=logits)

    return batch, model, logps, orpo_logps


def _cpo_self(cls, **kwargs):
    trainer = types.SimpleNamespace(
        accelerator=_accelerator(),
        is_encoder_decoder=False,
        aux_loss_enabled=False,
        pad_token_id=0,
        padding_value=0,
        alpha=0.0,
        concatenated_inputs=cls.concatenated_inputs,
        get_batch_logps=cls.get_batch_logps,
        **kwargs,
    )
    trainer.concatenated_forward = types.MethodType(cls.concatenated_forward, trainer)
    if cls is CPOTrainer:
        trainer.cpo_loss = types.MethodType(cls.cpo_loss, trainer)
    else:
        trainer.odds_ratio_loss = types.MethodType(cls.odds_ratio_loss, trainer)
    return trainer


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("cpo_alpha", [0.0, 1.0, 0.3])
def test_cpo_matches_trl_cpo_trainer(builtin_manager, beta, smoothing, cpo_alpha):
    batch, model, logps, _ = _logits_case(seed=int(beta * 100) + int(cpo_alpha * 10))
    trainer = _cpo_self(
        CPOTrainer, loss_type="sigmoid", beta=beta, label_smoothing=smoothing, cpo_alpha=cpo_alpha
    )
    expected, metrics = CPOTrainer.get_batch_loss_metrics(trainer, model, batch)
    config = loss_config(beta=beta, label_smoothing=smoothing, cpo_alpha=cpo_alpha)
    out = swift_loss(builtin_manager, "cpo")(logps, config)
    assert close(out.loss, expected), (out.loss, expected)
    assert close(out.chosen_rewards.mean(), metrics["rewards/chosen"])
    assert close(out.rejected_rewards.mean(), metrics["rewards/rejected"])
    if cpo_alpha:
        assert close(out.metrics["nll_loss"], metrics["nll_loss"])


@pytest.mark.parametrize("beta", (0.5, 2.0, 2.5, 10.0))
@pytest.mark.parametrize("gamma", (0.0, 0.5, 1.4))
@pytest.mark.parametrize("smoothing", (0.0, 0.1))
def test_simpo_matches_trl_cpo_trainer(builtin_manager, beta, gamma, smoothing):
    batch, model, logps, _ = _logits_case(seed=3 + int(beta * 10) + int(gamma * 10))
    trainer = _cpo_self(
        CPOTrainer, loss_type="simpo", beta=beta, label_smoothing=smoothing, cpo_alpha=0.0, simpo_gamma=gamma
    )
    expected, metrics = CPOTrainer.get_batch_loss_metrics(trainer, model, batch)
    logps.chosen_nll = None  # SimPO reads no NLL
    out = swift_loss(builtin_manager, "simpo")(
        logps, loss_config(beta=beta, simpo_gamma=gamma, label_smoothing=smoothing)
    )
    assert close(out.loss, expected), (out.loss, expected)
    assert close(out.chosen_rewards.mean(), metrics["rewards/chosen"])
    assert close(out.rejected_rewards.mean(), metrics["rewards/rejected"])


@pytest.mark.parametrize("beta", (0.05, 0.1, 0.5, 1.0))
def test_orpo_matches_trl_orpo_trainer(builtin_manager, beta):
    batch, model, _, logps = _logits_case(seed=5 + int(beta * 100))
    trainer = _cpo_self(ORPOTrainer, beta=beta)
    expected, metrics = ORPOTrainer.get_batch_loss_metrics(trainer, model, batch)
    out = swift_loss(builtin_manager, "orpo")(logps, loss_config(beta=beta))
    assert close(out.loss, expected), (out.loss, expected)
    for key in ("log_odds_ratio", "log_odds_chosen", "nll_loss"):
        assert close(out.metrics[key], metrics[key]), key
    assert close(out.chosen_rewards.mean(), metrics["rewards/chosen"])
    assert close(out.rejected_rewards.mean(), metrics["rewards/rejected"])


# -- KTO: KTOTrainer._compute_loss -----------------------------------------------------------------


def _kto_case(seed, kl_shift, labels):
    gen = torch.Generator().manual_seed(seed)
    input_ids, attention_mask, completion_mask, per_token = _completion_batch(gen, BATCH)
    kl_ids, kl_attention, kl_completion, kl_per_token = _completion_batch(gen, BATCH)
    logps = per_token.sum(1)
    kl_logps = kl_per_token.sum(1)
    ref = logps + torch.randn(BATCH, generator=gen, dtype=DTYPE) * 3
    ref_kl = kl_logps - kl_shift + torch.randn(BATCH, generator=gen, dtype=DTYPE) * 0.1
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "completion_mask": completion_mask,
        "KL_input_ids": kl_ids,
        "KL_attention_mask": kl_attention,
        "KL_completion_mask": kl_completion,
        "label": labels,
        "ref_logps": ref,
        "ref_KL_logps": ref_kl,
    }
    swift = PreferenceLogps(
        chosen_logps=logps, ref_chosen_logps=ref, labels=labels, kl=(kl_logps - ref_kl).mean()
    )
    return FusedHeadModel((input_ids, per_token), (kl_ids, kl_per_token)), inputs, swift


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize(("desirable_weight", "undesirable_weight"), [(1.0, 1.0), (1.0, 1.33), (0.7, 1.0)])
@pytest.mark.parametrize("kl_shift", (1.5, -1.5))  # the second gives a negative KL estimate: clamped to 0
@pytest.mark.parametrize(
    "labels", [[1, 0, 1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 1, 1, 1, 1], [1] * BATCH], ids=["half", "most", "all"]
)
def test_kto_matches_trl_kto_trainer(
    builtin_manager, beta, desirable_weight, undesirable_weight, kl_shift, labels
):
    labels = torch.tensor(labels)
    model, inputs, logps = _kto_case(int(beta * 100), kl_shift, labels)
    trainer = _fused_trainer_self(
        beta=beta,
        loss_type="kto",
        calculate_KL=True,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
    )
    trainer._compute_kl_logps = types.MethodType(KTOTrainer._compute_kl_logps, trainer)
    expected = KTOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    config = loss_config(beta=beta, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight)
    out = swift_loss(builtin_manager, "kto")(logps, config)
    assert close(out.loss, expected), (out.loss, expected)
    metrics = trainer._metrics["train"]
    assert close(out.metrics["kl"], metrics["kl"][-1])
    assert (out.metrics["kl"] == 0.0) == (kl_shift < 0)
    assert close(out.chosen_rewards.mean(), metrics["rewards/chosen"][-1])
    assert out.chosen_rewards.shape == (int(labels.sum()),)
    if "rewards/rejected" in metrics:
        assert close(out.rejected_rewards.mean(), metrics["rewards/rejected"][-1])
    else:
        assert out.rejected_rewards.numel() == 0


# -- errors, gradients -----------------------------------------------------------------------------


def test_a_missing_field_is_named(builtin_manager):
    bare = PreferenceLogps(chosen_logps=torch.zeros(2), rejected_logps=torch.zeros(2))
    for name, field in [
        ("dpo", "ref_chosen_logps"),
        ("ipo", "chosen_lengths"),
        ("orpo", "chosen_nll"),
        ("kto", "kl"),
    ]:
        with pytest.raises(ValueError, match=field):
            swift_loss(builtin_manager, name)(bare, loss_config())
    with pytest.raises(ValueError, match="chosen_nll"):
        swift_loss(builtin_manager, "simpo")(
            PreferenceLogps(
                torch.zeros(2), torch.zeros(2), chosen_lengths=torch.ones(2), rejected_lengths=torch.ones(2)
            ),
            loss_config(rpo_alpha=1.0),
        )


def test_robust_refuses_a_flip_rate_of_half_or_more(builtin_manager):
    _, _, logps = _paired_case(0)
    with pytest.raises(SwiftError, match="label_smoothing"):
        swift_loss(builtin_manager, "robust")(logps, loss_config(label_smoothing=0.5))


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e[2] == "logps"))
def test_every_loss_has_a_gradient_through_the_policy_logps(builtin_manager, name):
    _, _, logps = _paired_case(1)
    logps.chosen_logps = logps.chosen_logps.clone().requires_grad_(True)
    if name == "kto":
        logps.labels = torch.tensor([1, 0] * (BATCH // 2))
        logps.kl = torch.tensor(0.3, dtype=DTYPE)
    out = swift_loss(builtin_manager, name)(logps, loss_config())
    out.loss.backward()
    assert torch.isfinite(out.loss) and logps.chosen_logps.grad.abs().sum() > 0


# -- registration ----------------------------------------------------------------------------------


def test_every_builtin_loss_declares_reference_and_pairing(builtin_manager):
    registry = builtin_manager.registry("alignment_losses")
    # the preference losses of this plugin (online RL's losses come from the online-rl plugin)
    assert sorted(d.name for d in registry if d.plugin == "alignment-losses") == sorted(EXPECTED)
    for name, expected in EXPECTED.items():
        descriptor = registry.get(name)
        assert (descriptor.needs_reference, descriptor.paired, descriptor.scores) == expected, name
        assert descriptor.plugin == "alignment-losses" and descriptor.distribution == "swift-core"
        assert descriptor.description
        assert swift_loss(builtin_manager, name).name == name
    assert registry.get("dpo_robust").name == "robust"
    assert registry.get("reward_model").name == "rm"


def test_the_plugin_module_imports_no_torch():
    code = (
        "import sys; import swift_core.builtin.alignment_losses as m; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "print(len(m.ALIGNMENT_LOSSES), m.REWARD_MODEL_LOSS.name)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(EXPECTED) - 1} rm"


def test_a_third_party_loss_registers_and_computes():
    manager = PluginManager(Policy(), [MYLOSS])
    assert manager.plugins["myloss"].status == "loaded", manager.plugins["myloss"].reason
    descriptor = manager.get("alignment_losses", "myloss")
    assert (descriptor.needs_reference, descriptor.paired) == (True, True)
    assert (descriptor.plugin, descriptor.distribution) == ("myloss", "swift-myloss")
    assert manager.get("alignment_losses", "squared_margin") is descriptor
    loss = manager.load("alignment_losses", "myloss")()
    assert isinstance(loss, AlignmentLoss)
    _, _, logps = _paired_case(2)
    out = loss(logps, loss_config(beta=0.2))
    h = (logps.chosen_logps - logps.ref_chosen_logps) - (logps.rejected_logps - logps.ref_rejected_logps)
    assert close(out.loss, ((0.2 * h - 1) ** 2).mean())
    with_rpo = loss(logps, loss_config(beta=0.2, rpo_alpha=1.0))
    assert close(with_rpo.loss, out.loss + chosen_nll_loss(logps))


def test_a_denied_third_party_loss_is_unknown_and_never_imported():
    for module in ("swift_myloss.plugin", "swift_myloss.impl"):
        sys.modules.pop(module, None)
    manager = PluginManager(Policy(disabled=frozenset({"myloss"})), [MYLOSS, *builtin_sources()])
    assert manager.plugins["myloss"].status == "blocked"
    with pytest.raises(UnknownNameError):
        manager.get("alignment_losses", "myloss")
    with pytest.raises(KeyError):
        manager.get("alignment_losses", "squared_margin")
    assert "swift_myloss.plugin" not in sys.modules
    assert "dpo" in manager.registry("alignment_losses")
