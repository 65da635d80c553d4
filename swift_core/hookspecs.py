"""Every hook a Swift plugin can implement, with when it runs and how results combine.

Two families:

- Registration hooks (`register_*`) receive a `register` callable (the `Register` protocol
  below) and hand it light descriptors (`swift_core.descriptors`): a name, a description,
  requirements, a lazy factory path and, optionally, an options dataclass. They run once per
  `PluginManager`, at start-up of every process (the CLI, every torchrun worker, a web UI job),
  for every kind, and each plugin's implementation is called on its own, so they must be cheap,
  import nothing heavy (no torch) and be re-entrant. Results do not combine: every descriptor is
  added to its kind's registry; a duplicate name, a conflicting option or any exception fails that
  plugin and removes everything it registered in every kind (the others are untouched).
- Lifecycle hooks are called by the pipelines at fixed points, in the process that runs the
  pipeline (with several training processes, in every rank). Every implementation is called
  (pluggy's default, LIFO order); hooks that return something have their non-None results
  collected into a list; an exception propagates and stops the pipeline, as it is the plugin
  author's bug.

Each hook below is documented for plugin authors in docs/plugins.md; a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:  # types for the docs and checkers only: nothing heavy is imported at run time
    import click

    from swift_core.descriptors import Descriptor

PROJECT_NAME = "swift"
ENTRY_POINT_GROUP = "swift"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Register(Protocol):
    """What a registration hook is handed.

    Call it with a descriptor of the hook's kind (`register(TunerDescriptor(name=..., ...))`), or
    with the descriptor's keyword arguments (`register(name="echo", factory="pkg.mod:Engine")`),
    once per capability. A descriptor of another kind is refused (`TypeError`).
    """

    def __call__(self, descriptor: Descriptor | None = None, /, **kwargs: Any) -> None: ...


# --- registration hooks -------------------------------------------------------------------------


@hookspec
def register_model_families(register: Register) -> None:
    """Register `ModelFamily` descriptors: architectures, hub ids and aliases, default template,
    LoRA target modules, modality, hints that tell families sharing an architecture apart.

    Asked by `swift_core.models.resolve` whenever `--model` is resolved (every command that loads
    a model) and by `swift download` for aliases.
    """


@hookspec
def register_templates(register: Register) -> None:
    """Register chat templates (`TemplateDescriptor`, factory -> a `ChatTemplate`): text and multimodal.

    The template named by `--template` or by the model family is loaded by training, inference and
    serving alike, so prompts render identically in all three.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register named datasets (`DatasetDescriptor`): a hub id (subset, split) or a path, and the
    column renames that map them onto a row format. Asked when `--dataset NAME` is not a file."""


@hookspec
def register_tuners(register: Register) -> None:
    """Register tuners (`TunerDescriptor`, factory -> a `swift_core.tuners.Tuner`): lora, full, ...

    Selected by `--tuner_type` in `swift sft|pt|rlhf`; the descriptor's `options` become flags of
    those commands. The tuner is loaded again by inference and export to reload or merge what it
    saved.
    """


@hookspec
def register_alignment_losses(register: Register) -> None:
    """Register alignment losses (`AlignmentLossDescriptor`, factory -> an `AlignmentLoss`): dpo, kto, ...

    Selected by `--rlhf_type` in `swift rlhf`. The trainer reads `needs_reference`, `paired` and
    `scores` from the descriptor (never the name); `options` become flags of `swift rlhf`.
    """


@hookspec
def register_reward_functions(register: Register) -> None:
    """Register reward functions of online RL (`RewardFunctionDescriptor`, factory -> a callable
    `(prompts, completions, **columns) -> list[float | None]`, sync or async): accuracy, format, ...

    Selected by `--reward_funcs` in `swift rlhf --rlhf_type grpo` (and the other losses whose
    descriptor has `scores="rollouts"`); called once per batch of sampled completions with the
    prompts, the completions' text and token ids and the dataset's other columns. `options` become
    flags of `swift rlhf`.
    """


@hookspec
def register_quantizers(register: Register) -> None:
    """Register quantizers (`QuantizerDescriptor`, factory -> a `Quantizer`): `load_time` ones
    quantize while the model loads (QLoRA, `--quant_method` of the training commands);
    `export_time` ones write a quantized checkpoint. `options` become flags of the commands."""


@hookspec
def register_engines(register: Register) -> None:
    """Register inference engines (`EngineDescriptor`, factory(EngineConfig) -> an `InferenceEngine`).

    Selected by `--engine` in `swift infer|deploy`; built once per process and shared by all
    requests, so the engine must be safe to call from the server's event loop.
    """


@hookspec
def register_runtimes(register: Register) -> None:
    """Register hardware runtimes (`RuntimeDescriptor`, factory -> a `HardwareRuntime`): cpu, cuda, ...

    `--device NAME` picks one; `--device auto` the available one with the highest `priority`.
    Asked before any model loads, in every process.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register distributed strategies (`StrategyDescriptor`): ddp, fsdp, deepspeed, ..."""


@hookspec
def register_scorers(register: Register) -> None:
    """Register evaluation scorers (`ScorerDescriptor`, factory -> a `swift_core.eval.scorers.base.Scorer`):
    exact match, multiple-choice letters, math answers, F1, ROUGE-L, BLEU, IoU, CER, ...

    Selected by `swift eval --metric NAME`, or by a benchmark's or a row's kind when `--metric` is
    not given. A scorer scores one prediction against its reference and aggregates the rows.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the `swift` click group with `cli.add_command(command)`.

    Called only by the CLI, once, when it builds its command list (not in workers). A failing
    implementation is reported and skipped; `swift_core.cli.dataclass_command` turns an
    arguments dataclass into a command that behaves like the core's.
    """


# --- lifecycle hooks ----------------------------------------------------------------------------


@hookspec
def before_model_load(args: Any) -> None:
    """Called by `swift sft|pt|rlhf` with the parsed arguments (the command's arguments dataclass,
    capability options included) after the checks pass and before the model and tokenizer load.
    Mutating `args` changes what loads; do so only for your own options."""


@hookspec
def after_model_load(model: Any, tokenizer: Any, args: Any) -> None:
    """Called by `swift sft|pt|rlhf` once the model (`transformers.PreTrainedModel`, the tuner
    applied, possibly a `peft.PeftModel`) and its tokenizer are loaded, before the trainer is built."""


@hookspec
def trainer_callbacks(args: Any) -> list[Any]:
    """Return a list of `transformers.TrainerCallback` objects to add to the trainer.

    Called once by `swift sft|pt|rlhf` while the trainer is built; the lists of all
    implementations are concatenated, after Swift's own callbacks and the tuner's.
    """


@hookspec
def before_train(trainer: Any, args: Any) -> None:
    """Called with the built trainer (a `transformers.Trainer` subclass) just before `train()`."""


@hookspec
def after_train(trainer: Any, output_dir: str, args: Any) -> None:
    """Called after training ends and the last checkpoint is complete; `output_dir` is the run
    folder (`OUTPUT_DIR/vN-<timestamp>`). Not called when training fails or is interrupted."""


@hookspec
def after_export(output_dir: str, args: Any) -> None:
    """Called by `swift export` after it has written a complete model to `output_dir` (the folder
    already carries its completion marker); `args` is the export command's arguments dataclass."""


@hookspec
def serve_app(app: Any, args: Any) -> None:
    """Called by `swift deploy` (and `swift infer --port`) with the FastAPI app and the parsed
    arguments, before it starts serving: add routes or middleware. Once per server process."""
