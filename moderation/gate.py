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
_MAX_TRIES: Final = 8  # `Prefiltered.search`: places tried before an ordinary search

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


def _ignores_case(pattern: str) -> bool:
    return bool(_parser.parse(pattern).state.flags & C.SRE_FLAG_IGNORECASE)


def literal_prefixes(pattern: str) -> frozenset[str] | None:
    """Prefixes one of which starts every match of ``pattern``; ``None`` if unknown."""
    found = {p for p, _ in _seq(_parser.parse(pattern))}
    if "" in found:
        return None
    return frozenset(found)


_DIGIT_ITEM: Final = (C.IN, [(C.CATEGORY, C.CATEGORY_DIGIT)])
_DIGIT: Final = re.compile(r"\d")


def digit_led_prefixes(pattern: str) -> frozenset[str] | None:
    """For an alternation whose alternatives each start with literal prefixes or with
    ``\\d`` ("¥5,000", "5000円", "you"): prefixes one of which starts every match that
    does not start with a digit; ``None`` if ``pattern`` is not such an alternation."""
    parsed = _parser.parse(pattern)
    if len(parsed.data) != 1 or parsed.data[0][0] is not C.BRANCH:
        return None
    out: set[str] = set()
    digit_led = False
    for alt in parsed.data[0][1][1]:
        found = {p for p, _ in _seq(alt)}
        if "" not in found:
            out |= found
        elif alt.data and alt.data[0] == _DIGIT_ITEM:
            digit_led = True
        else:
            return None
    return frozenset(out) if digit_led and out else None


class Gate:
    """Which of ``patterns`` can match a text, and at which start positions.

    ``None`` entries always run.  ``folded[i]`` says that pattern ``i`` runs on a
    case-preserving view while `candidates` is given the lower-cased view of the same
    length (its prefixes are lower-cased; a non-ASCII prefix makes the rule always run).
    A pattern left out of the automaton for its one-character prefixes ("X") still runs
    only if one of its literal prefixes occurs in the text it runs on (a plain ``in``).
    """

    def __init__(self, patterns: Sequence[str | None], folded: Sequence[bool] = ()) -> None:
        per_rule: list[frozenset[str] | None] = []
        self._folded = tuple(i < len(folded) and folded[i] for i in range(len(patterns)))
        # Rule -> literals one of which occurs in every text the rule can match.
        self._present: dict[int, tuple[str, ...]] = {}
        for i, p in enumerate(patterns):
            found = None if p is None else literal_prefixes(p)
            raw = found
            if found is not None and self._folded[i]:
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
                if raw is not None and p is not None and not _ignores_case(p):
                    self._present[i] = tuple(sorted(raw))
            per_rule.append(found)
        self._always = tuple(i for i, s in enumerate(per_rule) if s is None)
        self._always_checks = tuple((i, self._present.get(i), self._folded[i]) for i in self._always)
        owners: dict[str, list[int]] = {}
        for i, s in enumerate(per_rule):
            for prefix in s or ():
                owners.setdefault(prefix, []).append(i)
        self._automaton: Any = None
        self._ascii_automaton: Any = None
        if owners:
            self._automaton = self._ascii_automaton = _automaton(owners)
            # Pure-ASCII texts (about half) need only the ASCII prefixes: a smaller trie
            # is walked faster.
            ascii_owners = {p: r for p, r in owners.items() if p.isascii()}
            if len(ascii_owners) < len(owners):
                self._ascii_automaton = _automaton(ascii_owners)

    def always(self, text: str, cased: str | None = None) -> list[int]:
        """The rules not in the automaton that can match (see `candidates`)."""
        out: list[int] = []
        for i, literals, folded in self._always_checks:
            if literals is not None:
                hay = cased if folded else text
                if hay is not None:
                    for literal in literals:
                        if literal in hay:
                            break
                    else:
                        continue
            out.append(i)
        return out

    def starts(self, text: str) -> list[tuple[int, int]]:
        """``(rule, start)`` for every prefix occurrence in ``text``, sorted (a rule's
        starts may repeat when two of its prefixes start at the same place)."""
        automaton = self._ascii_automaton if text.isascii() else self._automaton
        if automaton is None:
            return []
        found = [(i, end - back) for end, owners in automaton.iter(text) for i, back in owners]
        found.sort()
        return found

    def candidates(self, text: str, cased: str | None = None) -> dict[int, list[int] | None]:
        """Rule index -> sorted start positions of its prefixes (``None``: anywhere).

        ``cased``: the case-preserving text folded rules run on (same length as ``text``);
        without it, folded rules that are not in the automaton always run.
        """
        out: dict[int, list[int] | None] = {i: None for i in self.always(text, cased)}
        for i, start in self.starts(text):
            at = out.get(i)
            if at is None:
                out[i] = [start]
            elif at[-1] != start:
                at.append(start)
        return out


# Characters of chat text, roughly the most frequent first (English, then Japanese).
# ``pyahocorasick`` looks a character up among a node's children one by one, in the order
# they were added, and most characters are looked up at the root, which has a child per
# first character of a prefix (about 130): a character that starts no prefix is compared
# with every one.  So the root's children are added in this order, and a common character
# that starts no prefix gets a child of its own (a placeholder entry that reports no rule)
# near the front: about a third fewer instructions for the pass over mixed-language text.
_COMMON_CHARS: Final = (
    " etaoinsrhldcumfpgwybvk.,\n'-?!:/"
    "のいしてにとたはかなるをすでがうっれまりくこらんもおさだきよあけつー、。ンスルトイクリラタシアッロカ"
)
_PLACEHOLDER: Final = "\uffff"  # ends each placeholder entry (no rule starts with it)


def _automaton(owners: dict[str, list[int]]) -> Any:
    """Prefix -> ``((rule, len - 1), ...)`` for every rule owning the prefix (placeholder
    entries, see `_COMMON_CHARS`: ``()``)."""
    automaton = ahocorasick.Automaton()
    by_first: dict[str, list[str]] = {}
    for prefix in owners:
        by_first.setdefault(prefix[0], []).append(prefix)
    ascii_only = all(prefix.isascii() for prefix in owners)
    order = [c for c in _COMMON_CHARS if c in by_first or c.isascii() or not ascii_only]
    order += [c for c in by_first if c not in order]
    for c in order:
        for prefix in by_first.get(c, ()):
            automaton.add_word(prefix, tuple((i, len(prefix) - 1) for i in owners[prefix]))
        if c not in by_first:
            automaton.add_word(c + _PLACEHOLDER, ())
    automaton.make_automaton()
    return automaton


def first_matches(pattern: re.Pattern[str], text: str, positions: list[int]) -> list[re.Match[str]]:
    """``list(pattern.finditer(text))``, trying only ``positions`` (sorted) as match starts.

    Equivalent to `finditer` when every match of ``pattern`` starts at one of
    ``positions`` and is not empty (guaranteed by a non-empty literal prefix).
    """
    out: list[re.Match[str]] = []
    match = pattern.match
    after = 0
    for pos in positions:
        if pos >= after:
            m = match(text, pos)
            if m is not None:
                after = m.end()
                out.append(m)
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
    else:
        yield from first_matches(pattern, text, positions)


class Prefiltered:
    """A pattern searched only after a cheap necessary condition holds.

    The condition is one of the pattern's literal prefixes occurring in the searched
    range, found with one alternation of plain literals (the regex engine skips straight
    to their first characters, unlike patterns that start with a lookbehind or a group).
    For an IGNORECASE pattern the prefixes are lower-cased and the condition is only used
    when the caller says the text is lower-cased and free of odd case folds (İ ı ſ K).
    """

    __slots__ = ("_digit_led", "_folded", "_hint", "_literals", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._folded = bool(pattern.flags & re.IGNORECASE)
        found = literal_prefixes(pattern.pattern)
        # Some alternatives start with a digit (prices): `exists` uses the other
        # alternatives' prefixes when the range holds no digit.
        self._digit_led = False
        if found is None:
            found = digit_led_prefixes(pattern.pattern)
            self._digit_led = found is not None
        if found is not None and self._folded:
            found = frozenset(p.lower() for p in found)
        self._hint = (
            None if found is None or self._digit_led
            else re.compile("|".join(re.escape(p) for p in sorted(found, key=lambda p: (-len(p), p))))
        )
        # The same prefixes in an Aho-Corasick automaton (value: length), for `exists`.
        self._literals: Any = None
        if found is not None:
            automaton = ahocorasick.Automaton()
            for prefix in found:
                automaton.add_word(prefix, len(prefix))
            automaton.make_automaton()
            self._literals = automaton

    def exists(
        self, text: str, lo: int = 0, hi: int | None = None, *, plain_lower: bool = False
    ) -> bool:
        """Whether ``pattern.search(text, lo, hi)`` finds a match.

        One Aho-Corasick pass over the range finds where the literal prefixes occur (a
        long alternation costs the regex engine a try per alternative at most places);
        the pattern is tried only there.  After `_MAX_TRIES` places the range is searched
        the ordinary way (bounded cost on odd texts).
        """
        end = len(text) if hi is None else hi
        literals = self._literals
        if (
            literals is None
            or not (plain_lower or not self._folded)
            or (self._digit_led and _DIGIT.search(text, lo, end) is not None)
        ):
            return self.pattern.search(text, lo, end) is not None
        match = self.pattern.match
        tries = 0
        for last, size in literals.iter(text, lo, end):
            if tries == _MAX_TRIES:
                return self.pattern.search(text, lo, end) is not None
            if match(text, last - size + 1, end) is not None:
                return True
            tries += 1
        return False

    def search(
        self, text: str, lo: int = 0, hi: int | None = None, *, plain_lower: bool = False
    ) -> re.Match[str] | None:
        """``pattern.search(text, lo, hi)``.

        Every match starts where one of the literal prefixes starts, so the pattern is
        tried (``match``) only at the places the hint finds, leftmost first: the first
        success is the match ``search`` would return.  Most patterns here start with a
        lookbehind or a long alternation, which the regex engine cannot skip through, so
        this is much cheaper than searching the range.  After `_MAX_TRIES` places the
        rest of the range is searched the ordinary way (bounded cost on odd texts).
        """
        end = len(text) if hi is None else hi
        hint = self._hint
        if hint is None or not (plain_lower or not self._folded):
            return self.pattern.search(text, lo, end)
        found = hint.search(text, lo, end)
        match = self.pattern.match
        tries = 0
        while found is not None:
            at = found.start()
            if tries == _MAX_TRIES:
                return self.pattern.search(text, at, end)
            m = match(text, at, end)
            if m is not None:
                return m
            tries += 1
            found = hint.search(text, at + 1, end)
        return None
