"""What the contract batteries share: a failure that names the broken promise, and a report.

A battery runs a capability through its interface clause by clause. The first clause that does
not hold raises `ContractFailure` naming the capability, the clause and what was seen; an
exception escaping the capability's own code inside a clause is reported the same way (with the
exception chained), so a failing battery reads as a sentence, not a stack of asserts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field


class ContractFailure(AssertionError):
    """A capability broke a clause of its interface's contract.

    An AssertionError so that pytest reports it as a test failure (not an error in the test).
    """

    def __init__(self, capability: str, clause: str, detail: str) -> None:
        self.capability = capability
        self.clause = clause
        self.detail = detail
        super().__init__(f"{capability} breaks the contract: {clause}: {detail}")


@dataclass
class ContractReport:
    """What a battery checked: the clauses that held, and those skipped with the reason."""

    capability: str
    passed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Checker:
    """Runs clauses for one capability and collects the report."""

    def __init__(self, capability: str) -> None:
        self.report = ContractReport(capability)
        self._clause = ""

    @property
    def capability(self) -> str:
        return self.report.capability

    @contextlib.contextmanager
    def clause(self, name: str) -> Iterator[None]:
        """One promise: `fail`/`require` inside, or any exception from the capability, breaks it."""
        self._clause = name
        try:
            yield
        except ContractFailure:
            raise
        except Exception as exc:
            raise ContractFailure(self.capability, name, f"raised {type(exc).__name__}: {exc}") from exc
        finally:
            self._clause = ""
        self.report.passed.append(name)

    def fail(self, detail: str) -> None:
        raise ContractFailure(self.capability, self._clause or "(outside a clause)", detail)

    def require(self, condition: object, detail: str) -> None:
        if not condition:
            self.fail(detail)

    def skip(self, name: str, reason: str) -> None:
        self.report.skipped.append((name, reason))
