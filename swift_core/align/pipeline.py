"""`swift rlhf`: the training pipeline's stages around preference data and an alignment loss.

The loss's descriptor decides the shape of the run: a reference model or not (`needs_reference`),
pairs or labelled examples (`paired`), and a causal LM scored by log-probs or a reward model, a
one-output sequence-classification head (`scores`). The loss's name is never read.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from swift_core.distributed.ranks import echo_main, is_main_process
from swift_core.errors import SwiftError


def precompute_reference(reference: Any, dataset: Any, collator: Any, batch_size: int) -> None:
    """Reference log-probs of every pair, once; afterwards the reference is not needed."""
    rows = dataset.rows
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        batch = collator(chunk)
        logps, _ = reference(batch)
        half = len(chunk)
        for i, row in enumerate(chunk):
            row["ref_chosen_logps"] = float(logps[i])
            row["ref_rejected_logps"] = float(logps[half + i])


def check_loss_arguments(args: Any, descriptor: Any) -> None:
    """Refuse flags the chosen loss cannot use, before anything loads."""
    if args.precompute_ref_log_probs and not (descriptor.paired and descriptor.needs_reference):
        raise SwiftError(
            f"--precompute_ref_log_probs needs a paired loss with a reference model; {descriptor.name!r} "
            f"{'takes unpaired data' if not descriptor.paired else 'has no reference'}"
        )
    if args.ref_model and not descriptor.needs_reference:
        raise SwiftError(f"--ref_model: the {descriptor.name!r} loss uses no reference model")
    if args.packing or args.padding_free:
        raise SwiftError(
            "--packing/--padding_free are for sft/pt; preference batches pad chosen and rejected together"
        )
    if args.max_tokens_per_batch:
        raise SwiftError(
            "--max_tokens_per_batch is for sft/pt; preference steps take --per_device_train_batch_size pairs"
        )


def load_preference_data(args: Any, descriptor: Any, setup: Any, manager: Any) -> tuple[Any, Any]:
    """(train, eval) encoded datasets: pairs or labelled examples, as the loss's `paired` says;
    each row checked while it loads, so a bad one is named before any model loads."""
    from swift_core.align.data import encode_pairs, encode_unpaired, paired_check, unpaired_check
    from swift_core.datasets.loader import load_rows
    from swift_core.train.data import EncodedDataset, split_rows

    check = paired_check if descriptor.paired else unpaired_check
    encode = encode_pairs if descriptor.paired else encode_unpaired

    def encoded(specs: list[str]) -> list[Any]:
        loaded = load_rows(
            specs,
            skip_bad_rows=args.skip_bad_rows,
            seed=args.seed,
            manager=manager,
            check=check,
            modalities=setup.family.modalities,
            family=setup.family.name,
        )
        if loaded.bad_rows:
            echo_main(loaded.bad_rows_summary(), err=True)
        return encode(setup.template, setup.tokenizer, loaded.rows, args)

    examples = encoded(args.dataset)
    if args.val_dataset:
        train_ds, eval_ds = EncodedDataset(examples), EncodedDataset(encoded(args.val_dataset))
    else:
        train_part, eval_part = split_rows(examples, args.split_dataset_ratio, args.seed)  # type: ignore[arg-type]
        train_ds = EncodedDataset(train_part)  # type: ignore[arg-type]
        eval_ds = EncodedDataset(eval_part) if eval_part else None  # type: ignore[arg-type]
    echo_main(
        f"data: {len(train_ds)} {'pairs' if descriptor.paired else 'examples'} for {descriptor.name} "
        f"({'reference: yes' if descriptor.needs_reference else 'reference-free'}), "
        f"{len(eval_ds) if eval_ds else 0} held out; template {setup.template.name}",
        err=True,
    )
    return train_ds, eval_ds


def build_reference(args: Any, descriptor: Any, caps: Any, model: Any, manager: Any) -> Any:
    """The reference the loss compares against, or None for a reference-free loss: `--ref_model`,
    else the policy with its adapter disabled, else (full fine-tuning) a frozen copy."""
    from swift_core.align.trainer import ReferenceLogps
    from swift_core.models.loader import load_weights, prepare_model

    if not descriptor.needs_reference:
        return None
    ref_model = None
    if args.ref_model:
        prepared = prepare_model(
            args.ref_model,
            model_type=args.model_type,
            trust_remote_code=args.trust_remote_code,
            manager=manager,
        )
        ref_model = load_weights(prepared, caps.dtype_name).eval()
        ref_model.requires_grad_(False)
    frozen = None
    if ref_model is None and not caps.tuner.saves_adapter:
        frozen = copy.deepcopy(model).eval()
        frozen.requires_grad_(False)
    return ReferenceLogps(model, ref_model, frozen)


def precompute_if_asked(args: Any, reference: Any, model: Any, datasets: list[Any], collator: Any) -> None:
    if reference is None or not args.precompute_ref_log_probs:
        return
    echo_main(f"precomputing reference log-probs ({reference.kind}) for {len(datasets[0])} pairs", err=True)
    model.eval()
    for dataset in datasets:
        if dataset is not None:
            precompute_reference(reference, dataset, collator, args.per_device_eval_batch_size * 4)
    model.train()
    reference.frozen_copy = reference.ref_model = None


def run_rlhf(args: Any, manager: Any = None) -> Any:
    from swift_core.align.base import LossConfig
    from swift_core.align.collator import PreferenceCollator
    from swift_core.atomic import write_json_atomic
    from swift_core.models.heads import head_for_scores
    from swift_core.plugins import get_plugin_manager
    from swift_core.train import pipeline as stages

    manager = manager or get_plugin_manager()
    stages.normalize(args)
    stages.check_names(args, manager)  # registry-only refusals come before torch is imported
    from swift_core.align.trainer import PreferenceTrainer, RewardModelTrainer

    t_start = time.perf_counter()
    descriptor = manager.get("alignment_losses", args.rlhf_type)
    if descriptor.scores == "rollouts":  # online RL samples its own answers: swift_core.rl
        raise SwiftError(
            f"--rlhf_type {descriptor.name} is online RL: run it with swift_core.rl.pipeline.run_online_rl"
        )
    loss_fn = descriptor.load()()
    head = head_for_scores(descriptor.scores)  # a causal LM, or a reward model's one-output head
    check_loss_arguments(args, descriptor)
    caps = stages.check_capabilities(args, manager)
    setup = stages.setup_model_family(args, manager, head=head)
    train_ds, eval_ds = load_preference_data(args, descriptor, setup, manager)

    run_dir, resume = stages.prepare_run_dir(args, caps)
    model = stages.load_trainable_model(args, caps, setup, manager)
    reference = build_reference(args, descriptor, caps, model, manager)
    collator = PreferenceCollator(head.pad_token_id(setup.tokenizer), descriptor.paired)
    precompute_if_asked(args, reference, model, [train_ds, eval_ds], collator)

    lr = stages.learning_rate(args, caps)
    swift_args = stages.resolved_args(args, f"rlhf:{descriptor.name}", caps, setup, lr)
    swift_args["reference"] = reference.kind if reference is not None else None
    swift_args["scores"] = descriptor.scores  # what the loss computed from (the head is recorded too)
    if is_main_process():
        write_json_atomic(run_dir / "args.json", swift_args)
    loss_config = LossConfig(
        beta=args.beta,
        rpo_alpha=args.rpo_alpha,
        options=descriptor.options_from(args),
    )
    has_eval = eval_ds is not None and len(eval_ds) > 0
    # A generating head is trained on its answers' log-probs; a reward head on its sequence scores.
    trainer_class = PreferenceTrainer if head.generates else RewardModelTrainer
    loss_kwargs = {"paired": descriptor.paired, "reference": reference} if head.generates else {}
    trainer = trainer_class(
        model=model,
        args=stages.training_arguments(args, run_dir, lr, caps, has_eval),
        train_dataset=train_ds,
        eval_dataset=eval_ds if has_eval else None,
        data_collator=collator,
        processing_class=setup.tokenizer,
        callbacks=stages.standard_callbacks(args, model, caps, run_dir, manager),
        swift_args=swift_args,
        param_groups=caps.tuner.optimizer_param_groups(model, args),
        tuner=caps.tuner,
        loss_fn=loss_fn,
        loss_config=loss_config,
        **loss_kwargs,
    )
    return stages.train_and_summarize(
        stages.quiet_default_printing(trainer), resume, run_dir, t_start, args, manager
    )
