"""Adapter folders and the chat template, read before an engine plugin starts its library.

Engine plugins that serve LoRA adapters (LmDeploy, SGLang, vLLM) read the same Swift/peft folders
and must pick the same template, so that one checkpoint renders the same prompt whatever engine
serves it; plugins cannot import each other, so the shared reading lives here. Everything is
checked before the library loads weights (tens of seconds on a GPU): a bad adapter folder, or two
adapters trained with different templates, fail at once with a clear error. Light: no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swift_core.engines.protocol import EngineConfig
from swift_core.errors import SwiftError
from swift_core.models.checkpoint import ADAPTER_CONFIG, Checkpoint, read_json_object
from swift_core.models.heads import CAUSAL_LM

DEFAULT_ADAPTER = "swift_default"  # the adapter of a checkpoint served as the model (not listed)


@dataclass(frozen=True)
class Adapter:
    name: str
    path: str
    template: str | None = None  # the template a Swift checkpoint was trained with
    rank: int = 8  # the largest LoRA rank (`r`, or one of `rank_pattern`)


def plain_lora_only(config: dict[str, Any]) -> list[str]:
    """The LoRA variants in an adapter_config.json that an engine serving plain LoRA refuses."""
    return ["DoRA (use_dora)"] if config.get("use_dora") else []


def adapter_folder(name: str, folder: str, engine: str) -> tuple[Path, Checkpoint | None]:
    """A folder served as adapter `name`: a peft folder, or a complete Swift adapter checkpoint
    (returned too, for its template); a missing folder or a full-weights one is a user error."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise SwiftError(f"adapter {name!r}: {folder} is not a folder")
    checkpoint = Checkpoint.find(path)  # a Swift checkpoint: only a complete one
    if checkpoint is not None:
        CAUSAL_LM.refuse_other(checkpoint.head, f"adapter {name!r} ({path})")
    if checkpoint is not None:
        checkpoint.require_adapter(f"adapter {name!r}", "serve it as the model")
    if not (path / ADAPTER_CONFIG).is_file():
        raise SwiftError(
            f"adapter {name!r}: {path} has no {ADAPTER_CONFIG}. {engine} serves adapters; a "
            "full-parameter checkpoint is a model: pass it as the model instead"
        )
    return path, checkpoint


def read_adapters(
    adapters: dict[str, str],
    engine: str,
    unsupported: Callable[[dict[str, Any]], list[str]] = plain_lora_only,
) -> list[Adapter]:
    """Served name -> LoRA folder (a peft folder or a complete Swift checkpoint), checked;
    `engine` names the library in the messages, `unsupported` lists what of a LoRA adapter_config
    the library refuses (default: DoRA)."""
    out = []
    for name, folder in adapters.items():
        path, checkpoint = adapter_folder(name, folder, engine)
        config_path = path / ADAPTER_CONFIG
        template = checkpoint.template if checkpoint is not None else None
        config = read_json_object(config_path)
        merge = (
            f"Merge it into the base model (swift export --merge_lora --adapters {path}) and serve the result"
        )
        peft_type = str(config.get("peft_type", "LORA")).upper()
        if peft_type != "LORA":
            raise SwiftError(
                f"adapter {name!r}: {engine} serves plain LoRA adapters only, {path} holds {peft_type}. {merge}"
            )
        refused = unsupported(config)
        if refused:
            raise SwiftError(
                f"adapter {name!r} ({path}): {engine} cannot serve {', '.join(refused)}; it serves plain "
                f"LoRA adapters. {merge}"
            )
        try:
            rank = max(
                int(r) for r in [config.get("r") or 8, *dict(config.get("rank_pattern") or {}).values()]
            )
        except (TypeError, ValueError):
            raise SwiftError(f"adapter {name!r}: {config_path}: r and rank_pattern must be numbers") from None
        out.append(Adapter(name, str(path.resolve()), template, rank))
    return out


def split_checkpoint(config: EngineConfig, engine: str) -> tuple[EngineConfig, Adapter | None]:
    """A Swift adapter checkpoint given as the model (`swift infer --adapters CHECKPOINT`): its base
    model (`extra["base_model"]`, else args.json's `model_dir`) is served with the adapter on for
    requests that name none, as the transformers engine does. Anything else is returned as it is;
    `base_model` leaves `extra` either way (it is Swift's key, not the engine's)."""
    extra = {k: v for k, v in config.extra.items() if k != "base_model"}
    plain = replace(config, extra=extra)
    checkpoint = Checkpoint.find(config.model)
    if checkpoint is None:
        return plain, None
    CAUSAL_LM.refuse_other(checkpoint.head, str(config.model))  # an engine writes text
    if not checkpoint.has_adapter:
        return plain, None
    base = checkpoint.weights(config.extra.get("base_model"))
    (adapter,) = read_adapters({DEFAULT_ADAPTER: str(checkpoint.path)}, engine)
    resolved = replace(
        plain,
        model=base,
        template=config.template or checkpoint.template,
        model_type=config.model_type or checkpoint.family,
    )
    return resolved, adapter


def choose_template(config: EngineConfig, adapters: list[Any], manager: Any) -> tuple[str, Any]:
    """The template's name (--template, else the model's/adapters' args.json, else the family's)
    and the resolved model. The same order as the other engines, so one checkpoint renders the
    same prompt whatever engine serves it."""
    from swift_core.models.resolve import resolve_model

    resolved = resolve_model(config.model, config.model_type, manager)
    checkpoint = Checkpoint.find(resolved.model) if resolved.is_local else None
    if checkpoint is not None:  # a full-weights checkpoint served as the model
        CAUSAL_LM.refuse_other(checkpoint.head, str(config.model))  # an engine writes text
    if config.template:
        return config.template, resolved
    if checkpoint is not None and checkpoint.template:
        return checkpoint.template, resolved
    templates = {a.template for a in adapters if a.template}
    if len(templates) > 1:
        raise SwiftError(
            f"the adapters were trained with different templates ({', '.join(sorted(templates))}); "
            "pass --template to choose one"
        )
    if templates:
        return templates.pop(), resolved
    return resolved.family.template, resolved


def model_context(model_dir: str) -> int | None:
    """`max_position_embeddings` of a local model folder (None when it does not say)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    config = read_json_object(path)
    text = config.get("text_config")
    value = (text if isinstance(text, dict) else config).get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None
