"""What a user writes by hand without Swift: llm-compressor's oneshot GPTQ W4A16 on chat rows.

    python bench/plain_llmcompressor_gptq.py MODEL_DIR ROWS.jsonl OUT_DIR N_SAMPLES

Rows are rendered with the tokenizer's own chat template and cut to 256 tokens, as `swift
quantize --quant_seqlen 256` does; no checks, no verification, no manifest. Run by bench/quantize.py.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    model_dir, rows_path, out_dir, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    with open(rows_path, encoding="utf-8") as f:
        rows = [json.loads(line)["messages"] for line in f][:n]
    ids = [tokenizer.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"][:256] for m in rows]
    data = Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]})
    recipe = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])
    oneshot(model=model, recipe=recipe, dataset=data, num_calibration_samples=len(ids), max_seq_length=256)
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)


if __name__ == "__main__":
    main()
