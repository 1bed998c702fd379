"""The text being scanned, with its normalized views built lazily, and raw hits."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Final, NamedTuple

from moderation import normalize as nz

_SENTENCE_END: Final = re.compile(r"[。！？!?\n]|\.(?=\s|$)")


class Hit(NamedTuple):
    """A rule match on ``view``; ``start``/``end`` are offsets in ``view.text``."""

    rule: str
    view: nz.View
    start: int
    end: int


class Sentences:
    """Sentence boundaries of one text, for "same sentence" windows."""

    __slots__ = ("_ends", "_len")

    def __init__(self, text: str) -> None:
        self._ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        self._len = len(text)

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """The sentence containing ``[start, end)`` (widened if the span crosses one)."""
        i = bisect_right(self._ends, start)
        lo = self._ends[i - 1] if i > 0 else 0
        j = bisect_left(self._ends, end)
        hi = self._ends[j] if j < len(self._ends) else self._len
        return lo, hi


class ScanText:
    """The original text (one message, or a window of messages joined by ``\\n``)."""

    def __init__(self, original: str) -> None:
        self.original = original
        self._base: nz.View | None = None
        self._kw: nz.View | None = None
        self._cased: nz.View | None = None
        self._digits: nz.View | None = None
        self._sentences: dict[int, Sentences] = {}

    @property
    def base(self) -> nz.View:
        if self._base is None:
            self._base = nz.base(nz.identity(self.original))
        return self._base

    @property
    def cased(self) -> nz.View:
        """Base, spaced-out letters joined, leetspeak undone; case kept."""
        if self._cased is None:
            self._cased = nz.deleet(nz.squeeze(self.base))
        return self._cased

    @property
    def kw(self) -> nz.View:
        """Keyword view: `cased` lower-cased, with the same offsets."""
        if self._kw is None:
            self._kw = nz.lower(self.cased)
        return self._kw

    @property
    def digits(self) -> nz.View:
        if self._digits is None:
            self._digits = nz.digits(nz.squeeze(self.base))
        return self._digits

    def sentences(self, view: nz.View) -> Sentences:
        found = self._sentences.get(id(view))
        if found is None:
            found = self._sentences[id(view)] = Sentences(view.text)
        return found
