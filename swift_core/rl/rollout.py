"""Rollouts through the engine protocol, and the policy's weights back to the engine.

The engine is whatever engine plugin `--rollout_engine` names (the in-process transformers engine
by default, so the CPU runs it); prompts go in as token ids rendered by the training template
(`GenerationRequest.prompt`), `n` completions each, with a seed per step so that a resumed run
samples what the uninterrupted one sampled. After every optimizer step the engine gets the new
weights, in the way the engine supports, never by its name:

- an engine with `update_weights(weights)` (`SupportsWeightUpdate`: an iterable of (name, tensor)
  of the full, adapter-merged model in Hugging Face names, as vLLM's `load_weights` takes them) is
  updated in place: the transformers engine, vLLM, and the `server` engine (GRPO's server mode,
  `swift_core.engines.server`: the weights go to a `swift deploy --enable_weight_updates`);
- any other engine is rebuilt from the policy written to a folder: the LoRA adapter alone (served
  as an adapter over the base model) or, for full fine-tuning, the whole model.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from swift_core.engines.protocol import EngineConfig, GenerationRequest, InferenceEngine
from swift_core.errors import SwiftError

POLICY_ADAPTER = "policy"


@runtime_checkable
class SupportsWeightUpdate(Protocol):
    """An engine that takes new weights in place (no rebuild) between steps."""

    def update_weights(self, weights: Iterable[tuple[str, Any]]) -> None: ...


@dataclass
class Sample:
    """One sampled completion: its token ids (the stop token appended when it stopped), text,
    and whether it ended at `max_tokens` instead of a stop token."""

    ids: list[int]
    text: str
    truncated: bool


def merged_weights(model: Any) -> list[tuple[str, Any]]:
    """The policy's full weights in the base model's names: a LoRA adapter merged in (and taken
    out again), peft's prefixes removed. The wrapped layers' base weights are put back from a copy
    after the unmerge: `(W + BA) - BA` is not W in floating point, and a rounding drift of the
    trained model every step would make a run depend on how often its engine was synced."""
    import torch

    merge = getattr(model, "merge_adapter", None)
    if merge is None:
        return [(n, p.detach()) for n, p in model.state_dict().items()]
    wrapped = [p for n, p in model.named_parameters() if ".base_layer." in n]
    originals = [p.detach().clone() for p in wrapped]
    merge()
    try:
        base = model.get_base_model()
        out = []
        for name, tensor in base.state_dict().items():
            if "lora_" in name or ("modules_to_save" in name and "original_module" in name):
                continue
            out.append((name.replace(".base_layer", ""), tensor.detach().clone()))
        return out
    finally:
        model.unmerge_adapter()
        with torch.no_grad():
            for param, original in zip(wrapped, originals, strict=True):
                param.copy_(original)


class EngineRollout:
    """Samples completions from an engine plugin and keeps it in step with the policy."""

    def __init__(
        self, manager: Any, engine_name: str, base: EngineConfig, work_dir: Path, stop_id: int | None
    ):
        self.descriptor = manager.get("engines", engine_name)
        self.factory = self.descriptor.load()
        self.base = base
        self.work_dir = work_dir
        self.stop_id = stop_id
        self.engine: InferenceEngine | None = None
        self.adapter: str | None = None
        self.syncs = 0

    def _build(self, config: EngineConfig) -> InferenceEngine:
        engine = self.factory(config)
        if not isinstance(engine, InferenceEngine):
            raise SwiftError(
                f"rollout engine {self.descriptor.name!r} from plugin {self.descriptor.plugin!r} did not build "
                f"an InferenceEngine (got {type(engine).__name__})"
            )
        if not engine.capabilities.multiple_choices:
            raise SwiftError(
                f"rollout engine {self.descriptor.name!r} cannot sample n > 1 completions per prompt"
            )
        return engine

    def sync(self, model: Any, tokenizer: Any, saves_adapter: bool) -> None:
        """Give the engine the policy's current weights (builds it the first time)."""
        self.syncs += 1
        if self.engine is not None and isinstance(self.engine, SupportsWeightUpdate):
            self.engine.update_weights(merged_weights(model))
            return
        if self.engine is None and _updates_in_place(self.factory):
            self.engine = self._build(self.base)
            self.engine.update_weights(merged_weights(model))  # type: ignore[union-attr]
            return
        self.close()  # the engine read its weights when it was built: the folder can be rewritten
        folder = self.work_dir / "policy"
        if folder.exists():
            shutil.rmtree(folder)
        model.save_pretrained(str(folder))
        if saves_adapter:
            config = replace(self.base, adapters={**self.base.adapters, POLICY_ADAPTER: str(folder)})
            self.adapter = POLICY_ADAPTER
        else:
            tokenizer.save_pretrained(str(folder))
            config = replace(self.base, model=str(folder))
        self.engine = self._build(config)

    def sample(
        self,
        prompts: list[list[int]],
        n: int,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        top_k: int = -1,
    ) -> list[list[Sample]]:
        """`n` completions of each prompt, all prompts submitted together (one batch)."""
        if self.engine is None:
            raise SwiftError("the rollout engine has no weights yet: sync it with the policy first")
        use_seed = self.engine.capabilities.seed
        requests = [
            GenerationRequest(
                prompt=list(p),
                n=n,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                seed=seed if use_seed else None,
                adapter=self.adapter,
            )
            for p in prompts
        ]
        responses = self.engine.generate_batch(requests)
        out = []
        for response in responses:
            group = []
            for choice in sorted(response.choices, key=lambda c: c.index):
                ids = list(choice.token_ids)
                stopped = choice.finish_reason == "stop"
                if stopped and self.stop_id is not None:
                    ids.append(self.stop_id)
                group.append(Sample(ids, choice.text, truncated=not stopped))
            if len(group) != n:
                raise SwiftError(
                    f"rollout engine {self.descriptor.name!r} returned {len(group)} completions, not {n}"
                )
            out.append(group)
        return out

    def close(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            asyncio.run(engine.close())


def _updates_in_place(factory: Any) -> bool:
    return isinstance(factory, type) and callable(getattr(factory, "update_weights", None))
