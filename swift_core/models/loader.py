"""One way to load a model: resolve its family, tokenizer and template, then its weights.

Training (`swift sft/pt/rlhf`), the transformers engine, reward scoring and `swift export
--merge_lora` all load through here, so a model is loaded the same way whatever runs it: the
user's `trust_remote_code` (a model folder's code runs only when asked), the template a checkpoint was trained with, the head's
auto class and config overrides (`HeadKind`), and the checkpoint's adapter put back by the tuner
that wrote it.

Loading happens in two steps because training needs the tokenizer and template long before the
weights (the data is encoded and checked first, so a bad row costs seconds, not a model load):

- `prepare_model` / `prepare_checkpoint` / `prepare_for_inference`: everything but the weights
  (`PreparedModel`; light, a tokenizer at most);
- `load_weights`: `from_pretrained` of a prepared model, plus the checkpoint's adapter;
- `load_for_inference` does both for a model to run: the runtime chosen, dtype checked, weights on
  the device, in eval mode (`LoadedModel`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from swift_core.errors import SwiftError
from swift_core.models.checkpoint import Checkpoint, model_head
from swift_core.models.heads import CAUSAL_LM, HeadKind, head_for_family
from swift_core.models.loading import load_tokenizer, template_for
from swift_core.models.resolve import ResolvedModel, resolve_model
from swift_core.runtimes.base import DTYPE_NAMES, torch_dtype
from swift_core.runtimes.support import Workload


@dataclass
class PreparedModel:
    """A model resolved to its family, with its tokenizer and template: all but the weights."""

    resolved: ResolvedModel  # `resolved.model` is what from_pretrained loads
    tokenizer: Any
    template: Any
    head: HeadKind
    checkpoint: Checkpoint | None = None  # the Swift checkpoint it came from, if any
    adapter: str | None = None  # the checkpoint's adapter folder, put on the weights when loaded
    trust_remote_code: bool = False  # the user's --trust_remote_code, as the policy allowed it

    @property
    def family(self) -> Any:
        return self.resolved.family


@dataclass
class LoadedModel(PreparedModel):
    """A prepared model with its weights, on its runtime's device."""

    model: Any = None
    runtime: Any = None
    device: Any = None
    dtype_name: str = "float32"


def _manager(manager: Any) -> Any:
    if manager is not None:
        return manager
    from swift_core.plugins import get_plugin_manager

    return get_plugin_manager()


def prepare_model(
    model: str,
    *,
    model_type: str | None = None,
    template: str | None = None,
    head: HeadKind = CAUSAL_LM,
    tokenizer_path: str | None = None,
    trust_remote_code: bool = False,
    manager: Any = None,
) -> PreparedModel:
    """`model` (a folder, hub id or alias) resolved, its tokenizer (or `tokenizer_path`'s) loaded
    and `template` (default: the family's) bound to it. A model folder's own Python runs only with
    `trust_remote_code` (the user's flag, where the policy allows it): see `models.remote_code`."""
    from swift_core.models.remote_code import decide_trust_remote_code

    manager = _manager(manager)
    resolved = resolve_model(model, model_type, manager)
    head = head_for_family(resolved.family, head)  # a vision-language family loads its own head
    trust = decide_trust_remote_code(resolved.model, resolved.family, trust_remote_code)
    tokenizer = load_tokenizer(tokenizer_path or resolved.model, trust_remote_code=trust)
    bound = template_for(template or resolved.family.template, tokenizer, manager)
    return PreparedModel(resolved, tokenizer, bound, head, trust_remote_code=trust)


def prepare_checkpoint(
    checkpoint: Checkpoint,
    *,
    base_model: str | None = None,
    model_type: str | None = None,
    template: str | None = None,
    trust_remote_code: bool = False,
    manager: Any = None,
) -> PreparedModel:
    """A Swift checkpoint as it was trained: its family, template, head and tokenizer; an adapter
    checkpoint loads its base model (`base_model` overrides the recorded one) plus the adapter, a
    full-weights checkpoint loads itself. The arguments given override what it recorded."""
    prepared = prepare_model(
        checkpoint.weights(base_model),
        model_type=model_type or checkpoint.family,
        template=template or checkpoint.template,
        head=checkpoint.head,
        tokenizer_path=checkpoint.tokenizer_path if checkpoint.has_adapter else None,
        trust_remote_code=trust_remote_code,
        manager=manager,
    )
    prepared.checkpoint = checkpoint
    prepared.adapter = checkpoint.adapter_path
    return prepared


def prepare_for_inference(
    model: str,
    *,
    base_model: str | None = None,
    model_type: str | None = None,
    template: str | None = None,
    head: HeadKind | None = None,
    trust_remote_code: bool = False,
    manager: Any = None,
) -> PreparedModel:
    """`--model`/`--adapters` as given to `swift infer`: a Swift checkpoint as trained, anything
    else as a model. With `head`, a model of another head is refused before anything loads (an
    engine writes text; a reward model only scores)."""
    checkpoint = Checkpoint.find(model)
    found = checkpoint.head if checkpoint is not None else model_head(model, base_model)
    if head is not None:
        head.refuse_other(found, str(model))
    if checkpoint is not None:
        return prepare_checkpoint(
            checkpoint,
            base_model=base_model,
            model_type=model_type,
            template=template,
            trust_remote_code=trust_remote_code,
            manager=manager,
        )
    return prepare_model(
        model,
        model_type=model_type,
        template=template,
        head=found,
        trust_remote_code=trust_remote_code,
        manager=manager,
    )


def load_weights(
    prepared: PreparedModel,
    dtype_name: str,
    *,
    load_kwargs: dict[str, Any] | None = None,
    with_adapter: bool = True,
    manager: Any = None,
) -> Any:
    """`from_pretrained` with the head's auto class and config overrides, the prepared
    `trust_remote_code` (the user's choice, never the family's), and `load_kwargs` (a quantizer's, an engine's `model_kwargs`); then the
    checkpoint's adapter, put back by the tuner that saved it (unless `with_adapter` is False: an
    engine that serves several adapters loads them itself)."""
    kwargs = {
        "dtype": torch_dtype(dtype_name),
        **prepared.head.config_overrides(prepared.tokenizer),
        **(load_kwargs or {}),
    }
    try:
        model = prepared.head.model_class().from_pretrained(
            prepared.resolved.model, trust_remote_code=prepared.trust_remote_code, **kwargs
        )
    except OSError as exc:
        raise SwiftError(f"cannot load the model {prepared.resolved.model!r}: {exc}") from None
    if with_adapter and prepared.adapter and prepared.checkpoint is not None:
        tuner = _manager(manager).load("tuners", prepared.checkpoint.tuner)()
        model = tuner.load(model, prepared.adapter)
    return model


def check_dtype(dtype_name: str, runtime: Any) -> None:
    """A user error for a dtype Swift does not know or the runtime cannot run."""
    if dtype_name not in DTYPE_NAMES:
        raise SwiftError(f"--torch_dtype {dtype_name!r}: use one of {', '.join(DTYPE_NAMES)}")
    runtime.check(Workload(dtype=dtype_name))  # with the runtime's why (bf16 on an old macOS)


def load_for_inference(
    model: str | PreparedModel,
    *,
    device: str = "auto",
    torch_dtype: str | None = None,
    load_kwargs: dict[str, Any] | None = None,
    with_adapter: bool = True,
    manager: Any = None,
    **prepare: Any,
) -> LoadedModel:
    """A model (or checkpoint, see `prepare_for_inference`, which takes `prepare`'s keywords) ready
    to run: the runtime `--device` names configured, the dtype checked (default: the runtime's),
    the weights loaded onto its first device, in eval mode."""
    from swift_core.runtimes.selection import select_runtime

    manager = _manager(manager)
    prepared = (
        model
        if isinstance(model, PreparedModel)
        else prepare_for_inference(model, manager=manager, **prepare)
    )
    runtime = select_runtime(device, manager)
    runtime.configure()
    dtype_name = torch_dtype or runtime.default_dtype()
    check_dtype(dtype_name, runtime)
    weights = load_weights(
        prepared, dtype_name, load_kwargs=load_kwargs, with_adapter=with_adapter, manager=manager
    )
    target = runtime.device(0)
    weights.to(target)
    weights.eval()
    return LoadedModel(
        **{f.name: getattr(prepared, f.name) for f in fields(PreparedModel)},
        model=weights,
        runtime=runtime,
        device=target,
        dtype_name=dtype_name,
    )
