"""Adapter tuners built on peft: LoRA and its variants, AdaLoRA, IA3, VeRA, BOFT, FourierFT.

Each tuner turns `TunerArguments` into a peft config and wraps the model with `get_peft_model`.
Checkpoints are PEFT adapters (`adapter_config.json` + `adapter_model.safetensors`) that plain
`PeftModel.from_pretrained` loads on the original base model.

PiSSA and OLoRA change the base weights when they initialise (the base keeps the residual of the
principal/orthonormal part moved into the adapter). An adapter saved as is would only be right on
that residual base (peft re-decomposes the base when loading it, which breaks with randomized SVD,
other adapters or merging into the original weights), so `apply` keeps the initial adapter and the
tuner's `after_save` rewrites what peft saved as what peft's `path_initial_model_for_weight_conversion`
writes: the difference to the initial adapter as a plain LoRA adapter of rank 2r on the unmodified base.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swift_core.config.options import options_for
from swift_core.errors import SwiftError
from swift_core.tuners.base import Tuner
from swift_core.tuners.common import (
    FEEDFORWARD_OUTPUTS,
    check_quantized_base,
    linear_module_names,
    peft_task_type,
    resolve_target_modules,
)
from swift_core.tuners.options import (
    AdaLoraOptions,
    BoftOptions,
    FourierFTOptions,
    LoraOptions,
    LoraPlusOptions,
    VeraOptions,
)

# init_weights values that move part of the base weights into the adapter at initialisation.
_MUTATING_INITS = ("pissa", "olora")
# init_weights values that need nothing but the weights (eva, corda, loftq, lora_ga need data or
# extra configuration this tuner does not take).
_PLAIN_INITS = ("true", "false", "gaussian", "orthogonal")


def _lora_init(value: Any) -> Any:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return text


def _mutates_base(init: Any) -> bool:
    return isinstance(init, str) and init.startswith(_MUTATING_INITS)


def _check_lora_init(init: Any) -> None:
    if isinstance(init, bool) or init in _PLAIN_INITS or _mutates_base(init):
        return
    raise SwiftError(
        f"--init_weights {init!r} is not supported; use true, false, gaussian, orthogonal, pissa, "
        "pissa_niter_N or olora"
    )


def _modules_to_save(args: Any) -> list[str] | None:
    return list(getattr(args, "modules_to_save", None) or []) or None


class PeftTuner(Tuner):
    """Common part: targets, the quantized-base check, wrapping peft's errors as user errors."""

    saves_adapter = True
    supports_quantized_base = True
    quantized_base_reason = "cannot train on a quantized base"

    def check(self, args: Any) -> None:
        check_quantized_base(self, args, self.quantized_base_reason)

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        raise NotImplementedError

    def apply(self, model: Any, args: Any, family: Any) -> Any:
        from peft import get_peft_model

        self.check(args)
        targets = resolve_target_modules(model, args, family, self.name)
        try:
            config = self.peft_config(model, args, targets)
            peft_model = get_peft_model(model, config)
        except (ValueError, TypeError) as exc:
            raise SwiftError(f"tuner {self.name!r}: {exc}") from exc
        return self.after_wrap(peft_model, args)

    def after_wrap(self, model: Any, args: Any) -> Any:
        return model


# --- LoRA and its variants --------------------------------------------------------------------


class LoraTuner(PeftTuner):
    name = "lora"
    use_dora = False
    use_rslora = False
    init: str | None = None  # forced init_lora_weights (pissa, olora), else --init_weights

    def init_weights(self, args: Any) -> Any:
        given = _lora_init(options_for(args, LoraOptions).init_weights)
        if self.init is None:
            return given
        # --init_weights pissa_niter_16 (fast SVD) refines --tuner_type pissa; anything else is ignored.
        return given if isinstance(given, str) and given.startswith(self.init) else self.init

    def check(self, args: Any) -> None:
        init = self.init_weights(args)
        _check_lora_init(init)
        bits = getattr(args, "quant_bits", None)
        if bits and _mutates_base(init):
            raise SwiftError(
                f"--quant_bits {bits} cannot be used with init {init!r}: PiSSA/OLoRA rewrite the base weights "
                "at initialisation, which needs them in full precision; use lora, dora or rslora"
            )
        super().check(args)

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import LoraConfig

        options = options_for(args, LoraOptions)
        return LoraConfig(
            task_type=peft_task_type(model),
            r=options.lora_rank,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=targets,
            modules_to_save=_modules_to_save(args),
            init_lora_weights=self.init_weights(args),
            use_dora=self.use_dora,
            use_rslora=self.use_rslora,
        )

    def after_wrap(self, model: Any, args: Any) -> Any:
        from swift_core.tuners.lora_fused import use_fused_lora

        if _mutates_base(model.peft_config["default"].init_lora_weights):
            keep_initial_adapter(model)
        use_fused_lora(model)  # one autograd node per adapted linear on the CPU (fewer passes)
        return model

    def after_save(self, model: Any, folder: str) -> None:
        """PiSSA/OLoRA: rewrite the adapter peft wrote as a plain LoRA on the unmodified base."""
        initial = getattr(model, "_swift_initial_adapter", None)
        if initial is not None and (Path(folder) / "adapter_config.json").is_file():
            convert_saved_adapter(Path(folder), initial)


class DoraTuner(LoraTuner):
    name = "dora"
    use_dora = True


class RsLoraTuner(LoraTuner):
    name = "rslora"
    use_rslora = True


class PissaTuner(LoraTuner):
    name = "pissa"
    init = "pissa"
    supports_quantized_base = False
    quantized_base_reason = "rewrites the base weights at initialisation, which needs them in full precision"


class OloraTuner(PissaTuner):
    name = "olora"
    init = "olora"


class LoraPlusTuner(LoraTuner):
    """LoRA+: the B matrices learn `lorap_lr_ratio` times faster (peft's create_loraplus_optimizer groups)."""

    name = "lora+"

    def optimizer_param_groups(self, model: Any, args: Any) -> list[dict[str, Any]]:
        from operator import attrgetter

        from peft.tuners.lora.layer import Embedding
        from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
        from transformers.trainer_pt_utils import get_parameter_names

        lr = getattr(args, "learning_rate", None) or 1e-4
        ratio = options_for(args, LoraPlusOptions).lorap_lr_ratio
        weight_decay = getattr(args, "weight_decay", 0.0)
        decay = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}
        groups: dict[str, list[Any]] = {"A": [], "embedding": [], "B": [], "B_no_decay": []}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            module_name = ".".join(name.split(".")[:-2])
            module = attrgetter(module_name)(model) if module_name else None
            if isinstance(module, Embedding):
                groups["embedding"].append(param)
            elif "lora_B" in name or param.ndim == 1:
                groups["B" if name in decay else "B_no_decay"].append(param)
            else:
                groups["A"].append(param)
        result = [
            {"params": groups["A"], "lr": lr, "weight_decay": weight_decay},
            {"params": groups["embedding"], "lr": 1e-6, "weight_decay": weight_decay},
            {"params": groups["B"], "lr": lr * ratio, "weight_decay": weight_decay},
            {"params": groups["B_no_decay"], "lr": lr * ratio, "weight_decay": 0.0},
        ]
        return [g for g in result if g["params"]]


def keep_initial_adapter(model: Any) -> None:
    """Keep the initial adapter (A0, B0) of a PiSSA/OLoRA model, before any training.

    Each save (`LoraTuner.after_save`) then rewrites the adapter peft wrote as peft's
    `path_initial_model_for_weight_conversion` would: W_res + s*B*A = W + s*(B*A - B0*A0) =
    W + s*[B | -B0] [A ; A0], a LoRA adapter of rank 2r (alpha doubled, or times sqrt(2) with
    rsLoRA, so the scale is unchanged) with `init_lora_weights: true`. Rewriting the saved files
    instead of passing that argument keeps what peft's conversion drops (modules_to_save, DoRA
    magnitudes) and works with the `state_dict=` that Trainer passes (peft would look the initial
    adapter up in it and fail).
    """
    from peft import get_peft_model_state_dict

    initial = get_peft_model_state_dict(model, adapter_name="default")
    model._swift_initial_adapter = {
        k: v.detach().to("cpu", copy=True) for k, v in initial.items() if _lora_matrix(k)
    }


def _lora_matrix(key: str) -> str | None:
    for part in ("lora_A", "lora_B"):
        if f".{part}." in key:
            return part
    return None


def convert_saved_adapter(folder: Path, initial: dict[str, Any]) -> None:
    """Rewrite a saved PiSSA/OLoRA adapter in `folder` as a LoRA adapter on the original base."""
    import json
    import math

    import torch
    from safetensors.torch import load_file, save_file

    weights = folder / "adapter_model.safetensors"
    safe = weights.exists()
    if not safe:
        weights = folder / "adapter_model.bin"
    state = load_file(str(weights)) if safe else torch.load(weights, map_location="cpu", weights_only=True)
    missing = [k for k in initial if k not in state]
    if missing:
        raise SwiftError(f"cannot convert the PiSSA/OLoRA adapter in {folder}: it lacks {missing[:3]}")
    for key, init in initial.items():
        if _lora_matrix(key) == "lora_A":
            state[key] = torch.cat([state[key], init.to(state[key].dtype)], dim=0).contiguous()
        else:
            state[key] = torch.cat([state[key], -init.to(state[key].dtype)], dim=1).contiguous()
    if safe:
        save_file(state, str(weights), metadata={"format": "pt"})
    else:
        torch.save(state, weights)

    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["init_lora_weights"] = True
    config["r"] *= 2
    # The scale alpha/r (alpha/sqrt(r) with rsLoRA) must not change when r doubles.
    alpha_factor = math.sqrt(2) if config.get("use_rslora") else 2
    config["lora_alpha"] *= alpha_factor
    if config.get("rank_pattern"):
        config["rank_pattern"] = {k: 2 * v for k, v in config["rank_pattern"].items()}
    if config.get("alpha_pattern"):
        config["alpha_pattern"] = {k: alpha_factor * v for k, v in config["alpha_pattern"].items()}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


# --- AdaLoRA ---------------------------------------------------------------------------------------


class AdaLoraTuner(PeftTuner):
    name = "adalora"

    def check(self, args: Any) -> None:
        super().check(args)
        steps = getattr(args, "max_steps", -1) or -1
        if steps <= 0:
            raise SwiftError(
                "tuner 'adalora' allocates its rank budget over a known number of training steps: "
                "pass --max_steps N"
            )
        options = options_for(args, AdaLoraOptions)
        if options.adalora_tinit >= steps - options.adalora_tfinal:
            raise SwiftError(
                f"tuner 'adalora': --adalora_tinit {options.adalora_tinit} and --adalora_tfinal "
                f"{options.adalora_tfinal} leave no budgeting phase in --max_steps {steps}; "
                "lower them or raise --max_steps"
            )

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import AdaLoraConfig

        options = options_for(args, AdaLoraOptions)
        return AdaLoraConfig(
            task_type=peft_task_type(model),
            init_r=options.adalora_init_r,
            target_r=options.adalora_target_r,
            tinit=options.adalora_tinit,
            tfinal=options.adalora_tfinal,
            deltaT=options.adalora_deltaT,
            total_step=args.max_steps,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=targets,
            modules_to_save=_modules_to_save(args),
        )

    def callbacks(self, model: Any, args: Any) -> list[Any]:
        return [_adalora_callback(model)]


def _adalora_callback(model: Any) -> Any:
    from transformers import TrainerCallback

    class AdaLoraBudgetCallback(TrainerCallback):
        """Calls `update_and_allocate(step)` after each optimizer step, before the gradients are zeroed.

        peft's contract: after `loss.backward()` and `optimizer.step()`, before `zero_grad()`, with
        the 0-based index of the step. Trainer calls `on_optimizer_step` exactly there, while
        `state.global_step` still counts the steps finished before this one.
        """

        def __init__(self, peft_model: Any) -> None:
            self.model = peft_model

        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.model.base_model.update_and_allocate(state.global_step)

    return AdaLoraBudgetCallback(model)


# --- IA3, VeRA, BOFT, FourierFT ----------------------------------------------------------------


def _explicit_targets(model: Any, targets: Any) -> list[str]:
    return linear_module_names(model) if targets == "all-linear" else list(targets)


class IA3Tuner(PeftTuner):
    name = "ia3"

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import IA3Config

        names = _explicit_targets(model, targets)
        return IA3Config(
            task_type=peft_task_type(model),
            target_modules=names,
            feedforward_modules=[n for n in names if n in FEEDFORWARD_OUTPUTS],
            modules_to_save=_modules_to_save(args),
        )


class VeraTuner(PeftTuner):
    """VeRA: frozen random projections shared by all targeted layers, trained scaling vectors.

    peft (every version this project supports, >= 0.17) sizes the shared projections for the
    largest targeted layer and slices them for smaller ones, so targets of different shapes
    (q_proj and k_proj under GQA, the MLP) can be trained together.
    """

    name = "vera"

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import VeraConfig

        options = options_for(args, VeraOptions)
        return VeraConfig(
            task_type=peft_task_type(model),
            r=options.vera_rank,
            target_modules=targets,
            vera_dropout=options.lora_dropout,
            save_projection=True,
            modules_to_save=_modules_to_save(args),
        )


class BoftTuner(PeftTuner):
    name = "boft"

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import BOFTConfig

        options = options_for(args, BoftOptions)
        return BOFTConfig(
            task_type=peft_task_type(model),
            boft_block_size=options.boft_block_size,
            boft_block_num=0,
            boft_n_butterfly_factor=1,
            boft_dropout=options.lora_dropout,
            target_modules=targets,
            modules_to_save=_modules_to_save(args),
        )

    def apply(self, model: Any, args: Any, family: Any) -> Any:
        with _quiet_boft_kernel():
            return super().apply(model, args, family)

    def load(self, base_model: Any, path: str) -> Any:
        with _quiet_boft_kernel():
            return super().load(base_model, path)


@contextlib.contextmanager
def _quiet_boft_kernel() -> Iterator[None]:
    """peft tries to build its CUDA butterfly kernel and warns when it cannot (CPU, no ninja); the
    pure PyTorch path it falls back to computes the same thing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA extension.*")
        warnings.filterwarnings("ignore", message=".*boft_n_butterfly_factor.*")
        yield


class FourierFTTuner(PeftTuner):
    name = "fourierft"
    supports_quantized_base = False
    quantized_base_reason = "has no quantized-layer support in peft"

    def peft_config(self, model: Any, args: Any, targets: Any) -> Any:
        from peft import FourierFTConfig

        return FourierFTConfig(
            task_type=peft_task_type(model),
            n_frequency=options_for(args, FourierFTOptions).fourier_n_frequency,
            target_modules=targets,
            modules_to_save=_modules_to_save(args),
        )
