"""FSDP2 on the CPU: accelerate's own FSDP2 engine, switched on where accelerate leaves it off.

accelerate builds its FSDP engine only for accelerators: on the CPU (`MULTI_CPU`) it drops the
FSDP plugin transformers hands it and would wrap the model in plain DDP. Nothing in its FSDP2
path needs an accelerator, though: `fully_shard` runs on CPU tensors over gloo (measured with
torch 2.13 and accelerate 1.15: same losses as one process, full state dicts gathered to rank 0,
resume). So, when a run asked for FSDP (`TrainingArguments.fsdp_plugin_args`) and accelerate
dropped it on the CPU, the accelerator's state is set to what it would be on a GPU, before the
Trainer prepares the model: the same code shards, saves and resumes on both. On an accelerator
accelerate keeps the plugin itself and this does nothing.
"""

from __future__ import annotations

from typing import Any


def enable_fsdp_on_cpu(trainer: Any) -> bool:
    """Give a Trainer on the CPU the FSDP2 engine it asked for; True when it was switched on here.

    Called before `trainer.train()` (the model is prepared, so sharded, inside `train`). The
    distributed type is set in accelerate's `PartialState` too: every `AcceleratorState()` built
    later (accelerate's save and load helpers build them) copies it from there, and would turn
    the run back into `MULTI_CPU` halfway, saving unsharded DTensors as if they were tensors.
    """
    requested = getattr(trainer.args, "fsdp_plugin_args", None)
    accelerator = getattr(trainer, "accelerator", None)
    if requested is None or accelerator is None or accelerator.device.type != "cpu":
        return False
    state = accelerator.state
    if getattr(state, "fsdp_plugin", None) is not None:
        return False
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin(**requested)
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = plugin
    trainer.is_fsdp_enabled = True
    return True
