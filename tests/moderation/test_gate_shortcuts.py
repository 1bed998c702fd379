"""The gate's cheaper passes find what the plain regexes find: prefixes of digit-led
alternations, the automaton's root order and placeholder entries, the merged digit check."""

from __future__ import annotations

import random
import re

from moderation import normalize as nz
from moderation import phones as ph
from moderation import scanner as sc
from moderation.gate import Gate, Prefiltered, digit_led_prefixes, literal_prefixes

_PRICES = [
    "The deposit is ¥5,000 before you start.",
    "登録料は5000円です。まずお振込をお願いします。",
    "A deposit of 20 dollars, then you get the starter kit",
    "保証金 ٣٠٠٠円 (Arabic-Indic digits)",
    "The deposit has been paid through the platform, so I will start working today.",
    "お世話になっております。ロゴ案を3パターン作成しましたので、ご確認をお願いいたします。",
    "",
]


def test_digit_led_prefilter_agrees_with_search() -> None:
    # the price cue of the upfront-fee rules (they share it)
    cue = next(r.cue for r in sc.CUE_RULES if r.rule == "expense.upfront_fee")
    assert cue is not None and literal_prefixes(cue.pattern) is None
    pre = Prefiltered(cue)
    for text in _PRICES:
        low = text.lower()
        for lo in range(len(low) + 1):
            for hi in range(lo, len(low) + 1, 3):
                expected = cue.search(low, lo, hi) is not None
                assert pre.exists(low, lo, hi, plain_lower=True) == expected, (text, lo, hi)


def test_digit_led_prefixes_only_for_digit_or_literal_alternatives() -> None:
    assert digit_led_prefixes(r"\d[\d,]*円|you|ご負担") == frozenset({"you", "ご負担"})
    assert digit_led_prefixes(r"\w[\d,]*円|you") is None  # a word character: not only digits
    assert digit_led_prefixes(r"\d+円|you") is None  # only a bare \d counts as digit-led
    assert digit_led_prefixes(r"\d[\d,]*円") is None  # no alternation
    assert digit_led_prefixes(r"\d円|\dドル") is None  # no literal alternative


def test_gate_starts_are_every_prefix_occurrence() -> None:
    patterns = ["send the", "could you", "ご確認", "the end", "の番号", "ab"]
    gate = Gate(patterns)
    rng = random.Random(3)
    alphabet = "sendthcouly の番号ご確認ab\n\uffff。、"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.3:
            text += rng.choice(patterns)
        expected = sorted(
            (i, m.start())
            for i, p in enumerate(patterns)
            for m in re.finditer("(?=" + re.escape(p[:6]) + ")", text)
        )
        assert gate.starts(text) == expected, text


def test_merged_digit_check_agrees_with_the_two_patterns() -> None:
    six = re.compile(r"\d(?:\D{0,4}\d){5}")
    pair = re.compile(r"[〇零一壱二弐三参四五伍六七八九][〇零一壱二弐三参四五伍六七八九]")
    rng = random.Random(4)
    alphabet = "0123456789٣१〇零一二三九ab あ-・ \n"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        expected = six.search(text) is not None or pair.search(text) is not None
        assert (ph._SIX_DIGITS_OR_KANJI_PAIR.search(text) is not None) == expected, text


def test_ascii_digit_check_where_the_only_digits_are_ascii() -> None:
    rng = random.Random(5)
    alphabet = "0123456789٣१〇零一二三九ab あ-・ \n"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        view, safe = nz.base_checked(nz.View(text))
        assert view.text == nz.base(nz.View(text)).text
        if "٣" in text or "१" in text:
            assert not safe
            continue
        assert safe and view.text == text
        expected = ph._SIX_DIGITS_OR_KANJI_PAIR.search(text) is not None
        assert (ph._SIX_ASCII_DIGITS_OR_KANJI_PAIR.search(text) is not None) == expected, text


def test_only_the_cased_messenger_rule_runs_on_every_text() -> None:
    """Every other rule's anchor has literal prefixes, so it runs only where one occurs. An
    alternative that starts with a class (``g[\\s-]mail``) cuts its rule's prefixes to one
    character or none: the rule then runs over every text, and the scanner's throughput on
    ordinary talk halved the day that happened. Spell such alternatives out."""
    always = [(i, sc.CUE_RULES[i].rule) for i in sc._GATE._always]
    assert always == [(1, "contact.messenger")]  # LINE / X, matched case-sensitively


def test_wide_blocks_keep_few_literal_prefixes() -> None:
    """A wide block is searched over the whole scanned text whenever its rule's anchor fires,
    as one regex alternation of its literal prefixes (`Prefiltered`), which `re` tries one
    by one: a block whose alternatives expand to hundreds of prefixes cost 5k instructions
    per message on the dev set (BENCHMARKS.md, eighth session)."""
    wide = {id(r.wide_block): r.wide_block for r in sc.CUE_RULES if r.wide_block is not None}
    assert wide
    for pattern in wide.values():
        prefixes = literal_prefixes(pattern.pattern)
        assert prefixes is not None and len(prefixes) <= 60, len(prefixes or ())
