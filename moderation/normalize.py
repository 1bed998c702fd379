"""Text normalization that keeps an offset map back to the original text.

A `View` is a rewritten text plus a map giving, for every character of it, the span
``[start, end)`` of the original text it came from.  Views are built by composing `rewrite` steps, so a regex
match on any view maps back to the original with `View.span`.

The steps (each a pure function ``View -> View``):

* `base`        NFKC (full/half width, circled ①, math 𝟐, ⓢ), extra digit forms NFKC
                misses (➀ ❶ ⓵ ⓿, keycap 0️⃣), zero-width/format characters removed, dash
                variants to ``-``, Cyrillic/Greek homoglyphs to Latin.  Case is kept.
* `squeeze`     letters spaced out or dotted ("t e l e g r a m", "d.i.s.c.o.r.d",
                "マ イ ナ ン バ ー") joined together.
* `deleet`      digits and symbols inside words (d1sc0rd, b@nk) to letters.
* `digits`      number words to digits: kanji (〇九〇, 零壱参), kana (ぜろきゅう, ゴーゴー),
                English (two oh two), and O used as zero ("O9O").
* `spelled_email` ``(at)``, ``[dot]``, アットマーク, ドット, ★ to ``@``/``.``.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Final


class View:
    """A rewritten text and how it maps back to the view it was rewritten from.

    The map is kept per piece, not per character (long texts stay cheap): ``at[k]`` is
    where piece ``k`` starts in ``text``; it came from ``[src[k], src_end[k])`` of
    ``parent``, either copied unchanged (``copied[k]``) or as a replacement, every
    character of which maps to that whole span.  ``parent is None``: the original text.
    """

    __slots__ = ("at", "copied", "parent", "src", "src_end", "text")

    # A plain slotted class, not a frozen dataclass: several views are built per scan and
    # a frozen dataclass's __init__ (one object.__setattr__ per field) is measurably slower.
    # Treat instances as immutable.
    def __init__(
        self,
        text: str,
        parent: View | None = None,
        at: Sequence[int] = (),
        src: Sequence[int] = (),
        src_end: Sequence[int] = (),
        copied: Sequence[bool] = (),
    ) -> None:
        self.text = text
        self.parent = parent
        self.at = at
        self.src = src
        self.src_end = src_end
        self.copied = copied

    def _start(self, i: int) -> int:
        """Original offset where character ``i`` of this view starts."""
        view: View = self
        while view.parent is not None:
            k = bisect_right(view.at, i) - 1
            i = view.src[k] + (i - view.at[k]) if view.copied[k] else view.src[k]
            view = view.parent
        return i

    def _end(self, i: int) -> int:
        """Original offset where character ``i`` of this view ends."""
        view: View = self
        while view.parent is not None:
            k = bisect_right(view.at, i) - 1
            i = view.src[k] + (i - view.at[k]) if view.copied[k] else view.src_end[k] - 1
            view = view.parent
        return i + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map ``[start, end)`` of this view to ``[start, end)`` of the original text."""
        if self.parent is None:
            return start, end
        if end <= start:
            if start < len(self.text):
                pos = self._start(start)
            else:
                pos = self._end(len(self.text) - 1) if self.text else 0
            return pos, pos
        return self._start(start), self._end(end - 1)


def identity(text: str) -> View:
    return View(text)


def rewrite(
    view: View,
    pattern: re.Pattern[str],
    repl: Callable[[re.Match[str]], str],
    matches: Iterable[re.Match[str]] | None = None,
) -> View:
    """Replace every match of ``pattern`` by ``repl(match)``, keeping the offset map.

    Each character of a replacement maps to the whole original span of the match.
    ``matches``, if given, replaces ``pattern.finditer(view.text)`` (same matches, found
    faster by the caller).
    """
    text = view.text
    found = iter(pattern.finditer(text) if matches is None else matches)
    first = next(found, None)
    if first is None:
        return view
    pieces: list[str] = []
    at: list[int] = []
    src: list[int] = []
    src_end: list[int] = []
    copied: list[bool] = []
    pos = 0
    out = 0
    for m in chain((first,), found):
        a, b = m.span()
        if a == b:
            continue
        r = repl(m)
        if r == text[a:b]:
            continue
        if a > pos:
            pieces.append(text[pos:a])
            at.append(out)
            src.append(pos)
            src_end.append(a)
            copied.append(True)
            out += a - pos
        if r:
            pieces.append(r)
            at.append(out)
            src.append(a)
            src_end.append(b)
            copied.append(False)
            out += len(r)
        pos = b
    if not at and pos == 0:
        return view
    if pos < len(text):
        pieces.append(text[pos:])
        at.append(out)
        src.append(pos)
        src_end.append(len(text))
        copied.append(True)
    return View("".join(pieces), view, at, src, src_end, copied)


def left_bounded(words: Iterable[str], before: str) -> str:
    """``(?<!BEFORE)(?:w1|w2|...)`` for literal words, written so the pattern starts with
    the words (the regex engine then skips ahead to their first letters): the one-character
    lookbehind moves after each word's first letter.

    Words with the same first letter share it and its lookbehind (``o(?<!…o)(?:h|ne)``),
    in their given order: at any place only one first letter can match, so the engine
    tries the same words in the same order and finds the same matches, with fewer tries.
    """
    groups: dict[str, list[str]] = {}
    for w in words:
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "(?:" + "|".join(
        re.escape(c) + "(?<!" + before + re.escape(c) + ")"
        + (rests[0] if len(rests) == 1 else "(?:" + "|".join(rests) + ")")
        for c, rests in groups.items()
    ) + ")"


# --------------------------------------------------------------------------- base

_ZERO_WIDTH: Final = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068"
    "\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u20e3\ufeff"
)
_DASHES: Final = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d\u2e3a\u2e3b"
_HOMOGLYPHS: Final = {
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ѕ": "s", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "к": "k",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ѕ": "S", "Ј": "J",
    "α": "a", "ο": "o", "ν": "v", "ε": "e", "ρ": "p", "τ": "t", "ι": "i", "κ": "k",
    "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X", "Υ": "Y", "Ζ": "Z",
}


def _digit_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for first, count, value in (
        (0x2780, 10, 1), (0x278A, 10, 1), (0x2776, 10, 1), (0x24F5, 10, 1), (0x24EB, 10, 11),
    ):
        for i in range(count):
            table[chr(first + i)] = str(value + i)
    for ch in ("\u24ff", "\U0001f10b", "\U0001f10c"):
        table[ch] = "0"
    return table


_CHAR_TABLE: Final[dict[str, str]] = {
    **{ch: "" for ch in _ZERO_WIDTH},
    **{chr(c): "" for c in range(0xFE00, 0xFE10)},
    **{ch: "-" for ch in _DASHES},
    **_HOMOGLYPHS,
    **_digit_table(),
    "\u3000": " ",
    "\u2800": " ",  # braille blank
}
_char_cache: dict[str, str] = {}

# Everything outside these ranges is looked at one cluster at a time.
_UNSAFE: Final = re.compile(
    r"[^\t\n\x20-\x7e\u3041-\u3096\u309d-\u309f\u30a1-\u30ff\u4e00-\u9fff"
    r"\u3001\u3002\u3005-\u3007\u3008-\u3011\u301c]"
    r"[\u3099\u309a\uff9e\uff9f\U000e0020-\U000e007f]*"
)


def _fold_cluster(m: re.Match[str]) -> str:
    return _fold_cluster_text(m.group())


def _fold_cluster_text(cluster: str) -> str:
    cached = _char_cache.get(cluster)
    if cached is not None:
        return cached
    if cluster in _CHAR_TABLE:
        out = _CHAR_TABLE[cluster]
    else:
        first = _CHAR_TABLE.get(cluster[0])
        if first is not None:
            out = first
        else:
            out = unicodedata.normalize("NFKC", cluster)
            # Combining marks left over (a strike-through or underline on each letter,
            # "L\u0336I\u0336N\u0336E\u0336") are dropped.
            out = "".join(
                _CHAR_TABLE.get(c, c) for c in out if unicodedata.category(c) not in ("Mn", "Me")
            )
    if len(_char_cache) < 4096:
        _char_cache[cluster] = out
    return out


# Characters known to fold to exactly one character.
_one_to_one: dict[str, str] = {}


def base(view: View) -> View:
    """NFKC, digit forms, zero-width removal, dashes and homoglyphs."""
    return base_checked(view)[0]


def base_checked(view: View) -> tuple[View, bool]:
    """`base`, and whether every character of ``view.text`` is in the ranges `_UNSAFE`
    leaves alone (the view is then ``view`` itself, and its only digits are 0-9: no other
    decimal digit is in those ranges)."""
    text = view.text
    if text.isascii() and text.isprintable():  # nothing outside ASCII, no control character
        return view, True
    clusters = _UNSAFE.findall(text)
    if not clusters:
        return view, True
    # Fast path: when every cluster is one character folding to one character (full-width
    # punctuation and letters, dashes, homoglyphs), the fold keeps every offset, so
    # `str.replace` per distinct character and a one-piece offset map give the same view
    # as `rewrite`.
    table = _one_to_one
    folded = text
    for cluster in set(clusters):
        out = table.get(cluster)
        if out is None:
            if len(cluster) != 1:
                return rewrite(view, _UNSAFE, _fold_cluster), False
            out = _fold_cluster_text(cluster)
            if len(out) != 1 or len(table) >= 4096:
                return rewrite(view, _UNSAFE, _fold_cluster), False
            table[cluster] = out
        if out != cluster:
            folded = folded.replace(cluster, out)
    if folded is text:
        return view, False
    return View(folded, view, (0,), (0,), (len(text),), (True,)), False


# --------------------------------------------------------------------------- squeeze

_TOKEN: Final = r"(?:[^\W_]|[@_])"
_SPACED: Final = re.compile(
    r"(?<![^\s(\[「『'\"“:：→>])"
    + _TOKEN
    + r"(?P<sep>[ .\-・*/])"
    + _TOKEN
    + r"(?:(?P=sep)"
    + _TOKEN
    + r")+(?![^\s)\]」』'\"”.,!?。、:：;→])"
)


# Necessary for `_SPACED`: token, separator, token, the same separator (cheap to search:
# the pattern starts with a character class, which the regex engine skips to).
_SPACED_HINT: Final = re.compile(r"[\w@]([ .\-・*/])[\w@]\1")
# Necessary for `_SPACED` and cheaper to search (separators are rarer than letters): the
# last three tokens of a run, then a character that is not a token (the right edge).  In
# three patterns: with spaces (a literal first character: the fastest search there is),
# with the other ASCII separators (a small class), with ・.
_SPACED_QUICK: Final = re.compile(r"([ .\-・*/])[\w@]\1[\w@](?![\w@])")
_SPACED_QUICK_SPACE: Final = re.compile(r" [\w@] [\w@](?![\w@])")
_SPACED_QUICK_OTHER: Final = re.compile(r"([.\-*/])[\w@]\1[\w@](?![\w@])")
_SPACED_QUICK_NAKAGURO: Final = re.compile(r"・[\w@]・[\w@](?![\w@])")


# `_SPACED_QUICK_OTHER` or `_LEET` in one pass (their first characters are disjoint and
# rare in plain text).
_QUICK_OTHER_OR_LEET: Final = re.compile(
    r"[.\-*/013457@$](?:(?<=([.\-*/]))[\w@]\1[\w@](?![\w@])"
    r"|(?<=[A-Za-z][013457@$])(?=[A-Za-z]))"
)


def may_squeeze_or_deleet(text: str) -> bool:
    """False only if `squeeze` and then `deleet` would both return ``text``'s view as is."""
    return (
        _SPACED_QUICK_SPACE.search(text) is not None
        or _QUICK_OTHER_OR_LEET.search(text) is not None
        or ("・" in text and _SPACED_QUICK_NAKAGURO.search(text) is not None)
    )


def _join_spaced(m: re.Match[str]) -> str:
    return m.group().replace(m.group("sep"), "")


def squeeze(view: View) -> View:
    """Join runs of three or more single characters separated by one repeated separator."""
    text = view.text
    if (
        _SPACED_QUICK_SPACE.search(text) is None
        and _SPACED_QUICK_OTHER.search(text) is None
        and ("・" not in text or _SPACED_QUICK_NAKAGURO.search(text) is None)
    ) or _SPACED_HINT.search(text) is None:
        return view
    return rewrite(view, _SPACED, _join_spaced)


# --------------------------------------------------------------------------- deleet

_LEET_MAP: Final = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# Same as ``(?<=[A-Za-z])[013457@$](?=[A-Za-z])``, written to start with the class.
_LEET: Final = re.compile(r"[013457@$](?<=[A-Za-z].)(?=[A-Za-z])")


def _unleet(m: re.Match[str]) -> str:
    return _LEET_MAP[m.group()]


def deleet(view: View) -> View:
    """Turn ``d1sc0rd``/``b@nk`` into ``discord``/``bank`` (only between letters)."""
    first = _LEET.search(view.text)
    if first is None:
        return view
    return rewrite(view, _LEET, _unleet, chain((first,), _LEET.finditer(view.text, first.end())))


def lower(view: View, low: str | None = None) -> View:
    """Lower-case without changing the length (characters that would grow are kept).

    ``low``: ``view.text.lower()`` if the caller has it already.
    """
    text = view.text
    if low is None:
        low = text.lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return View(low, view.parent, view.at, view.src, view.src_end, view.copied)


# --------------------------------------------------------------------------- digits

_KANJI_DIGITS: Final = {
    "〇": "0", "零": "0", "一": "1", "壱": "1", "壹": "1", "二": "2", "弐": "2", "貳": "2",
    "三": "3", "参": "3", "參": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6",
    "陸": "6", "七": "7", "漆": "7", "八": "8", "捌": "8", "九": "9", "玖": "9",
}
_KANJI_RUN: Final = re.compile("[" + "".join(_KANJI_DIGITS) + "]{2,}")

_KANA_WORDS: Final = {
    "ぜろ": "0", "ゼロ": "0", "れい": "0", "レイ": "0", "まる": "0", "マル": "0",
    "いち": "1", "イチ": "1", "にい": "2", "にー": "2", "ニー": "2", "に": "2", "ニ": "2",
    "さん": "3", "サン": "3", "よん": "4", "ヨン": "4", "ごー": "5", "ごお": "5", "ゴー": "5",
    "ご": "5", "ゴ": "5", "ろく": "6", "ロク": "6", "なな": "7", "ナナ": "7", "しち": "7",
    "シチ": "7", "はち": "8", "ハチ": "8", "きゅう": "9", "きゅー": "9", "キュウ": "9",
    "キュー": "9", "く": "9", "ク": "9",
}
_KANA_DISTINCT: Final = frozenset(
    w for w in _KANA_WORDS if len(w) > 1 and w not in ("にい", "にー", "ニー", "ごお")
)
_KANA_ALT: Final = "|".join(sorted(_KANA_WORDS, key=len, reverse=True))
_KANA_TOKEN: Final = re.compile(_KANA_ALT)
# ``(?:(?:ALT)SEP*){3,}`` with the first repetition written out, so the pattern starts
# with a literal alternation (the regex engine then skips to its first characters).
_KANA_RUN: Final = re.compile(
    r"(?:" + _KANA_ALT + r")[\s、・,\-ー]*(?:(?:" + _KANA_ALT + r")[\s、・,\-ー]*){2,}"
)

_EN_WORDS: Final = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_EN_ALT: Final = "|".join(sorted(_EN_WORDS, key=len, reverse=True))
# A run of number words, digits mixed in ("zero nine zero 1234 5678", "0 nine 0 1 2 …"):
# every run starts with a word (see `_number_word_runs`).
_EN_RUN: Final = re.compile(
    r"(?i)(?<![A-Za-z])(?:" + _EN_ALT + r")(?![A-Za-z])[\s,\-.]*"
    r"(?:(?:(?:" + _EN_ALT + r")(?![A-Za-z])|[0-9]+(?![A-Za-z]))[\s,\-.]*){2,}"
)
_EN_OR_DIGITS: Final = re.compile(r"(?i)\b(?:" + _EN_ALT + r")\b|[0-9]+")
# Letters for digits in a run of digits: O for 0, I, l and | for 1 ("O9O-I234-5678").
_O_AS_ZERO: Final = re.compile(
    r"(?<![A-Za-z])[0-9oOIl|](?:[\s\-]?[0-9oOIl|]){2,}(?![A-Za-z])"
)
# Necessary for a rewrite by `_O_AS_ZERO` (two digits with only such letters between them).
_O_AS_ZERO_HINT: Final = re.compile(r"[0-9](?:[\s\-]?[oOIl|])*[\s\-]?[0-9]")
# Also necessary (a rewritten run holds such a letter next to a digit), and rarer in plain
# text.
_O_NEXT_TO_DIGIT: Final = re.compile(
    r"[oOIl|](?:(?<=[0-9].)|(?<=[0-9][\s\-].)|(?=[\s\-]?[0-9]))"
)
# A number word not preceded or followed by a letter: where an `_EN_RUN` match can start.
_EN_HINT: Final = re.compile(
    left_bounded(sorted(_EN_WORDS, key=len, reverse=True), "[a-z]") + r"(?![a-z])"
)
_LONG_MARK_BETWEEN: Final = re.compile(r"[ー〜~](?<=\d.)(?=\d)")
# A single kanji digit among ASCII digits ("0九0-1234-5678").
_KANJI_ONE: Final = re.compile("[" + "".join(_KANJI_DIGITS) + r"](?:(?<=[0-9].)|(?=[0-9]))")
# A phone label glued to the digits ("TEL090-…", "TEL.090-…") or a word glued after a
# grouped number ("090-1234-5678ok"): a space is put between them.
_GLUED: Final = re.compile(r"[Ll](?<=[Tt][Ee][Ll])[.:]?(?=[0-9])|[0-9](?<=[\-\s][0-9]{4})(?=[A-Za-z])")
# Necessary for `_GLUED` and faster to search (they start with literals).
_GLUED_TEL: Final = re.compile(r"(?i)tel[.:]?[0-9]")
_GLUED_AFTER: Final = re.compile(r"[0-9][A-Za-z](?<=[\-\s][0-9]{4}.)")


def _unglue(m: re.Match[str]) -> str:
    return m.group() + " "


def _number_word_runs(text: str, low: str | None = None) -> list[re.Match[str]]:
    """``list(_EN_RUN.finditer(text))``, tried only where a number word not preceded by a
    letter starts (every run starts there; ``_EN_RUN`` starts with a lookbehind and is
    IGNORECASE, so searching the whole text tries every position).  ``low``: `hint_lower`
    of ``text`` if known."""
    if low is None:
        low = hint_lower(text)
    if low is None:
        return list(_EN_RUN.finditer(text))
    out: list[re.Match[str]] = []
    after = 0
    match = _EN_RUN.match
    for word in _EN_HINT.finditer(low):
        if word.start() >= after:
            m = match(text, word.start())
            if m is not None and m.end() > m.start():
                out.append(m)
                after = m.end()
    return out


def _kanji(m: re.Match[str]) -> str:
    return "".join(_KANJI_DIGITS[c] for c in m.group())


def _kana(m: re.Match[str]) -> str:
    run = m.group()
    found = list(_KANA_TOKEN.finditer(run))
    if not any(t.group() in _KANA_DISTINCT for t in found):
        return run
    return "".join(_KANA_WORDS[t.group()] for t in found) + " "


def _kana_runs(text: str) -> Iterator[re.Match[str]]:
    """``_KANA_RUN.finditer(text)``, each run cut before a one-kana particle ending it (に,
    ご, く): after a separator ("…はち に電話"), or glued to a full number and followed by a
    word ("…ななはちに電話"); so the particle is left as it is, outside the number's span."""
    for m in _KANA_RUN.finditer(text):
        found = list(_KANA_TOKEN.finditer(text, m.start(), m.end()))
        end = m.end()
        while len(found) > 3 and len(found[-1].group()) == 1 and (
            found[-1].start() > found[-2].end()
            or (len(found) > 10 and found[-1].end() == end < len(text) and not text[end].isspace())
        ):
            found.pop()
            end = found[-1].end()
        if end == m.end():
            yield m
        else:
            cut = _KANA_RUN.match(text, m.start(), end)
            if cut is not None:
                yield cut


# Characters IGNORECASE matches with an ASCII letter that ``str.lower`` does not map to it
# ("nıne", "ſix"): folded before looking a matched number word up.
_ODD_FOLDS: Final = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _english(m: re.Match[str]) -> str:
    tokens = [t.translate(_ODD_FOLDS).lower() for t in _EN_OR_DIGITS.findall(m.group())]
    # Words other than "o"/"oh": two at least, or one among digits and three in all.
    words = sum(1 for t in tokens if not t[0].isdigit() and t not in ("o", "oh"))
    digits = sum(len(t) for t in tokens if t[0].isdigit())
    if words < 1 or words + digits < (3 if digits else 2):
        return m.group()
    return "".join(t if t[0].isdigit() else _EN_WORDS[t] for t in tokens) + " "


_AS_DIGITS: Final = str.maketrans("oOIl|", "00111")


def _o_zero(m: re.Match[str]) -> str:
    s = m.group()
    if sum(c.isdigit() for c in s) < 2:
        return s
    return s.translate(_AS_DIGITS)


def digits(view: View, low: str | None = None) -> View:
    """Spell-out digits (kanji, kana, English words, letter O) as ASCII digits.

    ``low``: `hint_lower` of ``view.text`` if the caller has it.
    """
    text = view.text
    if not text.isascii():
        if _KANJI_RUN.search(text):
            view = rewrite(view, _KANJI_RUN, _kanji)
        if _KANJI_ONE.search(view.text):
            view = rewrite(view, _KANJI_ONE, _kanji)
        if _KANA_RUN.search(view.text):
            view = rewrite(view, _KANA_RUN, _kana, _kana_runs(view.text))
    runs = _number_word_runs(view.text, low if view.text is text else None)
    if runs:
        view = rewrite(view, _EN_RUN, _english, runs)
    if _O_NEXT_TO_DIGIT.search(view.text) and _O_AS_ZERO_HINT.search(view.text):
        view = rewrite(view, _O_AS_ZERO, _o_zero)
    text = view.text
    if (_GLUED_TEL.search(text) or _GLUED_AFTER.search(text)) and _GLUED.search(text):
        view = rewrite(view, _GLUED, _unglue)
        text = view.text
    if ("ー" in text or "〜" in text or "~" in text) and _LONG_MARK_BETWEEN.search(text):
        view = rewrite(view, _LONG_MARK_BETWEEN, lambda m: "-")
    return view


# --------------------------------------------------------------------------- email

_AT_STRONG: Final = re.compile(
    r"\s*[(\[{<（【]\s*(?:at|アット(?:マーク)?|あっと(?:まーく)?)\s*[)\]}>）】]\s*"
    r"|\s*(?:アットマーク|アット|あっとまーく|あっと|★|☆)\s*"
    r"|(?<=[A-Za-z0-9._\-])\s*@\s*(?=[A-Za-z0-9\-]+(?:\s*[.。]|\s*[(\[（【]?\s*(?:dot|ドット)))",
    re.IGNORECASE,
)
_TLD: Final = r"(?:com|net|org|jp|co\.jp|ne\.jp|io|me|info|biz|dev|app|co|uk|us)"
# Necessary for the 。/spaced-dot alternatives of `_DOT`: a 。 or a dot with whitespace
# around it, then a common top-level domain.
_SPACED_DOT_HINT: Final = re.compile(
    r"(?:。|\.(?:(?<=\s\.)|(?=\s)))\s*" + _TLD + r"(?![A-Za-z0-9])", re.I
)
_AT_WEAK: Final = re.compile(r"(?<=[A-Za-z0-9])\s+at\s+(?=[A-Za-z0-9])", re.IGNORECASE)
_DOT: Final = re.compile(
    r"\s*[(\[{<（【]\s*(?:dot|ドット|どっと)\s*[)\]}>）】]\s*"
    r"|\s*(?:ドット|どっと)\s*"
    r"|(?<=[A-Za-z0-9])\s+dot\s+(?=[A-Za-z0-9])",
    re.IGNORECASE,
)
# An ideographic full stop or a spaced dot before a common top-level domain
# ("tanaka@gmail。com", "tanaka@gmail . com"; a rewrite of its own, after `_DOT`).
_ODD_DOT: Final = re.compile(
    r"(?<=[A-Za-z0-9])(?:\s*。\s*|\s+\.\s*|\.\s+)(?=" + _TLD + r"(?![A-Za-z0-9]))", re.IGNORECASE
)
# Where the part after the leading whitespace of an `_AT_STRONG`, `_DOT` or `_AT_WEAK`
# match can start (see `ws_led_finditer`); each starts with one class (fast to search).
_AT_STRONG_STARTS: Final = re.compile(r"[(\[{<（【アあ★☆@]")
_DOT_STARTS: Final = re.compile(r"[(\[{<（【ドどdD](?:(?<=[dD])(?=[oO][tT])|(?<![dD]))")
_AT_WEAK_STARTS: Final = re.compile(r"[aA](?=[tT])")


def ws_led_finditer(
    pattern: re.Pattern[str], starts: re.Pattern[str], text: str
) -> Iterator[re.Match[str]]:
    r"""``pattern.finditer(text)`` for a pattern whose every match is a run of whitespace
    (maybe empty) and then a part starting at a place ``starts`` finds (a non-whitespace
    character), and which cannot match from inside such a run when it does not match from
    the run's start (true when every alternative either starts with ``\s*`` or checks the
    character before it with a lookbehind that whitespace fails).

    Patterns that start with ``\s*`` are tried at every position of the text by
    ``finditer``; here they are tried once per place ``starts`` finds, from the start of
    the whitespace run before it.
    """
    pos = 0
    match = pattern.match
    for _ in range(_MAX_WS_LED_TRIES):
        found = starts.search(text, pos)
        if found is None:
            return
        at = found.start()
        run = at
        while run > pos and text[run - 1].isspace():
            run -= 1
        m = match(text, run)
        if m is not None and m.end() > run:
            yield m
            pos = m.end()
        else:
            pos = at + 1
    # Many places (an odd text): let the regex engine do the rest; from ``pos`` it finds
    # the same matches (no match starts before ``pos`` after the last one yielded).
    yield from pattern.finditer(text, pos)


_MAX_WS_LED_TRIES: Final = 32


SPELLED_HINT: Final = re.compile(r"(?i)(?<![a-z])(?:at|dot)(?![a-z])|アット|あっと|ドット|どっと|★|☆|@")


# Necessary conditions, searched on the lower-cased text (see `hint_lower`).
# "at" / "dot" as words (no letter before or after); each starts with its literal text.
_AT_WORD: Final = re.compile(r"at(?<![a-z]at)(?![a-z])")
_DOT_WORD: Final = re.compile(r"dot(?<![a-z]dot)(?![a-z])")
_BRACKET_AT: Final = re.compile(r"[(\[{<（【]\s*at")
_SPACE_AT: Final = re.compile(r"\sat\s")


def folds_oddly(text: str) -> bool:
    """Whether ``text`` holds a character that IGNORECASE matches with an ASCII letter
    although ``str.lower`` does not map it to that letter (İ ı ſ K)."""
    if text.isascii():
        return False
    return "\u0130" in text or "\u0131" in text or "\u017f" in text or "\u212a" in text


def hint_lower(text: str) -> str | None:
    """``text.lower()`` for cheap necessary-condition checks with case-sensitive patterns.

    ``None`` when ``text`` holds a character that IGNORECASE folds to an ASCII letter
    although ``str.lower`` does not (İ ı ſ K): callers then skip the shortcut.
    """
    return None if folds_oddly(text) else text.lower()


def may_spell_email(text: str, low: str | None) -> bool:
    """False only if `SPELLED_HINT` does not match ``text`` (``low``: `hint_lower`)."""
    if low is None:
        return SPELLED_HINT.search(text) is not None
    if "@" in text or "★" in text or "☆" in text or "アット" in text or "あっと" in text:
        return True
    if "ドット" in text or "どっと" in text:
        return True
    # "at"/"dot" not preceded by a letter.
    return ("at" in low and _AT_WORD.search(low) is not None) or (
        "dot" in low and _DOT_WORD.search(low) is not None
    )


def spelled_email(view: View, *, weak_at: bool, low: str | None = None) -> View:
    """Rewrite spelled-out ``@`` and ``.`` so a plain email regex can find the address.

    ``low`` is `hint_lower` of ``view.text`` if known: it lets rewrites that cannot
    apply be skipped.
    """
    text = view.text
    if (
        low is None
        or "@" in text or "★" in text or "☆" in text or "アット" in text or "あっと" in text
        or _BRACKET_AT.search(low)
    ):
        view = rewrite(
            view, _AT_STRONG, _at, ws_led_finditer(_AT_STRONG, _AT_STRONG_STARTS, view.text)
        )
    if weak_at and (low is None or _SPACE_AT.search(low)):
        view = rewrite(view, _AT_WEAK, _at, ws_led_finditer(_AT_WEAK, _AT_WEAK_STARTS, view.text))
    if (
        low is None or "dot" in low or "ドット" in text or "どっと" in text
    ):
        view = rewrite(view, _DOT, _dot, ws_led_finditer(_DOT, _DOT_STARTS, view.text))
    if _SPACED_DOT_HINT.search(view.text) is not None:
        view = rewrite(view, _ODD_DOT, _dot)
    return view


def _at(m: re.Match[str]) -> str:
    return "@"


def _dot(m: re.Match[str]) -> str:
    return "."
