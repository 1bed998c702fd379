"""Fast path: decide cheaply which rules can possibly match a text.

For every rule anchor we derive, from the parsed regex, the set of literal prefixes (up to
`PREFIX_LEN` characters) that every match must start with.  All prefixes of all rules go
into one prefix-free trie regex scanned once (as a lookahead, so overlapping occurrences
are seen).  A rule runs only if one of its prefixes occurs.  Anchors with no literal
prefix (e.g. starting with ``\\d``) always run.  The derivation is conservative: a
prefix is only ever shortened, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any, Final

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
    """Which of ``patterns`` can match a text (``None`` entries always can)."""

    def __init__(self, patterns: Sequence[str | None]) -> None:
        per_rule = [None if p is None else literal_prefixes(p) for p in patterns]
        every = sorted({p for s in per_rule if s for p in s}, key=len)
        minimal: list[str] = []
        for p in every:
            if not any(p.startswith(m) for m in minimal):
                minimal.append(p)
        self._always = frozenset(i for i, s in enumerate(per_rule) if s is None)
        self._owners: dict[str, list[int]] = {}
        for i, s in enumerate(per_rule):
            for p in s or ():
                key = next(m for m in minimal if p.startswith(m))
                self._owners.setdefault(key, []).append(i)
        self._scan = re.compile("(?=(" + _trie(minimal) + "))") if minimal else None

    def candidates(self, text: str) -> set[int]:
        out = set(self._always)
        if self._scan is not None:
            for key in set(self._scan.findall(text)):
                out.update(self._owners[key])
        return out


def _trie(words: Iterable[str]) -> str:
    tree: dict[str, Any] = {}
    for w in words:
        node = tree
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _emit(tree)


def _emit(node: dict[str, Any]) -> str:
    alts = [re.escape(ch) + _emit(child) for ch, child in sorted(node.items()) if ch]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return "(?:" + body + ")?" if "" in node else body
