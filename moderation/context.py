"""The text being scanned, with its normalized views built lazily, and raw hits."""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Final, NamedTuple

from moderation import normalize as nz

# A sentence ends after 。！？!? or a newline, or after a "." followed by whitespace or the
# end (each pattern starts with one class, so the regex engine skips ahead fast).
_SENTENCE_END: Final = re.compile(r"[。！？!?\n.](?:(?<!\.)|(?=\s|$))")
# The same for ASCII text: a class of ASCII characters only is a bitmap, much cheaper for
# the regex engine to test at each character than one with 。！？ in it.
_ASCII_END: Final = re.compile(r"[!?\n.](?:(?<!\.)|(?=\s|$))")


class Hit(NamedTuple):
    """A rule match on ``view``; ``start``/``end`` are offsets in ``view.text``."""

    rule: str
    view: nz.View
    start: int
    end: int


class Sentences:
    """Sentence boundaries of one text, for "same sentence" windows.

    Every terminator of the text is listed once, on the first question (one pass of the
    regex engine, which skips ahead on the terminators' character class), and each
    question is then a binary search. Searching around each span instead (forward from
    its end, backward from its start) cost a pass over the rest of a long sentence per
    question: a 10,000-character message without a sentence end that repeats a keyword
    asked thousands of them.
    """

    __slots__ = ("_ends", "_pattern", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pattern = _ASCII_END if text.isascii() else _SENTENCE_END
        self._ends: list[int] | None = None  # offset of each terminator, in order

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """The sentence containing ``[start, end)`` (widened if the span crosses one).

        ``lo`` is the last sentence end at or before ``start`` (0 if none), ``hi`` the
        first at or after ``end`` (the length if none); a sentence end is the offset just
        after a terminator (terminators are one character: at ``q``, the end is ``q + 1``).
        """
        ends = self._ends
        if ends is None:
            ends = self._ends = [m.start() for m in self._pattern.finditer(self._text)]
        # the first terminator at or after ``end - 1`` (a span's last character may be one)
        i = bisect_left(ends, end - 1 if end > 0 else 0)
        hi = len(self._text) if i == len(ends) else ends[i] + 1
        if start <= 0:
            return 0, hi
        # the last terminator before ``start``
        j = bisect_left(ends, start) - 1
        return (0 if j < 0 else ends[j] + 1), hi


class ScanText:
    """The original text (one message, or a window of messages joined by ``\\n``).

    The views every scan needs are built at once; the digits view only on demand.
    """

    __slots__ = (
        "_digits",
        "_sentences",
        "ascii_digits",
        "base",
        "base_lower",
        "cased",
        "kw",
        "kw_plain",
        "original",
        "squeezed"
    )

    def __init__(self, original: str) -> None:
        self.original = original
        base, safe = nz.base_checked(nz.View(original))
        self.base: nz.View = base
        # Whether the base text's only digits are 0-9 (cheaper to look for than ``\d``).
        self.ascii_digits: bool = safe
        # `normalize.hint_lower` of the base text: for cheap necessary-condition checks.
        low = nz.hint_lower(base.text)
        self.base_lower: str | None = low
        if nz.may_squeeze_or_deleet(base.text):
            # Base with spaced-out letters joined.
            self.squeezed: nz.View = nz.squeeze(base)
            # Base, spaced-out letters joined, leetspeak undone; case kept.
            cased = self.cased = nz.deleet(self.squeezed)
        else:
            cased = self.squeezed = self.cased = base
        # Keyword view: `cased` lower-cased, with the same offsets.
        self.kw: nz.View
        # Whether the keyword view is free of odd case folds (see `normalize.hint_lower`).
        self.kw_plain: bool
        if cased is base and low is not None:
            # No odd case fold, so ``low`` has the length of the text: reuse it.
            self.kw = nz.View(low, base.parent, base.at, base.src, base.src_end, base.copied)
            self.kw_plain = True
        else:
            self.kw = nz.lower(cased)
            self.kw_plain = not nz.folds_oddly(self.kw.text)
        self._digits: nz.View | None = None
        self._sentences: dict[int, Sentences] = {}

    @property
    def digits(self) -> nz.View:
        if self._digits is None:
            squeezed = self.squeezed
            self._digits = nz.digits(
                squeezed, self.base_lower if squeezed is self.base else None
            )
        return self._digits

    def sentences(self, view: nz.View) -> Sentences:
        found = self._sentences.get(id(view))
        if found is None:
            found = self._sentences[id(view)] = Sentences(view.text)
        return found
