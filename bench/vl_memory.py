"""Memory per image of a vision-language model at two `--max_pixels` settings.

Image resolution drives memory: each visual token is a (patch * merge)^2 = 28x28 area of the
resized image, and the ViT and the language model both process every one. This builds a tiny
Qwen2-VL (size `small` by default), then in a fresh process per setting runs one training step
(forward + backward) over a batch of IMAGES 640x480 images resized by Swift's one resize
function, and reports the visual tokens per image and the growth of peak RSS per image.

    .venv/bin/python bench/vl_memory.py [--size small] [--images 4] [--pixels 50176 200704]

CPU numbers (peak RSS, a high-water mark) are coarse; on a GPU the same script reports
torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def measure(model_dir: str, max_pixels: int, images: int) -> dict:
    import torch

    from swift_core.datasets.collator import PadCollator
    from swift_core.datasets.encode import encode_rows
    from swift_core.models.loader import load_weights, prepare_model
    from swift_core.multimodal.setup import vision_setup
    from swift_core.multimodal.synthetic import _canvas
    from swift_core.train.data import _to_features

    torch.set_num_threads(1)
    prepared = prepare_model(model_dir)
    vision = vision_setup(prepared, max_pixels=max_pixels, min_pixels=28 * 28)
    model = load_weights(prepared, "float32")
    model.train()
    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>Describe."},
                {"role": "assistant", "content": "a square"},
            ],
            "images": [_canvas(640).resize((640, 480))],
        }
        for _ in range(images)
    ]
    batch = vision.collator(PadCollator(prepared.tokenizer.pad_token_id))(
        _to_features(encode_rows(prepared.template, prepared.tokenizer, rows))
    )
    cuda = torch.cuda.is_available()
    if cuda:
        model.cuda()
        batch = {k: v.cuda() for k, v in batch.items()}
        torch.cuda.reset_peak_memory_stats()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model(**batch).loss.backward()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else after - before
    tokens = int((batch["input_ids"][0] == vision.processor.image_token_id).sum())
    return {
        "max_pixels": max_pixels,
        "resized": list(vision.processor.resize(rows[0]["images"][0]).size),
        "visual_tokens_per_image": tokens,
        "sequence_length": int(batch["input_ids"].shape[1]),
        "step_memory_mb": round(peak, 1),
        "per_image_mb": round(peak / images, 1),
        "measure": "cuda max_memory_allocated" if cuda else "peak RSS growth during the step",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="small")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--pixels", type=int, nargs="+", default=[224 * 224, 448 * 448])
    parser.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        print(json.dumps(measure(args._measure[0], int(args._measure[1]), args.images)))
        return
    from swift_core.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "vl", "qwen2_vl", size=args.size)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for pixels in args.pixels:
            out = subprocess.run(
                [sys.executable, __file__, "--images", str(args.images), "--_measure", str(model), str(pixels)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
