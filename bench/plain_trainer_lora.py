"""The alternative a user would write by hand: transformers.Trainer + peft LoRA, same work.

    python bench/plain_trainer_lora.py MODEL_DIR DATA.jsonl STEPS BATCH

Tokenizes with the tokenizer's own chat template (labels = input ids, as such scripts usually do)
and prints one JSON line with the timings.
"""

from __future__ import annotations

import json
import resource
import sys
import time

START = time.perf_counter()

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments  # noqa: E402


class FirstStep(TrainerCallback):
    first_step_at = None

    def on_step_begin(self, args, state, control, **kwargs):
        if FirstStep.first_step_at is None:
            FirstStep.first_step_at = time.perf_counter()


def main() -> None:
    model_dir, data, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tok = AutoTokenizer.from_pretrained(model_dir)
    with open(data) as f:
        rows = [json.loads(line) for line in f]
    feats = []
    for r in rows:
        ids = tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]
        feats.append({"input_ids": ids[:128], "labels": ids[:128]})

    def collate(batch_rows):
        n = max(len(f["input_ids"]) for f in batch_rows)
        pad = tok.pad_token_id
        return {
            "input_ids": torch.tensor(
                [f["input_ids"] + [pad] * (n - len(f["input_ids"])) for f in batch_rows]
            ),
            "attention_mask": torch.tensor(
                [[1] * len(f["input_ids"]) + [0] * (n - len(f["input_ids"])) for f in batch_rows]
            ),
            "labels": torch.tensor([f["labels"] + [-100] * (n - len(f["labels"])) for f in batch_rows]),
        }

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"),
    )
    args = TrainingArguments(
        output_dir="/tmp/plain-trainer-bench",
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-3,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        weight_decay=0.1,
        lr_scheduler_type="cosine",
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=feats, data_collator=collate, callbacks=[FirstStep()]
    )
    t0 = time.perf_counter()
    trainer.train()
    train_time = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "startup_s": FirstStep.first_step_at - START,
                "train_s": train_time,
                "tokens": trainer.state.num_input_tokens_seen,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "final_loss": [h["loss"] for h in trainer.state.log_history if "loss" in h][-1],
            }
        )
    )


if __name__ == "__main__":
    main()
