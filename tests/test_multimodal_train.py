"""A tiny Qwen2-VL learns from images: `swift sft` with LoRA from the CLI (a fresh process, as a
user runs it) on the synthetic shapes VQA task, then held-out exact match before and after.

Measured on this machine (2 shared cores, one thread): 80 steps of batch 8 take ~15 s of training
(~40 s with process start-up); held-out accuracy goes from 0.0 (a random model writes no colour)
to 1.0 in the runs seen. The answer is one of four colours and the question never changes, so a
model that ignores the image tops out at the majority colour (~0.3 here): the threshold of 0.75
can only be met by reading the image. The ViT and the aligner stay frozen (LoRA's default), so
the adapter on the language model learns to read the frozen random vision features.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import run_swift

pytestmark = pytest.mark.slow

THRESHOLD = 0.75
START_AT_MOST = 0.35


def _accuracy(model_dir: str, data, max_pixels: int) -> float:
    from swift_core.datasets.loader import load_rows
    from swift_core.models.loader import load_for_inference
    from swift_core.multimodal.generate import generate_batch
    from swift_core.multimodal.setup import vision_setup

    loaded = load_for_inference(model_dir, device="cpu")
    vision = vision_setup(loaded, max_pixels=max_pixels)
    rows = load_rows([str(data)], modalities=loaded.family.modalities).rows
    answers = [json.loads(line)["answer"] for line in data.read_text().splitlines()]
    prompts = [{"messages": r["messages"][:-1], "images": r["images"]} for r in rows]
    outs: list[str] = []
    for i in range(0, len(prompts), 16):
        outs += generate_batch(
            loaded.model,
            loaded.tokenizer,
            loaded.template,
            vision.processor,
            prompts[i : i + 16],
            max_new_tokens=4,
        )
    return sum(o == a for o, a in zip(outs, answers)) / len(answers)


PIXELS = 56 * 56


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny VL model, its held-out rows, its starting accuracy and the LoRA checkpoint that
    `swift sft` trained on VQA."""
    from swift_core.models.tiny import build_tiny_model
    from swift_core.multimodal.synthetic import write_task

    root = tmp_path_factory.mktemp("vl-train")
    model = build_tiny_model(root / "vl", "qwen2_vl")
    train = write_task("vqa", root / "train", 160, size=56, seed=0)
    held_out = write_task("vqa", root / "val", 32, size=56, seed=1)
    start = _accuracy(str(model), held_out, PIXELS)
    out = root / "out"
    r = run_swift(
        "sft",
        "--model", str(model),
        "--dataset", str(train),
        "--output_dir", str(out),
        "--max_steps", "80",
        "--per_device_train_batch_size", "8",
        "--learning_rate", "5e-3",
        "--lora_rank", "16",
        "--lora_dropout", "0",
        "--max_pixels", str(PIXELS),
        "--save_steps", "80",
        "--logging_steps", "20",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    (checkpoint,) = out.glob("v*/checkpoint-80")
    return {"model": model, "held_out": held_out, "start": start, "checkpoint": checkpoint, "root": root}


def test_lora_on_the_shapes_vqa_task_rises_well_above_its_start(trained):
    assert trained["start"] <= START_AT_MOST
    checkpoint = trained["checkpoint"]
    args = json.loads((checkpoint / "args.json").read_text())
    assert args["head"] == "vision_lm" and args["max_pixels"] == PIXELS
    adapter = json.loads((checkpoint / "adapter_config.json").read_text())
    assert all(".language_model." in name for name in adapter["target_modules"])  # --freeze_vit default

    after = _accuracy(str(checkpoint), trained["held_out"], PIXELS)
    assert after >= THRESHOLD, f"held-out accuracy {after:.2f} (start {trained['start']:.2f})"


def test_swift_infer_answers_image_rows_and_chat_images_at_the_trained_resolution(trained):
    """Batch rows with relative image paths and `/image PATH` in chat, through the engine; the
    checkpoint's --max_pixels is used without being given again."""
    result = trained["root"] / "infer.jsonl"
    r = run_swift(
        "infer", "--adapters", str(trained["checkpoint"]), "--val_dataset", str(trained["held_out"]),
        "--result_path", str(result), "--max_new_tokens", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    records = [json.loads(line) for line in result.read_text().splitlines()]
    answers = [json.loads(line)["answer"] for line in trained["held_out"].read_text().splitlines()]
    assert len(records) == len(answers) and all(rec["images"] for rec in records)
    accuracy = sum(rec["response"].strip() == a for rec, a in zip(records, answers)) / len(answers)
    assert accuracy >= THRESHOLD, accuracy

    first = json.loads(trained["held_out"].read_text().splitlines()[0])
    image = trained["held_out"].parent / first["images"][0]
    chat = subprocess.run(
        [sys.executable, "-m", "swift_core", "infer", "--adapters", str(trained["checkpoint"]), "--max_new_tokens", "4"],
        input=f"/image {image}\nWhat colour is the square?\n/image /no/such.png\n/exit\n",
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "attached to the next turn" in chat.stdout and "cannot read image /no/such.png" in chat.stdout
    assert f">>> {first['answer']}" in chat.stdout
