"""The fast paths (Aho-Corasick gate, literal-prefix prefilters) agree with plain regexes."""

from __future__ import annotations

from moderation import scanner as sc
from moderation.context import ScanText
from moderation.gate import matches_at
from moderation.rules import CUE_RULES
from moderation.score import DEFAULT_PATH, load

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
    for rec in load(DEFAULT_PATH):
        messages = rec.get("messages") or [rec["text"]]
        assert isinstance(messages, list)
        out.extend(str(m) for m in messages)
        out.append("\n".join(str(m) for m in messages))
    return out


def test_anchor_positions_give_the_same_matches_as_finditer() -> None:
    for text in _texts():
        st = ScanText(text)
        candidates = sc._GATE.candidates(st.kw.text)
        for i, rule in enumerate(CUE_RULES):
            src = st.cased.text if rule.cased else st.kw.text
            expected = [m.span() for m in rule.anchor.finditer(src)]
            got = [m.span() for m in matches_at(rule.anchor, src, candidates.get(i, []))]
            assert got == expected, (rule.rule, text)


def test_prefilters_never_hide_a_match() -> None:
    checks = [p for p in (*sc._CUES, *sc._BLOCKS, sc._REFUSAL, sc._QUOTED) if p is not None]
    for text in _texts():
        kw = ScanText(text).kw.text
        plain = not sc.folds_oddly(kw)
        for lo in range(0, len(kw), 17):
            for p in checks:
                hi = min(len(kw), lo + 60)
                found = p.search(kw, lo, hi, plain_lower=plain)
                expected = p.pattern.search(kw, lo, hi)
                assert (found is None) == (expected is None), (p.pattern.pattern[:40], text)
