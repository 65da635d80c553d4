"""The built-in reward functions (registered by `swift_core.builtin.online_rl`).

`accuracy` and `math` read the row's `solution` column (ms-swift's and TRL's name); a dataset
without it is refused, naming the file and row, before any model loads (`required_columns`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError
from swift_core.rl.math_answer import equivalent, final_answer, normalise
from swift_core.rl.options import FormatRewardOptions, LengthRewardOptions, RewardModelRewardOptions


def accuracy(completions: list[str], solution: list[Any], **_: Any) -> list[float | None]:
    """1.0 when the completion's final answer (its `<answer>` tag, `\\boxed{}`, or the whole text)
    equals the solution after normalising case, spaces and a final full stop; else 0.0."""
    return [
        None if s is None else float(normalise(final_answer(c)) == normalise(final_answer(str(s))))
        for c, s in zip(completions, solution)
    ]


accuracy.required_columns = ("solution",)  # type: ignore[attr-defined]


def math_equivalence(completions: list[str], solution: list[Any], **_: Any) -> list[float | None]:
    """1.0 when the final answer equals the solution as a number (`1/2`, `0.5`, `\\frac{1}{2}` and
    `50%` are one value), or as normalised text when either is not a number."""
    return [None if s is None else float(equivalent(c, str(s))) for c, s in zip(completions, solution)]


math_equivalence.required_columns = ("solution",)  # type: ignore[attr-defined]


class FormatReward:
    """1.0 when the whole completion matches `--format_pattern` (DOTALL), else 0.0."""

    def __init__(self, options: FormatRewardOptions):
        try:
            self.pattern = re.compile(options.format_pattern, re.DOTALL)
        except re.error as exc:
            raise SwiftError(
                f"--format_pattern {options.format_pattern!r} is not a regular expression: {exc}"
            ) from None

    def __call__(self, completions: list[str], **_: Any) -> list[float]:
        return [1.0 if self.pattern.fullmatch(c.strip()) else 0.0 for c in completions]


class SoftOverlong:
    """DAPO's soft overlong punishment on the completion's token count L, with maximum M and
    cache C: 0 when L <= M - C, (M - C - L) / C up to M, -1 beyond."""

    def __init__(self, options: LengthRewardOptions):
        self.options = options

    def check(self, args: Any) -> None:
        o = self.options
        if o.soft_cache_length < 1 or (o.soft_max_length and o.soft_cache_length > o.soft_max_length):
            raise SwiftError(
                f"--soft_cache_length {o.soft_cache_length} must be between 1 and --soft_max_length {o.soft_max_length}"
            )

    def __call__(
        self, completion_ids: list[list[int]], max_completion_length: int = 0, **_: Any
    ) -> list[float]:
        top = self.options.soft_max_length or max_completion_length
        cache = min(self.options.soft_cache_length, top)
        start = top - cache
        out = []
        for ids in completion_ids:
            n = len(ids)
            out.append(0.0 if n <= start else max(-1.0, (start - n) / cache))
        return out


class RewardModelReward:
    """The score a reward model (`swift rlhf --rlhf_type rm`) gives each prompt + completion,
    rendered by the reward model's own template as it was trained; loaded on first use."""

    def __init__(self, options: RewardModelRewardOptions):
        self.options = options
        self._scorer: Any = None

    def check(self, args: Any) -> None:
        path = self.options.reward_model
        if not path:
            raise SwiftError(
                "--reward_funcs reward_model needs --reward_model DIR (a model trained by --rlhf_type rm)"
            )
        if not Path(path).exists():
            raise SwiftError(f"--reward_model {path}: no such folder")

    def scorer(self) -> Any:
        if self._scorer is None:
            from swift_core.engines.protocol import EngineConfig
            from swift_core.infer.score import RewardScorer, scores_only

            config = EngineConfig(model=str(self.options.reward_model), device="cpu", max_batch_size=16)
            if not scores_only(config):
                raise SwiftError(f"--reward_model {config.model} is not a reward model (it generates text)")
            self._scorer = RewardScorer(config)
        return self._scorer

    def __call__(
        self, prompts: list[list[dict[str, Any]]], completions: list[str], **_: Any
    ) -> list[float | None]:
        rows = [{"messages": [*p, {"role": "assistant", "content": c}]} for p, c in zip(prompts, completions)]
        return [r.score for r in self.scorer().score_rows(rows)]
