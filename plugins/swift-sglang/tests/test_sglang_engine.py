"""swift-sglang's engine against a FAKE of sglang's Python API (tests/fake_sglang.py).

Why a fake: SGLang runs only on GPUs (and pip-installing it would pull CUDA builds of torch), so
these CPU tests check the adapter's side of the contract: the `ServerArgs` it starts SGLang with,
the prompt ids it sends (Swift's template rendering), the sampling params (every field set, with
SGLang's meanings), streams in both of SGLang's streaming modes adding up to the whole answer,
stop strings, finish reasons, usage, logprobs and prompt logprobs, adapters by name, seeds (only
with deterministic inference), engine options with did-you-mean, cancellation aborting the
request by rid, refusals, and the OpenAI server on top. The fake generates deterministically from
the ids, so a wrong mapping changes the output and fails a test. The real library is checked by
bench/gpu/sglang_smoke.py on a GPU (greedy output equal to transformers token for token, LoRA,
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
def engine(fake_sglang, models, manager):
    """Two adapters (a peft folder and a Swift checkpoint); SGLang's default streaming mode."""
    from swift_sglang.engine import SglangEngine

    config = EngineConfig(
        model=models["base"],
        adapters={"plain": models["plain"], "ckpt": models["ckpt"]},
        max_model_len=MAX_LEN,
        seed=3,
        extra={"mem_fraction_static": 0.5},
    )
    eng = SglangEngine(config, manager=manager)
    yield eng
    run_async(eng.close())


@pytest.fixture(scope="module")
def incremental(fake_sglang, models, manager):
    """Incremental streaming and deterministic inference (seeds), no adapters."""
    from swift_sglang.engine import SglangEngine

    extra = {"incremental_streaming_output": True, "enable_deterministic_inference": True}
    eng = SglangEngine(EngineConfig(model=models["base"], max_batch_size=4, extra=extra), manager=manager)
    yield eng
    run_async(eng.close())


def _sg(engine):
    return engine._engine


def _expected_greedy(fake, ids: list[int], n: int, penalty: float = 1.0, salt: int = 0) -> list[int]:
    context, out = list(ids), []
    for _ in range(n):
        token = fake.fake_token(context, None, penalty, salt)
        context.append(token)
        out.append(token)
    return out


def test_engine_starts_with_server_args(engine, models):
    args = _sg(engine).server_args
    assert args.model_path == models["base"] and args.tokenizer_path == models["base"]
    assert (args.context_length, args.max_running_requests, args.random_seed) == (MAX_LEN, 16, 3)
    assert args.enable_lora and args.lora_paths == {"plain": models["plain"], "ckpt": models["ckpt"]}
    assert args.mem_fraction_static == 0.5  # from EngineConfig.extra
    assert not args.skip_tokenizer_init
    caps = engine.capabilities
    assert caps.lora and caps.logprobs and caps.prompt_logprobs and caps.multiple_choices
    assert not caps.seed  # no deterministic inference: sampling_seed would be ignored
    assert caps.max_top_logprobs == 20 and engine.max_model_len == MAX_LEN
    assert engine.adapter_names() == ["plain", "ckpt"] and engine.model_name == "base"


def test_prompt_ids_are_swifts_template_rendering(engine, fake):
    from swift_core.datasets.encode import encode_prompt
    from swift_core.models.loading import template_for

    template = template_for("qwen2_5", engine.tokenizer)
    run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=3, temperature=0)))
    assert _sg(engine).requests[-1]["input_ids"] == encode_prompt(template, engine.tokenizer, CHAT)
    run_async(engine.generate(GenerationRequest(prompt="The capital of France", max_tokens=2)))
    assert _sg(engine).requests[-1]["input_ids"] == engine.tokenizer("The capital of France")["input_ids"]


def test_sampling_params_are_all_set(engine, fake):
    request = GenerationRequest(
        messages=CHAT, max_tokens=7, temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1, stop=["zz"]
    )
    run_async(engine.generate(request))
    sent = _sg(engine).requests[-1]
    params = sent["sampling_params"]
    assert sent["missing_sampling_keys"] == []  # none left to the model's generation_config.json
    assert (params["temperature"], params["top_p"], params["top_k"]) == (0.7, 0.9, 40)
    assert params["repetition_penalty"] == 1.1 and params["max_new_tokens"] == 7 and params["n"] == 1
    assert params["stop"] == ["zz"] and params["skip_special_tokens"] is True
    vocab = engine.tokenizer.get_vocab()
    assert sorted(params["stop_token_ids"]) == sorted(vocab[t] for t in ("<|im_end|>", "<|endoftext|>"))
    assert "sampling_seed" not in params and sent["lora_path"] is None and not sent["return_logprob"]
    run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=2, temperature=0.5, top_k=-1)))
    assert _sg(engine).requests[-1]["sampling_params"]["top_k"] == -1


def test_generate_text_usage_and_finish_reasons(engine, fake):
    ids = engine.prompt_ids(GenerationRequest(messages=CHAT))
    response = run_async(
        engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0, repetition_penalty=1.2))
    )
    (choice,) = response.choices
    expected = _expected_greedy(fake, ids, 8, penalty=1.2)
    assert choice.token_ids == expected
    assert choice.text == engine.tokenizer.decode(expected, skip_special_tokens=True)
    assert choice.finish_reason == "length" and choice.logprobs is None
    assert (response.prompt_tokens, response.completion_tokens) == (len(ids), 8)
    assert _sg(engine).requests[-1]["stream"] is False

    fake.EOS_AFTER = 3  # a stop token after 3 tokens: in SGLang's ids and count, not in the text
    stopped = run_async(
        engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0, repetition_penalty=1.2))
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].token_ids[:3] == expected[:3] and stopped.completion_tokens == 4
    assert stopped.choices[0].text == engine.tokenizer.decode(expected[:3], skip_special_tokens=True)


@pytest.mark.parametrize("which", ["engine", "incremental"])
def test_stream_adds_up_to_generate_in_both_streaming_modes(request, fake, which):
    eng = request.getfixturevalue(which)
    req = GenerationRequest(messages=CHAT, max_tokens=10, temperature=0, logprobs=True)
    chunks = collect(eng, req)
    whole = run_async(eng.generate(req)).choices[0]
    assert _sg(eng).server_args.incremental_streaming_output is (which == "incremental")
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == whole.text
    assert [lp.token_id for c in chunks for lp in c.logprobs] == whole.token_ids
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 10


@pytest.mark.parametrize("which", ["engine", "incremental"])
def test_stop_strings_are_trimmed_and_never_streamed(request, fake, which):
    eng = request.getfixturevalue(which)
    full = (
        run_async(eng.generate(GenerationRequest(messages=CHAT, max_tokens=16, temperature=0)))
        .choices[0]
        .text
    )
    assert len(full) > 12
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    req = GenerationRequest(messages=CHAT, max_tokens=16, temperature=0, stop=[stop])
    cut = run_async(eng.generate(req)).choices[0]
    assert cut.finish_reason == "stop" and cut.text == full[: full.index(stop)]
    chunks = collect(eng, req)
    assert "".join(c.text for c in chunks) == cut.text
    assert chunks[-1].finish_reason == "stop"


def test_n_choices_are_separate_requests(engine, fake):
    first = run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=6, temperature=1.0, n=3)))
    sent = _sg(engine).requests[-3:]
    assert len({r["rid"] for r in sent}) == 3 and all(r["sampling_params"]["n"] == 1 for r in sent)
    assert [c.index for c in first.choices] == [0, 1, 2] and first.completion_tokens == 18
    chunks = collect(engine, GenerationRequest(messages=CHAT, max_tokens=4, temperature=1.0, n=2))
    for index in (0, 1):
        assert [c for c in chunks if c.index == index][-1].finish_reason == "length"


def test_seeds_need_deterministic_inference(engine, incremental, fake):
    with pytest.raises(UnsupportedRequest, match="per-request seed"):
        run_async(engine.generate(GenerationRequest(messages=CHAT, seed=1)))
    assert incremental.capabilities.seed
    request = GenerationRequest(messages=CHAT, max_tokens=6, temperature=1.0, seed=11, n=3)
    first = run_async(incremental.generate(request))
    assert sorted(r["sampling_params"]["sampling_seed"] for r in _sg(incremental).requests[-3:]) == [
        11,
        12,
        13,
    ]
    again = run_async(incremental.generate(request))
    assert [c.token_ids for c in first.choices] == [c.token_ids for c in again.choices]
    assert len({tuple(c.token_ids) for c in first.choices}) == 3


def test_logprobs_and_prompt_logprobs(engine, fake):
    request = GenerationRequest(messages=CHAT, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2)
    (choice,) = run_async(engine.generate(request)).choices
    sent = _sg(engine).requests[-1]
    assert (sent["return_logprob"], sent["top_logprobs_num"], sent["logprob_start_len"]) == (True, 2, -1)
    assert [lp.token_id for lp in choice.logprobs] == choice.token_ids
    for entry in choice.logprobs:
        assert entry.logprob == pytest.approx(fake.fake_logprob(entry.token_id))
        assert entry.token == engine.tokenizer.decode([entry.token_id])
        assert len(entry.top) == 2 and entry.top[0] == (entry.token, entry.logprob)

    ids = engine.prompt_ids(GenerationRequest(messages=CHAT))
    echo = GenerationRequest(prompt=ids, max_tokens=0, echo=True, logprobs=True, top_logprobs=1)
    response = run_async(engine.generate(echo))
    sent = _sg(engine).requests[-1]
    assert sent["logprob_start_len"] == 0 and sent["sampling_params"]["max_new_tokens"] == 0
    assert response.completion_tokens == 0 and [c.text for c in response.choices] == [""]
    assert response.prompt_text == engine.tokenizer.decode(ids)
    prompt = response.prompt_logprobs
    assert [p.token_id for p in prompt] == ids and prompt[0].logprob is None and prompt[0].top == []
    assert [p.logprob for p in prompt[1:]] == pytest.approx([fake.fake_logprob(t) for t in ids[1:]])
    assert all(len(p.top) == 1 for p in prompt[1:])
    calls = len(_sg(engine).requests)
    plain_echo = run_async(engine.generate(GenerationRequest(prompt="The capital", max_tokens=0, echo=True)))
    assert plain_echo.prompt_text == "The capital" and len(_sg(engine).requests) == calls  # nothing to ask


def test_adapters_are_chosen_by_name(engine, fake):
    ids = engine.prompt_ids(GenerationRequest(messages=CHAT))
    answers = {}
    for adapter in (None, "plain", "ckpt"):
        request = GenerationRequest(messages=CHAT, max_tokens=6, temperature=0, adapter=adapter)
        answers[adapter] = run_async(engine.generate(request)).choices[0].token_ids
        assert _sg(engine).requests[-1]["lora_path"] == adapter
        assert answers[adapter] == _expected_greedy(fake, ids, 6, salt=sum(map(ord, adapter or "")))
    assert len({tuple(a) for a in answers.values()}) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"extra": {"mem_fraction_statc": 0.5}},
            "'mem_fraction_statc' \\(did you mean 'mem_fraction_static'",
        ),
        ({"extra": {"skip_tokenizer_init": True}}, "skip_tokenizer_init is not supported"),
        ({"torch_dtype": "float8"}, "invalid SGLang engine options: invalid dtype 'float8'"),
        ({"adapters": {"x": "/nonexistent"}}, "adapter 'x': /nonexistent is not a folder"),
    ],
)
def test_engine_options_are_checked(fake, models, manager, kwargs, message):
    from swift_sglang.engine import SglangEngine

    with pytest.raises(SwiftError, match=message):
        SglangEngine(EngineConfig(model=models["base"], **kwargs), manager=manager)


def test_a_swift_checkpoint_as_the_model_serves_its_base_with_the_adapter(fake, models, manager):
    """`swift infer --adapters CHECKPOINT`: the base from args.json (or --model), the adapter on."""
    from swift_sglang.engine import SglangEngine

    for extra in ({}, {"base_model": models["base"]}):
        eng = SglangEngine(EngineConfig(model=models["ckpt"], extra=extra), manager=manager)
        try:
            args = _sg(eng).server_args
            assert args.model_path == models["base"] and args.lora_paths == {"swift_default": models["ckpt"]}
            assert eng.adapter_names() == [] and not eng.capabilities.lora
            run_async(eng.generate(GenerationRequest(messages=CHAT, max_tokens=2)))
            assert _sg(eng).requests[-1]["lora_path"] == "swift_default"
        finally:
            eng.shutdown()


def test_device_and_dtype_reach_server_args(fake, models, manager):
    from swift_sglang.engine import SglangEngine

    eng = SglangEngine(
        EngineConfig(model=models["base"], device="cuda:1", torch_dtype="bfloat16", served_model_name="m"),
        manager=manager,
    )
    try:
        args = _sg(eng).server_args
        assert (args.device, args.base_gpu_id, args.dtype, args.served_model_name) == (
            "cuda",
            1,
            "bfloat16",
            "m",
        )
        assert args.lora_paths is None and not args.enable_lora and eng.model_name == "m"
    finally:
        eng.shutdown()
    assert _sg(eng).shut_down
    with pytest.raises(SwiftError, match="shut down"):
        run_async(eng.generate(GenerationRequest(messages=CHAT)))


def test_cancelled_requests_are_aborted_by_rid(engine, fake):
    fake.STEP_DELAY = 0.02
    request = GenerationRequest(prompt=[5, 6, 7, 8], max_tokens=200, temperature=0)

    async def take_three():
        got = []
        async for chunk in engine.stream(request):
            got.append(chunk)
            if len(got) == 3:
                break
        return got

    assert len(run_async(take_three())) == 3
    manager = _sg(engine).tokenizer_manager
    rid = _sg(engine).requests[-1]["rid"]
    assert wait_for(lambda: rid in manager.aborted and not manager.rid_to_state)

    async def cancel_generate():
        task = asyncio.create_task(engine.generate(request))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(cancel_generate())
    rid = _sg(engine).requests[-1]["rid"]
    assert wait_for(lambda: rid in manager.aborted and not manager.rid_to_state)
    fake.STEP_DELAY = 0.0
    assert run_async(engine.generate(GenerationRequest(messages=CHAT, max_tokens=2))).choices[0].token_ids


@pytest.mark.parametrize(
    ("request_kwargs", "error", "message"),
    [
        ({"top_logprobs": 21, "logprobs": True}, UnsupportedRequest, "top_logprobs is at most 20"),
        ({"repetition_penalty": 2.5}, UnsupportedRequest, "repetition_penalty must be in \\(0, 2.0\\]"),
        ({"temperature": -1.0}, UnsupportedRequest, "temperature"),
        ({"top_p": 0.0}, UnsupportedRequest, "top_p"),
        ({"adapter": "nope"}, UnsupportedRequest, "unknown adapter 'nope'; served: plain, ckpt"),
        ({"prompt": "x"}, UnsupportedRequest, "either messages"),
        ({"prompt": list(range(5, 5 + MAX_LEN)), "messages": None}, PromptTooLong, f"is {MAX_LEN} tokens"),
        ({"prompt": [10**7], "messages": None}, UnsupportedRequest, "prompt token ids"),
    ],
)
def test_unsupported_requests_are_refused(engine, fake, request_kwargs, error, message):
    request = GenerationRequest(**{"messages": CHAT, **request_kwargs})
    sent = len(_sg(engine).requests)
    with pytest.raises(error, match=message):
        run_async(engine.generate(request))

    async def first_chunk():
        async for chunk in engine.stream(request):
            return chunk

    with pytest.raises(error):
        run_async(first_chunk())
    assert len(_sg(engine).requests) == sent  # nothing reached SGLang


def test_sglang_refusals_become_unsupported_requests(engine, fake, monkeypatch):
    """SGLang's own ValueError (HTTP 400 in its server) is the user's error, not the server's."""
    monkeypatch.setattr(engine, "max_model_len", MAX_LEN + 10)
    request = GenerationRequest(prompt=list(range(5, 5 + MAX_LEN)), max_tokens=1)
    with pytest.raises(UnsupportedRequest, match="longer than the model's context length"):
        run_async(engine.generate(request))

    async def first_chunk():
        async for chunk in engine.stream(request):
            return chunk

    with pytest.raises(UnsupportedRequest, match="longer than the model's context length"):
        run_async(first_chunk())


def test_openai_server_over_the_engine(engine, fake):
    from fastapi.testclient import TestClient

    from swift_core.serve.app import ServeSettings, create_app

    direct = run_async(
        engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0, adapter="plain"))
    )
    body = {"model": "plain", "messages": CHAT, "max_tokens": 8, "temperature": 0}
    with TestClient(create_app(engine, ServeSettings(served_model_name="tiny"))) as client:
        models = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert models == ["tiny", "plain", "ckpt"]
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["choices"][0]["message"]["content"] == direct.choices[0].text
        assert (
            data["usage"]["completion_tokens"] == 8 and data["usage"]["prompt_tokens"] == direct.prompt_tokens
        )
        text, finishes = "", []
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", "/v1/chat/completions", json=stream_body) as streamed:
            events = [line[6:] for line in streamed.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        for event in events[:-1]:
            for choice in json.loads(event)["choices"]:
                text += choice["delta"].get("content") or ""
                if choice["finish_reason"]:
                    finishes.append(choice["finish_reason"])
        assert text == direct.choices[0].text and finishes == ["length"]
        assert json.loads(events[-2])["usage"]["completion_tokens"] == 8
        assert client.post("/v1/chat/completions", json={**body, "seed": 1}).status_code == 400


@pytest.mark.parametrize(
    "extra",
    [{}, {"incremental_streaming_output": True, "enable_deterministic_inference": True}],
    ids=["default", "incremental-deterministic"],
)
def test_the_engine_keeps_the_engine_contract(fake, models, manager, extra):
    """The battery every engine passes (swift_core.testing.check_engine), in both streaming modes;
    built directly, since the descriptor's requirement check would refuse the fake library."""
    from swift_sglang.engine import SglangEngine

    adapters = {"plain": models["plain"], "ckpt": models["ckpt"]}
    config = EngineConfig(model=models["base"], adapters=adapters, max_model_len=MAX_LEN, extra=extra)
    report = check_engine(
        "sglang", manager, config=config, factory=lambda config: SglangEngine(config, manager=manager)
    )
    # Seeds count only with deterministic inference.
    assert [name for name, _ in report.skipped] == (
        [] if extra else ["a seeded sampled request gives the same answer twice, and streams it"]
    )
