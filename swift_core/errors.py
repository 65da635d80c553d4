"""User-facing errors.

A `SwiftError` is a mistake the user can fix (bad flag, unknown name, malformed file). The CLI
prints its message without a traceback and exits non-zero; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class SwiftError(Exception):
    """An error caused by the user's input; shown without a traceback."""

    exit_code = 2


class NothingToDo(SwiftError):
    """The command has nothing to do (a finished run resumed): said plainly, exit status 0."""

    exit_code = 0


class Interrupted(SwiftError):
    """The user stopped the command (Ctrl-C); the message says where it stopped and how to go on."""

    exit_code = 130


class UnknownNameError(SwiftError, KeyError):
    """A name (capability, argument, plugin) that is not known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateCapabilityError(SwiftError):
    """Two plugins registered the same capability name."""


class CapabilityLoadError(SwiftError):
    """A selected capability's factory or requirements could not be loaded."""


class PolicyError(SwiftError):
    """A malformed policy file."""


_SEPARATORS = re.compile(r"[-_./ ]+")


def _osa_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _token_typo(a: str, b: str) -> bool:
    """Whether token `a` reads as a slip of the keys for `b`. Short names (grpo/orpo, ppo/ipo,
    npu/gpu, vl/7b) that differ by a changed letter are other things, not typos: only a missing,
    extra or swapped letter counts there."""
    if a == b:
        return True
    distance = _osa_distance(a, b)
    if max(len(a), len(b)) <= 4:
        return distance == 1 and (len(a) != len(b) or sorted(a) == sorted(b))
    return distance <= (1 if max(len(a), len(b)) < 8 else 2)


def is_typo_of(name: str, candidate: str) -> bool:
    """Whether `name` is plausibly a misspelling of `candidate`, word by word (words split at
    - _ . /): at most two words differ, each by a typo; or the same letters with the separators
    moved (qwen25 for qwen2_5)."""
    a, b = name.lower(), candidate.lower()
    if a == b:
        return True
    words_a, words_b = _SEPARATORS.split(a), _SEPARATORS.split(b)
    if len(words_a) == len(words_b):
        differing = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
        return len(differing) <= 2 and all(_token_typo(x, y) for x, y in differing)
    return _token_typo("".join(words_a), "".join(words_b))


def nearest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest spellings of `name` among `candidates`, best first; only real typos (see
    `is_typo_of`): a suggestion of another capability that merely looks alike (--deepspeed ->
    --seed, grpo -> orpo) misleads more than no suggestion."""
    typos = [c for c in dict.fromkeys(candidates) if c != name and is_typo_of(name, c)]
    ranked = sorted(typos, key=lambda c: -difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio())
    return ranked[:n]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix, or '' when nothing is close."""
    close = nearest(name, candidates, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
