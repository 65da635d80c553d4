"""`python -m swift_core.demo`: the README's main job, end to end on the CPU in a few minutes.

1. build a small Qwen2-architecture model with random weights and a tokenizer trained on the spot;
2. `swift pt`: pretrain it (full weights) on a corpus generated here;
3. ask it held-out questions of three tasks (it cannot answer them yet);
4. `swift sft` with LoRA on those tasks;
5. ask again, with the adapter: answers and accuracy before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from swift_core.demo.tasks import accuracy, make_split, pretraining_rows
from swift_core.train.outputs import latest_complete_checkpoint


def _run(cmd: list[str]) -> None:
    print("\n$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True)


def _swift() -> list[str]:
    return [sys.executable, "-m", "swift_core"]


def _evaluate(model_dir: str, rows: list[dict[str, Any]], adapters: str | None = None) -> list[str]:
    import transformers

    from swift_core.demo.generate import generate_batch
    from swift_core.templates.registry import get_template

    tokenizer = transformers.AutoTokenizer.from_pretrained(adapters or model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    if adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapters)
    template = get_template("qwen2_5")
    return generate_batch(model, tokenizer, template, [r["messages"][:-1] for r in rows], max_new_tokens=8)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work_dir", default="demo_output")
    parser.add_argument("--pt_steps", type=int, default=300)
    parser.add_argument("--sft_steps", type=int, default=200)
    parser.add_argument("--n_eval", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    from swift_core.models.tiny import build_tiny_model

    base_init = work / "base-init"
    if not (base_init / "config.json").is_file():
        print(
            "building a small Qwen2-architecture model (random weights, tokenizer trained on the spot)",
            flush=True,
        )
        build_tiny_model(base_init, "qwen2_5", size="small", seed=args.seed)

    corpus = work / "corpus.jsonl"
    train_rows, held_rows = make_split(3000, args.n_eval, seed=args.seed)
    with corpus.open("w") as f:
        for row in pretraining_rows(8000, seed=args.seed + 7):
            f.write(json.dumps(row) + "\n")
    sft_data = work / "tasks_train.jsonl"
    with sft_data.open("w") as f:
        for row in train_rows:
            f.write(json.dumps({"messages": row["messages"]}) + "\n")

    common = ["--seed", str(args.seed), "--logging_steps", "20", "--save_steps", "100000"]
    if latest_complete_checkpoint(str(work / "pt")) is not None:
        print(f"reusing the pretrained base in {work / 'pt'} (delete it to pretrain again)", flush=True)
    else:
        pt = f"pt --model {base_init} --dataset {corpus} --template qwen2_5 --tuner_type full --max_steps {args.pt_steps}"
        pt += " --per_device_train_batch_size 8 --learning_rate 2e-3 --warmup_ratio 0.05 --max_length 128 --packing true"
        _run([*_swift(), *pt.split(), "--output_dir", str(work / "pt"), *common])
    base = latest_complete_checkpoint(str(work / "pt"))
    assert base is not None, "swift pt wrote no complete checkpoint"

    before = _evaluate(str(base), held_rows)
    sft = f"sft --model {base} --dataset {sft_data} --tuner_type lora --lora_rank 16 --lora_alpha 32"
    sft += f" --max_steps {args.sft_steps} --per_device_train_batch_size 16"
    # Random batches: the demo's three questions have their own lengths, so length-grouped
    # batches would be one question each (measured: animal 0.75 grouped, 1.0 random; docs/training.md).
    sft += " --learning_rate 2e-3 --max_length 128 --group_by_length false"
    _run([*_swift(), *sft.split(), "--output_dir", str(work / "sft"), *common])
    adapter = latest_complete_checkpoint(str(work / "sft"))
    assert adapter is not None, "swift sft wrote no complete checkpoint"
    after = _evaluate(str(base), held_rows, adapters=str(adapter))

    acc_before, acc_after = accuracy(held_rows, before), accuracy(held_rows, after)
    print("\nheld-out prompts (word lists never seen in fine-tuning):")
    print(f"{'prompt':<62} {'expected':<10} {'before':<12} after")
    for row, b, a in list(zip(held_rows, before, after))[:9]:
        print(f"{row['messages'][0]['content']:<62} {row['messages'][1]['content']:<10} {b[:11]:<12} {a}")
    print("\naccuracy   " + "  ".join(f"{k}: {acc_before[k]:.0%} -> {acc_after[k]:.0%}" for k in acc_after))
    print(f"demo finished in {time.perf_counter() - started:.0f}s; adapter: {adapter}")
    return {"before": acc_before, "after": acc_after, "adapter": str(adapter), "base": str(base)}


if __name__ == "__main__":
    main()
