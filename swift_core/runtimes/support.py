"""What works on a hardware runtime, declared by the runtime, asked by the pipelines.

Users of accelerators other than NVIDIA's meet the same failures again and again: QLoRA on an
Ascend NPU (bitsandbytes has no Ascend kernels), bf16 on an older macOS's MPS, flash attention on
a ROCm GPU its kernels do not target, vLLM on an NPU without vllm-ascend. Each fails minutes into a
run, after the model loaded. A runtime therefore declares what works on it (`RuntimeSupport`), and
a pipeline describes what its arguments ask (`Workload`) and has the runtime refuse the combination
while the arguments are checked. Neither the pipelines nor this module compare device names: the
runtime object carries the answer.

Engines and strategies are declared as refusals (name -> why) rather than as allow lists: a
runtime cannot know every third-party engine, and one it does not name is left to fail (or work) on
its own. Features (QLoRA, flash attention, fused optimizers, multi-process training) are yes/no with
a note, so `swift env` can say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Feature:
    """One yes/no capability of a runtime, with why (always for a no; optional for a yes)."""

    supported: bool
    note: str = ""

    @classmethod
    def yes(cls, note: str = "") -> Feature:
        return cls(True, note)

    @classmethod
    def no(cls, why: str) -> Feature:
        return cls(False, why)

    def describe(self) -> str:
        head = "yes" if self.supported else "no"
        return f"{head} ({self.note})" if self.note else head


@dataclass(frozen=True)
class Workload:
    """What a command is about to ask of the runtime, built from its arguments before anything loads.

    `None`/`False` means "not asked": a pipeline fills only what its arguments say.
    """

    dtype: str | None = None
    quantizer: str | None = None  # a load-time quantizer (QLoRA), by its registered name
    engine: str | None = None
    strategy: str | None = None
    flash_attention: bool = False
    fused_optimizer: bool = False
    world_size: int = 1  # processes of a distributed run (torchrun's WORLD_SIZE)


@dataclass(frozen=True)
class RuntimeSupport:
    """What works on a runtime. `dtypes` are the usable ones, preferred first; `dtype_notes` say why
    a dtype Swift knows is missing (shown when a user asks for it)."""

    dtypes: tuple[str, ...]
    dtype_notes: Mapping[str, str] = field(default_factory=dict)
    quantized_training: Feature = field(default_factory=Feature.yes)
    flash_attention: Feature = field(
        default_factory=lambda: Feature.no("this runtime does not declare flash attention")
    )
    fused_optimizers: Feature = field(default_factory=Feature.yes)
    distributed: Feature = field(default_factory=Feature.yes)
    engines: Mapping[str, str] = field(default_factory=dict)  # engine name -> why it cannot run here
    strategies: Mapping[str, str] = field(default_factory=dict)  # strategy name -> why not here

    def refusals(self, work: Workload) -> list[str]:
        """One sentence per thing in `work` this runtime cannot do (empty: all of it works)."""
        out: list[str] = []
        if work.dtype is not None and work.dtype not in self.dtypes:
            why = self.dtype_notes.get(work.dtype, "")
            out.append(f"--torch_dtype {work.dtype}: {why + '; ' if why else ''}use {', '.join(self.dtypes)}")
        if work.quantizer is not None and not self.quantized_training.supported:
            out.append(
                f"--quant_method {work.quantizer} (QLoRA, a quantized base): {self.quantized_training.note}"
            )
        if work.flash_attention and not self.flash_attention.supported:
            out.append(f"flash attention: {self.flash_attention.note}")
        if work.fused_optimizer and not self.fused_optimizers.supported:
            out.append(f"a fused optimizer: {self.fused_optimizers.note}")
        if work.engine is not None and work.engine in self.engines:
            out.append(f"--engine {work.engine}: {self.engines[work.engine]}")
        if work.strategy is not None and work.strategy in self.strategies:
            out.append(f"strategy {work.strategy}: {self.strategies[work.strategy]}")
        elif (work.world_size > 1 or work.strategy is not None) and not self.distributed.supported:
            asked = f"strategy {work.strategy}" if work.strategy else f"{work.world_size} processes"
            out.append(f"{asked}: {self.distributed.note}")
        return out

    def describe(self) -> dict[str, object]:
        """For `swift env --json`: every declaration, with its why."""
        return {
            "dtypes": list(self.dtypes),
            "dtype_notes": dict(self.dtype_notes),
            "quantized_training": self.quantized_training.describe(),
            "flash_attention": self.flash_attention.describe(),
            "fused_optimizers": self.fused_optimizers.describe(),
            "distributed": self.distributed.describe(),
            "engines_refused": dict(self.engines),
            "strategies_refused": dict(self.strategies),
        }
