"""swift-lmdeploy's engine against a FAKE of lmdeploy's Python API (tests/fake_lmdeploy.py).

Why a fake: LMDeploy runs only on CUDA GPUs (and pip-installing it would pull CUDA builds of
torch), so these CPU tests check the adapter's side of the contract: the prompt ids it sends are
Swift's template rendering, sampling options reach LMDeploy's GenerationConfig with LMDeploy's
meanings, increments add up, finish reasons, usage, logprobs, adapters by name (PyTorch backend)
and their refusal on TurboMind, engine options with did-you-mean, cancellation stopping the
session, refusals, and the OpenAI server on top. The fake generates deterministically from the
ids, so a wrong mapping changes the output and fails a test. The real library is checked by
bench/gpu/lmdeploy_smoke.py on a GPU (greedy output equal to transformers token for token, LoRA,
streaming, the server).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from swift_core.engines.protocol import EngineConfig, GenerationRequest, PromptTooLong, UnsupportedRequest
from swift_core.errors import SwiftError
from swift_core.testing import check_engine, collect, run_async, wait_for

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
MAX_LEN = 256


@pytest.fixture(scope="module")
def engine(fake_lmdeploy, models, manager):
    """PyTorch backend with two adapters (a peft folder and a Swift checkpoint)."""
    from swift_lmdeploy.engine import LmdeployEngine

    config = EngineConfig(
        model=models["base"],
        adapters={"plain": models["plain"], "ckpt": models["ckpt"]},
        max_model_len=MAX_LEN,
        extra={"cache_max_entry_count": 0.5},
    )
    eng = LmdeployEngine(config, manager=manager)
    yield eng
    run_async(eng.close())


@pytest.fixture(scope="module")
def turbomind(fake_lmdeploy, models, manager):
    from swift_lmdeploy.engine import LmdeployEngine

    eng = LmdeployEngine(EngineConfig(model=models["base"], max_batch_size=4), manager=manager)
    yield eng
    run_async(eng.close())


def _fake_engine(engine):
    return engine._engine


def _expected_greedy(fake, ids: list[int], n: int, penalty: float = 1.0) -> list[int]:
    context, out = list(ids), []
    for _ in range(n):
        token = fake.fake_token(context, None, penalty)
        context.append(token)
        out.append(token)
    return out


def test_engine_starts_the_pytorch_backend_with_the_adapters(engine, models):
    fake = _fake_engine(engine)
    assert fake.backend == "pytorch" and engine.backend == "pytorch"
    config = fake.backend_config
    assert type(config).__name__ == "PytorchEngineConfig"
    assert config.adapters == {"plain": models["plain"], "ckpt": models["ckpt"]}
    assert config.session_len == MAX_LEN and config.max_batch_size == 16
    assert config.cache_max_entry_count == 0.5  # from EngineConfig.extra
    assert fake.model_path == models["base"]
    caps = engine.capabilities
    assert caps.lora and caps.logprobs and caps.streaming and caps.multiple_choices and caps.seed
    assert not caps.prompt_logprobs and caps.max_top_logprobs == 20
    assert engine.adapter_names() == ["plain", "ckpt"]
    assert engine.max_model_len == MAX_LEN and engine.model_name == "base"


def test_prompt_ids_are_swifts_template_rendering(engine, fake):
    from swift_core.datasets.encode import encode_prompt
    from swift_core.models.loading import template_for

    template = template_for("qwen2_5", engine.tokenizer)
    expected = encode_prompt(template, engine.tokenizer, CHAT)
    run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=3, temperature=0)))
    sent = _fake_engine(engine).requests[-1]
    assert sent["input_ids"] == expected
    assert sent["do_preprocess"] is False  # LMDeploy's own chat template never touches the prompt
    assert sent["sequence_start"] and sent["sequence_end"]
    # a text prompt goes through the tokenizer, ids go as they are
    run_async(engine.generate(GenerationRequest(prompt="The capital of France", max_tokens=2)))
    assert (
        _fake_engine(engine).requests[-1]["input_ids"]
        == engine.tokenizer("The capital of France")["input_ids"]
    )
    run_async(engine.generate(GenerationRequest(prompt=[5, 6, 7], max_tokens=2)))
    assert _fake_engine(engine).requests[-1]["input_ids"] == [5, 6, 7]


def test_sampling_options_reach_generation_config(engine, fake):
    request = GenerationRequest(
        messages=CHAT, max_tokens=7, temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1, seed=5
    )
    run_async(engine.generate(request))
    config = _fake_engine(engine).requests[-1]["gen_config"]
    assert (config.do_sample, config.temperature, config.top_p, config.top_k) == (True, 0.7, 0.9, 40)
    assert config.repetition_penalty == 1.1 and config.random_seed == 5 and config.max_new_tokens == 7
    vocab = engine.tokenizer.get_vocab()
    assert sorted(config.stop_token_ids) == sorted(vocab[t] for t in ("<|im_end|>", "<|endoftext|>"))
    assert config.logprobs is None and config.n == 1 and config.skip_special_tokens
    assert config.stop_words is None  # stop strings are cut by the adapter, not by token
    run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=2, temperature=0.5, top_k=-1)))
    assert _fake_engine(engine).requests[-1]["gen_config"].top_k == 0  # 0: no top-k in LMDeploy


def test_greedy_keeps_the_repetition_penalty(engine, fake):
    """LMDeploy drops repetition_penalty when do_sample=False; greedy is sent as top_k=1 instead."""
    ids = engine.prompt_ids(GenerationRequest(messages=CHAT))
    plain = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=6, temperature=0)))
    penalised = run_async(
        engine.generate(GenerationRequest(messages=CHAT, max_tokens=6, temperature=0, repetition_penalty=1.3))
    )
    config = _fake_engine(engine).requests[-1]["gen_config"]
    assert config.top_k == 1 and config.repetition_penalty == 1.3
    assert plain.choices[0].token_ids == _expected_greedy(fake, ids, 6)
    assert penalised.choices[0].token_ids == _expected_greedy(fake, ids, 6, penalty=1.3)
    assert plain.choices[0].token_ids != penalised.choices[0].token_ids


def test_generate_text_usage_and_finish_reasons(engine, fake):
    ids = engine.prompt_ids(GenerationRequest(messages=CHAT))
    response = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0)))
    (choice,) = response.choices
    expected = _expected_greedy(fake, ids, 8)
    assert choice.token_ids == expected
    assert choice.text == engine.tokenizer.decode(expected, skip_special_tokens=True)
    assert choice.finish_reason == "length" and choice.logprobs is None
    assert (response.prompt_tokens, response.completion_tokens) == (len(ids), 8)
    assert _fake_engine(engine).requests[-1]["stream_response"] is False

    fake.EOS_AFTER = 3  # the model emits a stop token after 3 tokens: not part of the answer
    stopped = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0)))
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].token_ids == expected[:3] and stopped.completion_tokens == 3


def test_stream_adds_up_to_generate(engine, fake):
    request = GenerationRequest(messages=CHAT, max_tokens=10, temperature=0, logprobs=True)
    chunks = collect(engine, request)
    whole = run_async(engine.generate(request)).choices[0]
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == whole.text
    assert [lp.token_id for c in chunks for lp in c.logprobs] == whole.token_ids
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 10
    assert all(c.prompt_tokens == len(engine.prompt_ids(request)) for c in chunks)


def test_stop_strings_cut_the_text_and_stop_the_session(engine, fake):
    full = (
        run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=16, temperature=0)))
        .choices[0]
        .text
    )
    assert len(full) > 12
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    request = GenerationRequest(messages=CHAT, max_tokens=16, temperature=0, stop=[stop])
    cut = run_async(engine.generate(request)).choices[0]
    assert cut.finish_reason == "stop" and cut.text == full[: full.index(stop)]
    session = _fake_engine(engine).requests[-1]["session_id"]
    assert wait_for(lambda: session in _fake_engine(engine).stopped and not _fake_engine(engine).running)
    chunks = collect(engine, request)
    assert "".join(c.text for c in chunks) == cut.text  # the held-back tail never leaks
    assert chunks[-1].finish_reason == "stop"


def test_n_choices_are_sessions_with_their_own_seeds(engine, fake):
    request = GenerationRequest(messages=CHAT, max_tokens=6, temperature=1.0, seed=11, n=3)
    first = run_async(engine.generate(request))
    seeds = sorted(r["gen_config"].random_seed for r in _fake_engine(engine).requests[-3:])
    assert seeds == [11, 12, 13]
    again = run_async(engine.generate(request))
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert [c.token_ids for c in first.choices] == [c.token_ids for c in again.choices]
    assert len({tuple(c.token_ids) for c in first.choices}) == 3
    assert first.completion_tokens == 18
    chunks = collect(engine, GenerationRequest(messages=CHAT, max_tokens=6, temperature=1.0, seed=11, n=2))
    for index in (0, 1):
        mine = [c for c in chunks if c.index == index]
        assert "".join(c.text for c in mine) == first.choices[index].text
        assert mine[-1].finish_reason == "length"


def test_logprobs_and_top_logprobs(engine, fake):
    request = GenerationRequest(messages=CHAT, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2)
    (choice,) = run_async(engine.generate(request)).choices
    assert _fake_engine(engine).requests[-1]["gen_config"].logprobs == 2
    assert [lp.token_id for lp in choice.logprobs] == choice.token_ids
    for entry in choice.logprobs:
        assert entry.logprob == pytest.approx(fake.fake_logprob(entry.token_id))
        assert entry.token == engine.tokenizer.decode([entry.token_id])
        assert len(entry.top) == 2 and entry.top[0] == (entry.token, entry.logprob)
        assert entry.top[0][1] > entry.top[1][1]
    only = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=2, logprobs=True))).choices[
        0
    ]
    assert _fake_engine(engine).requests[-1]["gen_config"].logprobs == 1
    assert [lp.top for lp in only.logprobs] == [[], []]


def test_adapters_are_chosen_by_name(engine, fake):
    answers = {}
    for adapter in (None, "plain", "ckpt"):
        request = GenerationRequest(messages=CHAT, max_tokens=6, temperature=0, adapter=adapter)
        answers[adapter] = run_async(engine.generate(request)).choices[0].token_ids
        assert _fake_engine(engine).requests[-1]["adapter_name"] == adapter
    assert len({tuple(a) for a in answers.values()}) == 3


def test_turbomind_serves_no_adapters(turbomind, models, manager, fake):
    from swift_lmdeploy.engine import LmdeployEngine

    assert turbomind.backend == "turbomind" and not turbomind.capabilities.lora
    assert type(_fake_engine(turbomind).backend_config).__name__ == "TurbomindEngineConfig"
    assert _fake_engine(turbomind).backend_config.max_batch_size == 4
    with pytest.raises(UnsupportedRequest, match="turbomind backend serves no LoRA adapters"):
        run_async(turbomind.generate(GenerationRequest(messages=CHAT, adapter="plain")))
    with pytest.raises(SwiftError, match="TurboMind backend serves no LoRA adapters"):
        LmdeployEngine(
            EngineConfig(
                model=models["base"], adapters={"plain": models["plain"]}, extra={"backend": "turbomind"}
            ),
            manager=manager,
        )
    assert (
        run_async(turbomind.generate(GenerationRequest(messages=CHAT, max_tokens=3, temperature=0)))
        .choices[0]
        .text
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"extra": {"cache_max_entry_cont": 0.5}},
            "'cache_max_entry_cont' \\(did you mean 'cache_max_entry_count'",
        ),
        (
            {"extra": {"eager_mode": True}},
            "'eager_mode' \\(an option of PytorchEngineConfig: choose its backend",
        ),
        ({"extra": {"backend": "pytorc"}}, "backend 'pytorc' \\(did you mean 'pytorch'"),
        ({"extra": {"cache_max_entry_count": 1.5}}, "invalid LMDeploy engine options.*cache_max_entry_count"),
        ({"torch_dtype": "float32"}, "--torch_dtype float32: LMDeploy runs float16 or bfloat16"),
        ({"device": "cpu"}, "--device cpu: LMDeploy runs on CUDA GPUs"),
        ({"adapters": {"x": "/nonexistent"}}, "adapter 'x': /nonexistent is not a folder"),
    ],
)
def test_engine_options_are_checked_before_start(fake, models, manager, kwargs, message):
    from swift_lmdeploy.engine import LmdeployEngine

    started = len(fake.ENGINES)
    with pytest.raises(SwiftError, match=message):
        LmdeployEngine(EngineConfig(model=models["base"], **kwargs), manager=manager)
    assert len(fake.ENGINES) == started  # refused before lmdeploy.pipeline ran


def test_dora_and_other_tuners_are_refused(fake, models, manager):
    from swift_lmdeploy.engine import LmdeployEngine

    for name, config in (("dora", {"peft_type": "LORA", "use_dora": True}), ("ia3", {"peft_type": "IA3"})):
        folder = models["root"] / name
        folder.mkdir(exist_ok=True)
        (folder / "adapter_config.json").write_text(json.dumps(config))
        with pytest.raises(SwiftError, match="serves plain LoRA adapters.*merge_lora"):
            LmdeployEngine(EngineConfig(model=models["base"], adapters={name: str(folder)}), manager=manager)


def test_a_swift_checkpoint_as_the_model_serves_its_base_with_the_adapter(fake, models, manager):
    """`swift infer --adapters CHECKPOINT`: the base from args.json (or --model), the adapter on."""
    from swift_lmdeploy.engine import LmdeployEngine

    for extra in ({}, {"base_model": models["base"]}):
        eng = LmdeployEngine(EngineConfig(model=models["ckpt"], extra=extra), manager=manager)
        try:
            lm = _fake_engine(eng)
            assert eng.backend == "pytorch" and lm.model_path == models["base"]
            assert lm.backend_config.adapters == {"swift_default": models["ckpt"]}
            assert eng.adapter_names() == [] and not eng.capabilities.lora
            run_async(eng.generate(GenerationRequest(messages=CHAT, max_tokens=2)))
            assert lm.requests[-1]["adapter_name"] == "swift_default"
        finally:
            run_async(eng.close())
    plain = LmdeployEngine(
        EngineConfig(model=models["base"], extra={"base_model": "ignored"}), manager=manager
    )
    run_async(plain.close())  # base_model is Swift's key: never an unknown LMDeploy option


def test_ascend_device_selects_the_pytorch_device_type(fake, models, manager):
    from swift_lmdeploy.engine import LmdeployEngine

    eng = LmdeployEngine(
        EngineConfig(
            model=models["base"], device="npu", torch_dtype="bfloat16", extra={"backend": "pytorch"}
        ),
        manager=manager,
    )
    try:
        config = _fake_engine(eng).backend_config
        assert (config.device_type, config.dtype) == ("ascend", "bfloat16")
    finally:
        run_async(eng.close())
    assert _fake_engine(eng).closed


def test_cancelled_requests_stop_the_session(engine, fake):
    fake.STEP_DELAY = 0.02
    request = GenerationRequest(prompt=[5, 6, 7, 8], max_tokens=200, temperature=0)

    async def take_three():
        got = []
        async for chunk in engine.stream(request):
            got.append(chunk)
            if len(got) == 3:
                break  # closing the stream stops the session
        return got

    assert len(run_async(take_three())) == 3
    lm = _fake_engine(engine)
    session = lm.requests[-1]["session_id"]
    assert wait_for(lambda: session in lm.stopped and session in lm.cancelled and not lm.running)

    async def cancel_generate():
        task = asyncio.create_task(engine.generate(request))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(cancel_generate())
    session = lm.requests[-1]["session_id"]
    assert wait_for(lambda: session in lm.stopped and session in lm.cancelled and not lm.running)
    fake.STEP_DELAY = 0.0
    assert run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=2))).choices[0].token_ids


@pytest.mark.parametrize(
    ("request_kwargs", "error", "message"),
    [
        ({"top_logprobs": 21, "logprobs": True}, UnsupportedRequest, "top_logprobs is at most 20"),
        (
            {"echo": True, "logprobs": True, "prompt": "x", "messages": None},
            UnsupportedRequest,
            "prompt logprobs",
        ),
        ({"temperature": 2.5}, UnsupportedRequest, "temperature must be in \\[0, 2.0\\]"),
        ({"top_p": 0.0}, UnsupportedRequest, "top_p"),
        ({"adapter": "nope"}, UnsupportedRequest, "unknown adapter 'nope'; served: plain, ckpt"),
        ({"prompt": "x"}, UnsupportedRequest, "either messages"),
        ({"prompt": list(range(5, 5 + MAX_LEN)), "messages": None}, PromptTooLong, f"is {MAX_LEN} tokens"),
        ({"prompt": [10**7], "messages": None}, UnsupportedRequest, "prompt token ids"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, UnsupportedRequest, "role"),
    ],
)
def test_unsupported_requests_are_refused(engine, fake, request_kwargs, error, message):
    request = GenerationRequest(**{"messages": CHAT, **request_kwargs})
    sent = len(_fake_engine(engine).requests)
    with pytest.raises(error, match=message):
        run_async(engine.generate(request))

    async def first_chunk():
        async for chunk in engine.stream(request):
            return chunk

    with pytest.raises(error):
        run_async(first_chunk())
    assert len(_fake_engine(engine).requests) == sent  # nothing reached LMDeploy


def test_echo_without_generating(engine, fake):
    sent = len(_fake_engine(engine).requests)
    response = run_async(
        engine.generate(GenerationRequest(prompt="The capital", max_tokens=0, echo=True, n=2))
    )
    assert [(c.text, c.finish_reason) for c in response.choices] == [("", "length"), ("", "length")]
    assert response.prompt_text == "The capital" and response.completion_tokens == 0
    assert len(_fake_engine(engine).requests) == sent


def test_openai_server_over_the_engine(engine, fake):
    from fastapi.testclient import TestClient

    from swift_core.serve.app import ServeSettings, create_app

    direct = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0)))
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 8, "temperature": 0}
    with TestClient(create_app(engine, ServeSettings(served_model_name="tiny"))) as client:
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["choices"][0]["message"]["content"] == direct.choices[0].text
        assert data["choices"][0]["finish_reason"] == "length"
        assert data["usage"] == {
            "prompt_tokens": direct.prompt_tokens,
            "completion_tokens": 8,
            "total_tokens": direct.prompt_tokens + 8,
        }
        text, finishes = "", []
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", "/v1/chat/completions", json=stream_body) as streamed:
            events = [line[6:] for line in streamed.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        for event in events[:-1]:
            chunk = json.loads(event)
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                if choice["finish_reason"]:
                    finishes.append(choice["finish_reason"])
        assert text == direct.choices[0].text and finishes == ["length"]
        assert json.loads(events[-2])["usage"]["completion_tokens"] == 8
        refused = client.post("/v1/chat/completions", json={**body, "temperature": 3})
        assert refused.status_code == 400


@pytest.mark.parametrize("backend", ["pytorch", "turbomind"])
def test_the_engine_keeps_the_engine_contract(fake, models, manager, backend):
    """The battery every engine passes (swift_core.testing.check_engine), on both backends; built
    directly, since the descriptor's requirement check would refuse the fake library."""
    from swift_lmdeploy.engine import LmdeployEngine

    adapters = {"plain": models["plain"], "ckpt": models["ckpt"]} if backend == "pytorch" else {}
    config = EngineConfig(
        model=models["base"], adapters=adapters, max_model_len=MAX_LEN, extra={"backend": backend}
    )
    report = check_engine(
        "lmdeploy", manager, config=config, factory=lambda config: LmdeployEngine(config, manager=manager)
    )
    assert not report.skipped  # LMDeploy declares seeds, n > 1 and logprobs: every clause ran
