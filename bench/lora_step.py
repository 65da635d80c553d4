"""One padding-free LoRA training step, peft's own layers against Swift's, in one process.

The whole-run bench (train_realistic.py) says how fast a run is; this one isolates what the CPU
kernels of issue 20 change in a single forward + backward, so a kernel change can be measured
without 10-minute runs: the same ~25M Qwen2 (bench/realistic_data.py), one pack of 8 rows of the
realistic length mix, LoRA r8 on every linear with dropout 0.05, the chunked loss and the packed
attention both variants share. Variants alternate within each round so both see the same load;
the table gives the fastest and the median step and % of the fp32 matmul limit measured in the
same run (4 x params FLOPs per token).

- peft: peft's LoRA layers and torch's nn.Dropout (what a user of transformers + peft runs).
- swift, LoRA only: FastDropout plus the fused LoRA layer (swift_core/tuners/lora_fused.py) and
  its CPU kernels, transformers' own RMSNorm and rotary embedding.
- swift: all of the above plus the RMSNorm, RoPE and SwiGLU kernels (swift_core/train/
  rms_norm_cpu.py, rope_cpu.py, swiglu_cpu.py): what `swift sft` runs.

    .venv/bin/python bench/lora_step.py [--rounds 5] [--threads 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

from train_realistic import build_work, count_params, matmul_peak_gflops

LENGTHS = (613, 594, 310, 298, 212, 150, 110, 75)  # one batch of 8 drawn from the realistic mix


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--work", type=Path, default=None, help="reuse the model built there (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.work is None:
        with tempfile.TemporaryDirectory(prefix="swift-lora-step-") as tmp:
            return measure(Path(tmp), args)
    return measure(args.work, args)


def measure(work: Path, args: argparse.Namespace) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from swift_core.runtimes.host_memory import keep_freed_memory_for_reuse
    from swift_core.train.chunked_loss import causal_lm_loss, output_head
    from swift_core.train.fast_dropout import use_fast_dropout
    from swift_core.train.packed_attention import use_packed_attention
    from swift_core.train.rms_norm_cpu import use_fast_rms_norm
    from swift_core.train.rope_cpu import use_fast_rope
    from swift_core.train.swiglu_cpu import use_fast_swiglu
    from swift_core.tuners.lora_fused import use_fused_lora

    # The heap policy of a padding-free `swift sft` loop on the CPU runtime (runtimes.host_memory),
    # so a step here costs what it costs there.
    keep_freed_memory_for_reuse()
    model_dir, _ = build_work(work)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    use_packed_attention(base)
    config = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")
    peft_model = get_peft_model(base, config)
    lora_only = copy.deepcopy(peft_model)
    use_fast_dropout(lora_only)
    use_fused_lora(lora_only)
    swift_model = copy.deepcopy(lora_only)
    use_fast_rms_norm(swift_model)
    use_fast_swiglu(swift_model)
    modeling = sys.modules[type(base).__module__]
    own_rope = modeling.apply_rotary_pos_emb
    use_fast_rope(swift_model)  # process-wide: each variant below sets the one it runs with
    fast_rope = modeling.apply_rotary_pos_emb
    variants = {
        "peft": (peft_model, own_rope),
        "swift, LoRA only": (lora_only, own_rope),
        "swift": (swift_model, fast_rope),
    }

    tokens = sum(LENGTHS)
    ids = torch.randint(0, base.config.vocab_size, (1, tokens))
    positions = torch.cat([torch.arange(n) for n in LENGTHS])[None]
    labels = ids.clone()
    labels[0, :20] = -100

    def step(model: torch.nn.Module) -> float:
        model.train()
        out = model(input_ids=ids, position_ids=positions, output_hidden_states=True, logits_to_keep=1)
        loss = causal_lm_loss(out.hidden_states[-1], output_head(model), labels)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return loss.item()

    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, (model, rope) in variants.items():
            modeling.apply_rotary_pos_emb = rope
            torch.manual_seed(r)
            started = time.perf_counter()
            step(model)
            times[name].append(time.perf_counter() - started)
    peak = matmul_peak_gflops(args.threads)
    limit = peak * 1e9 / (4 * count_params(model_dir))
    print(
        f"one padding-free LoRA step, {tokens:,} tokens ({len(LENGTHS)} rows), {args.threads} thread(s), "
        f"{args.rounds} rounds; fp32 matmul peak {peak:.0f} GFLOP/s, limit {limit:,.0f} tokens/s\n"
    )
    print("| variant | fastest step s | median step s | tokens/s (fastest) | % FLOP limit |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        best = min(ts)
        print(
            f"| {name} | {best:.2f} | {statistics.median(ts):.2f} | {tokens / best:,.0f} "
            f"| {100 * tokens / best / limit:.0f}% |"
        )


if __name__ == "__main__":
    main()
