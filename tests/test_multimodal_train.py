"""A tiny Qwen2-VL learns four image tasks at once: ONE `swift sft` LoRA run from the CLI (a fresh
process, as a user runs it) on a mixed dataset of the synthetic VQA, caption, OCR and grounding
tasks (`--dataset vqa.jsonl caption.jsonl ocr.jsonl grounding.jsonl`), then held-out accuracy per
task before and after: exact match, and IoU >= 0.5 (box parsed by the family's codec, back in
original pixels) for grounding.

The tasks, as `swift_core.multimodal.synthetic` writes them at 56x56 pixels (4 visual tokens):
- vqa: "What colour is the square?", one of 4 colours; a model that ignores the image tops out at
  the majority colour (~0.3).
- caption: "a red square and a blue circle", 12 possible captions (~0.1 without the image).
- ocr: one rendered digit (`digits=1`), 10 answers (~0.15 without the image).
- grounding: a circle filling one cell of a 2x2 grid (`grid=2`), so 4 possible boxes (a constant
  box scores ~0.3), on a background tinted by position (`shaded=True`): the frozen random vision
  tower has rotary positions only, and on a plain background grounding stayed at the constant box
  (0.28 after 400 steps) while the other three tasks learned.
The tiny tokenizer writes each digit as one token and Qwen2-VL's grounding markers as single tokens
(`swift_core.models.tiny`).

Measured on this machine (2 shared cores, one thread): 600 steps of batch 8 take ~45 s of training
(~55-70 s with process start-up). Held-out accuracy goes from 0.0 on every task (a random model
writes none of the answers) to, at this module's seeds, 1.0 on all four; at training seeds 1 and 3
vqa 1.0/1.0, caption 1.0/0.91, ocr 1.0/0.78, grounding 0.97/1.0. 400 steps were too few to be
robust: after the fused LoRA layer changed float rounding (same losses to 6 decimals over the
first steps), caption ended at 0.44 at the default seed and grounding at 0.66 at seed 1. The
thresholds sit below those and well above what a model that ignores the image can reach. The ViT stays frozen (LoRA's default); the aligner (the
merger projecting visual features into the text width) trains with `--freeze_aligner false`:
with it frozen too, OCR varied with the seed (1.0 at these seeds, 0.53 at others) because the
adapter must read digits from frozen random features.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_swift

pytestmark = pytest.mark.slow

SIZE = 56
PIXELS = SIZE * SIZE
STEPS = 600
# Options of each synthetic task (see the module docstring).
TASKS: dict[str, dict] = {
    "vqa": {},
    "caption": {},
    "ocr": {"digits": 1},
    "grounding": {"grid": 2, "shaded": True},
}
START_AT_MOST = 0.35
THRESHOLDS = {"vqa": 0.75, "caption": 0.75, "ocr": 0.75, "grounding": 0.75}


def _correct(task: str, output: str, answer, codec, sizes) -> bool:
    """Exact match; for grounding the first box the model wrote, in original pixels, IoU >= 0.5."""
    from swift_core.multimodal.synthetic import iou

    if task != "grounding":
        return output == answer
    boxes = codec.parse(output)
    if not boxes:
        return False
    original, resized = sizes
    return iou(codec.from_model(boxes[0], original, resized), answer) >= 0.5


def _accuracy(model_dir: str, held_out: dict[str, Path]) -> dict[str, float]:
    """Held-out accuracy per task of the model (or checkpoint) in `model_dir`."""
    from swift_core.datasets.loader import load_rows
    from swift_core.models.loader import load_for_inference
    from swift_core.multimodal.generate import generate_batch
    from swift_core.multimodal.media import open_image
    from swift_core.multimodal.setup import vision_setup

    loaded = load_for_inference(model_dir, device="cpu")
    vision = vision_setup(loaded, max_pixels=PIXELS)
    scores = {}
    for task, data in held_out.items():
        rows = load_rows([str(data)], modalities=loaded.family.modalities).rows
        rows = vision.prepare_rows(rows)  # grounding: <ref-object> written for the family
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
                max_new_tokens=24,
            )
        correct = 0
        for row, out, answer in zip(rows, outs, answers):
            image = open_image(row["images"][0])
            sizes = (image.size, vision.processor.resize(image).size)
            correct += _correct(task, out, answer, vision.codec, sizes)
        scores[task] = correct / len(answers)
    return scores


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory):
    from swift_core.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("vl-model") / "vl", "qwen2_vl")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_vl):
    """The tiny VL model, its held-out rows per task, its starting accuracy and the LoRA
    checkpoint of one `swift sft` run on the four tasks mixed."""
    from swift_core.multimodal.synthetic import write_task

    root = tmp_path_factory.mktemp("vl-train")
    model = tiny_vl
    train = [write_task(t, root / "train", 160, size=SIZE, seed=0, **o) for t, o in TASKS.items()]
    held_out = {t: write_task(t, root / "val", 32, size=SIZE, seed=1, **o) for t, o in TASKS.items()}
    start = _accuracy(str(model), held_out)
    out = root / "out"
    r = run_swift(
        "sft",
        "--model", str(model),
        "--dataset", *map(str, train),
        "--output_dir", str(out),
        "--max_steps", str(STEPS),
        "--per_device_train_batch_size", "8",
        "--learning_rate", "5e-3",
        "--lora_rank", "16",
        "--lora_dropout", "0",
        "--max_pixels", str(PIXELS),
        "--freeze_aligner", "false",
        "--save_steps", str(STEPS),
        "--logging_steps", "50",
        # Random batches: each task's rows have their own length, so length-grouped batches
        # (swift sft's default) would be one task each; measured, that left caption at 0.06,
        # OCR 0.31 and grounding 0.5 after 400 steps at this learning rate (docs/training.md).
        "--group_by_length", "false",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    (checkpoint,) = out.glob(f"v*/checkpoint-{STEPS}")
    return {"model": model, "held_out": held_out, "start": start, "checkpoint": checkpoint, "root": root}


def test_the_tiny_vl_tokenizer_writes_digits_and_grounding_markers_as_single_tokens(tiny_vl):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_vl)
    ids = tok("<|box_start|>(54,429)<|box_end|>", add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces == ["<|box_start|>", "(", "5", "4", ",", "4", "2", "9", ")", "<|box_end|>"], pieces


def test_one_lora_run_learns_vqa_caption_ocr_and_grounding(trained):
    start = trained["start"]
    assert all(v <= START_AT_MOST for v in start.values()), start
    checkpoint = trained["checkpoint"]
    args = json.loads((checkpoint / "args.json").read_text())
    assert args["head"] == "vision_lm" and args["max_pixels"] == PIXELS
    assert len(args["dataset"]) == len(TASKS)  # every task file trained, not the last one only
    targets = json.loads((checkpoint / "adapter_config.json").read_text())["target_modules"]
    # --freeze_vit (LoRA's default) keeps the ViT blocks out; --freeze_aligner false adds the merger.
    assert all(".language_model." in name or ".visual.merger." in name for name in targets), targets
    assert any(".visual.merger." in name for name in targets), targets

    after = _accuracy(str(checkpoint), trained["held_out"])
    print(f"held-out accuracy: start {start}, after {after}")  # shown with -s / -rP
    failed = {t: (start[t], after[t]) for t in TASKS if after[t] < THRESHOLDS[t]}
    assert not failed, f"held-out accuracy (start, after) below {THRESHOLDS}: {failed}; all: {after}"


def test_swift_infer_answers_image_rows_and_chat_images_at_the_trained_resolution(trained):
    """Batch rows with relative image paths and `/image PATH` in chat, through the engine; the
    checkpoint's --max_pixels is used without being given again."""
    vqa = trained["held_out"]["vqa"]
    result = trained["root"] / "infer.jsonl"
    r = run_swift(
        "infer", "--adapters", str(trained["checkpoint"]), "--val_dataset", str(vqa),
        "--result_path", str(result), "--max_new_tokens", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    records = [json.loads(line) for line in result.read_text().splitlines()]
    answers = [json.loads(line)["answer"] for line in vqa.read_text().splitlines()]
    assert len(records) == len(answers) and all(rec["images"] for rec in records)
    accuracy = sum(rec["response"].strip() == a for rec, a in zip(records, answers)) / len(answers)
    assert accuracy >= THRESHOLDS["vqa"], accuracy

    first = json.loads(vqa.read_text().splitlines()[0])
    image = vqa.parent / first["images"][0]
    chat = subprocess.run(
        [sys.executable, "-m", "swift_core", "infer", "--adapters", str(trained["checkpoint"]), "--max_new_tokens", "4"],
        input=f"/image {image}\nWhat colour is the square?\n/image /no/such.png\n/exit\n",
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "attached to the next turn" in chat.stdout and "cannot read image /no/such.png" in chat.stdout
    # Chat answers the image as the batch run answered the same row (one code path).
    assert f">>> {records[0]['response'].strip()}" in chat.stdout
