"""Every built-in tuner on a tiny Qwen2: trains, freezes the right weights, saves and reloads.

Adapters must reload with plain peft on a fresh base and merge into a plain transformers model;
full/freeze/llamapro checkpoints must reload with plain transformers.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from swift_core.config.options import build_arguments  # noqa: E402
from swift_core.config.train_args import TrainArguments  # noqa: E402
from swift_core.errors import SwiftError  # noqa: E402
from swift_core.plugins import PluginManager, PluginSource, builtin_sources  # noqa: E402
from swift_core.policy import Policy  # noqa: E402

torch.set_num_threads(1)

BUILTIN_TUNERS = (
    "lora",
    "dora",
    "rslora",
    "pissa",
    "olora",
    "lora+",
    "adalora",
    "ia3",
    "vera",
    "boft",
    "fourierft",
    "llamapro",
    "full",
    "freeze",
)
STEPS = 8

# Per tuner: extra arguments, learning rate, and which parameter names may be trainable.
_LORA = r"\.lora_(A|B)\."
CASES: dict[str, tuple[dict, float, str]] = {
    "lora": ({}, 1e-2, _LORA),
    "dora": ({}, 1e-2, r"\.lora_(A|B|magnitude_vector)\."),
    "rslora": ({}, 3e-3, _LORA),
    "pissa": ({}, 1e-3, _LORA),
    "olora": ({}, 1e-3, _LORA),
    "lora+": ({"lorap_lr_ratio": 4.0}, 2e-3, _LORA),
    "adalora": ({"max_steps": STEPS}, 1e-2, r"\.lora_(A|B|E)\."),
    "ia3": ({}, 1e-2, r"\.ia3_l\."),
    "vera": ({"vera_rank": 16}, 1e-2, r"\.vera_lambda_(b|d)\."),
    "boft": ({}, 1e-2, r"\.boft_(R|s)\."),
    "fourierft": ({"fourier_n_frequency": 64}, 1e-2, r"\.fourierft_spectrum\."),
    "llamapro": ({"llamapro_num_new_blocks": 2}, 1e-2, r"^model\.layers\.(1|3)\."),
    "full": ({}, 1e-3, r"."),
    "freeze": ({"trainable_parameters": ["model.layers.1.mlp"]}, 1e-2, r"^model\.layers\.1\.mlp\."),
}


@pytest.fixture(scope="module")
def manager():
    return PluginManager(Policy(), builtin_sources())


@pytest.fixture(scope="module")
def family(manager):
    return manager.get("model_families", "qwen2_5")


@pytest.fixture(scope="module")
def batch(tiny_qwen):
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    texts = [
        "The quick brown fox jumps over the lazy dog near the river bank today.",
        "Swift trains small models quickly and saves adapters that reload exactly.",
    ]
    ids = tok(texts, padding="max_length", truncation=True, max_length=16, return_tensors="pt")["input_ids"]
    return ids


def make_args(**kw):
    kw.setdefault("lora_dropout", 0.0)
    kw.setdefault("target_modules", ["all-linear"])
    return build_arguments(TrainArguments, model="x", **kw)


def base_model(path):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path).float()


@torch.no_grad()
def logits(model, ids):
    model.eval()
    return model(input_ids=ids).logits


def train(model, tuner, args, ids, lr, steps=STEPS):
    """AdamW on a fixed batch, with the tuner's parameter groups and callbacks, as the Trainer would."""
    torch.manual_seed(0)
    model.train()
    groups = tuner.optimizer_param_groups(model, args)
    params = groups if groups is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    callbacks = tuner.callbacks(model, args)
    losses = []
    for step in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        state = SimpleNamespace(global_step=step)  # steps finished before this one, as in Trainer
        for callback in callbacks:
            callback.on_optimizer_step(args, state, None, model=model)
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def trainable_names(model):
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_every_builtin_tuner_is_registered(manager):
    names = set(manager.registry("tuners").names())
    assert set(BUILTIN_TUNERS) <= names
    assert manager.get("tuners", "loraplus").name == "lora+"
    for name in BUILTIN_TUNERS:
        tuner = manager.load("tuners", name)()
        assert tuner.name == manager.get("tuners", name).name


def test_tuner_plugin_imports_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys; from swift_core.plugins import PluginManager, builtin_sources; "
        "from swift_core.policy import Policy; m = PluginManager(Policy(), builtin_sources()); "
        "assert 'lora' in m.registry('tuners'); "
        "print(sorted(k for k in ('torch', 'peft', 'transformers') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", BUILTIN_TUNERS)
def test_tuner_trains_saves_and_reloads(name, manager, family, tiny_qwen, batch, tmp_path):
    extra, lr, pattern = CASES[name]
    args = make_args(tuner_type=name, **extra)
    tuner = manager.load("tuners", name)()
    tuner.check(args)
    base_logits = logits(base_model(tiny_qwen), batch)

    model = tuner.apply(base_model(tiny_qwen), args, family)
    names = trainable_names(model)
    assert names, f"{name}: nothing trainable"
    wrong = [n for n in names if not re.search(pattern, n)]
    assert not wrong, f"{name}: unexpected trainable parameters {wrong[:5]}"
    if name != "full":
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        assert frozen, f"{name}: everything is trainable"
    if name in ("lora", "llamapro"):
        # Identity at start: LoRA's B is zero, LLaMA-Pro's new blocks add zero.
        assert torch.allclose(logits(model, batch), base_logits, atol=1e-5)

    losses = train(model, tuner, args, batch, lr)
    assert losses[-1] < losses[0], f"{name}: loss did not fall: {losses}"
    trained = logits(model, batch)
    assert not torch.allclose(trained, base_logits, atol=1e-4), f"{name}: training changed nothing"
    assert trainable_names(model) == names  # saving below must not change what trains

    out = tmp_path / "ckpt"
    tuner.save(model, str(out))
    assert trainable_names(model) == names
    assert torch.allclose(logits(model, batch), trained)  # saving left the model as it was
    if tuner.saves_adapter:
        assert isinstance(model, PeftModel)
        assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
        reloaded = PeftModel.from_pretrained(base_model(tiny_qwen), out)
        assert torch.allclose(logits(reloaded, batch), trained, atol=1e-5), f"{name}: reload differs"
        via_tuner = tuner.load(base_model(tiny_qwen), str(out))
        assert torch.allclose(logits(via_tuner, batch), trained, atol=1e-5)
        # The adapter applies to the unmodified base: loading it must not rewrite the base weights
        # (PiSSA/OLoRA are saved converted to plain LoRA; peft would otherwise decompose the base again).
        assert torch.allclose(logits(reloaded.unload(), batch), base_logits, atol=1e-6), (
            f"{name}: base rewritten"
        )
        merged = tuner.merge(model)
        assert not isinstance(merged, PeftModel)
        assert type(merged).__module__.startswith("transformers.")
        assert torch.allclose(logits(merged, batch), trained, atol=1e-4), f"{name}: merge differs"
    else:
        assert not (out / "adapter_config.json").exists()
        reloaded = AutoModelForCausalLM.from_pretrained(out)
        assert torch.allclose(logits(reloaded, batch), trained, atol=1e-5), f"{name}: reload differs"
        assert tuner.merge(model) is model


@pytest.mark.parametrize("name", ["pissa", "olora"])
def test_pissa_olora_save_matches_peft_conversion(name, manager, family, tiny_qwen, batch, tmp_path):
    """Our saved adapter equals peft's documented conversion (path_initial_model_for_weight_conversion)."""
    import json

    from safetensors.torch import load_file

    args = make_args(tuner_type=name, lora_rank=4)
    tuner = manager.load("tuners", name)()
    model = tuner.apply(base_model(tiny_qwen), args, family)
    config = model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True
    type(model).save_pretrained(model, tmp_path / "init" / "initial")  # the documented recipe
    config.init_lora_weights = init
    train(model, tuner, args, batch, 1e-3, steps=3)

    tuner.save(model, str(tmp_path / "ours"))
    type(model).save_pretrained(
        model, tmp_path / "peft", path_initial_model_for_weight_conversion=str(tmp_path / "init" / "initial")
    )
    ours = load_file(tmp_path / "ours" / "adapter_model.safetensors")
    theirs = load_file(tmp_path / "peft" / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    ours_cfg = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    theirs_cfg = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    for key in ("r", "lora_alpha", "init_lora_weights"):
        assert ours_cfg[key] == theirs_cfg[key], key
    assert sorted(ours_cfg["target_modules"]) == sorted(theirs_cfg["target_modules"])
    assert ours_cfg["r"] == 8 and ours_cfg["init_lora_weights"] is True


def test_pissa_saved_by_trainer_with_modules_to_save_reloads(manager, family, tiny_qwen, batch, tmp_path):
    """Trainer passes state_dict= to save_pretrained; modules_to_save must survive the conversion,
    which SwiftTrainer runs through the tuner's after_save."""
    from transformers import TrainingArguments

    from swift_core.train.trainer import SwiftTrainer

    args = make_args(tuner_type="pissa", init_weights="pissa_niter_2", modules_to_save=["norm"])
    tuner = manager.load("tuners", "pissa")()
    torch.manual_seed(0)
    model = tuner.apply(base_model(tiny_qwen), args, family)
    trainer = SwiftTrainer(
        model=model,
        swift_args={},
        tuner=tuner,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=3,
            per_device_train_batch_size=2,
            learning_rate=1e-2,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=[{"input_ids": row, "labels": row} for row in batch],
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    trained = logits(model, batch)
    base = base_model(tiny_qwen)
    torch.manual_seed(123)  # randomized SVD: a re-decomposition on load would differ
    reloaded = PeftModel.from_pretrained(base, tmp_path / "final")
    assert torch.allclose(logits(reloaded, batch), trained, atol=1e-5)
    norm = reloaded.base_model.model.model.norm
    assert torch.equal(
        norm.modules_to_save["default"].weight,
        model.base_model.model.model.norm.modules_to_save["default"].weight,
    )


def test_lora_plus_gives_b_matrices_the_ratio(manager, family, tiny_qwen):
    args = make_args(tuner_type="lora+", learning_rate=1e-4, lorap_lr_ratio=16.0)
    tuner = manager.load("tuners", "loraplus")()
    model = tuner.apply(base_model(tiny_qwen), args, family)
    groups = tuner.optimizer_param_groups(model, args)
    by_id = {id(p): n for n, p in model.named_parameters()}
    lr_of = {by_id[id(p)]: g["lr"] for g in groups for p in g["params"]}
    assert set(lr_of) == set(trainable_names(model))
    b = [n for n in lr_of if ".lora_B." in n]
    a = [n for n in lr_of if ".lora_A." in n]
    assert b and a
    assert all(lr_of[n] == pytest.approx(1.6e-3) for n in b)
    assert all(lr_of[n] == pytest.approx(1e-4) for n in a)


def test_adalora_needs_max_steps(manager):
    tuner = manager.load("tuners", "adalora")()
    with pytest.raises(SwiftError, match="--max_steps"):
        tuner.check(make_args(tuner_type="adalora"))
    with pytest.raises(SwiftError, match="budgeting phase"):
        tuner.check(make_args(tuner_type="adalora", max_steps=4, adalora_tinit=2, adalora_tfinal=2))


def test_adalora_callback_runs_in_trainer_after_step_before_zero_grad(
    manager, family, tiny_qwen, batch, tmp_path
):
    from transformers import Trainer, TrainingArguments

    args = make_args(tuner_type="adalora", max_steps=6, adalora_init_r=6, adalora_target_r=2)
    tuner = manager.load("tuners", "adalora")()
    model = tuner.apply(base_model(tiny_qwen), args, family)
    calls = []
    original = model.base_model.update_and_allocate

    def spy(step):
        grads = [p.grad for n, p in model.named_parameters() if "lora_E" in n]
        calls.append((step, all(g is not None and g.abs().sum() > 0 for g in grads)))
        return original(step)

    model.base_model.update_and_allocate = spy
    rows = [{"input_ids": batch[0], "labels": batch[0]}] * 8
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=6,
            per_device_train_batch_size=1,
            learning_rate=1e-2,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=rows,
        callbacks=tuner.callbacks(model, args),
    )
    trainer.train()
    assert [s for s, _ in calls] == list(range(6))
    assert all(has_grads for _, has_grads in calls), "update_and_allocate ran without gradients"
    # The budget shrank the ranks toward adalora_target_r.
    pattern = model.peft_config["default"].rank_pattern
    assert pattern and sum(sum(v) for v in pattern.values()) < 6 * len(pattern)


@pytest.mark.parametrize("name", ["full", "freeze", "llamapro"])
def test_quantized_base_refused_by_weight_tuners(name, manager):
    tuner = manager.load("tuners", name)()
    with pytest.raises(SwiftError, match=rf"--quant_bits 4 needs an adapter tuner \(lora, .*tuner '{name}'"):
        tuner.check(make_args(tuner_type=name, quant_bits=4, freeze_n_layers=1))


def test_quantized_base_refused_by_pissa_and_accepted_by_lora(manager):
    with pytest.raises(SwiftError, match="full precision"):
        manager.load("tuners", "pissa")().check(make_args(quant_bits=4))
    manager.load("tuners", "lora")().check(make_args(quant_bits=4))


def test_unknown_target_module_is_a_clear_error(manager, family, tiny_qwen):
    tuner = manager.load("tuners", "lora")()
    with pytest.raises(
        SwiftError, match=r"target module 'q_prj' is not in the model\. Did you mean 'q_proj'\?"
    ):
        tuner.apply(base_model(tiny_qwen), make_args(target_modules=["q_prj"]), family)


def test_target_module_shortcuts(manager, family, tiny_qwen):
    tuner = manager.load("tuners", "lora")()

    def wrapped(args, fam):
        model = tuner.apply(base_model(tiny_qwen), args, fam)
        return {n.split(".")[-4] for n in trainable_names(model)}

    attn = {"q_proj", "k_proj", "v_proj", "o_proj"}
    every = attn | {"gate_proj", "up_proj", "down_proj"}
    assert wrapped(make_args(target_modules=["attn"]), family) == attn
    assert wrapped(make_args(target_modules=["all-linear"]), family) == every
    assert wrapped(make_args(target_modules=["all-linear"]), None) == every  # peft's all-linear
    assert wrapped(make_args(target_modules=["q_proj", "down_proj"]), None) == {"q_proj", "down_proj"}
    with pytest.raises(SwiftError, match="attn needs a known model family"):
        tuner.apply(base_model(tiny_qwen), make_args(target_modules=["attn"]), None)


def test_ia3_and_vera_without_family_use_every_linear_layer(manager, tiny_qwen):
    model = manager.load("tuners", "ia3")().apply(base_model(tiny_qwen), make_args(tuner_type="ia3"), None)
    shapes = {n.split(".")[-3]: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
    assert set(shapes) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert shapes["down_proj"] == (1, 128)  # feed-forward: scales the 128-wide input
    assert shapes["k_proj"] == (32, 1)  # others scale their output
    # VeRA's shared projections serve layers of different shapes (GQA k/v are narrower than q).
    args = make_args(tuner_type="vera", vera_rank=8, target_modules=["q_proj", "k_proj"])
    model = manager.load("tuners", "vera")().apply(base_model(tiny_qwen), args, None)
    assert {n.split(".")[-3] for n in trainable_names(model)} == {"q_proj", "k_proj"}


def test_freeze_last_layers_and_freeze_prefixes(manager, family, tiny_qwen):
    tuner = manager.load("tuners", "freeze")()
    model = tuner.apply(base_model(tiny_qwen), make_args(freeze_n_layers=1), family)
    names = trainable_names(model)
    # The tiny model ties lm_head to the embeddings, so the head trains as embed_tokens.
    assert {n.split(".")[1] for n in names} == {"layers", "norm", "embed_tokens"}
    assert all(n.startswith(("model.layers.1.", "model.norm.", "model.embed_tokens.")) for n in names)

    model = tuner.apply(
        base_model(tiny_qwen), make_args(freeze_parameters=["model.embed_tokens", "model.layers.0"]), family
    )
    names = trainable_names(model)
    assert names and not any(n.startswith(("model.embed_tokens.", "model.layers.0.")) for n in names)
    assert any(n.startswith("model.layers.1.") for n in names)

    with pytest.raises(SwiftError, match="needs --trainable_parameters"):
        tuner.check(make_args())
    with pytest.raises(SwiftError, match="no parameter under 'model.layer.1'"):
        tuner.apply(base_model(tiny_qwen), make_args(trainable_parameters=["model.layer.1"]), family)


def test_llamapro_layout(manager, family, tiny_qwen):
    tuner = manager.load("tuners", "llamapro")()
    model = tuner.apply(base_model(tiny_qwen), make_args(llamapro_num_new_blocks=1), family)
    assert model.config.num_hidden_layers == 3 and len(model.config.layer_types) == 3
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2]
    assert {n.split(".")[2] for n in trainable_names(model)} == {"2"}
    assert torch.count_nonzero(model.model.layers[2].mlp.down_proj.weight) == 0
    with pytest.raises(SwiftError, match="more than the model's 2 decoder layers"):
        tuner.apply(base_model(tiny_qwen), make_args(llamapro_num_new_blocks=3), family)


def test_third_party_tuner_plugin_registers_and_trains(tiny_qwen, batch, family):
    source = PluginSource("mytuner", "swift_mytuner.plugin", "swift-mytuner", "0.1.0")
    manager = PluginManager(Policy(), [source])
    descriptor = manager.get("tuners", "mytuner")
    assert descriptor.distribution == "swift-mytuner" and descriptor.plugin == "mytuner"
    tuner = manager.load("tuners", "mytuner")()
    from swift_core.tuners import Tuner

    assert isinstance(tuner, Tuner)
    model = tuner.apply(base_model(tiny_qwen), make_args(tuner_type="mytuner"), family)
    names = trainable_names(model)
    assert names and all(p.ndim == 1 for n, p in model.named_parameters() if p.requires_grad)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train(model, tuner, make_args(), batch, lr=1e-2, steps=3)
    assert losses[-1] < losses[0]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(names)
