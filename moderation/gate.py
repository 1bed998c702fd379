"""Fast path: decide cheaply which rules can possibly match a text, and where.

For every rule anchor we derive, from the parsed regex, the set of literal prefixes (up to
`PREFIX_LEN` characters) that every match must start with.  All prefixes of all rules go
into one Aho-Corasick automaton (``pyahocorasick``) that finds every occurrence, overlapping
ones included, in one pass over the text.  A rule runs only if one of its prefixes occurs,
and its anchor is then tried (``Pattern.match``) only at those positions instead of being
searched for over the whole text.  Anchors with no literal prefix (e.g. starting with
``\\d``) always run over the whole text.  The derivation is conservative: a prefix is only
ever shortened, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any, Final

import ahocorasick

PREFIX_LEN: Final = 6
_MAX_SET: Final = 20000
_MAX_CLASS: Final = 12

_Exp = set[tuple[str, bool]]  # (literal prefix, can still be extended)


def _class_chars(items: Sequence[tuple[Any, Any]]) -> set[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is C.LITERAL:
            chars.add(chr(av))
        elif op is C.RANGE and av[1] - av[0] < _MAX_CLASS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:
            return None
    return chars if len(chars) <= _MAX_CLASS else None


def _item(op: Any, av: Any) -> _Exp:
    if op is C.LITERAL:
        return {(chr(av), True)}
    if op is C.IN:
        chars = _class_chars(av)
        return {("", False)} if chars is None else {(c, True) for c in chars}
    if op is C.SUBPATTERN:
        return _seq(av[-1])
    if op is C.BRANCH:
        out: _Exp = set()
        for alt in av[1]:
            out |= _seq(alt)
        return out
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        lo, hi, sub = av
        once = _seq(sub)
        if lo == hi == 1:
            return once
        if lo == 0 and hi == 1:
            return once | {("", True)}
        closed = {(p, False) for p, _ in once}
        return closed | {("", False)} if lo == 0 else closed
    if op in (C.ASSERT, C.ASSERT_NOT, C.AT):
        return {("", True)}
    return {("", False)}


def _seq(items: Iterable[tuple[Any, Any]]) -> _Exp:
    acc: _Exp = {("", True)}
    for op, av in items:
        if all(not open_ or len(p) >= PREFIX_LEN for p, open_ in acc):
            break
        exps = _item(op, av)
        nxt: _Exp = set()
        for p, open_ in acc:
            if not open_ or len(p) >= PREFIX_LEN:
                nxt.add((p, False))
                continue
            for s, o2 in exps:
                q = p + s
                nxt.add((q[:PREFIX_LEN], False) if len(q) >= PREFIX_LEN else (q, o2))
        acc = nxt
        if len(acc) > _MAX_SET:
            return {("", False)}
    return acc


def literal_prefixes(pattern: str) -> frozenset[str] | None:
    """Prefixes one of which starts every match of ``pattern``; ``None`` if unknown."""
    found = {p for p, _ in _seq(_parser.parse(pattern))}
    if "" in found:
        return None
    return frozenset(found)


class Gate:
    """Which of ``patterns`` can match a text, and at which start positions.

    ``None`` entries always run.  ``folded[i]`` says that pattern ``i`` runs on a
    case-preserving view while `candidates` is given the lower-cased view of the same
    length (its prefixes are lower-cased; a non-ASCII prefix makes the rule always run).
    """

    def __init__(self, patterns: Sequence[str | None], folded: Sequence[bool] = ()) -> None:
        per_rule: list[frozenset[str] | None] = []
        for i, p in enumerate(patterns):
            found = None if p is None else literal_prefixes(p)
            if found is not None and i < len(folded) and folded[i]:
                found = (
                    frozenset(x.lower() for x in found)
                    if all(x.isascii() for x in found)
                    else None
                )
            if found is not None and any(len(x) <= 1 for x in found):
                # A one-character prefix ("X" for X/Twitter) would report every such
                # character of a long text as a start (a run of "xxxx" costs the pre-pass
                # more than the regex): let the regex engine scan for it instead.
                found = None
            per_rule.append(found)
        self._always = tuple(i for i, s in enumerate(per_rule) if s is None)
        owners: dict[str, list[int]] = {}
        for i, s in enumerate(per_rule):
            for prefix in s or ():
                owners.setdefault(prefix, []).append(i)
        self._automaton: Any = None
        if owners:
            automaton = ahocorasick.Automaton()
            for prefix, rules in owners.items():
                automaton.add_word(prefix, (len(prefix) - 1, tuple(rules)))
            automaton.make_automaton()
            self._automaton = automaton

    def candidates(self, text: str) -> dict[int, list[int] | None]:
        """Rule index -> sorted start positions of its prefixes (``None``: anywhere)."""
        found: dict[int, set[int]] = {}
        if self._automaton is not None:
            for end, (back, rules) in self._automaton.iter(text):
                start = end - back
                for i in rules:
                    at = found.get(i)
                    if at is None:
                        found[i] = {start}
                    else:
                        at.add(start)
        out: dict[int, list[int] | None] = {i: None for i in self._always}
        for i, at in found.items():
            out[i] = sorted(at)
        return out


def matches_at(
    pattern: re.Pattern[str], text: str, positions: list[int] | None
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, trying only ``positions`` (sorted) as match starts.

    Equivalent to `finditer` when every match of ``pattern`` starts at one of
    ``positions`` and is not empty (guaranteed by a non-empty literal prefix).
    """
    if positions is None:
        yield from pattern.finditer(text)
        return
    match = pattern.match
    after = 0
    for pos in positions:
        if pos < after:
            continue
        m = match(text, pos)
        if m is not None:
            after = m.end()
            yield m


class Prefiltered:
    """A pattern searched only after a cheap necessary condition holds.

    The condition is one of the pattern's literal prefixes occurring in the searched
    range, found with one alternation of plain literals (the regex engine skips straight
    to their first characters, unlike patterns that start with a lookbehind or a group).
    For an IGNORECASE pattern the prefixes are lower-cased and the condition is only used
    when the caller says the text is lower-cased and free of odd case folds (İ ı ſ K).
    """

    __slots__ = ("_folded", "_hint", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._folded = bool(pattern.flags & re.IGNORECASE)
        found = literal_prefixes(pattern.pattern)
        if found is not None and self._folded:
            found = frozenset(p.lower() for p in found)
        self._hint = (
            None if found is None
            else re.compile("|".join(re.escape(p) for p in sorted(found, key=lambda p: (-len(p), p))))
        )

    def search(
        self, text: str, lo: int = 0, hi: int | None = None, *, plain_lower: bool = False
    ) -> re.Match[str] | None:
        """``pattern.search(text, lo, hi)``."""
        end = len(text) if hi is None else hi
        hint = self._hint
        if hint is not None and (plain_lower or not self._folded):
            if hint.search(text, lo, end) is None:
                return None
        return self.pattern.search(text, lo, end)
