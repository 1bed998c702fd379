"""What the scanner reports: categories, severities and the `Finding` record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Category = Literal[
    "contact_exchange", "off_platform_deal", "personal_data_request", "expense_demand"
]
Severity = Literal["low", "medium", "high"]

CONTACT: Final = "contact_exchange"
DEAL: Final = "off_platform_deal"
PII: Final = "personal_data_request"
EXPENSE: Final = "expense_demand"

CATEGORIES: Final[tuple[Category, ...]] = (CONTACT, DEAL, PII, EXPENSE)
SEVERITIES: Final[tuple[Severity, ...]] = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """Static description of one rule: its stable id, category, severity and wording."""

    id: str
    category: Category
    severity: Severity
    ja: str
    en: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One signal found by the scanner.

    ``start``/``end`` is a half-open character span in the ORIGINAL text of the message
    ``message_index`` (0 = oldest message of the history; ``len(history)`` = the current
    message).
    """

    category: Category
    rule: str
    start: int
    end: int
    message_index: int
    severity: Severity
    explanation: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "rule": self.rule,
            "start": self.start,
            "end": self.end,
            "message_index": self.message_index,
            "severity": self.severity,
            "explanation": dict(self.explanation),
        }


_new = object.__new__
_SETTERS: Final = tuple(
    getattr(Finding, name).__set__
    for name in ("category", "rule", "start", "end", "message_index", "severity", "explanation")
)


def make_finding(
    category: Category,
    rule: str,
    start: int,
    end: int,
    message_index: int,
    severity: Severity,
    explanation: dict[str, str],
) -> Finding:
    """``Finding(...)``, built faster: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``; this writes the slots directly (the scanner builds
    one per finding on the hot path)."""
    f = _new(Finding)
    s0, s1, s2, s3, s4, s5, s6 = _SETTERS
    s0(f, category)
    s1(f, rule)
    s2(f, start)
    s3(f, end)
    s4(f, message_index)
    s5(f, severity)
    s6(f, explanation)
    return f
