"""Reward functions: built from their descriptors once, called once per batch of completions.

A reward function is a plugin (`register_reward_functions`) whose factory is either the callable
itself or a class built once with the function's options (`cls(options)`; `cls()` when it declares
none). Each call gets, as keyword arguments:

- `prompts`: the conversation each completion answers (a list of messages, repeated per completion),
- `completions`: the sampled texts, `completion_ids`: their token ids,
- `max_completion_length`, and every other column of the dataset row (`solution`, ...), one value
  per completion;

and returns one float per completion, or None where it cannot judge (the completion then does not
count for that function). A function that is a coroutine function (or returns an awaitable) is
awaited; the asynchronous ones of a batch run concurrently (a remote judge, a sandbox). TRL's
`reward_funcs` callables have the same shape, so they can be registered unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swift_core.errors import SwiftError


@dataclass
class BoundReward:
    name: str
    fn: Callable[..., Any]
    weight: float = 1.0


def build_reward_functions(
    names: list[str], weights: list[float], manager: Any, args: Any
) -> list[BoundReward]:
    """The selected reward functions, built with their options; weights default to 1."""
    if not names:
        raise SwiftError(
            "--reward_funcs is required for online RL: name one or more reward functions "
            f"(installed: {', '.join(manager.registry('reward_functions').names()) or 'none'})"
        )
    if weights and len(weights) != len(names):
        raise SwiftError(f"--reward_weights has {len(weights)} values for {len(names)} --reward_funcs")
    if len(set(names)) != len(names):
        raise SwiftError(f"--reward_funcs names a function twice: {' '.join(names)}")
    bound = []
    for i, name in enumerate(names):
        descriptor = manager.get("reward_functions", name)
        factory = descriptor.load()
        options = descriptor.options_from(args)
        if inspect.isclass(factory):
            fn = factory(options) if descriptor.options is not None else factory()
        else:
            fn = factory
            if descriptor.options is not None:
                fn = _with_options(factory, options)
        if not callable(fn):
            raise SwiftError(f"reward function {name!r} ({descriptor.factory}) did not build a callable")
        check = getattr(fn, "check", None)
        if callable(check):
            check(args)  # refuse bad options before any model loads
        bound.append(BoundReward(descriptor.name, fn, float(weights[i]) if weights else 1.0))
    return bound


def _with_options(fn: Callable[..., Any], options: Any) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps `required_columns` and the name
    def call(**kwargs: Any) -> Any:
        return fn(options=options, **kwargs)

    return call


def _as_floats(name: str, values: Any, count: int) -> list[float]:
    try:
        values = list(values)
    except TypeError:
        raise SwiftError(
            f"reward function {name!r} returned {type(values).__name__}, not a list of floats"
        ) from None
    if len(values) != count:
        raise SwiftError(f"reward function {name!r} returned {len(values)} rewards for {count} completions")
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
            continue
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise SwiftError(f"reward function {name!r} returned {v!r}, not a number or None") from None
    return out


def required_columns(rewards: list[BoundReward]) -> dict[str, list[str]]:
    """Dataset column -> the reward functions that read it (their `required_columns` attribute)."""
    needed: dict[str, list[str]] = {}
    for reward in rewards:
        for column in getattr(reward.fn, "required_columns", ()):
            needed.setdefault(column, []).append(reward.name)
    return needed


def score_completions(rewards: list[BoundReward], **batch: Any) -> list[list[float]]:
    """One list of rewards per function (NaN where a function returned None); asynchronous
    functions of the batch run concurrently."""
    count = len(batch["completions"])
    results: list[Any] = [None] * len(rewards)
    pending: dict[int, Any] = {}
    for i, reward in enumerate(rewards):
        try:
            value = reward.fn(**batch)
        except SwiftError:
            raise
        except Exception as exc:
            raise SwiftError(f"reward function {reward.name!r} failed: {type(exc).__name__}: {exc}") from exc
        if inspect.isawaitable(value):
            pending[i] = value
        else:
            results[i] = value
    if pending:

        async def gather() -> list[Any]:
            return list(await asyncio.gather(*pending.values(), return_exceptions=True))

        for i, value in zip(pending, asyncio.run(gather())):
            if isinstance(value, BaseException):
                raise SwiftError(
                    f"reward function {rewards[i].name!r} failed: {type(value).__name__}: {value}"
                )
            results[i] = value
    return [_as_floats(r.name, v, count) for r, v in zip(rewards, results)]
