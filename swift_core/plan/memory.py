"""Per-device memory of one training step, part by part, for each strategy.

What is counted, per device (bytes; b = bytes per element of the training dtype):

- weights: every parameter in b; with `--quant_bits 4` the decoder's linear weights take 0.5 byte
  plus one fp32 scale per 64 (bitsandbytes NF4), 8 bits one byte plus a scale per row;
- trainable parameters (LoRA: r x (in + out) per target linear, kept in fp32 by peft; full: the
  weights themselves), their gradients, and AdamW's two moments (torch keeps them in the
  parameter's dtype; DeepSpeed adds an fp32 master copy for 16-bit training);
- activations kept for the backward pass, per token and layer: about 7H + 4I + 4K elements in b
  (H hidden, I MLP width, K key/value width) plus two fp32 norm inputs, LoRA dropout copies of the
  linear inputs when dropout is on, and two layers' worth more for backward's temporaries; with
  gradient checkpointing only each layer's input is kept, plus three layers' worth while one is
  recomputed and its backward runs;
- logits: batch x length x vocab in b, their fp32 log-softmax and both gradients (16 bytes per
  element in fp32), which for 150k vocabularies outweighs all the layers; with Swift's chunked loss
  (`swift sft`'s default, `swift_core/train/chunked_loss.py`) only the picked hidden states, their
  gradient and one chunk of fp32 logits with its softmax.

Strategies shard across W devices what they shard (ZeRO-1: optimizer; ZeRO-2: + gradients;
ZeRO-3 and FSDP full_shard: + parameters) and move to CPU RAM what they offload. Activations and
logits belong to each device's own batch and are never sharded. No library estimates this:
accelerate's estimate loads weights only, DeepSpeed's counts frozen LoRA parameters as trainable,
neither counts activations or logits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from swift_core.plan.shape import ModelShape

GiB = 1 << 30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Strategy:
    name: str
    shards_optimizer: bool = False
    shards_gradients: bool = False
    shards_parameters: bool = False
    offload_optimizer: bool = False
    offload_parameters: bool = False
    fp32_master: bool = False  # DeepSpeed keeps fp32 master weights for 16-bit training


STRATEGIES = {
    s.name: s
    for s in (
        Strategy("ddp"),
        Strategy("zero1", shards_optimizer=True, fp32_master=True),
        Strategy("zero2", shards_optimizer=True, shards_gradients=True, fp32_master=True),
        Strategy(
            "zero3", shards_optimizer=True, shards_gradients=True, shards_parameters=True, fp32_master=True
        ),
        Strategy("zero2_offload", shards_gradients=True, offload_optimizer=True, fp32_master=True),
        Strategy(
            "zero3_offload",
            shards_gradients=True,
            shards_parameters=True,
            offload_optimizer=True,
            offload_parameters=True,
            fp32_master=True,
        ),
        Strategy("fsdp_full_shard", shards_optimizer=True, shards_gradients=True, shards_parameters=True),
        Strategy("fsdp_shard_grad_op", shards_optimizer=True, shards_gradients=True),
    )
}


@dataclass(frozen=True)
class Workload:
    tuner: str = "lora"  # lora (and its family) or full
    lora_rank: int = 8
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("all-linear",)
    quant_bits: int | None = None
    max_length: int = 2048
    batch: int = 1  # rows per device per micro-step
    gradient_checkpointing: bool = False
    dtype: str = "bfloat16"
    devices: int = 1
    chunked_loss: bool = True


@dataclass(frozen=True)
class Estimate:
    strategy: str
    weights: float
    trainable: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    cpu_offloaded: float
    trainable_params: int

    @property
    def total(self) -> float:
        return (
            self.weights + self.trainable + self.gradients + self.optimizer + self.activations + self.logits
        )

    def parts(self) -> dict[str, float]:
        return {
            "weights": self.weights,
            "trainable": self.trainable,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "logits": self.logits,
        }


def activation_bytes(shape: ModelShape, work: Workload) -> float:
    b = DTYPE_BYTES[work.dtype]
    tokens = work.batch * work.max_length
    H, inter, kv = shape.hidden, shape.intermediate, shape.kv_dim
    per_token_layer = b * (7 * H + 4 * inter + 4 * kv) + 4 * 2 * H  # + fp32 RMSNorm inputs
    if work.tuner != "full" and work.lora_dropout > 0:
        per_token_layer += (b + 1) * (6 * H + inter)  # dropout output and mask per LoRA input
    # Backward holds the gradients and temporaries of the layer it is in on top of what is kept:
    # about two layers' worth more (measured on the CPU: tests/test_plan.py).
    if work.gradient_checkpointing:
        return tokens * (shape.layers * b * H + 3 * per_token_layer)  # + the layer being recomputed
    return tokens * (shape.layers + 2) * per_token_layer


def logits_bytes(shape: ModelShape, work: Workload) -> float:
    b = DTYPE_BYTES[work.dtype]
    elements = work.batch * work.max_length * shape.vocab
    if work.chunked_loss:
        from swift_core.train.chunked_loss import CHUNK_ELEMENTS

        tokens = work.batch * work.max_length
        return 2 * tokens * shape.hidden * b + 2 * min(elements, CHUNK_ELEMENTS) * 4
    # the logits, their fp32 log-softmax, and both gradients in backward (plus the fp32 upcast in 16-bit)
    return elements * (b + 4 + 4 + 4) if b != 4 else elements * 16


def weight_bytes(shape: ModelShape, work: Workload) -> float:
    b = DTYPE_BYTES[work.dtype]
    quantized = shape.quantizable_params if work.quant_bits else 0
    per_quantized = {4: 0.5 + 4 / 64, 8: 1.0 + 4 / max(1, shape.hidden)}.get(work.quant_bits or 0, b)
    return (shape.total_params - quantized) * b + quantized * per_quantized


def estimate(shape: ModelShape, work: Workload, strategy: Strategy) -> Estimate:
    b = DTYPE_BYTES[work.dtype]
    full = work.tuner == "full"
    trainable = shape.total_params if full else shape.lora_params(work.lora_rank, list(work.target_modules))
    trainable_b = b if full else 4  # peft keeps adapters in fp32
    world = max(1, work.devices)

    weights = weight_bytes(shape, work) if not full else 0.0
    train_w = trainable * trainable_b
    grads = trainable * trainable_b
    moments = 2 * trainable * trainable_b
    if strategy.fp32_master and trainable_b != 4:
        moments = trainable * (4 + 4 + 4)  # fp32 master, and both moments in fp32
    offloaded = 0.0
    if strategy.shards_parameters:
        weights /= world
        train_w /= world
    if strategy.offload_parameters:
        offloaded += weights + train_w
        weights, train_w = 0.0, 0.0
    if strategy.shards_gradients:
        grads /= world
    if strategy.shards_optimizer or strategy.offload_optimizer:
        moments /= world if strategy.shards_optimizer else 1
    if strategy.offload_optimizer:
        offloaded += moments
        moments = 0.0
    return Estimate(
        strategy=strategy.name,
        weights=weights,
        trainable=train_w,
        gradients=grads,
        optimizer=moments,
        activations=activation_bytes(shape, work),
        logits=logits_bytes(shape, work),
        cpu_offloaded=offloaded,
        trainable_params=trainable,
    )


def with_changes(work: Workload, **changes: object) -> Workload:
    return replace(work, **changes)  # type: ignore[arg-type]
