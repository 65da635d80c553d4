"""GPU smoke check of swift-lmdeploy against the real LMDeploy: run on a machine with an NVIDIA GPU.

    pip install -e . -e plugins/swift-lmdeploy'[gpu]'
    python bench/gpu/lmdeploy_smoke.py                      # a random Qwen2 built on the spot
    python bench/gpu/lmdeploy_smoke.py --model Qwen/Qwen2.5-0.5B-Instruct

The engine is built through Swift's plugin manager (`load("engines", "lmdeploy")`), then checked:
greedy output equal to transformers token for token (also with repetition_penalty, which makes the
random model's answer varied), streaming equal to generate, logprobs close to transformers' log-
softmax, a LoRA adapter served by name (PyTorch backend) equal to transformers+peft, stop strings,
seeds, cancellation, a chat completion (plain and streamed) through Swift's OpenAI server, and
greedy decoding on the TurboMind backend. Prints a PASS/FAIL table and exits 1 when a check fails.
Not run in CI (the CPU tests use a fake of lmdeploy). The checks every engine passes, the models
and the transformers reference are in bench/gpu/engine_smoke.py (see there for the built model and
`--tie_margin`).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_smoke, beside this script

from engine_smoke import (  # noqa: E402
    CHATS,
    EngineChecks,
    Reference,
    check,
    compare,
    parse_args,
    prepare,
    report,
    stop_ids_of,
)


def main() -> int:
    args = parse_args(__doc__)
    from swift_core.engines.protocol import EngineConfig, GenerationRequest

    setup = prepare(args, "lmdeploy")
    if setup is None:
        return report()
    Engine, base = setup.Engine, setup.base
    state: dict = {}

    @check("PyTorch backend starts with a LoRA adapter")
    def _start():
        config = EngineConfig(
            model=base,
            adapters={"lora": setup.lora},
            max_model_len=1024,
            torch_dtype="float16",
            extra={"backend": "pytorch", "cache_max_entry_count": 0.3},
        )
        state["engine"] = Engine(config)
        engine = state["engine"]
        assert engine.backend == "pytorch" and engine.capabilities.lora, engine.capabilities
        return f"max_model_len {engine.max_model_len}"

    engine = state.get("engine")
    if engine is not None:
        checks = EngineChecks(engine, setup)
        checks.generation()
        checks.lora_and_stop()

        @check("seeds reproduce, n=2 gives two choices")
        def _seeds():
            request = GenerationRequest(messages=CHATS[0], max_tokens=16, temperature=1.0, seed=7, n=2)
            a, b = asyncio.run(engine.generate(request)), asyncio.run(engine.generate(request))
            assert [c.token_ids for c in a.choices] == [c.token_ids for c in b.choices]
            assert a.choices[0].token_ids != a.choices[1].token_ids
            return "ok"

        checks.cancel("cancelled stream stops the session; the engine keeps serving")
        checks.server_and_close("close() shuts the PyTorch engine down")

    @check("TurboMind backend: greedy output equals transformers")
    def _turbomind():
        config = EngineConfig(
            model=base, max_model_len=1024, torch_dtype="float16", extra={"backend": "turbomind"}
        )
        tm = Engine(config)
        try:
            ref = Reference(base)
            stop_ids = stop_ids_of(tm, ref)
            request = GenerationRequest(messages=CHATS[0], max_tokens=args.max_new, temperature=0)
            ids = tm.prompt_ids(request)
            got = asyncio.run(tm.generate(request)).choices[0].token_ids
            return (
                compare(ref, ids, got, ref.greedy(ids, args.max_new, stop_ids), args.tie_margin)
                or f"{tm.backend}: equal"
            )
        finally:
            asyncio.run(tm.close())

    return report()


if __name__ == "__main__":
    sys.exit(main())
