"""Shortcuts added for the send path hide no finding: the phone digit bound, the skipped
cue checks for anchors in the history, left-bounded word lists, the screener's fast path."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable
from typing import Any

import pytest

from chat.auth import Identity
from chat.config import Secret, Settings
from moderation import normalize as nz
from moderation import phones as ph
from moderation import scanner as sc
from moderation.context import ScanText
from moderation.findings import Finding
from moderation.scanner import Scanner
from moderation.score import load
from moderation.screen import ModerationScreener
from tests.moderation.devset import devset_path
from tests.support import NoHistoryStore


def _random_texts(alphabet: list[str], n: int, most: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, most))) for _ in range(n)]


# ---- find_phones: the digit bound for ASCII text -----------------------------------------

_NUMBERISH = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero",
              "oh", "o", "O", "OO", "oo", "ONE", "Two", "0", "1", "2", "9", "090", "1234",
              "5678", "-", " ", ", ", ".", "~", "\n", "x", "too", "no", "someone", "tel",
              "TEL:", "phone", "call me"]


def test_the_digit_bound_never_undercounts_the_digits_view() -> None:
    checked = 0
    for text in _random_texts(_NUMBERISH, 20000, 30, seed=20261207):
        st = ScanText(text)
        if st.squeezed is not st.base or st.base_lower is None:
            continue
        if ph._too_few_digits(st.base.text, st.base_lower):
            checked += 1
            assert len(re.findall(r"\d", st.digits.text)) < ph.MIN_DIGITS, text
    assert checked > 1000


@pytest.mark.parametrize("text", [
    "call me: oh nine oh, one two three four, five six seven eight",
    "zero nine zero one two three four five six seven eight",
    "o9o-1234-5678 is my number",
    "O9O 1234 5678",
    "my phone: 090 1234 5678",
])
def test_number_words_and_letter_o_still_make_phone_numbers(text: str) -> None:
    st = ScanText(text)
    assert st.squeezed is st.base and text.isascii()
    assert not ph._too_few_digits(st.base.text, st.base_lower or "")
    assert "contact.phone" in [f.rule for f in Scanner().scan(text)], text


def test_phones_found_with_and_without_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    with_bound = [ph.find_phones(ScanText(t)) for t in texts]
    monkeypatch.setattr(ph, "_too_few_digits", lambda text, low: False)
    without = [ph.find_phones(ScanText(t)) for t in texts]
    assert [[(h.rule, h.start, h.end) for h in hs] for hs in with_bound] == [
        [(h.rule, h.start, h.end) for h in hs] for hs in without]


# ---- cue checks skipped for anchors that end in the history ------------------------------

def _texts() -> list[str]:
    out = [
        "ＬＩＮＥで連絡ください", "L\u200bI\u200bN\u200bEで連絡ください", "ラインで連絡ください",
        "ぜろきゅうぜろ いちにさんよん ごろくななはち", "〇九〇の一二三四の五六七八",
        "taro at gmail dot com", "taro(at)gmail(dot)com", "t a r o @ g m a i l . c o m",
        "Add me on LINE", "LINE", "kota_77", "ID は kota_77 です", "My number is",
        "oh nine oh", "one two three four", "five six seven eight", "０９０", "１２３４", "５６７８",
        "sitesaki ni chokusetsu shiharai", "直接やり取りしましょう", "手数料がかからないので",
        "e\u0301", "\u0301LINE", "LINEで", "\u0301", "連絡ください", "I'll send my ID",
    ]
    for rec in load(devset_path()):
        messages = rec.get("messages") or [rec["text"]]
        assert isinstance(messages, list)
        out.extend(str(m) for m in messages)
    return out


def _scan_all(scanner: Scanner, texts: list[str]) -> list[list[Finding]]:
    rng = random.Random(11)
    out = []
    for i, text in enumerate(texts):
        out.append(scanner.scan(text, texts[max(0, i - 5):i]))
        others = [rng.choice(texts)[-40:] for _ in range(rng.randint(1, 4))]
        out.append(scanner.scan(text, others))
        # the text split over messages
        if len(text) > 3:
            cuts = sorted(rng.sample(range(1, len(text)), min(3, len(text) - 1)))
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
            out.extend(scanner.scan(p, pieces[:k]) for k, p in enumerate(pieces))
    return out


def test_skipping_cue_checks_in_the_history_changes_no_finding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    scanner = Scanner(allow_phrases=["LINE 公式"])
    fast = _scan_all(scanner, texts)
    assert any(fast), "the texts give findings"
    original = sc._cue_hits

    def every_check(st: ScanText, index: int, found: list[re.Match[str]], checks: Any,
                    hits: list[Any], before: int = 0) -> None:
        original(st, index, found, checks, hits, 0)

    monkeypatch.setattr(sc, "_cue_hits", every_check)
    assert _scan_all(scanner, texts) == fast


# ---- left_bounded groups words by their first letter -------------------------------------

def _ungrouped(words: Iterable[str], before: str) -> str:
    return "(?:" + "|".join(
        re.escape(w[0]) + "(?<!" + before + re.escape(w[0]) + ")" + re.escape(w[1:]) for w in words
    ) + ")"


def test_left_bounded_finds_what_the_ungrouped_alternation_finds() -> None:
    lists = [
        (tuple("zero oh one two three four five six seven eight nine".split()), "[a-z0-9]"),
        (sorted(nz._EN_WORDS, key=len, reverse=True), "[a-z]"),
        (("but", "so", "because"), "[a-z]"),
    ]
    alphabet = ["o", "oh", "one", "on", "t", "two", "three", "s", "six", "seven", "so", "but",
                "because", "be", "e", "eight", "n", "nine", "z", "zero", " ", "x", "1", "\n"]
    for words, before in lists:
        grouped = re.compile(nz.left_bounded(words, before) + "(?![a-z])")
        plain = re.compile(_ungrouped(words, before) + "(?![a-z])")
        for text in _random_texts(alphabet, 3000, 12, seed=5):
            assert [m.span() for m in grouped.finditer(text)] == [
                m.span() for m in plain.finditer(text)], (words, text)


# ---- the screener: history and restrictions without a coroutine when cached -------------

class _Queue:
    def __init__(self) -> None:
        self.calls = 0

    async def restricted_users(self) -> list[str]:
        self.calls += 1
        return ["mallory"]


async def test_screen_send_holds_a_restricted_sender_fresh_or_stale() -> None:
    queue = _Queue()
    screener = ModerationScreener(Settings(jwt_secret=Secret("x" * 40)), store=NoHistoryStore(),  # type: ignore[arg-type]
                                  fanout=Any, queue=queue)  # type: ignore[arg-type]
    mallory = Identity("mallory", frozenset({"client"}), "M", "ja", "Asia/Tokyo", 0.0)
    alice = Identity("alice", frozenset({"client"}), "A", "ja", "Asia/Tokyo", 0.0)

    async def send(who: Identity, body: str, cmid: str) -> str:
        verdict = await screener.screen_send(thread="t", stage="inquiry", sender=who,
                                             sender_role="client", body=body,
                                             client_msg_id=cmid)
        return verdict.action

    assert await send(mallory, "よろしくお願いします", "m1") == "hold"  # stale: loaded
    assert queue.calls == 1
    assert await send(mallory, "よろしくお願いします", "m2") == "hold"  # fresh: cached
    assert await send(alice, "よろしくお願いします", "a1") == "allow"
    assert queue.calls == 1
    screener._restricted_at = time.monotonic() - 60  # stale again
    assert await send(alice, "了解です", "a2") == "allow"
    assert queue.calls == 2
    # A split number over the cached history; a retry is not remembered twice.
    assert await send(alice, "電話は090-", "a3") == "allow"
    assert await send(alice, "電話は090-", "a3") == "allow"
    assert await send(alice, "5555-1234", "a4") != "allow"
    assert [e.key for e in screener._recent[("t", "alice")]] == ["a1", "a2", "a3", "a4"]
