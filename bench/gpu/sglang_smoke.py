"""GPU smoke check of swift-sglang against the real SGLang: run on a machine with an NVIDIA GPU.

    pip install -e . -e plugins/swift-sglang'[gpu]'
    python bench/gpu/sglang_smoke.py                        # a random Qwen2 built on the spot
    python bench/gpu/sglang_smoke.py --model Qwen/Qwen2.5-0.5B-Instruct

The engine is built through Swift's plugin manager (`load("engines", "sglang")`), then checked:
greedy output equal to transformers token for token (also with repetition_penalty, which makes the
random model's answer varied), streaming equal to generate, logprobs and prompt logprobs close to
transformers' log-softmax, a LoRA adapter served by name (`enable_lora`, `lora_paths`) equal to
transformers+peft, stop strings, cancellation aborting the request inside SGLang, and a chat
completion (plain and streamed) through Swift's OpenAI server. Prints a PASS/FAIL table and exits 1
when a check fails. Not run in CI (the CPU tests use a fake of sglang). The checks every engine
passes, the models and the transformers reference are in bench/gpu/engine_smoke.py (see there for
the built model and `--tie_margin`). SGLang gets half the GPU memory (`mem_fraction_static=0.5`):
the transformers reference runs in the same process.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_smoke, beside this script

from engine_smoke import CHATS, EngineChecks, check, parse_args, prepare, report  # noqa: E402


def main() -> int:
    args = parse_args(__doc__)
    from swift_core.engines.protocol import EngineConfig, GenerationRequest

    setup = prepare(args, "sglang")
    if setup is None:
        return report()
    state: dict = {}

    @check("SGLang starts with a LoRA adapter")
    def _start():
        config = EngineConfig(
            model=setup.base,
            adapters={"lora": setup.lora},
            max_model_len=1024,
            torch_dtype="float16",
            extra={"mem_fraction_static": 0.5},
        )
        state["engine"] = setup.Engine(config)
        engine = state["engine"]
        assert engine.capabilities.lora and engine.capabilities.prompt_logprobs, engine.capabilities
        return f"max_model_len {engine.max_model_len}"

    engine = state.get("engine")
    if engine is None:
        return report()
    checks = EngineChecks(engine, setup)
    checks.generation()

    @check("prompt logprobs (echo) close to transformers' log-softmax")
    def _prompt_logprobs():
        import torch

        ids = engine.prompt_ids(GenerationRequest(messages=CHATS[0]))
        request = GenerationRequest(prompt=ids, max_tokens=0, echo=True, logprobs=True, top_logprobs=1)
        response = asyncio.run(engine.generate(request))
        prompt = response.prompt_logprobs
        assert [p.token_id for p in prompt] == ids and prompt[0].logprob is None
        full = torch.log_softmax(checks.ref.logits(ids), dim=-1)
        worst = max(abs(prompt[i].logprob - full[i - 1, ids[i]].item()) for i in range(1, len(ids)))
        assert worst < 0.1, f"largest difference {worst:.4f}"
        return f"largest difference {worst:.4f}"

    checks.lora_and_stop()

    @check("n=2 gives two sampled choices")
    def _choices():
        request = GenerationRequest(messages=CHATS[0], max_tokens=16, temperature=1.0, n=2)
        a = asyncio.run(engine.generate(request))
        assert [c.index for c in a.choices] == [0, 1] and a.choices[0].token_ids != a.choices[1].token_ids
        return "ok"

    def aborted() -> None:
        states = engine._engine.tokenizer_manager.rid_to_state
        deadline = time.monotonic() + 30
        while states and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not states, f"still running: {list(states)}"

    checks.cancel("cancelled stream is aborted inside SGLang; the engine keeps serving", aborted)
    checks.server_and_close("close() shuts SGLang down")
    return report()


if __name__ == "__main__":
    sys.exit(main())
