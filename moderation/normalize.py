"""Text normalization that keeps an offset map back to the original text.

A `View` is a rewritten text plus, for every character of it, the span ``[start, end)`` of
the original text it came from.  Views are built by composing `rewrite` steps, so a regex
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True, eq=False)
class View:
    """A rewritten text; ``starts``/``ends`` are ``None`` when it equals the original."""

    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map ``[start, end)`` of this view to ``[start, end)`` of the original text."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else (
                self.ends[-1] if self.ends else 0
            )
            return pos, pos
        return self.starts[start], self.ends[end - 1]


def identity(text: str) -> View:
    return View(text)


def rewrite(view: View, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> View:
    """Replace every match of ``pattern`` by ``repl(match)``, keeping the offset map.

    Each character of a replacement maps to the whole original span of the match.
    """
    text = view.text
    vs, ve = view.starts, view.ends
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    changed = False
    for m in pattern.finditer(text):
        a, b = m.span()
        if a == b:
            continue
        r = repl(m)
        if r == text[a:b]:
            continue
        changed = True
        if a > pos:
            pieces.append(text[pos:a])
            if vs is None or ve is None:
                starts.extend(range(pos, a))
                ends.extend(range(pos + 1, a + 1))
            else:
                starts.extend(vs[pos:a])
                ends.extend(ve[pos:a])
        if r:
            o_start = a if vs is None else vs[a]
            o_end = b if ve is None else ve[b - 1]
            pieces.append(r)
            starts.extend([o_start] * len(r))
            ends.extend([o_end] * len(r))
        pos = b
    if not changed:
        return view
    if pos < len(text):
        pieces.append(text[pos:])
        if vs is None or ve is None:
            starts.extend(range(pos, len(text)))
            ends.extend(range(pos + 1, len(text) + 1))
        else:
            starts.extend(vs[pos:])
            ends.extend(ve[pos:])
    return View("".join(pieces), starts, ends)


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
}
_char_cache: dict[str, str] = {}

# Everything outside these ranges is looked at one cluster at a time.
_UNSAFE: Final = re.compile(
    r"[^\t\n\x20-\x7e\u3041-\u3096\u309d-\u309f\u30a1-\u30ff\u4e00-\u9fff"
    r"\u3001\u3002\u3005-\u3007\u3008-\u3011\u301c]"
    r"[\u3099\u309a\uff9e\uff9f\U000e0020-\U000e007f]*"
)


def _fold_cluster(m: re.Match[str]) -> str:
    cluster = m.group()
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
            out = "".join(_CHAR_TABLE.get(c, c) for c in out)
    if len(_char_cache) < 4096:
        _char_cache[cluster] = out
    return out


def base(view: View) -> View:
    """NFKC, digit forms, zero-width removal, dashes and homoglyphs."""
    if _UNSAFE.search(view.text) is None:
        return view
    return rewrite(view, _UNSAFE, _fold_cluster)


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


def _join_spaced(m: re.Match[str]) -> str:
    return m.group().replace(m.group("sep"), "")


def squeeze(view: View) -> View:
    """Join runs of three or more single characters separated by one repeated separator."""
    return rewrite(view, _SPACED, _join_spaced)


# --------------------------------------------------------------------------- deleet

_LEET_MAP: Final = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_LEET: Final = re.compile(r"(?<=[A-Za-z])[013457@$](?=[A-Za-z])")


def deleet(view: View) -> View:
    """Turn ``d1sc0rd``/``b@nk`` into ``discord``/``bank`` (only between letters)."""
    return rewrite(view, _LEET, lambda m: _LEET_MAP[m.group()])


def lower(view: View) -> View:
    """Lower-case without changing the length (characters that would grow are kept)."""
    low = view.text.lower()
    if len(low) != len(view.text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in view.text)
    return View(low, view.starts, view.ends)


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
_KANA_RUN: Final = re.compile(r"(?:(?:" + _KANA_ALT + r")[\s、・,\-ー]*){3,}")

_EN_WORDS: Final = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_EN_ALT: Final = "|".join(sorted(_EN_WORDS, key=len, reverse=True))
_EN_TOKEN: Final = re.compile(r"(?i)\b(?:" + _EN_ALT + r")\b")
_EN_RUN: Final = re.compile(
    r"(?i)(?<![A-Za-z])(?:(?:" + _EN_ALT + r")(?![A-Za-z])[\s,\-.]*){3,}"
)
_O_AS_ZERO: Final = re.compile(r"(?<![A-Za-z])[0-9oO](?:[\s\-]?[0-9oO]){2,}(?![A-Za-z])")
_LONG_MARK_BETWEEN: Final = re.compile(r"(?<=\d)[ー〜~](?=\d)")


def _kanji(m: re.Match[str]) -> str:
    return "".join(_KANJI_DIGITS[c] for c in m.group())


def _kana(m: re.Match[str]) -> str:
    run = m.group()
    found = list(_KANA_TOKEN.finditer(run))
    if not any(t.group() in _KANA_DISTINCT for t in found):
        return run
    rest = ""
    # A lone one-kana token after a separator ending the run is a particle (に, ご, く).
    while len(found) > 3 and len(found[-1].group()) == 1 and found[-1].start() > found[-2].end():
        rest = run[found[-1].start():] + rest
        found.pop()
    return "".join(_KANA_WORDS[t.group()] for t in found) + " " + rest


def _english(m: re.Match[str]) -> str:
    tokens = [t.lower() for t in _EN_TOKEN.findall(m.group())]
    if sum(1 for t in tokens if t not in ("o", "oh")) < 2:
        return m.group()
    return "".join(_EN_WORDS[t] for t in tokens) + " "


def _o_zero(m: re.Match[str]) -> str:
    s = m.group()
    if sum(c.isdigit() for c in s) < 2:
        return s
    return s.replace("o", "0").replace("O", "0")


def digits(view: View) -> View:
    """Spell-out digits (kanji, kana, English words, letter O) as ASCII digits."""
    text = view.text
    if _KANJI_RUN.search(text):
        view = rewrite(view, _KANJI_RUN, _kanji)
    if _KANA_RUN.search(view.text):
        view = rewrite(view, _KANA_RUN, _kana)
    if _EN_RUN.search(view.text):
        view = rewrite(view, _EN_RUN, _english)
    view = rewrite(view, _O_AS_ZERO, _o_zero)
    return rewrite(view, _LONG_MARK_BETWEEN, lambda m: "-")


# --------------------------------------------------------------------------- email

_AT_STRONG: Final = re.compile(
    r"\s*[(\[{<（【]\s*(?:at|アット(?:マーク)?|あっと(?:まーく)?)\s*[)\]}>）】]\s*"
    r"|\s*(?:アットマーク|アット|あっとまーく|あっと|★|☆)\s*"
    r"|(?<=[A-Za-z0-9._\-])\s*@\s*(?=[A-Za-z0-9\-]+(?:\.|\s*[(\[（【]?\s*(?:dot|ドット)))",
    re.IGNORECASE,
)
_AT_WEAK: Final = re.compile(r"(?<=[A-Za-z0-9])\s+at\s+(?=[A-Za-z0-9])", re.IGNORECASE)
_DOT: Final = re.compile(
    r"\s*[(\[{<（【]\s*(?:dot|ドット|どっと)\s*[)\]}>）】]\s*"
    r"|\s*(?:ドット|どっと)\s*"
    r"|(?<=[A-Za-z0-9])\s+dot\s+(?=[A-Za-z0-9])",
    re.IGNORECASE,
)
SPELLED_HINT: Final = re.compile(r"(?i)(?<![a-z])(?:at|dot)(?![a-z])|アット|あっと|ドット|どっと|★|☆|@")


def spelled_email(view: View, *, weak_at: bool) -> View:
    """Rewrite spelled-out ``@`` and ``.`` so a plain email regex can find the address."""
    view = rewrite(view, _AT_STRONG, lambda m: "@")
    if weak_at:
        view = rewrite(view, _AT_WEAK, lambda m: "@")
    return rewrite(view, _DOT, lambda m: ".")
