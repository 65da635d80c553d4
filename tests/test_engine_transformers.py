"""The transformers engine against plain transformers/peft on a tiny model: same tokens, same logprobs."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch

from swift_core.engines.protocol import (
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    PromptTooLong,
    UnsupportedRequest,
)
from swift_core.errors import SwiftError

CHAT = [{"role": "user", "content": "hello, who are you?"}]


def make_adapter(base: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights, so that it changes the output."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=4, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_qwen, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {name: make_adapter(tiny_qwen, root / name, seed) for seed, name in enumerate(("a", "b"), 1)}


@pytest.fixture(scope="module")
def engine(tiny_qwen, adapters):
    from swift_core.engines.transformers.engine import TransformersEngine

    eng = TransformersEngine(
        EngineConfig(
            model=str(tiny_qwen), adapters={k: str(v) for k, v in adapters.items()}, max_batch_size=16
        )
    )
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def plain(tiny_qwen):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_qwen).eval()


def prompt_ids(engine, messages=CHAT) -> list[int]:
    from swift_core.datasets.encode import encode_prompt

    return encode_prompt(engine.template, engine.tokenizer, messages)


def plain_greedy(model, ids: list[int], max_new_tokens: int, stop_ids: list[int]) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0],
        )
    new = out[0, len(ids) :].tolist()
    return new[: next((i for i, t in enumerate(new) if t in stop_ids), len(new))]


def greedy(**kwargs) -> GenerationRequest:
    return GenerationRequest(**{"messages": CHAT, "max_tokens": 12, "temperature": 0.0, **kwargs})


def run(coro):
    return asyncio.run(coro)


class CountingGenerate:
    def __init__(self, engine, monkeypatch):
        self.calls: list[int] = []
        original = engine.model.generate

        def counting(*args, **kwargs):
            self.calls.append(kwargs["input_ids"].shape[0])
            return original(*args, **kwargs)

        monkeypatch.setattr(engine.model, "generate", counting)


# -- batching ------------------------------------------------------------------------------------


def test_concurrent_requests_share_one_generate_call(engine, monkeypatch):
    counter = CountingGenerate(engine, monkeypatch)
    requests = [
        greedy(messages=[{"role": "user", "content": "tell me about " + "cats " * i}], max_tokens=4 + i)
        for i in range(6)
    ]
    requests.append(
        greedy(temperature=0.9, top_p=0.8, top_k=20, n=2, seed=None)
    )  # other settings, same batch

    async def together():
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    batched = run(together())
    assert counter.calls == [8]  # 6 greedy rows + 2 sampled choices, one left-padded call
    for r, request in zip(batched, requests):
        assert len(r.choices) == request.n and r.completion_tokens <= request.max_tokens * request.n
    # Left padding changes nothing: each greedy answer equals the same request run alone.
    alone = [run(engine.generate(r)) for r in requests[:6]]
    assert [a.choices[0].token_ids for a in alone] == [b.choices[0].token_ids for b in batched[:6]]
    assert len(counter.calls) == 1 + 6


def test_batches_are_capped_and_split_by_adapter(engine, monkeypatch):
    counter = CountingGenerate(engine, monkeypatch)
    monkeypatch.setattr(engine, "max_batch_size", 4)

    async def burst():
        base = [engine.generate(greedy(max_tokens=3)) for _ in range(6)]
        lora = [engine.generate(greedy(max_tokens=3, adapter="a")) for _ in range(2)]
        return await asyncio.gather(*base, *lora)

    run(burst())
    assert sorted(counter.calls) == [2, 2, 4]  # 6 base requests -> 4 + 2; the adapter's 2 apart


# -- equality with plain transformers / peft -------------------------------------------------------


def test_greedy_output_equals_plain_generate(engine, plain):
    ids = prompt_ids(engine)
    expected = plain_greedy(plain, ids, 12, engine.stop_ids)
    response = run(engine.generate(greedy()))
    choice = response.choices[0]
    assert response.prompt_tokens == len(ids)
    assert choice.token_ids == expected
    assert choice.text == engine.tokenizer.decode(expected, skip_special_tokens=True)


def test_each_adapter_equals_plain_peft_and_they_differ(engine, tiny_qwen, adapters):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = prompt_ids(engine)
    answers = {}
    for name, path in adapters.items():
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen), path).eval()
        expected = plain_greedy(model, ids, 10, engine.stop_ids)
        got = run(engine.generate(greedy(max_tokens=10, adapter=name))).choices[0].token_ids
        assert got == expected, name
        answers[name] = got
    base = run(engine.generate(greedy(max_tokens=10))).choices[0].token_ids
    assert answers["a"] != answers["b"] and base not in (answers["a"], answers["b"])


def test_a_checkpoint_folder_serves_its_base_with_its_adapter(engine, tiny_qwen, adapters, tmp_path):
    from swift_core.engines.transformers.engine import TransformersEngine

    ckpt = tmp_path / "checkpoint-2"
    shutil.copytree(adapters["b"], ckpt)
    (ckpt / "args.json").write_text(
        json.dumps(
            {"model_dir": str(tiny_qwen), "family": "qwen2_5", "template": "qwen2_5", "saves_adapter": True}
        )
    )
    with pytest.raises(SwiftError, match="incomplete"):
        TransformersEngine(EngineConfig(model=str(ckpt)))
    (ckpt / "swift_checkpoint.json").write_text('{"complete": true}')
    served = TransformersEngine(EngineConfig(model=str(ckpt)))
    assert served.template.name == "qwen2_5" and served.adapter_names() == []
    got = run(served.generate(greedy(max_tokens=10))).choices[0].token_ids
    assert got == run(engine.generate(greedy(max_tokens=10, adapter="b"))).choices[0].token_ids
    run(served.close())


# -- stopping ------------------------------------------------------------------------------------


def test_stop_strings_cut_the_text_and_finish_with_stop(engine):
    full = run(engine.generate(greedy(max_tokens=12, adapter="a"))).choices[0]
    assert full.finish_reason == "length" and len(full.text) >= 6
    stop = full.text[3:6]
    expected = full.text[: full.text.find(stop)]
    cut = run(engine.generate(greedy(max_tokens=12, adapter="a", stop=["never-there", stop]))).choices[0]
    assert cut.finish_reason == "stop" and cut.text == expected

    async def streamed():
        return [c async for c in engine.stream(greedy(max_tokens=12, adapter="a", stop=[stop]))]

    chunks = run(streamed())
    assert "".join(c.text for c in chunks) == expected
    assert chunks[-1].finish_reason == "stop" and all(c.finish_reason is None for c in chunks[:-1])


def test_stop_token_finishes_with_stop_and_length_otherwise(engine, monkeypatch):
    first = run(engine.generate(greedy(max_tokens=5))).choices[0]
    assert first.finish_reason == "length" and len(first.token_ids) == 5
    monkeypatch.setattr(engine, "stop_ids", [*engine.stop_ids, first.token_ids[0]])
    response = run(engine.generate(greedy(max_tokens=5)))
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].text == "" and response.choices[0].token_ids == []
    assert response.completion_tokens == 1  # the stop token was generated, not shown


# -- logprobs --------------------------------------------------------------------------------------


def manual_logprobs(model, prompt: list[int], answer: list[int]) -> list[float]:
    with torch.no_grad():
        logits = model(torch.tensor([prompt + answer])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return [lp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer)]


@pytest.mark.parametrize("sampled", [False, True])
def test_logprobs_match_a_manual_forward(engine, plain, sampled):
    request = greedy(max_tokens=8, logprobs=True, top_logprobs=3)
    if sampled:  # raw-distribution logprobs: temperature and top_p do not change them
        request = greedy(max_tokens=8, logprobs=True, top_logprobs=3, temperature=1.3, top_p=0.9, seed=7)
    choice = run(engine.generate(request)).choices[0]
    assert [lp.token_id for lp in choice.logprobs] == choice.token_ids
    expected = manual_logprobs(plain, prompt_ids(engine), choice.token_ids)
    got = [lp.logprob for lp in choice.logprobs]
    assert got == pytest.approx(expected, abs=1e-4)
    assert sum(got) == pytest.approx(sum(expected), abs=1e-3)
    for lp in choice.logprobs:
        assert len(lp.top) == 3 and lp.top[0][1] >= lp.logprob - 1e-6
        assert [v for _, v in lp.top] == sorted((v for _, v in lp.top), reverse=True)
        if not sampled:
            assert lp.top[0][1] == pytest.approx(lp.logprob)  # greedy picks the most likely token


def test_prompt_logprobs_equal_log_softmax_of_a_forward(engine, plain):
    prompts = ["hello world, this is a test", "a", "the quick brown fox jumps over the lazy dog again"]
    requests = [
        GenerationRequest(prompt=p, max_tokens=0, echo=True, logprobs=True, top_logprobs=2) for p in prompts
    ]
    requests.append(GenerationRequest(prompt=[5, 17, 42, 99], max_tokens=1, echo=True, logprobs=True))

    async def together():
        return await asyncio.gather(*(engine.generate(r) for r in requests))

    for request, response in zip(requests, run(together())):
        ids = (
            request.prompt
            if isinstance(request.prompt, list)
            else engine.tokenizer(request.prompt)["input_ids"]
        )
        entries = response.prompt_logprobs
        assert [e.token_id for e in entries] == ids and entries[0].logprob is None
        if len(ids) > 1:
            expected = manual_logprobs(plain, ids[:1], ids[1:])
            assert [e.logprob for e in entries[1:]] == pytest.approx(expected, abs=1e-4)
        assert response.prompt_text is not None
        if request.max_tokens == 0:
            assert response.choices[0].text == "" and response.completion_tokens == 0


# -- sampling ------------------------------------------------------------------------------------


def test_seeded_sampling_repeats_and_n_gives_n_choices(engine):
    request = greedy(temperature=1.0, top_k=50, seed=123, n=3, max_tokens=8, repetition_penalty=1.2)
    one = run(engine.generate(request))
    two = run(engine.generate(request))
    assert [c.index for c in one.choices] == [0, 1, 2]
    assert [c.token_ids for c in one.choices] == [c.token_ids for c in two.choices]
    assert one.completion_tokens == sum(len(c.token_ids) for c in one.choices)


# -- refusals --------------------------------------------------------------------------------------


def test_unsupported_options_are_refused(engine, monkeypatch):
    for bad in (
        greedy(top_logprobs=50, logprobs=True),
        greedy(adapter="nope"),
        greedy(temperature=-1.0),
        greedy(n=0),
        greedy(top_p=0.0),
        GenerationRequest(prompt=[10**9], max_tokens=1),
        GenerationRequest(messages=[{"role": "robot", "content": "hi"}]),
    ):
        with pytest.raises(UnsupportedRequest):
            run(engine.generate(bad))
    monkeypatch.setattr(engine, "capabilities", EngineCapabilities(seed=False))
    with pytest.raises(UnsupportedRequest, match="seed"):
        run(engine.generate(greedy(seed=1)))


def test_a_prompt_longer_than_the_context_is_refused(engine, monkeypatch):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(PromptTooLong, match="2048"):
        run(engine.generate(greedy(messages=long)))
    n = len(prompt_ids(engine))
    monkeypatch.setattr(engine, "max_model_len", n + 3)
    response = run(engine.generate(greedy(max_tokens=100)))  # the answer is cut at the context
    assert response.completion_tokens == 3 and response.choices[0].finish_reason == "length"
    monkeypatch.setattr(engine, "max_model_len", n)
    with pytest.raises(UnsupportedRequest):
        run(engine.generate(greedy(max_tokens=1)))


# -- streaming and cancellation ---------------------------------------------------------------------


def test_concurrent_streams_are_batched_and_assemble_to_the_answer(engine, monkeypatch):
    expected = [run(engine.generate(greedy(max_tokens=10, adapter="b", n=1))).choices[0].text]
    counter = CountingGenerate(engine, monkeypatch)

    async def collect():
        async def one():
            return [c async for c in engine.stream(greedy(max_tokens=10, adapter="b"))]

        return await asyncio.gather(one(), one(), one())

    results = run(collect())
    assert counter.calls == [3]
    for chunks in results:
        assert "".join(c.text for c in chunks) == expected[0]
        assert len(chunks) > 1 and chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 10


def test_cancelled_requests_stop_generating(engine):
    before = engine.stats.cancelled_rows

    async def stream_then_leave():
        agen = engine.stream(greedy(max_tokens=1500))
        got = [await agen.__anext__() for _ in range(2)]
        await agen.aclose()
        return got

    async def generate_then_cancel():
        task = asyncio.ensure_future(engine.generate(greedy(max_tokens=1500)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def wait_idle(started: int):
        for _ in range(200):
            if engine.stats.cancelled_rows > started:
                return
            await asyncio.sleep(0.02)

    for scenario in (stream_then_leave, generate_then_cancel):
        started = engine.stats.cancelled_rows

        async def go(scenario=scenario, started=started):
            await scenario()
            await wait_idle(started)

        run(go())
        assert engine.stats.cancelled_rows == started + 1, scenario.__name__
    assert engine.stats.cancelled_rows == before + 2


def test_a_slow_stream_reader_gets_the_increments_merged(engine):
    expected = run(engine.generate(greedy(max_tokens=40, adapter="b", logprobs=True)))

    async def slow_reader():
        agen = engine.stream(greedy(max_tokens=40, adapter="b", logprobs=True))
        chunks = [await agen.__anext__()]
        await asyncio.sleep(1.0)  # the rest is generated meanwhile
        chunks += [c async for c in agen]
        return chunks

    chunks = run(slow_reader())
    assert len(chunks) <= 3
    assert "".join(c.text for c in chunks) == expected.choices[0].text
    assert [lp.token_id for c in chunks for lp in c.logprobs] == expected.choices[0].token_ids
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 40


def test_two_event_loops_can_use_the_engine_at_once(engine):
    import threading

    results = {}

    def other_loop():
        results["thread"] = asyncio.run(asyncio.wait_for(engine.generate(greedy(max_tokens=200)), 60))

    thread = threading.Thread(target=other_loop)
    thread.start()

    async def main_loop():
        await asyncio.sleep(0.05)
        return await asyncio.wait_for(engine.generate(greedy(max_tokens=20)), 60)

    results["main"] = run(main_loop())
    thread.join(timeout=60)
    assert results["main"].completion_tokens == 20 and results["thread"].completion_tokens == 200
