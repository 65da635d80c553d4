"""User-facing errors.

A `SwiftError` is a mistake the user can fix (bad flag, unknown name, malformed file). The CLI
prints its message without a traceback and exits non-zero; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SwiftError(Exception):
    """An error caused by the user's input; shown without a traceback."""

    exit_code = 2


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


def nearest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest spellings of `name` among `candidates`, best first."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix, or '' when nothing is close."""
    close = nearest(name, candidates, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
