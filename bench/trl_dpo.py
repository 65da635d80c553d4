"""TRL's DPOTrainer used directly, with LoRA: the alternative to `swift rlhf` a user would pick.

    python bench/trl_dpo.py MODEL_DIR DATA.jsonl STEPS BATCH

Data rows are Swift's preference rows (messages + rejected_response), turned into TRL's
conversational prompt/chosen/rejected format. Prints one JSON line with the timings.
"""

from __future__ import annotations

import json
import resource
import sys
import time

START = time.perf_counter()

from datasets import Dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402


def main() -> None:
    model_dir, data, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(data) as f:
        rows = [json.loads(line) for line in f]
    ds = Dataset.from_list(
        [
            {
                "prompt": r["messages"][:-1],
                "chosen": [r["messages"][-1]],
                "rejected": [{"role": "assistant", "content": r["rejected_response"]}],
            }
            for r in rows
        ]
    )
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = DPOConfig(
        output_dir="/tmp/trl-dpo-bench",
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-3,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        beta=0.1,
        max_length=128,
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=ds,
        processing_class=tok,
        peft_config=LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"
        ),
    )
    setup = time.perf_counter() - START
    t0 = time.perf_counter()
    out = trainer.train()
    train_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "startup_s": setup,
                "train_s": train_s,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "final_loss": (
                    [h["loss"] for h in trainer.state.log_history if "loss" in h] or [out.training_loss]
                )[-1],
            }
        )
    )


if __name__ == "__main__":
    main()
