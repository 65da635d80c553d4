"""`swift rlhf` with a loss whose descriptor has `scores="rollouts"` (GRPO and its family).

The same stages as `swift sft`/`swift rlhf` (`swift_core.train.pipeline`), around prompts instead
of answers: the reward functions are built and their options checked, and every prompt row is
checked for the columns they read, before any model loads; the rollout engine is the engine plugin
`--rollout_engine` names. Checkpoints, resume, logging.jsonl and the loss plot are the trainer's.
"""

from __future__ import annotations

import time
from typing import Any

from swift_core.distributed.ranks import echo_main, is_main_process
from swift_core.errors import SwiftError


def check_online_arguments(args: Any, options: Any) -> None:
    """What online RL cannot take, refused before anything loads."""
    if args.packing or args.padding_free:
        raise SwiftError("--packing/--padding_free are for sft/pt; online RL trains on sampled completions")
    if args.max_tokens_per_batch:
        raise SwiftError(
            "--max_tokens_per_batch is for sft/pt; online RL steps take prompts x --num_generations"
        )
    if args.precompute_ref_log_probs:
        raise SwiftError(
            "--precompute_ref_log_probs: online RL samples new completions every step; nothing to precompute"
        )
    if args.val_dataset or args.split_dataset_ratio:
        raise SwiftError(
            "--val_dataset/--split_dataset_ratio: online RL has no held-out loss; watch the reward in logging.jsonl"
        )
    if options.num_generations < 2:
        raise SwiftError(
            f"--num_generations must be at least 2 (a group to compare), got {options.num_generations}"
        )
    if options.max_completion_length < 1:
        raise SwiftError(f"--max_completion_length must be positive, got {options.max_completion_length}")
    if not options.temperature > 0:
        raise SwiftError(f"--temperature must be > 0 for sampling rollouts, got {options.temperature}")
    if options.epsilon < 0 or (options.epsilon_high is not None and options.epsilon_high < 0):
        raise SwiftError("--epsilon/--epsilon_high must be >= 0")


def load_prompts(args: Any, rewards: list[Any], setup: Any, manager: Any) -> Any:
    from swift_core.datasets.loader import load_rows
    from swift_core.rl.data import encode_prompts, prompt_check
    from swift_core.rl.rewards import required_columns
    from swift_core.train.data import EncodedDataset

    loaded = load_rows(
        args.dataset,
        skip_bad_rows=args.skip_bad_rows,
        seed=args.seed,
        manager=manager,
        check=prompt_check(required_columns(rewards)),
        answer_optional=True,
        keep_columns=True,
    )
    if loaded.bad_rows:
        echo_main(loaded.bad_rows_summary(), err=True)
    return EncodedDataset(encode_prompts(loaded.rows, setup.template, setup.tokenizer, args.max_length))


def _stop_id(template: Any, tokenizer: Any) -> int | None:
    vocab = tokenizer.get_vocab()
    for token in template.stop:
        if token in vocab:
            return vocab[token]
    return tokenizer.eos_token_id


def run_online_rl(args: Any, manager: Any = None) -> Any:
    from swift_core.align.base import LossConfig
    from swift_core.align.pipeline import build_reference
    from swift_core.atomic import write_json_atomic
    from swift_core.engines.protocol import EngineConfig
    from swift_core.plugins import get_plugin_manager
    from swift_core.rl.base import RolloutLoss
    from swift_core.rl.options import GRPOOptions
    from swift_core.rl.rewards import build_reward_functions
    from swift_core.rl.rollout import EngineRollout
    from swift_core.rl.trainer import OnlineRLTrainer
    from swift_core.train import pipeline as stages

    manager = manager or get_plugin_manager()
    stages.normalize(args)
    t_start = time.perf_counter()
    descriptor = manager.get("alignment_losses", args.rlhf_type)
    if descriptor.scores != "rollouts":
        raise SwiftError(
            f"--rlhf_type {descriptor.name} is not an online-RL loss (use swift_core.align.pipeline.run_rlhf)"
        )
    loss_fn = descriptor.load()()
    if not isinstance(loss_fn, RolloutLoss):
        raise SwiftError(
            f"alignment loss {descriptor.name!r} from plugin {descriptor.plugin!r} has scores='rollouts' but is "
            f"not a swift_core.rl.base.RolloutLoss (got {type(loss_fn).__name__})"
        )
    options = descriptor.options_from(args) or GRPOOptions()
    check_online_arguments(args, options)
    rewards = build_reward_functions(options.reward_funcs, options.reward_weights, manager, args)
    engine = manager.get("engines", options.rollout_engine)  # an unknown engine fails now, not after loading
    caps = stages.check_capabilities(args, manager)
    setup = stages.setup_model_family(args, manager)
    train_ds = load_prompts(args, rewards, setup, manager)
    echo_main(
        f"data: {len(train_ds)} prompts for {descriptor.name}, {options.num_generations} completions each, "
        f"rewards {', '.join(r.name for r in rewards)}; rollouts by {options.rollout_engine}; template {setup.template.name}",
        err=True,
    )

    run_dir, resume = stages.prepare_run_dir(args, caps)
    model = stages.load_trainable_model(args, caps, setup, manager)
    reference = (
        build_reference(args, descriptor, caps, model, manager)
        if descriptor.needs_reference and args.beta != 0.0
        else None
    )
    lr = stages.learning_rate(args, caps)
    swift_args = stages.resolved_args(args, f"rlhf:{descriptor.name}", caps, setup, lr)
    swift_args["reference"] = reference.kind if reference is not None else None
    swift_args["scores"] = descriptor.scores
    if is_main_process():
        write_json_atomic(run_dir / "args.json", swift_args)

    base = EngineConfig(
        model=str(setup.resolved.model),
        template=setup.template.name,
        model_type=setup.resolved.family.name,
        torch_dtype=caps.dtype_name,
        device=args.device,
        max_batch_size=max(16, args.per_device_train_batch_size * options.num_generations),
        seed=args.seed,
        # The engine's own options where `swift rlhf` takes them (EngineDescriptor.rollout_options).
        options=engine.options_from(args) if engine.rollout_options else None,
    )
    rollout = EngineRollout(
        manager, options.rollout_engine, base, run_dir / "rollout", _stop_id(setup.template, setup.tokenizer)
    )
    targs = stages.training_arguments(args, run_dir, lr, caps, has_eval=False)
    targs.include_num_input_tokens_seen = "no"  # counted by the trainer: prompts and completions
    pad = setup.tokenizer.pad_token_id
    trainer = OnlineRLTrainer(
        model=model,
        args=targs,
        train_dataset=train_ds,
        data_collator=list,  # the rows as they are: the trainer samples and pads per step
        processing_class=setup.tokenizer,
        callbacks=stages.standard_callbacks(args, model, caps, run_dir, manager),
        swift_args=swift_args,
        param_groups=caps.tuner.optimizer_param_groups(model, args),
        tuner=caps.tuner,
        loss_fn=loss_fn,
        loss_config=LossConfig(beta=args.beta, options=options),
        reference=reference,
        rollout=rollout,
        rewards=rewards,
        options=options,
        pad_id=pad if pad is not None else (rollout.stop_id or 0),
        saves_adapter=caps.tuner.saves_adapter,
    )
    try:
        return stages.train_and_summarize(
            stages.quiet_default_printing(trainer), resume, run_dir, t_start, args, manager
        )
    finally:
        rollout.close()
