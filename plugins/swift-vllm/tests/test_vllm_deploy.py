"""`swift deploy --engine vllm` (and `swift infer --engine vllm --port`) as a user runs it: a real
subprocess with vLLM's engine-core and worker processes behind Swift's OpenAI-compatible server,
driven by the official openai SDK and raw httpx.

What the in-process engine tests (test_vllm_engine.py) cannot see is checked here: the CLI wiring
of the engine plugin, the HTTP shapes of vLLM's answers (chat, streaming with usage, completions
with text or token ids, echo + prompt logprobs as lm-evaluation-harness asks for them), adapter
routing by model name, concurrency across the server's and vLLM's event loops, error statuses, and
that SIGTERM lets an in-flight stream finish, exits 0 and leaves no vLLM process behind.

Answers are compared with transformers (and peft) greedy decoding of the same prompt ids, with a
repetition penalty so that a random model's answer is a varied sequence and a wrong token shows.

One `swift deploy` serves the module (start-up ~20 s on 2 cores); `swift infer --port` starts once
more at the end. Run in the vLLM environment: `make test-vllm`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

import httpx  # noqa: E402
import openai  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from swift_core.plugins import PluginManager, PluginSource, builtin_sources  # noqa: E402
from swift_core.policy import Policy  # noqa: E402

KEY = "sk-vllm-test"
BASE = "base"
ADAPTER = "lora"
MAX_LEN = 1024
PENALTY = 2.0  # a random model's greedy answer repeats one token without it
CHAT = [{"role": "user", "content": "What is the capital of France?"}]
START_TIMEOUT_S = 180


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


# --- the server process ---------------------------------------------------------------------------


@dataclass
class SwiftServer:
    """A `swift ...` subprocess serving HTTP; its output goes to files (vLLM logs a lot on stderr,
    and a pipe nobody reads would block the server once full)."""

    proc: subprocess.Popen
    log_dir: Path
    url: str = ""
    children: list[psutil.Process] = field(default_factory=list)

    def logs(self) -> str:
        out = (self.log_dir / "stdout.txt").read_text(errors="replace")
        err = (self.log_dir / "stderr.txt").read_text(errors="replace")
        return f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-6000:]}"

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, as a process manager stops it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Last resort in a finalizer: the server and every process it started."""
        procs = list(self.children)
        if self.proc.poll() is None:
            procs.insert(0, psutil.Process(self.proc.pid))
        for proc in procs:
            with contextlib.suppress(psutil.Error):  # gone already (psutil also guards PID reuse)
                proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=30)

    def leftover_children(self, timeout: float = 20) -> list[tuple[int, str]]:
        """Processes the server started that are still running (zombies count as gone)."""
        _, alive = psutil.wait_procs(self.children, timeout=timeout)
        left = []
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append((proc.pid, proc.name()))
        return left


def start_swift(command: str, args: list[str], log_dir: Path) -> SwiftServer:
    """`swift COMMAND ARGS --port 0`, waited for until its ready line and GET /health answer."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SWIFT_POLICY", "SWIFT_DISABLE_PLUGINS")}
    env.setdefault("OMP_NUM_THREADS", "1")
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swift_core", command, *args, "--port", "0", "--log_level", "warning"],
            stdout=out,
            stderr=err,
            env=env,
        )
    server = SwiftServer(proc, log_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not server.url:
            if proc.poll() is not None:
                pytest.fail(
                    f"swift {command} exited with {proc.returncode} before it was ready\n{server.logs()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"swift {command} was not ready after {START_TIMEOUT_S}s\n{server.logs()}")
            for line in (log_dir / "stdout.txt").read_text().splitlines():
                if line.startswith("ready on "):
                    server.url = line.split()[-1]
            time.sleep(0.2)
        assert httpx.get(f"{server.url}/health", timeout=10).json() == {"status": "ok"}
        server.children = psutil.Process(proc.pid).children(recursive=True)
        assert any("EngineCore" in _name(p) for p in server.children), [_name(p) for p in server.children]
    except BaseException:
        server.kill()
        raise
    return server


def _name(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return proc.name() + " " + " ".join(proc.cmdline())
    return ""


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Any]:
    from swift_core.models.tiny import build_tiny_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vllm-deploy")
    manager = _manager()
    # "small": head size 32 (vLLM's CPU attention has no kernel for the tiny size's 16)
    base = build_tiny_model(root / BASE, "qwen2_5", size="small", manager=manager)
    _make_lora(str(base), str(root / "lora"), seed=1)
    return {"base": str(base), "lora": str(root / "lora"), "root": root, "manager": manager}


@pytest.fixture(scope="module")
def deploy(models):
    server = start_swift(
        "deploy",
        [
            "--engine",
            "vllm",
            "--model",
            models["base"],
            "--adapters",
            f"{ADAPTER}={models['lora']}",
            "--served_model_name",
            BASE,
            "--api_key",
            KEY,
            "--torch_dtype",
            "float32",
            "--max_model_len",
            str(MAX_LEN),
            "--seed",
            "0",
        ],
        models["root"] / "deploy-logs",
    )
    yield server
    if server.proc.poll() is None:  # test_sigterm_... did not run (deselected) or failed early
        try:
            server.stop()
        finally:
            server.kill()


@pytest.fixture(scope="module")
def reference(models) -> dict[str, Any]:
    """transformers (+ peft) models, and Swift's template and tokenizer to build the same prompt ids."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from swift_core.models.loading import load_tokenizer, template_for

    tokenizer = load_tokenizer(models["base"])
    template = template_for("qwen2_5", tokenizer, models["manager"])
    vocab = tokenizer.get_vocab()
    base = AutoModelForCausalLM.from_pretrained(models["base"], dtype=torch.float32).eval()
    lora = AutoModelForCausalLM.from_pretrained(models["base"], dtype=torch.float32)
    lora = PeftModel.from_pretrained(lora, models["lora"]).eval()
    return {
        "tokenizer": tokenizer,
        "template": template,
        "stop_ids": [vocab[t] for t in template.stop if t in vocab],
        BASE: base,
        ADAPTER: lora,
    }


@pytest.fixture()
def client(deploy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{deploy.url}/v1", api_key=KEY, max_retries=0, timeout=120)


def _chat_ids(reference: dict[str, Any], messages: list[dict[str, Any]]) -> list[int]:
    from swift_core.datasets.encode import encode_prompt

    return encode_prompt(reference["template"], reference["tokenizer"], messages)


def _hf_greedy(reference: dict[str, Any], model: str, ids: list[int], max_new: int) -> list[int]:
    stop = reference["stop_ids"]
    with torch.no_grad():
        out = reference[model].generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new,
            do_sample=False,
            repetition_penalty=PENALTY,
            eos_token_id=stop,
            pad_token_id=stop[0],
        )
    return out[0, len(ids) :].tolist()


def _text(reference: dict[str, Any], ids: list[int]) -> str:
    """The answer's text as vLLM gives it: a random model's answer may end inside a multi-byte UTF-8
    character, which a full decode shows as U+FFFD and vLLM's incremental detokenizer holds back."""
    return reference["tokenizer"].decode(ids, skip_special_tokens=True).rstrip("\ufffd")


# --- the openai SDK -------------------------------------------------------------------------------


def test_chat_completion_equals_transformers_greedy(client, reference):
    r = client.chat.completions.create(
        model=BASE, messages=CHAT, max_tokens=20, temperature=0, extra_body={"repetition_penalty": PENALTY}
    )
    ids = _chat_ids(reference, CHAT)
    expected = _hf_greedy(reference, BASE, ids, 20)
    assert len(set(expected)) > 5  # a varied sequence: one wrong token would show
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == BASE
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == _text(reference, expected)
    assert choice.finish_reason == ("length" if len(expected) == 20 else "stop")
    assert r.usage.prompt_tokens == len(ids)  # Swift's template rendered the prompt, not vLLM's
    assert r.usage.completion_tokens == len(expected)
    assert r.usage.total_tokens == len(ids) + len(expected)


def test_streamed_chat_assembles_to_the_same_answer_with_usage_last(client):
    kwargs: dict[str, Any] = {
        "model": BASE,
        "messages": CHAT,
        "max_tokens": 16,
        "temperature": 0,
        "extra_body": {"repetition_penalty": PENALTY},
    }
    full = client.chat.completions.create(**kwargs)
    chunks = list(
        client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    )
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # streamed in increments, not one piece
    assert "".join(pieces) == full.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [full.choices[0].finish_reason]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == full.usage.prompt_tokens
    assert last.usage.completion_tokens == full.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_with_a_text_prompt_and_with_token_ids(client, reference):
    prompt = "The capital of France is"
    ids = list(reference["tokenizer"](prompt)["input_ids"])
    expected = _hf_greedy(reference, BASE, ids, 12)
    extra = {"repetition_penalty": PENALTY}
    by_text = client.completions.create(
        model=BASE, prompt=prompt, max_tokens=12, temperature=0, extra_body=extra
    )
    by_ids = client.completions.create(model=BASE, prompt=ids, max_tokens=12, temperature=0, extra_body=extra)
    for r in (by_text, by_ids):
        assert r.object == "text_completion" and r.id.startswith("cmpl-")
        assert r.choices[0].text == _text(reference, expected)
        assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == len(expected)
    # several prompts in one request: one choice per prompt, in order
    both = client.completions.create(model=BASE, prompt=[prompt, "a b c"], max_tokens=3, temperature=0)
    assert [c.index for c in both.choices] == [0, 1]
    assert both.usage.completion_tokens == 6


def test_echo_logprobs_give_the_prompt_loglikelihood(client, reference):
    """lm-evaluation-harness' loglikelihood request: token ids, echo, logprobs=1, max_tokens=1."""
    ids = _chat_ids(reference, CHAT)
    r = client.completions.create(model=BASE, prompt=ids, max_tokens=1, echo=True, logprobs=1, temperature=0)
    lp = r.choices[0].logprobs
    assert r.choices[0].text.startswith(reference["tokenizer"].decode(ids))
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(ids) + 1
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    with torch.no_grad():
        logits = reference[BASE](input_ids=torch.tensor([ids])).logits[0]
    expected = torch.log_softmax(logits.float(), dim=-1)
    for i in range(1, len(ids)):
        assert lp.token_logprobs[i] == pytest.approx(expected[i - 1, ids[i]].item(), abs=2e-3), i
        assert len(lp.top_logprobs[i]) >= 1
        assert max(lp.top_logprobs[i].values()) == pytest.approx(expected[i - 1].max().item(), abs=2e-3)
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == 1
    # a text prompt with max_tokens=0: the prompt echoed, nothing generated
    text = "the quick brown fox"
    r0 = client.completions.create(
        model=BASE, prompt=text, max_tokens=0, echo=True, logprobs=0, temperature=0
    )
    assert r0.choices[0].text == text and r0.usage.completion_tokens == 0
    assert "".join(r0.choices[0].logprobs.tokens) == text


def test_the_adapter_is_served_as_its_own_model(client, reference):
    assert [m.id for m in client.models.list().data] == [BASE, ADAPTER]
    ids = _chat_ids(reference, CHAT)
    answers = {}
    for model in (BASE, ADAPTER):
        r = client.chat.completions.create(
            model=model,
            messages=CHAT,
            max_tokens=16,
            temperature=0,
            extra_body={"repetition_penalty": PENALTY},
        )
        assert r.model == model
        answers[model] = r.choices[0].message.content
        assert answers[model] == _text(reference, _hf_greedy(reference, model, ids, 16)), model
    assert answers[ADAPTER] != answers[BASE]


def test_sixteen_concurrent_async_requests_all_succeed(deploy):
    async def main() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{deploy.url}/v1", api_key=KEY, max_retries=0, timeout=120)

        async def one(i: int) -> tuple[str, str | None, int]:
            kwargs: dict[str, Any] = {
                "model": BASE if i % 4 else ADAPTER,
                "messages": [{"role": "user", "content": f"question number {i}"}],
                "max_tokens": 8,
                "temperature": 0.8 if i % 3 else 0,
                "seed": i,
            }
            if i % 2:
                stream = await client.chat.completions.create(
                    **kwargs, stream=True, stream_options={"include_usage": True}
                )
                text, finish, used = "", None, 0
                async for chunk in stream:
                    if chunk.choices:
                        text += chunk.choices[0].delta.content or ""
                        finish = chunk.choices[0].finish_reason or finish
                    if chunk.usage:
                        used = chunk.usage.completion_tokens
                return text, finish, used
            r = await client.chat.completions.create(**kwargs)
            return r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens

        async with client:
            return await asyncio.gather(*(one(i) for i in range(16)))

    results = asyncio.run(main())
    assert len(results) == 16
    for text, finish, used in results:
        assert finish in ("length", "stop") and 0 < used <= 8
        assert isinstance(text, str)


# --- errors ---------------------------------------------------------------------------------------


def test_a_wrong_api_key_is_a_401(deploy):
    wrong = openai.OpenAI(base_url=f"{deploy.url}/v1", api_key="sk-wrong", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=BASE, messages=CHAT, max_tokens=2)
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=CHAT, max_tokens=2)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="x", max_tokens=2)


def test_malformed_json_is_a_400_and_the_server_keeps_serving(deploy, client):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=deploy.url, timeout=30, headers=headers) as http:
        for path in ("/v1/chat/completions", "/v1/completions"):
            r = http.post(path, content=b'{"model": "base", "messages": [')
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "invalid_json"
        r = http.post("/v1/chat/completions", json={"model": BASE, "messages": CHAT, "max_tokens": "5"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
        assert http.get("/health").json() == {"status": "ok"}
    r = client.chat.completions.create(model=BASE, messages=CHAT, max_tokens=3, temperature=0)
    assert r.usage.completion_tokens == 3


def test_a_prompt_longer_than_the_context_is_a_400(client):
    long = [{"role": "user", "content": "word " * 2 * MAX_LEN}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=BASE, messages=long, max_tokens=4)
    assert info.value.code == "context_length_exceeded", info.value.body
    with pytest.raises(openai.BadRequestError) as info:  # streamed: refused before the headers go out
        client.chat.completions.create(model=BASE, messages=long, max_tokens=4, stream=True)
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=BASE, prompt=[5] * MAX_LEN, max_tokens=4)
    assert client.completions.create(model=BASE, prompt=[5] * 8, max_tokens=2).usage.completion_tokens == 2


# --- shutdown (after every other test of the shared server) ---------------------------------------


def test_sigterm_finishes_the_in_flight_stream_exits_0_and_leaves_no_vllm_process(deploy):
    body = {"model": BASE, "messages": CHAT, "max_tokens": 200, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        httpx.Client(base_url=deploy.url, timeout=120, headers=headers) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        events = r.iter_lines()
        first = next(e for e in events if e.startswith("data: "))  # generation is under way
        assert "chat.completion.chunk" in first
        deploy.proc.send_signal(signal.SIGTERM)
        rest = [e for e in events if e.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in rest[:-1]]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in ("length", "stop")
    assert deploy.stop() == 0, deploy.logs()
    assert "server stopped" in deploy.logs()
    assert deploy.leftover_children() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{deploy.url}/health", timeout=5)


def test_swift_infer_with_a_port_serves_the_same_api(models, reference, deploy):
    """`swift infer --engine vllm --port`: the same server (after the deploy one stopped: 2 cores)."""
    if deploy.proc.poll() is None:  # the SIGTERM test was deselected
        deploy.stop()
    server = start_swift(
        "infer",
        ["--engine", "vllm", "--model", models["base"], "--torch_dtype", "float32", "--max_model_len", "512"],
        models["root"] / "infer-logs",
    )
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list().data] == [BASE]  # the folder's name
        r = client.chat.completions.create(
            model=BASE,
            messages=CHAT,
            max_tokens=12,
            temperature=0,
            extra_body={"repetition_penalty": PENALTY},
        )
        ids = _chat_ids(reference, CHAT)
        assert r.choices[0].message.content == _text(reference, _hf_greedy(reference, BASE, ids, 12))
        assert server.stop() == 0, server.logs()
        assert server.leftover_children() == []
    finally:
        server.kill()
