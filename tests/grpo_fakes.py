"""Test plugin for tests/test_grpo.py: a rollout engine that takes weights in place, and reward
functions (one asynchronous) registered like a third party's. Importable (tests/ is on sys.path)."""

from __future__ import annotations

import asyncio

from swift_core import hookimpl
from swift_core.descriptors import EngineDescriptor, RewardFunctionDescriptor
from swift_core.engines.protocol import Choice, EngineCapabilities, GenerationResponse, InferenceEngine

ANSWERS = ("3", "4", "5", "four")
UPDATES: list[dict] = []  # what update_weights received, per call


class InPlaceEngine(InferenceEngine):
    """Answers with one of ANSWERS per choice (by seed and index); keeps the weights it is given."""

    def __init__(self, config):
        from transformers import AutoTokenizer

        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(config.model)
        self.capabilities = EngineCapabilities(multiple_choices=True, seed=True)
        self.weights: dict = {}

    def update_weights(self, weights):
        self.weights = {name: tensor.clone() for name, tensor in weights}
        UPDATES.append(self.weights)

    async def generate(self, request):
        self.check_request(request)
        await asyncio.sleep(0)
        choices = []
        for i in range(request.n):
            text = ANSWERS[((request.seed or 0) + i) % len(ANSWERS)]
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            choices.append(Choice(i, text, "stop", ids))
        return GenerationResponse(choices, len(request.prompt), sum(len(c.token_ids) for c in choices))


async def slow_exact(completions, solution, **_):
    await asyncio.sleep(0.01)
    return [1.0 if c.strip() == s else 0.0 for c, s in zip(completions, solution)]


slow_exact.required_columns = ("solution",)


def judge_none(completions, **_):
    return [None] * len(completions)


@hookimpl
def register_engines(register):
    register(EngineDescriptor(name="inplace-test", factory="grpo_fakes:InPlaceEngine"))


@hookimpl
def register_reward_functions(register):
    register(RewardFunctionDescriptor(name="slow_exact", factory="grpo_fakes:slow_exact"))
    register(RewardFunctionDescriptor(name="judge_none", factory="grpo_fakes:judge_none"))
