"""`swift sft` and `swift pt`: resolve, check, load, tune, train, summarise.

Everything a user can get wrong is checked before the model loads (the tuner and its options, the
quantizer, the data, --max_length), so a mistake costs seconds, not a model load. The stages are
functions so that `swift rlhf` composes the same ones around its own data and trainer.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from swift_core import __version__
from swift_core.distributed.ranks import echo_main, is_main_process
from swift_core.errors import SwiftError
from swift_core.models.heads import CAUSAL_LM, HeadKind
from swift_core.models.loader import PreparedModel
from swift_core.runtimes.base import launched_world_size, torch_dtype
from swift_core.runtimes.support import Workload

DEFAULT_LR_ADAPTER = 1e-4
DEFAULT_LR_FULL = 1e-5


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path | None
    global_step: int
    final_loss: float | None
    train_tokens_per_second: float
    wall_seconds: float
    peak_rss_mb: float
    summary: str


@dataclasses.dataclass
class Capabilities:
    tuner: Any
    quantizer: Any
    runtime: Any
    dtype_name: str
    strategy: Any = None  # swift_core.strategies.base.Strategy of a distributed run, else None
    strategy_ctx: Any = None


def normalize(args: Any) -> None:
    """Apply the seed article's spellings (use_lora) and refuse settings that cannot train."""
    from swift_core.config.arguments import explicitly_set

    if args.use_lora is not None:
        implied = "lora" if args.use_lora else "full"
        if "tuner_type" in explicitly_set(args) and args.tuner_type != implied:
            raise SwiftError(
                f"--use_lora {str(args.use_lora).lower()} and --tuner_type {args.tuner_type} conflict "
                f"(--use_lora {str(args.use_lora).lower()} means --tuner_type {implied}): pass only --tuner_type"
            )
        args.tuner_type = implied
    if args.max_steps <= 0 and args.num_train_epochs <= 0:
        raise SwiftError("set --max_steps or --num_train_epochs to a positive value")
    if not args.dataset:
        raise SwiftError("--dataset is required")


def check_names(args: Any, manager: Any) -> None:
    """Every name the registries or the file system alone can refuse (tuner, quantizer, device,
    model, datasets, --output_dir), before torch is imported: a typo costs a second, not twenty."""
    from swift_core.datasets.loader import check_dataset_specs
    from swift_core.models.resolve import resolve_model
    from swift_core.train.outputs import check_output_dir

    manager.get("tuners", args.tuner_type)
    if args.quant_method:
        manager.get("quantizers", args.quant_method)
    if args.device != "auto":
        manager.get("runtimes", args.device)
    resolve_model(args.model, args.model_type, manager)
    check_dataset_specs([*args.dataset, *args.val_dataset], manager)
    check_output_dir(args.output_dir)


def check_capabilities(args: Any, manager: Any) -> Capabilities:
    """The tuner, quantizer and runtime, with their checks: nothing heavy is loaded yet."""
    from swift_core.runtimes.selection import select_runtime

    check_names(args, manager)

    tuner = manager.load("tuners", args.tuner_type)()
    tuner.check(args)
    quantizer = None
    if args.quant_method or args.quant_bits:
        if not args.quant_method:
            raise SwiftError("--quant_bits needs --quant_method (e.g. bnb)")
        if not args.quant_bits:
            raise SwiftError("--quant_method needs --quant_bits (4 or 8)")
        descriptor = manager.get("quantizers", args.quant_method)
        if not descriptor.load_time:
            raise SwiftError(
                f"quantizer {descriptor.name!r} cannot quantize at load time (it is for swift export)"
            )
        if not tuner.supports_quantized_base:
            raise SwiftError(
                f"--quant_bits {args.quant_bits} needs an adapter tuner (lora, dora, ...): tuner {args.tuner_type!r} "
                "would train the quantized weights themselves"
            )
        quantizer = descriptor.load()()
        quantizer.check(args)
    runtime = select_runtime(args.device, manager)
    dtype_name = args.torch_dtype or runtime.default_dtype()
    strategy, strategy_ctx = check_strategy(args, manager, runtime, dtype_name, tuner, quantizer)
    # What the runtime declares it cannot do (bf16 on an old macOS, QLoRA on an NPU) is refused now.
    runtime.check(
        Workload(
            dtype=dtype_name,
            quantizer=args.quant_method if quantizer is not None else None,
            world_size=launched_world_size(),
            strategy=strategy.name if strategy is not None else None,
        )
    )
    runtime.configure()
    return Capabilities(tuner, quantizer, runtime, dtype_name, strategy, strategy_ctx)


def check_strategy(
    args: Any, manager: Any, runtime: Any, dtype_name: str, tuner: Any, quantizer: Any
) -> tuple[Any, Any]:
    """The distributed strategy (`--deepspeed`, `--fsdp`, DDP for a plain multi-process run), checked.

    The launcher (`swift_core.distributed.launcher`) has already started the processes; here the
    strategy only refuses what it cannot do, before anything loads.
    """
    from swift_core.strategies.base import StrategyContext
    from swift_core.strategies.selection import check_world_size, select_strategy

    world = launched_world_size()
    descriptor = select_strategy(args, manager, world)
    check_world_size(descriptor, world)
    if descriptor is None:
        return None, None
    strategy = descriptor.load()()
    ctx = StrategyContext(
        world_size=world,
        runtime=runtime,
        dtype_name=dtype_name,
        saves_adapter=bool(tuner.saves_adapter),
        quantized=quantizer is not None,
        options=descriptor.options_from(args),
    )
    strategy.check(args, ctx)
    return strategy, ctx


def setup_model_family(
    args: Any, manager: Any, default_template: str | None = None, head: HeadKind = CAUSAL_LM
) -> PreparedModel:
    """The model resolved, its tokenizer and template: what encoding the data needs (no weights)."""
    from swift_core.models.loader import prepare_model

    return prepare_model(
        args.model,
        model_type=args.model_type,
        template=args.template or default_template,
        head=head,
        trust_remote_code=args.trust_remote_code,
        manager=manager,
    )


def prepare_run_dir(args: Any, caps: Capabilities | None = None) -> tuple[Path, Path | None]:
    """The run folder and the checkpoint to resume from, decided once by the main process of a
    distributed run and shared with every rank (each deciding alone would make one folder each)."""
    from swift_core.distributed.sync import decided_by_main

    backend = caps.runtime.dist_backend if caps is not None else "gloo"
    return decided_by_main(lambda: _decide_run_dir(args), backend)


def _decide_run_dir(args: Any) -> tuple[Path, Path | None]:
    from swift_core.errors import NothingToDo
    from swift_core.models.checkpoint import require_complete
    from swift_core.train.outputs import finished_message, latest_complete_checkpoint, new_run_dir

    resume: Path | None = None
    if args.resume_from_checkpoint == "auto":
        resume = latest_complete_checkpoint(args.output_dir)
        if resume is None:
            echo_main(f"no complete checkpoint under {args.output_dir}: starting a new run", err=True)
    elif args.resume_from_checkpoint:
        resume = require_complete(args.resume_from_checkpoint)
    done = finished_message(resume, args) if resume is not None else None
    if done is not None:
        raise NothingToDo(done)
    run_dir = resume.parent if resume is not None else new_run_dir(args.output_dir, args.add_version)
    if resume is not None:
        echo_main(f"resuming from {resume}", err=True)
    return run_dir, resume


def vision_for(setup: PreparedModel, args: Any) -> Any:
    """The image side of a vision-language family (None for text families): processor, resize
    bounds, grounding codec, freezing (`swift_core.multimodal`)."""
    from swift_core.multimodal.setup import vision_setup

    vision = vision_setup(
        setup, max_pixels=getattr(args, "max_pixels", None), min_pixels=getattr(args, "min_pixels", None)
    )
    if vision is not None and (getattr(args, "packing", False) or getattr(args, "padding_free", False)):
        raise SwiftError("--packing and --padding_free are not supported with a vision-language model yet")
    return vision


def load_trainable_model(
    args: Any,
    caps: Capabilities,
    setup: PreparedModel,
    manager: Any,
    vision: Any = None,
) -> Any:
    """The base model with the head `setup` names (quantized when asked), prepared and wrapped
    by the tuner; for a vision-language model (`vision`), the tuner targets and trains only the
    parts --freeze_vit/--freeze_aligner/--freeze_llm leave trainable."""
    import transformers

    from swift_core.models.loader import load_weights

    transformers.set_seed(args.seed)
    manager.hook.before_model_load(args=args)
    load_kwargs: dict[str, Any] = {}
    if caps.quantizer is not None:
        load_kwargs.update(caps.quantizer.load_kwargs(args, torch_dtype(caps.dtype_name), caps.runtime))
    model = load_weights(setup, caps.dtype_name, load_kwargs=load_kwargs, manager=manager)
    model.config.use_cache = False
    if getattr(args, "packing", False) or getattr(args, "padding_free", False):
        from swift_core.train.packed_attention import use_packed_attention

        use_packed_attention(model, caps.runtime.packed_attention())
    if caps.quantizer is not None:
        model = caps.quantizer.prepare_for_training(model, args)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    family = setup.resolved.family
    adapter = caps.tuner.saves_adapter
    if vision is not None:
        family = vision.tuning_family(model, family, args, adapter)
    model = caps.tuner.apply(model, args, family)
    if vision is not None:
        vision.freeze(model, args, adapter)
    from swift_core.train.fast_dropout import use_fast_dropout
    from swift_core.train.rms_norm_cpu import use_fast_rms_norm
    from swift_core.train.rope_cpu import use_fast_rope
    from swift_core.train.swiglu_cpu import use_fast_swiglu

    use_fast_dropout(model)  # LoRA's input dropout, a tenth of a CPU step with torch's own
    # One pass each way for fp32 on the CPU; what the kernels do not compute exactly keeps its own.
    use_fast_rms_norm(model)
    use_fast_rope(model)
    use_fast_swiglu(model)
    manager.hook.after_model_load(model=model, tokenizer=setup.tokenizer, args=args)
    return model


def learning_rate(args: Any, caps: Capabilities) -> float:
    return args.learning_rate or (DEFAULT_LR_ADAPTER if caps.tuner.saves_adapter else DEFAULT_LR_FULL)


def resolved_args(
    args: Any, mode: str, caps: Capabilities, setup: PreparedModel, lr: float
) -> dict[str, Any]:
    """What args.json records: everything inference and export need, nothing else to look up."""
    return {
        **dataclasses.asdict(args),
        "learning_rate": lr,
        "mode": mode,
        "family": setup.resolved.family.name,
        "template": setup.template.name,
        "model_dir": str(setup.resolved.model),
        "model_hub_id": setup.resolved.hub_id,
        "torch_dtype": caps.dtype_name,
        "runtime": caps.runtime.name,
        "saves_adapter": caps.tuner.saves_adapter,
        "head": setup.head.name,
        "swift_version": __version__,
    }


def training_arguments(
    args: Any, run_dir: Path, lr: float, caps: Capabilities, has_eval: bool, own_batches: bool = False
) -> Any:
    """Swift's flags as `transformers.TrainingArguments`, then what the strategy (DeepSpeed config,
    FSDP, DDP backend) and the runtime (precision, CPU, ...) decide; the runtime has the last word."""
    import transformers

    fields: dict[str, Any] = dict(
        output_dir=str(run_dir),
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=lr,
        lr_scheduler_type=args.lr_scheduler_type,
        warmup_steps=args.warmup_steps or args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        logging_steps=args.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(args.eval_steps or args.save_steps) if has_eval else None,
        seed=args.seed,
        data_seed=args.seed,
        report_to=args.report_to or "none",
        # `own_batches`: Swift's length-grouped batch sampler forms the batches (swift sft/pt).
        train_sampling_strategy="group_by_length" if args.group_by_length and not own_batches else "random",
        remove_unused_columns=False,
        dataloader_num_workers=args.dataloader_num_workers,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
    )
    if caps.strategy is not None:
        fields.update(caps.strategy.trainer_arguments(args, caps.strategy_ctx))
    fields.update(caps.runtime.trainer_arguments(caps.dtype_name))
    return transformers.TrainingArguments(**fields)


def batch_sampler(args: Any, train_ds: Any) -> Any:
    """Swift's length-grouped batches (`swift_core.datasets.length_batches`) for a padded batch
    unless --group_by_length false, and token-budget batches with --max_tokens_per_batch; None
    leaves the Trainer's random sampler (padding-free and packed batches have no padding to cut)."""
    from swift_core.config.arguments import explicitly_set
    from swift_core.datasets.length_batches import LengthGroupedBatchSampler

    padded = not (args.packing or args.padding_free)
    budget = args.max_tokens_per_batch
    if budget is not None and budget <= 0:
        raise SwiftError(f"--max_tokens_per_batch must be positive, got {budget}")
    group = args.group_by_length if args.group_by_length is not None else padded
    if budget is None and not group:
        return None
    rows = args.per_device_train_batch_size
    if budget is not None and "per_device_train_batch_size" not in explicitly_set(args):
        rows = None  # the budget alone decides how many rows a step takes
    lengths = [len(row["input_ids"]) for row in train_ds.rows]
    return LengthGroupedBatchSampler(lengths, args.seed, rows=rows, max_tokens=budget, padded=padded)


def standard_callbacks(args: Any, model: Any, caps: Capabilities, run_dir: Path, manager: Any) -> list[Any]:
    from swift_core.train.callbacks import JsonlLoggerCallback, LossPlotCallback, ProgressBarCallback
    from swift_core.train.memory import MemorySplitCallback
    from swift_core.train.runtime_loop import RuntimeLoopCallback, memory_first

    callbacks = [
        RuntimeLoopCallback(caps.runtime, memory_first(args)),
        ProgressBarCallback(),
        JsonlLoggerCallback(run_dir / "logging.jsonl"),
        LossPlotCallback(run_dir),
        MemorySplitCallback(),
    ]
    callbacks += caps.tuner.callbacks(model, args)
    for extra in manager.hook.trainer_callbacks(args=args):
        callbacks += list(extra or [])
    return callbacks


def quiet_default_printing(trainer: Any) -> Any:
    """Swift's progress bar replaces the Trainer's bar and its printed log dicts."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    return trainer


def train_and_summarize(
    trainer: Any, resume: Path | None, run_dir: Path, t_start: float, args: Any, manager: Any
) -> TrainResult:
    from swift_core.train.callbacks import ProgressBarCallback
    from swift_core.train.memory import peak_rss_mb
    from swift_core.train.outputs import checkpoints, is_complete

    manager.hook.before_train(trainer=trainer, args=args)
    train_start = time.perf_counter()
    startup = seconds_since_process_start(t_start)
    try:
        out = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except KeyboardInterrupt:
        raise interrupted(trainer, run_dir) from None
    except OSError as exc:
        from swift_core.train.outputs import OUTPUT_ERRNOS, output_dir_error

        if exc.errno not in OUTPUT_ERRNOS:
            raise
        raise output_dir_error(run_dir, exc) from None
    wall = time.perf_counter() - train_start
    done = [c for c in checkpoints(run_dir) if is_complete(c)]
    last = done[-1] if done else None
    manager.hook.after_train(trainer=trainer, output_dir=str(run_dir), args=args)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    final_loss = losses[-1] if losses else out.training_loss
    progress = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, ProgressBarCallback))
    tps = progress.tokens_per_second()
    peak = peak_rss_mb()
    summary = (
        f"done: {trainer.state.global_step} steps in {wall:.1f}s (start-up {startup:.1f}s since the process started), "
        f"{tps:,.0f} train tokens/s, final loss {final_loss:.4f}, peak RSS {peak:,.0f} MB{memory_split(trainer)}, "
        f"checkpoint {last if last else run_dir}"
    )
    echo_main(summary)
    return TrainResult(run_dir, last, trainer.state.global_step, final_loss, tps, wall, peak, summary)


def memory_split(trainer: Any) -> str:
    """' (of it ~X MB activations and step temporaries, Y MB weights, optimizer and data)', or ''."""
    from swift_core.train.memory import MemorySplitCallback

    cb = next((c for c in trainer.callback_handler.callbacks if isinstance(c, MemorySplitCallback)), None)
    split = cb.split() if cb is not None else None
    if split is None:
        return ""
    lasting, per_step = split
    return f" (~{per_step:,.0f} MB of it activations and step temporaries, {lasting:,.0f} MB weights, optimizer and data)"


def seconds_since_process_start(fallback_start: float) -> float:
    """What the user waited before the first step: from the process's start (imports included),
    not from when the pipeline began; `fallback_start` (a perf_counter) where the OS cannot say."""
    try:
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())
    except Exception:  # psutil missing or the OS refusing: the pipeline's own clock
        return time.perf_counter() - fallback_start


def interrupted(trainer: Any, run_dir: Path) -> Exception:
    """Ctrl-C while training: where it stopped, the loss curve of what was done, how to resume."""
    from swift_core.errors import Interrupted
    from swift_core.train.outputs import checkpoints, is_complete
    from swift_core.train.plot import plot_loss

    state = trainer.state
    plot = None
    try:
        plot = plot_loss(state.log_history, run_dir / "loss.png")
    except Exception:  # the plot must not hide where the run stopped
        plot = None
    done = [c for c in checkpoints(run_dir) if is_complete(c)]
    where = f"stopped at step {state.global_step} of {state.max_steps}"
    if done:
        how = (
            f"the last complete checkpoint is {done[-1]}: resume with --resume_from_checkpoint auto "
            f"(same --output_dir) or --resume_from_checkpoint {done[-1]}"
        )
    else:
        how = "no checkpoint was complete yet (--save_steps saves more often): rerun to start again"
    curve = f"; loss curve so far: {plot}" if plot else ""
    return Interrupted(f"interrupted: {where}; {how}{curve}")


def run_train(args: Any, mode: str = "sft", manager: Any = None) -> TrainResult:
    from swift_core.atomic import write_json_atomic
    from swift_core.datasets.collator import PadCollator, PaddingFreeCollator
    from swift_core.datasets.loader import load_rows
    from swift_core.plugins import get_plugin_manager
    from swift_core.train.data import build_datasets, encode_for_training, split_rows

    manager = manager or get_plugin_manager()
    normalize(args)
    t_start = time.perf_counter()
    caps = check_capabilities(args, manager)
    if caps.strategy is not None and caps.strategy.trains_itself:  # Megatron: the bridge's own loop
        return caps.strategy.train(args, mode, caps.strategy_ctx, manager)
    from swift_core.train.trainer import SwiftTrainer  # transformers: after the cheap checks

    setup = setup_model_family(args, manager, default_template="raw" if mode == "pt" else None)
    template, tokenizer = setup.template, setup.tokenizer

    takes = {"modalities": setup.family.modalities, "family": setup.family.name}
    loaded = load_rows(
        args.dataset, skip_bad_rows=args.skip_bad_rows, seed=args.seed, manager=manager, **takes
    )
    if loaded.bad_rows:
        echo_main(loaded.bad_rows_summary(), err=True)
    vision = vision_for(setup, args)
    rows = vision.prepare_rows(loaded.rows) if vision is not None else loaded.rows
    encoded, _, cached = encode_for_training(template, tokenizer, rows, args, mode)
    if vision is not None:
        vision.check_encoded(encoded, args.max_length)
    if args.val_dataset:
        val = load_rows(
            args.val_dataset, skip_bad_rows=args.skip_bad_rows, seed=args.seed, manager=manager, **takes
        )
        val_rows = vision.prepare_rows(val.rows) if vision is not None else val.rows
        eval_rows, _, _ = encode_for_training(template, tokenizer, val_rows, args, mode)
        if vision is not None:
            vision.check_encoded(eval_rows, args.max_length)
        train_rows = encoded
    else:
        train_rows, eval_rows = split_rows(encoded, args.split_dataset_ratio, args.seed)
    train_ds, eval_ds = build_datasets(train_rows, eval_rows, args)
    batches = batch_sampler(args, train_ds)
    echo_main(
        f"data: {len(train_ds)} train rows ({train_ds.num_tokens:,} tokens), {len(eval_ds) if eval_ds else 0} eval rows; "
        f"template {template.name}; family {setup.resolved.family.name} ({setup.resolved.how})"
        + (f"; {batches.describe()}" if batches is not None else "")
        + ("; encoded rows from cache" if cached else ""),
        err=True,
    )

    run_dir, resume = prepare_run_dir(args, caps)
    model = load_trainable_model(args, caps, setup, manager, vision)
    lr = learning_rate(args, caps)
    swift_args = resolved_args(args, mode, caps, setup, lr)
    if is_main_process():
        write_json_atomic(run_dir / "args.json", swift_args)
    has_eval = eval_ds is not None and len(eval_ds) > 0
    collator = (
        PaddingFreeCollator()
        if (args.padding_free or args.packing)
        else PadCollator(tokenizer.pad_token_id or 0)
    )
    if vision is not None:
        collator = vision.collator(collator)
    trainer = SwiftTrainer(
        model=model,
        args=training_arguments(args, run_dir, lr, caps, has_eval, own_batches=batches is not None),
        train_dataset=train_ds,
        eval_dataset=eval_ds if has_eval else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=standard_callbacks(args, model, caps, run_dir, manager),
        swift_args=swift_args,
        param_groups=caps.tuner.optimizer_param_groups(model, args),
        tuner=caps.tuner,
        batch_sampler=batches,
        chunked_loss=args.chunked_loss and setup.head is CAUSAL_LM,
    )
    return train_and_summarize(quiet_default_printing(trainer), resume, run_dir, t_start, args, manager)
