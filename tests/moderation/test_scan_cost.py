"""The scanner's work grows with the text, not with its matches times its sentence.

A long message with no sentence end that repeats an app name ("my LINE is kotaro my LINE is
kotaro ...", 10,000 characters) gave hundreds of anchor matches, and each searched the
whole sentence again for the rule's block words, clause ends and quotations: 1.8 s of the
event loop for one message, which any participant could send ten times a second. The
sentence-level checks are now computed once per sentence (`scanner._Checks`). Measured
here without a clock: the characters that the prefiltered searches are asked to look at,
against the length of the text.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import pytest

from moderation import phones
from moderation.context import ScanText, Sentences
from moderation.gate import Prefiltered
from moderation.scanner import Scanner

LONG = 10_000
# the repeated unit, and whether it is reported (the cost must not be saved by missing it)
TEXTS = {
    "LINE handle repeated": ("my LINE is kotaro ", True),
    "app as a word, repeated": ("Slack as x1 ", True),
    "lower-case app repeated": ("add me on slack ", True),
    "quoted app names": ('"LINE" と "Discord" ', False),  # names quoted as text to design
    "Japanese, no sentence end": ("LINEでkotaroを追加してね、", True),
    "phone numbers in one sentence": ("my phone: 090 1234 5678 ", True),
    "order numbers in one sentence": ("注文番号 0801-2234-5678 の件 ", False),
}


@pytest.mark.parametrize(("unit", "reported"), TEXTS.values(), ids=TEXTS.keys())
def test_searched_characters_grow_with_the_text(unit: str, reported: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[int] = []
    real = Prefiltered.exists

    def counting(self: Prefiltered, text: str, lo: int = 0, hi: int | None = None,
                 **kw: Any) -> bool:
        looked.append((len(text) if hi is None else hi) - lo)
        return real(self, text, lo, hi, **kw)

    monkeypatch.setattr(Prefiltered, "exists", counting)
    scanner = Scanner()
    text = (unit * (LONG // len(unit) + 1))[:LONG]
    findings = scanner.scan(text)
    assert bool(findings) is reported
    # Before: hundreds of whole-sentence searches, ≈ 500 times the text's length.
    assert sum(looked) <= 20 * len(text), (len(findings), len(looked), sum(looked))


def test_the_same_findings_in_a_long_message_as_in_its_pieces() -> None:
    """Computing the checks once per sentence changes no answer: each repetition of a
    sentence reports what that sentence reports alone, at its own offset."""
    scanner = Scanner()
    unit = "LINE is fine. my LINE is kotaro. 「LINE」の文字を入れてください。"
    alone = [(f.rule, f.start, f.end) for f in scanner.scan(unit)]
    assert alone
    many = [(f.rule, f.start, f.end) for f in scanner.scan(unit * 50)]
    assert many == [(r, s + k * len(unit), e + k * len(unit)) for k in range(50)
                    for r, s, e in alone]


def test_a_run_of_one_digit_groups_is_read_in_one_pass() -> None:
    """"0 0 0 0 …" is one run of 5,000 one-digit groups: each group's candidates (10-15
    digits from it) are found from where they can start, not by walking back from the
    run's end (a pass over the run per group: 0.83 s for one message before). Counted in
    executed lines of `find_phones`, a number that does not depend on the machine."""
    code = phones.find_phones.__code__
    lines = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code is code else None

    text = ScanText(("0 0 0 0" * 1500)[:LONG])
    sys.settrace(tracer)
    try:
        hits = phones.find_phones(text)
    finally:
        sys.settrace(None)
    assert hits == []  # zeros are no phone number
    assert 0 < lines <= 100 * LONG, lines


class _CountingPattern:
    """A compiled pattern that counts the characters its searches are given."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.looked = 0

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None) -> Any:
        self.looked += (len(text) if endpos is None else endpos) - pos
        return self.pattern.finditer(text, pos, len(text) if endpos is None else endpos)

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> Any:
        self.looked += (len(text) if endpos is None else endpos) - pos
        return self.pattern.search(text, pos, len(text) if endpos is None else endpos)


def test_sentence_bounds_read_the_text_once() -> None:
    """Thousands of questions about one long sentence (one per keyword of "住所 住所 …")
    read the text once, not once per question (0.1 s of a scan before)."""
    text = "こんにちは。" + "住所 " * 3300
    sentences = Sentences(text)
    counting = _CountingPattern(sentences._pattern)
    sentences._pattern = counting  # type: ignore[assignment]
    for k in range(6, len(text) - 2, 3):
        assert sentences.bounds(k, k + 2) == (6, len(text))
    assert counting.looked <= len(text)
