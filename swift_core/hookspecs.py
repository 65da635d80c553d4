"""Every hook a Swift plugin can implement.

Registration hooks receive a `register` callable and hand it light descriptors (see
`swift_core.descriptors`): a name, a description, requirements and a lazy factory. They run at
start-up in every process, so they must be cheap, import nothing heavy and be re-entrant.

Lifecycle hooks are called by the pipelines at fixed points; every implementation is called.

Each hook below is documented for plugin authors in docs/plugins.md; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT_NAME = "swift"
ENTRY_POINT_GROUP = "swift"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registration hooks -------------------------------------------------------------------------


@hookspec
def register_model_families(register: Any) -> None:
    """Register `ModelFamily` descriptors: architectures, hub ids, aliases, default template."""


@hookspec
def register_templates(register: Any) -> None:
    """Register chat templates (`TemplateDescriptor`): text and multimodal."""


@hookspec
def register_datasets(register: Any) -> None:
    """Register named datasets (`DatasetDescriptor`) with their hub ids or paths."""


@hookspec
def register_tuners(register: Any) -> None:
    """Register tuners (`TunerDescriptor`): apply, save, load, merge (lora, full, ...)."""


@hookspec
def register_alignment_losses(register: Any) -> None:
    """Register alignment losses (`AlignmentLossDescriptor`): dpo, simpo, kto, ..."""


@hookspec
def register_quantizers(register: Any) -> None:
    """Register quantizers (`QuantizerDescriptor`): load-time (QLoRA) and/or export-time."""


@hookspec
def register_engines(register: Any) -> None:
    """Register inference engines (`EngineDescriptor`): transformers, vllm, ..."""


@hookspec
def register_runtimes(register: Any) -> None:
    """Register hardware runtimes (`RuntimeDescriptor`): cpu, cuda, npu, mps."""


@hookspec
def register_strategies(register: Any) -> None:
    """Register distributed strategies (`StrategyDescriptor`): ddp, fsdp, deepspeed."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the `swift` click group with `cli.add_command(command)`."""


# --- lifecycle hooks ----------------------------------------------------------------------------


@hookspec
def before_model_load(args: Any) -> None:
    """Called with the resolved arguments before the model and tokenizer load."""


@hookspec
def after_model_load(model: Any, tokenizer: Any, args: Any) -> None:
    """Called once the model (tuner applied) and tokenizer are loaded."""


@hookspec
def trainer_callbacks(args: Any) -> list[Any]:
    """Return `transformers.TrainerCallback` objects to add to the trainer."""


@hookspec
def before_train(trainer: Any, args: Any) -> None:
    """Called with the built trainer just before training starts."""


@hookspec
def after_train(trainer: Any, output_dir: str, args: Any) -> None:
    """Called after training ends and the last checkpoint is written."""


@hookspec
def after_export(output_dir: str, args: Any) -> None:
    """Called after `swift export` has written a complete model to `output_dir`."""


@hookspec
def serve_app(app: Any, args: Any) -> None:
    """Called with the FastAPI app of `swift deploy` before it starts serving."""
