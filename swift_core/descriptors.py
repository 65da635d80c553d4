"""Descriptors: what a plugin registers.

A descriptor is a frozen record of a capability: its name, a one-line description, the packages
it needs and a lazy factory path (`"package.module:attr"`). The factory is imported only when
the capability is selected, so start-up stays fast and works where the heavy library is absent.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from swift_core.errors import CapabilityLoadError


@dataclass(frozen=True, kw_only=True)
class Descriptor:
    """The common part of every registered capability."""

    name: str
    description: str = ""
    factory: str = ""
    requires: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # An options dataclass (fields declared with `swift_core.config.arg`): flags of the commands
    # that select this kind of capability (see swift_core.config.options). Must be light to import.
    options: type | None = None
    # Filled in by the registry from the plugin that registered it.
    plugin: str = ""
    distribution: str = ""

    kind_label = "capability"

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a {self.kind_label} needs a non-empty string name, got {self.name!r}")
        if self.factory and ":" not in self.factory:
            raise ValueError(
                f"{self.kind_label} {self.name!r}: factory must be 'module:attr', got {self.factory!r}"
            )
        for field_name in ("requires", "aliases"):
            value = getattr(self, field_name)
            if isinstance(value, str):
                object.__setattr__(self, field_name, (value,))
            else:
                object.__setattr__(self, field_name, tuple(value))
        if self.options is not None:
            from swift_core.config.option_schema import check_options_class

            check_options_class(self.options, f"{self.kind_label} {self.name!r}")

    def options_from(self, args: Any) -> Any:
        """This capability's options read from parsed arguments (defaults where they carry none),
        or None when it declares no options."""
        if self.options is None:
            return None
        from swift_core.config.option_schema import options_for

        return options_for(args, self.options)

    def with_origin(self, plugin: str, distribution: str) -> Descriptor:
        return replace(self, plugin=plugin, distribution=distribution)

    def missing_requirements(self) -> list[str]:
        """Requirements not satisfied by the installed distributions."""
        missing = []
        for text in self.requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                missing.append(text)
                continue
            try:
                installed = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                missing.append(text)
                continue
            if req.specifier and not req.specifier.contains(installed, prereleases=True):
                missing.append(f"{text} (installed: {installed})")
        return missing

    def load(self) -> Any:
        """Import and return the factory; errors name the plugin and the path."""
        origin = f"plugin {self.plugin!r}" + (f" ({self.distribution})" if self.distribution else "")
        if not self.factory:
            raise CapabilityLoadError(f"{self.kind_label} {self.name!r} from {origin} has no factory")
        missing = self.missing_requirements()
        if missing:
            raise CapabilityLoadError(
                f"{self.kind_label} {self.name!r} from {origin} needs {', '.join(missing)}; "
                f"install with: pip install {' '.join(repr(m.split(' (')[0]) for m in missing)}"
            )
        module_name, _, attr_path = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr_path.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # any import-time failure is the plugin's, reported as such
            raise CapabilityLoadError(
                f"{self.kind_label} {self.name!r} from {origin}: cannot import factory "
                f"{self.factory!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return obj


@dataclass(frozen=True, kw_only=True)
class ModelFamily(Descriptor):
    """A family of models sharing an architecture, template and LoRA targets.

    `aliases` are other names of the family itself (for `--model_type`); `model_aliases` maps
    short model names users type (`qwen2_5-7b-instruct`) to hub ids. When several families share
    an architecture, a local folder is matched by hints: `template_hints` (all must occur in the
    folder's chat template), `name_hints` (regular expressions tried on the folder name and
    `_name_or_path`) and `config_hints` (`("rope_scaling.factor", 32.0)`: all must equal the
    config.json values); `priority` breaks ties, so the highest one is the architecture's default.
    `remote_code` marks families whose hub repositories need `trust_remote_code=True`.
    """

    architectures: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    hf_ids: tuple[str, ...] = ()
    ms_ids: tuple[str, ...] = ()
    model_aliases: tuple[tuple[str, str], ...] = ()
    template: str = ""
    lora_target_modules: tuple[str, ...] = ()
    all_linear_modules: tuple[str, ...] = ()
    modality: str = "text"
    # What Swift can feed this family's models in a training or inference row: "text", and
    # "image" once a family's pipeline encodes images (the multimodal work declares it). A row with
    # images for a family without "image" is refused with its file, line and field.
    modalities: tuple[str, ...] = ("text",)
    # The model head (`swift_core.models.heads`) its models load with when they write text, where
    # it is not the causal LM: "vision_lm" (AutoModelForImageTextToText) for Qwen2-VL.
    head: str = ""
    # How grounding boxes are written for it (`swift_core.multimodal.boxes`): "qwen2_vl" (0-1000 of
    # the image), "qwen2_5_vl" (pixels of the resized image); "" for families without grounding.
    box_codec: str = ""
    min_transformers: str = ""
    remote_code: bool = False
    priority: int = 0
    name_hints: tuple[str, ...] = ()
    template_hints: tuple[str, ...] = ()
    config_hints: tuple[tuple[str, Any], ...] = ()
    kind_label = "model family"

    def __post_init__(self) -> None:
        super().__post_init__()
        for field_name in (
            "architectures",
            "model_types",
            "hf_ids",
            "ms_ids",
            "lora_target_modules",
            "all_linear_modules",
            "name_hints",
            "template_hints",
            "modalities",
        ):
            value = getattr(self, field_name)
            object.__setattr__(self, field_name, (value,) if isinstance(value, str) else tuple(value))
        for field_name in ("model_aliases", "config_hints"):
            value = getattr(self, field_name)
            items = value.items() if isinstance(value, dict) else value
            object.__setattr__(self, field_name, tuple((k, v) for k, v in items))


@dataclass(frozen=True, kw_only=True)
class TemplateDescriptor(Descriptor):
    kind_label = "template"


@dataclass(frozen=True, kw_only=True)
class DatasetDescriptor(Descriptor):
    """A named dataset: a hub id (with its subset and split) or a local path.

    `columns` renames the dataset's columns to the keys a row format expects (e.g.
    `{"question": "query", "answer": "response", "image": "images"}`); it may be given as a dict.
    """

    hf_id: str = ""
    ms_id: str = ""
    path: str = ""
    subset: str = ""
    split: str = "train"
    columns: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    kind_label = "dataset"

    def __post_init__(self) -> None:
        super().__post_init__()
        columns = self.columns.items() if isinstance(self.columns, dict) else self.columns
        object.__setattr__(self, "columns", tuple((str(a), str(b)) for a, b in columns))
        object.__setattr__(self, "tags", (self.tags,) if isinstance(self.tags, str) else tuple(self.tags))


@dataclass(frozen=True, kw_only=True)
class TunerDescriptor(Descriptor):
    kind_label = "tuner"


# What an alignment loss is computed from (AlignmentLossDescriptor.scores).
SCORE_KINDS = ("logps", "reward", "rollouts")


@dataclass(frozen=True, kw_only=True)
class AlignmentLossDescriptor(Descriptor):
    """The trainer reads `needs_reference`, `paired` and `scores`, never the loss's name.

    `scores` says what the loss is computed from: "logps", the policy's summed log-probabilities of
    each answer (a causal LM; DPO and its family), or "reward", one scalar per sequence from a
    sequence-classification head with a single output (a reward model, Bradley-Terry), or
    "rollouts", online RL (the GRPO family, `swift_core.rl`): per-token log-probs of completions the
    policy samples itself, scored by reward functions; `needs_reference` then means "a reference when
    --beta is not 0" and `paired` is not read.
    """

    needs_reference: bool = True
    paired: bool = True
    scores: str = "logps"
    kind_label = "alignment loss"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scores not in SCORE_KINDS:
            raise ValueError(
                f"alignment loss {self.name!r}: scores must be one of {', '.join(SCORE_KINDS)}, got {self.scores!r}"
            )
        if self.scores == "reward" and self.needs_reference:
            raise ValueError(f"alignment loss {self.name!r}: a reward-model loss takes no reference model")


@dataclass(frozen=True, kw_only=True)
class RewardFunctionDescriptor(Descriptor):
    """A reward function of online RL (`swift rlhf --rlhf_type grpo --reward_funcs NAME ...`).

    `factory` names a callable `(prompts, completions, **columns) -> list[float | None]`, sync or
    async (a coroutine function), or a class built once with the function's options (or with no
    argument when it declares none) whose instances are such callables. See `swift_core.rl.rewards`.
    """

    kind_label = "reward function"


@dataclass(frozen=True, kw_only=True)
class QuantizerDescriptor(Descriptor):
    load_time: bool = False
    export_time: bool = False
    kind_label = "quantizer"


@dataclass(frozen=True, kw_only=True)
class EngineDescriptor(Descriptor):
    """`rollout_options`: `swift rlhf` takes this engine's options as flags too (they configure
    GRPO's rollouts when `--rollout_engine` names it, e.g. the server engine's address).
    `rollout_only`: the engine samples token ids for GRPO and nothing else (chat, text prompts and
    streams are refused), so the full engine contract (`swift_core.testing.check_engine`) does
    not apply to it; its own tests cover what it does."""

    rollout_options: bool = False
    rollout_only: bool = False
    kind_label = "engine"


@dataclass(frozen=True, kw_only=True)
class RuntimeDescriptor(Descriptor):
    """`priority` orders runtimes for `--device auto`: the highest available one wins."""

    priority: int = 0
    kind_label = "runtime"


@dataclass(frozen=True, kw_only=True)
class StrategyDescriptor(Descriptor):
    """A distributed strategy (`swift_core.strategies.base.Strategy`).

    `activated_by` names one of its options: a run uses this strategy when that flag is given
    (`--deepspeed zero3`, `--fsdp full_shard`), the spellings users bring from ms-swift and
    transformers. `default_distributed`: the strategy of a multi-process run that names none (DDP).
    """

    activated_by: str | tuple[str, ...] = ""  # one option, or several: any of them given turns it on
    default_distributed: bool = False
    kind_label = "strategy"

    def __post_init__(self) -> None:
        super().__post_init__()
        names = {f.name for f in dataclasses.fields(self.options)} if self.options is not None else set()
        for option in self.activating_options():
            if option not in names:
                raise ValueError(
                    f"strategy {self.name!r}: activated_by {option!r} must name one of its options"
                )

    def activating_options(self) -> tuple[str, ...]:
        """The options whose flag turns this strategy on (`activated_by`, as a tuple)."""
        value = self.activated_by
        return (value,) if isinstance(value, str) and value else tuple(value) if value else ()


@dataclass(frozen=True, kw_only=True)
class ScorerDescriptor(Descriptor):
    """An evaluation metric (`swift eval --metric NAME`): its factory builds a
    `swift_core.eval.scorers.base.Scorer`. `higher_is_better` is False for error rates (CER), so
    reports and charts never read a falling number as a regression."""

    higher_is_better: bool = True
    # The kinds of task ("multiple_choice", "math", "generation", ...) this scorer is the default
    # for when `--metric` is not given: the runner asks the registry, never a scorer's name.
    default_for: tuple[str, ...] = ()
    kind_label = "scorer"

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.default_for
        object.__setattr__(self, "default_for", (value,) if isinstance(value, str) else tuple(value))


@dataclass(frozen=True)
class Kind:
    """One registry: its name, the hook that fills it, the descriptor type it holds, and the flag
    that chooses one of its capabilities (shown in `--help` beside the capability's options)."""

    name: str
    hook: str
    descriptor: type[Descriptor] = field(default=Descriptor)
    selector: str = ""

    @property
    def label(self) -> str:
        return self.descriptor.kind_label


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("model_families", "register_model_families", ModelFamily),
        Kind("templates", "register_templates", TemplateDescriptor),
        Kind("datasets", "register_datasets", DatasetDescriptor),
        Kind("tuners", "register_tuners", TunerDescriptor, "tuner_type"),
        Kind("alignment_losses", "register_alignment_losses", AlignmentLossDescriptor, "rlhf_type"),
        Kind("quantizers", "register_quantizers", QuantizerDescriptor, "quant_method"),
        Kind("engines", "register_engines", EngineDescriptor, "engine"),
        Kind("runtimes", "register_runtimes", RuntimeDescriptor, "device"),
        Kind("strategies", "register_strategies", StrategyDescriptor),
        Kind("scorers", "register_scorers", ScorerDescriptor, "metric"),
        Kind("reward_functions", "register_reward_functions", RewardFunctionDescriptor, "reward_funcs"),
    )
}
