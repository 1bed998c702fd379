"""The fast paths (Aho-Corasick gate, literal-prefix prefilters) agree with plain regexes."""

from __future__ import annotations

import random
import re
from bisect import bisect_left, bisect_right

from moderation import contacts as ct
from moderation import normalize as nz
from moderation import phones as ph
from moderation import scanner as sc
from moderation.context import ScanText, Sentences
from moderation.gate import matches_at
from moderation.normalize import folds_oddly
from moderation.phones import _PHONE_WORDS
from moderation.rules import CUE_RULES
from moderation.score import load
from tests.moderation.devset import devset_path

_EXTRA = [
    "ＬＩＮＥで連絡ください。IDは kota_77 です",
    "d1sc0rd: pixel_fox88, or t e l e g r a m",
    "I can't share my PayPal outside the platform, sorry.",
    "「LINEで友だち追加」というボタンを作ってください",
    "Add me on X @kenji_dev — faster than here",
    "nİne ıf ſix: odd case folds",
]


def _texts() -> list[str]:
    out = list(_EXTRA)
    for rec in load(devset_path()):
        messages = rec.get("messages") or [rec["text"]]
        assert isinstance(messages, list)
        out.extend(str(m) for m in messages)
        out.append("\n".join(str(m) for m in messages))
    return out


def test_anchor_positions_give_the_same_matches_as_finditer() -> None:
    for text in _texts():
        st = ScanText(text)
        candidates = sc._GATE.candidates(st.kw.text, st.cased.text)
        for i, rule in enumerate(CUE_RULES):
            src = st.cased.text if rule.cased else st.kw.text
            expected = [m.span() for m in rule.anchor.finditer(src)]
            got = [m.span() for m in matches_at(rule.anchor, src, candidates.get(i, []))]
            assert got == expected, (rule.rule, text)


def test_prefilters_never_hide_a_match() -> None:
    checks = [
        p for p in (*sc._CUES, *sc._BLOCKS, sc._REFUSAL, sc._QUOTED, _PHONE_WORDS) if p is not None
    ]
    for text in _texts():
        kw = ScanText(text).kw.text
        plain = not folds_oddly(kw)
        for lo in range(0, len(kw), 17):
            for p in checks:
                hi = min(len(kw), lo + 60)
                found = p.search(kw, lo, hi, plain_lower=plain)
                expected = p.pattern.search(kw, lo, hi)
                assert (found is None) == (expected is None), (p.pattern.pattern[:40], text)
                exists = p.exists(kw, lo, hi, plain_lower=plain)
                assert exists == (expected is not None), (p.pattern.pattern[:40], text)


# ---- shortcuts that stand in for a plain regex search give the same matches ------------

def _random_texts(alphabet: list[str], n: int = 3000, most: int = 12) -> list[str]:
    rng = random.Random(20260523)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, most))) for _ in range(n)]


def test_whitespace_led_rewrites_find_what_finditer_finds() -> None:
    alphabet = ["a", "t", "at", "AT", " ", "  ", "\t", "(", ")", "[", "@", "アット", "マーク",
                "あっと", "★", "dot", "DOT", "d", "o", ".", "ドット", "x", "1", "【", "\u3000"]
    pairs = [(nz._AT_STRONG, nz._AT_STRONG_STARTS), (nz._DOT, nz._DOT_STARTS),
             (nz._AT_WEAK, nz._AT_WEAK_STARTS)]
    for text in _random_texts(alphabet, most=40):
        for pattern, starts in pairs:
            expected = [m.span() for m in pattern.finditer(text)]
            assert [m.span() for m in nz.ws_led_finditer(pattern, starts, text)] == expected


def test_email_search_by_token_finds_what_finditer_finds() -> None:
    alphabet = ["a", "b", "@", ".", "com", "moc", " ", "\u3000", "\t", "-", "_", "1", "x", "\n"]
    for text in _random_texts(alphabet, most=60):
        for pattern in (ct._EMAIL, ct._REVERSED):
            expected = [m.span() for m in pattern.finditer(text)] if "@" in text else []
            got = [m.span() for lo, hi in ct._tokens_with(text, "@")
                   for m in pattern.finditer(text, lo, hi)]
            assert got == expected, text


def test_number_word_runs_match_the_plain_pattern() -> None:
    alphabet = ["one", "two", "oh", "o", "O", "zero", "ONE", "Nine", "nıne", " ", ",", "-", ".",
                "x", "phone", "1", "\n", "ſix", "eight"]
    for text in _random_texts(alphabet):
        expected = [m.span() for m in nz._EN_RUN.finditer(text)]
        assert [m.span() for m in nz._number_word_runs(text)] == expected, text


def test_sentence_bounds_match_the_listed_boundaries() -> None:
    end = re.compile(r"[。！？!?\n.](?:(?<!\.)|(?=\s|$))")
    rng = random.Random(7)
    for text in _random_texts(["ab", " ", ".", "。", "!", "？", "\n", "\u3000", "x.y", "é"]):
        ends = [m.end() for m in end.finditer(text)]
        a = rng.randint(0, len(text))
        b = rng.randint(a, len(text))
        i, j = bisect_right(ends, a), bisect_left(ends, b)
        expected = (ends[i - 1] if i else 0, ends[j] if j < len(ends) else len(text))
        assert Sentences(text).bounds(a, b) == expected, (text, a, b)


def test_digit_group_pattern_matches_the_lookbehind_first_form() -> None:
    plain = re.compile(r"(?<![A-Za-z0-9/#=_.\-])(\+\s?)?\(?\d+(?:[\s\-.()・、,/|ーの]{1,3}\(?\d+\)?)*"
                       r"(?![A-Za-z0-9])")
    for text in _random_texts(list("0123456789+() -./a#_・、の|ー\u3000x٣")):
        assert [m.span() for m in ph._GROUPS.finditer(text)] == \
            [m.span() for m in plain.finditer(text)], text


def test_skipped_normalization_steps_would_change_nothing() -> None:
    alphabet = ["a", "b", " ", ".", "-", "*", "/", "・", "0", "1", "3", "@", "$", "Y", "ｱ", "（",
                "\u200b", "é", "ı"]
    for text in _random_texts(alphabet):
        view = nz.View(text)
        if not nz.may_squeeze_or_deleet(text):
            assert nz.deleet(nz.squeeze(view)) is view
        folded = nz.base(view)
        by_rewrite = nz.rewrite(view, nz._UNSAFE, nz._fold_cluster)
        assert folded.text == by_rewrite.text
        assert [folded.span(i, i + 1) for i in range(len(folded.text))] == \
            [by_rewrite.span(i, i + 1) for i in range(len(by_rewrite.text))]
