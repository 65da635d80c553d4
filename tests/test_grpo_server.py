"""GRPO's server mode: rollouts from a separate `swift deploy --enable_weight_updates` process.

One real server (a subprocess on a tiny model, transformers engine, with an API key) serves the
module: perturbed weights pushed through the `server` engine land (the server's logprobs and
greedy answer equal a local forward of the perturbed model; a no-op update fails it, the base is
far away), a refused update (unknown name, other shape) leaves the served model as it was, and a
2-step LoRA GRPO run through the CLI with `--rollout_engine server` pushes the policy twice and
ends with the server holding the policy it was given (the run's checkpoint-1 adapter merged by
peft). The routes' absence without the flag, the 501 of an engine without `update_weights` and the
client's errors (unreachable, no flag, no key) run against in-process apps.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from swift_core.errors import SwiftError

torch = pytest.importorskip("torch")
httpx = pytest.importorskip("httpx")

KEY = "grpo-server-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LOGPROB_TOL = 1e-4
IDS = [5, 17, 42, 99, 120, 7, 256, 31, 64, 300, 11, 12]


@pytest.fixture(scope="module")
def server(tiny_qwen):
    """`swift deploy --enable_weight_updates --api_key KEY` on the tiny model; yields its URL."""
    code = "from swift_core.cli.deploy_cmd import deploy; deploy.main()"
    argv = [sys.executable, "-c", code, "--model", str(tiny_qwen), "--port", "0", "--log_level", "warning"]
    argv += ["--enable_weight_updates", "--api_key", KEY, "--seed", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read()
                continue
            if line.startswith("ready on "):
                url = line.split()[-1]
        assert url, "the server did not start"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _hf(path, perturb_seed: int | None = None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    if perturb_seed is not None:
        gen = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def _hf_logprobs(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[i] | ids[:i]) for i >= 1 under transformers."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]


def _server_logprobs(url: str, model: str, ids: list[int]) -> torch.Tensor:
    """The server's prompt logprobs of `ids` (/v1/completions, echo, no new tokens)."""
    body = {"model": model, "prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 0}
    r = httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    values = r.json()["choices"][0]["logprobs"]["token_logprobs"]
    assert values[0] is None and None not in values[1:]
    return torch.tensor(values[1:])


def _engine(url: str, **options):
    from swift_core.engines.protocol import EngineConfig
    from swift_core.engines.server.client import ServerEngine
    from swift_core.engines.server.options import ServerEngineOptions

    opts = ServerEngineOptions(rollout_server_url=url, **options)
    return ServerEngine(EngineConfig(model="unused", options=opts))


def _version(url: str) -> int:
    return httpx.get(f"{url}/v1/weights", headers=AUTH, timeout=30).json()["version"]


@pytest.fixture
def key(monkeypatch):
    """The server's key where the server engine reads it (no flag: args.json records flags)."""
    monkeypatch.setenv("SWIFT_API_KEY", KEY)


def test_pushed_weights_land_in_the_server(server, tiny_qwen, key):
    from swift_core.engines.protocol import GenerationRequest

    engine = _engine(server)
    name = engine.model_name
    base_lp = _server_logprobs(server, name, IDS)
    perturbed = _hf(tiny_qwen, perturb_seed=1)
    before = _version(server)
    answer = engine.update_weights(list(perturbed.state_dict().items()))
    assert answer["version"] == before + 1 and _version(server) == before + 1

    local = _hf_logprobs(perturbed, IDS)
    diff = (_server_logprobs(server, name, IDS) - local).abs().max().item()
    assert diff < LOGPROB_TOL, diff
    assert (base_lp - local).abs().max().item() > 100 * LOGPROB_TOL  # a no-op update fails above

    # greedy rollouts (token ids in, token ids out) follow the new weights too
    (response,) = engine.generate_batch([GenerationRequest(prompt=IDS[:6], max_tokens=6, temperature=0.0)])
    (choice,) = response.choices
    with torch.no_grad():
        out = perturbed.generate(
            input_ids=torch.tensor([IDS[:6]]),
            attention_mask=torch.ones(1, 6, dtype=torch.long),
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=None,
        )
    assert choice.token_ids and choice.token_ids == out[0, 6 : 6 + len(choice.token_ids)].tolist()
    # n sampled completions per prompt, seeded: the same seed gives the same samples
    sampled = GenerationRequest(prompt=IDS[:4], n=4, max_tokens=5, temperature=1.0, seed=7)
    first, second = engine.generate_batch([sampled]), engine.generate_batch([sampled])
    assert len(first[0].choices) == 4
    assert [c.token_ids for c in first[0].choices] == [c.token_ids for c in second[0].choices]
    asyncio_run(engine.close())


def test_refused_weights_leave_the_server_as_it_was(server, tiny_qwen, key, monkeypatch):
    engine = _engine(server)
    kept = _server_logprobs(server, engine.model_name, IDS)
    weights = list(_hf(tiny_qwen, perturb_seed=2).state_dict().items())
    with pytest.raises(SwiftError, match="does not have.*'model.bogus.weight'"):
        engine.update_weights([*weights, ("model.bogus.weight", torch.zeros(2))])
    name, tensor = weights[0]
    with pytest.raises(SwiftError, match=f"{name}.*shape"):
        engine.update_weights([(name, torch.zeros(tensor.shape[0] + 1, *tensor.shape[1:]))])
    assert torch.equal(_server_logprobs(server, engine.model_name, IDS), kept)
    monkeypatch.delenv("SWIFT_API_KEY")
    with pytest.raises(SwiftError, match="HTTP 401.*SWIFT_API_KEY"):
        _engine(server)  # no key
    asyncio_run(engine.close())


def test_grpo_run_with_server_rollouts_leaves_the_policy_on_the_server(server, tiny_qwen, tmp_path, key):
    from peft import PeftModel

    from swift_core.cli.main import main

    data = tmp_path / "prompts.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": q}], "solution": "x"}
        for q in ("Say a number with a 9 in it.", "Say a number without it.")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    before = _version(server)
    argv = [
        "rlhf", "--model", str(tiny_qwen), "--dataset", str(data), "--rlhf_type", "grpo",
        "--rollout_engine", "server", "--rollout_server_url", server,
        "--reward_funcs", "format", "--format_pattern", ".*9.*",
        "--num_generations", "4", "--per_device_train_batch_size", "2", "--max_completion_length", "8",
        "--temperature", "1.0", "--beta", "0", "--lora_rank", "8", "--lora_alpha", "32",
        "--learning_rate", "5e-2", "--max_steps", "2", "--save_steps", "1", "--logging_steps", "1",
        "--seed", "3", "--output_dir", str(out),
    ]  # fmt: skip
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), exc
    assert _version(server) == before + 2  # before step 1 (the base, adapter merged) and before step 2

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    logs = [json.loads(line) for line in (run_dir / "logging.jsonl").read_text().splitlines()]
    steps = [entry for entry in logs if "reward" in entry]
    assert len(steps) == 2 and all("rewards/format/mean" in s for s in steps)
    args = json.loads((run_dir / "args.json").read_text())
    assert args["rollout_engine"] == "server" and args["rollout_server_url"] == server
    assert KEY not in (run_dir / "args.json").read_text()  # the key came from the environment

    # the policy the server was given before step 2: the adapter after step 1, merged by peft
    policy = (
        PeftModel.from_pretrained(_hf(tiny_qwen), str(run_dir / "checkpoint-1")).merge_and_unload().eval()
    )
    name = httpx.get(f"{server}/v1/weights", headers=AUTH, timeout=30).json()["model"]
    served = _server_logprobs(server, name, IDS)
    diff = (served - _hf_logprobs(policy, IDS)).abs().max().item()
    assert diff < LOGPROB_TOL, diff
    moved = (_hf_logprobs(_hf(tiny_qwen), IDS) - _hf_logprobs(policy, IDS)).abs().max().item()
    assert moved > 100 * LOGPROB_TOL, moved  # step 1 moved the policy: a server left at the base fails


# -- in-process apps: the flag, engines without update_weights, the client's errors ---------------------


class _NoUpdates:
    """An engine stand-in without update_weights (the app only reads these attributes)."""

    model_name = "plain"
    model_aliases = ()

    def adapter_names(self):
        return []

    def metrics(self):
        return {}


class _Updates(_NoUpdates):
    def __init__(self):
        self.seen = []

    def update_weights(self, weights):
        self.seen.append([name for name, _ in weights])


def _app(engine, enable: bool):
    from swift_core.serve.app import create_app
    from swift_core.serve.settings import ServeSettings

    return create_app(engine, ServeSettings(served_model_name="plain", enable_weight_updates=enable))


def test_routes_absent_without_the_flag_and_501_without_update_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("SWIFT_API_KEY", raising=False)
    from serve_helpers import running

    with running(_app(_NoUpdates(), enable=False)) as url:
        assert httpx.get(f"{url}/v1/weights").status_code == 404
        assert httpx.post(f"{url}/v1/weights", json={"path": "x"}).status_code == 404
        assert httpx.post(f"{url}/v1/rollouts", json={"model": "plain", "prompts": [[1]]}).status_code == 404
        with pytest.raises(SwiftError, match="takes no weight updates.*--enable_weight_updates"):
            _engine(url)
    weights = tmp_path / "w.safetensors"
    from swift_core.engines.weights import write_weights_file

    write_weights_file([("a", torch.zeros(2))], weights)
    with running(_app(_NoUpdates(), enable=True)) as url:
        r = httpx.post(f"{url}/v1/weights", json={"path": str(weights)})
        assert r.status_code == 501 and "_NoUpdates" in r.json()["error"]["message"], r.text
    updates = _Updates()
    with running(_app(updates, enable=True)) as url:
        r = httpx.post(f"{url}/v1/weights", json={"path": str(tmp_path / "missing.safetensors")})
        assert r.status_code == 400 and "share that disk" in r.json()["error"]["message"], r.text
        r = httpx.post(f"{url}/v1/weights", json={"path": str(weights)})
        assert r.status_code == 200 and r.json()["version"] == 1, r.text
        assert updates.seen == [["a"]]
    # the port is closed now: nobody answers
    with pytest.raises(SwiftError, match="cannot reach the rollout server"):
        _engine(url)
    with pytest.raises(SwiftError, match="--rollout_server_url"):
        _engine(None)


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


def test_rlhf_takes_the_server_engine_options_and_deploy_the_flag():
    from swift_core.config.options import build_arguments
    from swift_core.config.rlhf_args import RLHFArguments
    from swift_core.infer.arguments import DeployArguments

    args = build_arguments(RLHFArguments, model="m", rollout_server_url="http://h:1")
    assert args.rollout_server_url == "http://h:1"
    assert DeployArguments(model="m").enable_weight_updates is False


def test_merged_weights_leave_the_trained_base_weights_bitwise_as_they_were():
    """Each sync merges the adapter to send the weights; the unmerge alone is not exact
    ((W + BA) - BA != W in floating point), so the base weights are put back from a copy."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from swift_core.rl.rollout import merged_weights

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=4
    )
    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(Qwen2ForCausalLM(config), lora)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if ".base_layer." in n}
    merged = dict(merged_weights(model))
    for _ in range(4):
        merged_weights(model)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert q in merged and not torch.equal(merged[q], before[f"base_model.model.{q[:-7]}.base_layer.weight"])
