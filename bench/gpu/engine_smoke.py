"""What the GPU smoke checks of the engine plugins share (bench/gpu/lmdeploy_smoke.py,
bench/gpu/sglang_smoke.py): the options, the models built on the spot, the transformers reference,
the PASS/FAIL table, and the checks every engine passes. Not a script: those two import it (they
put this folder on sys.path, so it works from any working directory).

The built model is `--size medium` by default (head size 64: GPU attention kernels cover 64 and
128, not the 32 of `small`), with its final norm scaled up (x20) so that the random model's greedy
choices are not near-ties that float16 kernels may break differently (top-2 logit gaps of 0.1 and
more on the prompts used here). A divergence from transformers where its top-2 logits are within
`--tie_margin` is reported as a near-tie, not a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}],
]
RESULTS: list[tuple[str, bool, str]] = []


def check(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Run the check now; record PASS with its note, or FAIL with the error."""

    def run(fn: Callable[[], str]) -> Callable[[], str]:
        started = time.perf_counter()
        try:
            note = fn() or ""
            RESULTS.append((name, True, f"{note} ({time.perf_counter() - started:.1f}s)"))
        except Exception as exc:
            traceback.print_exc()
            RESULTS.append((name, False, f"{type(exc).__name__}: {exc}"[:300]))
        return fn

    return run


def report() -> int:
    """Print the PASS/FAIL table; 1 when a check failed (or none ran), else 0."""
    if not RESULTS:
        return 1
    width = max(len(name) for name, _, _ in RESULTS)
    print("\n" + "=" * (width + 20))
    for name, ok, note in RESULTS:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<{width}}  {note}")
    failed = sum(not ok for _, ok, _ in RESULTS)
    print(f"{len(RESULTS) - failed}/{len(RESULTS)} checks passed")
    return 1 if failed else 0


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--model", help="a local folder or hub id (default: build a random Qwen2.5)")
    parser.add_argument("--size", default="medium", help="size of the built model (swift_core.models.tiny)")
    parser.add_argument("--work_dir", help="where to build models (default: a temporary folder)")
    parser.add_argument("--max_new", type=int, default=24)
    parser.add_argument("--tie_margin", type=float, default=0.05)
    return parser.parse_args()


def build_model(work: Path, size: str) -> str:
    """A random Qwen2.5 with a trained-on-the-spot tokenizer, its logits sharpened, float16."""
    import torch
    from transformers import AutoModelForCausalLM

    from swift_core.models.tiny import build_tiny_model

    path = build_tiny_model(work / "base", "qwen2_5", size=size)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():
        model.model.norm.weight.mul_(20.0)  # the final norm scales the logits only: fewer near-ties
    model.to(torch.float16).save_pretrained(path)
    return str(path)


def build_lora(base: str, out: Path) -> str:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(out)
    return str(out)


@dataclass
class Setup:
    args: argparse.Namespace
    base: str  # the model folder (or hub id)
    lora: str  # a LoRA adapter folder of it
    Engine: Any  # the engine class, loaded through Swift's plugin manager


def prepare(args: argparse.Namespace, engine_name: str) -> Setup | None:
    """The models built and the engine class loaded (a check); None when there is no CUDA GPU or
    the engine does not load (the failure is reported)."""
    import torch

    from swift_core.plugins import get_plugin_manager

    if not torch.cuda.is_available():
        print("FAIL: no CUDA GPU visible")
        return None
    work = Path(args.work_dir or tempfile.mkdtemp(prefix=f"{engine_name}-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    base = args.model or build_model(work, args.size)
    lora = build_lora(base, work / "lora")
    manager = get_plugin_manager()
    state: dict[str, Any] = {}

    @check(f"plugin loads the engine ({engine_name} installed)")
    def _load():
        library = importlib.import_module(engine_name)
        state["Engine"] = manager.load("engines", engine_name)
        return f"{engine_name} {library.__version__}"

    return Setup(args, base, lora, state["Engine"]) if "Engine" in state else None


class Reference:
    """transformers (+peft) on the GPU, float16: greedy ids and log-softmax for given prompt ids."""

    def __init__(self, base: str, adapter: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float16).cuda()
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.eval()

    def greedy(self, ids: list[int], max_new: int, stop_ids: list[int], penalty: float = 1.0) -> list[int]:
        import torch

        with torch.no_grad():
            out = self.model.generate(
                input_ids=torch.tensor([ids]).cuda(),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long).cuda(),
                max_new_tokens=max_new,
                do_sample=False,
                repetition_penalty=penalty,
                eos_token_id=stop_ids,
                pad_token_id=stop_ids[0],
            )
        return out[0, len(ids) :].tolist()

    def logits(self, ids: list[int]):
        import torch

        with torch.no_grad():
            return self.model(input_ids=torch.tensor([ids]).cuda()).logits[0].float()


def stop_ids_of(engine, ref: Reference) -> list[int]:
    """The ids that end an answer: the template's stop tokens and the model's EOS (one or a list)."""
    eos = ref.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    return [s for s in dict.fromkeys([*engine._stop_ids, *eos]) if s is not None]


def compare(ref: Reference, ids: list[int], got: list[int], expected: list[int], margin: float) -> str:
    """'' when equal; a near-tie note when the first difference is a near-tie; else raise."""
    if got == expected:
        return ""
    step = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    logits = ref.logits(ids + expected[:step])[-1]
    top2 = logits.topk(2).values.tolist()
    if top2[0] - top2[1] < margin:
        return f"near-tie at step {step} (top-2 gap {top2[0] - top2[1]:.4f})"
    raise AssertionError(
        f"differs at step {step}: engine {got[step : step + 5]} vs transformers {expected[step : step + 5]}"
    )


class EngineChecks:
    """The checks every engine passes, each run (and recorded) when called; a script calls them in
    its order, with its own checks in between."""

    def __init__(self, engine, setup: Setup):
        self.engine, self.setup, self.args = engine, setup, setup.args
        self.ref = Reference(setup.base)
        self.stop_ids = stop_ids_of(engine, self.ref)

    def generation(self) -> None:
        """Greedy (also with repetition_penalty), streaming, logprobs."""
        from swift_core.engines.protocol import GenerationRequest

        engine, ref, stop_ids, args = self.engine, self.ref, self.stop_ids, self.args

        @check("greedy output equals transformers token for token")
        def _greedy():
            notes = []
            requests = [GenerationRequest(messages=m, max_tokens=args.max_new, temperature=0) for m in CHATS]
            for request, response in zip(requests, engine.generate_batch(requests)):
                ids = engine.prompt_ids(request)
                expected = ref.greedy(ids, args.max_new, stop_ids)
                notes.append(compare(ref, ids, response.choices[0].token_ids, expected, args.tie_margin))
                assert response.prompt_tokens == len(ids)
            return "; ".join(n for n in notes if n) or "2 prompts equal"

        @check("greedy with repetition_penalty=1.3 equals transformers (varied tokens)")
        def _penalty():
            request = GenerationRequest(
                messages=CHATS[0], max_tokens=args.max_new, temperature=0, repetition_penalty=1.3
            )
            ids = engine.prompt_ids(request)
            got = asyncio.run(engine.generate(request)).choices[0].token_ids
            expected = ref.greedy(ids, args.max_new, stop_ids, penalty=1.3)
            return (
                compare(ref, ids, got, expected, args.tie_margin)
                or f"equal, {len(set(expected))} distinct tokens"
            )

        @check("streaming adds up to generate")
        def _stream():
            request = GenerationRequest(messages=CHATS[1], max_tokens=16, temperature=0, logprobs=True)

            async def collect():
                return [c async for c in engine.stream(request)]

            chunks = asyncio.run(collect())
            whole = asyncio.run(engine.generate(request)).choices[0]
            assert "".join(c.text for c in chunks) == whole.text
            assert [lp.token_id for c in chunks for lp in c.logprobs] == whole.token_ids
            assert chunks[-1].finish_reason == whole.finish_reason
            return f"{len(chunks)} chunks"

        @check("logprobs close to transformers' log-softmax")
        def _logprobs():
            import torch

            ids = engine.prompt_ids(GenerationRequest(messages=CHATS[0]))
            request = GenerationRequest(
                prompt=ids, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
            )
            choice = asyncio.run(engine.generate(request)).choices[0]
            full = torch.log_softmax(ref.logits(ids + choice.token_ids), dim=-1)
            worst = 0.0
            for step, entry in enumerate(choice.logprobs):
                expected = full[len(ids) - 1 + step, entry.token_id].item()
                worst = max(worst, abs(entry.logprob - expected))
                assert len(entry.top) == 3
            assert worst < 0.1, f"largest difference {worst:.4f}"
            return f"largest difference {worst:.4f}"

    def lora_and_stop(self) -> None:
        """A LoRA adapter by name equal to transformers+peft; stop strings."""
        from swift_core.engines.protocol import GenerationRequest

        engine, stop_ids, args, setup = self.engine, self.stop_ids, self.args, self.setup

        @check("LoRA adapter by name equals transformers+peft")
        def _lora():
            peft_ref = Reference(setup.base, setup.lora)
            request = GenerationRequest(
                messages=CHATS[0], max_tokens=args.max_new, temperature=0, adapter="lora"
            )
            ids = engine.prompt_ids(request)
            got = asyncio.run(engine.generate(request)).choices[0].token_ids
            plain = asyncio.run(
                engine.generate(GenerationRequest(messages=CHATS[0], max_tokens=args.max_new, temperature=0))
            )
            note = compare(peft_ref, ids, got, peft_ref.greedy(ids, args.max_new, stop_ids), args.tie_margin)
            assert got != plain.choices[0].token_ids, "the adapter changed nothing"
            return note or "equal"

        @check("stop strings cut the answer")
        def _stop():
            full = asyncio.run(
                engine.generate(GenerationRequest(messages=CHATS[0], max_tokens=32, temperature=0))
            )
            text = full.choices[0].text
            assert len(text) > 6, repr(text)
            stop = text[len(text) // 2 : len(text) // 2 + 3]
            cut = asyncio.run(
                engine.generate(
                    GenerationRequest(messages=CHATS[0], max_tokens=32, temperature=0, stop=[stop])
                )
            ).choices[0]
            assert cut.finish_reason == "stop" and cut.text == text[: text.index(stop)], (cut.text, text)
            return f"stop {stop!r}"

    def cancel(self, name: str, stopped: Callable[[], None] | None = None) -> None:
        """A stream closed after three chunks; `stopped` asserts the library stopped the request;
        the next request is answered."""
        from swift_core.engines.protocol import GenerationRequest

        engine = self.engine

        @check(name)
        def _cancel():
            request = GenerationRequest(prompt=[5, 6, 7, 8], max_tokens=800, temperature=0)

            async def take_three():
                got = []
                async for chunk in engine.stream(request):
                    got.append(chunk)
                    if len(got) == 3:
                        break
                return got

            assert len(asyncio.run(take_three())) == 3
            if stopped is not None:
                stopped()
            started = time.perf_counter()
            quick = asyncio.run(
                engine.generate(GenerationRequest(messages=CHATS[0], max_tokens=4, temperature=0))
            )
            assert quick.choices[0].token_ids
            return f"next request {time.perf_counter() - started:.2f}s"

    def server_and_close(self, close_name: str) -> None:
        """A chat completion (plain and streamed) through Swift's OpenAI server; then close()."""
        from swift_core.engines.protocol import GenerationRequest

        engine = self.engine

        @check("Swift's OpenAI server: chat completion, plain and streamed")
        def _server():
            from fastapi.testclient import TestClient

            from swift_core.serve.app import ServeSettings, create_app

            direct = asyncio.run(
                engine.generate(GenerationRequest(messages=CHATS[0], max_tokens=12, temperature=0))
            )
            body = {"model": "m", "messages": CHATS[0], "max_tokens": 12, "temperature": 0}
            with TestClient(create_app(engine, ServeSettings(served_model_name="m"))) as client:
                r = client.post("/v1/chat/completions", json=body)
                assert r.status_code == 200, r.text
                assert r.json()["choices"][0]["message"]["content"] == direct.choices[0].text
                text = ""
                with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
                    for line in s.iter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            for choice in json.loads(line[6:])["choices"]:
                                text += choice["delta"].get("content") or ""
                assert text == direct.choices[0].text
            return "ok"

        @check(close_name)
        def _close():
            asyncio.run(engine.close())
            return "ok"
