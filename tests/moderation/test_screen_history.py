"""What the screener remembers of a sender's recent messages: up to ``moderation_history``
short ones (a number sent digit by digit is joined), and nothing before a long one (the
scanner never looks past it)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from chat.auth import Identity
from chat.config import Secret, Settings
from moderation.scanner import HISTORY_TAIL_CHARS
from moderation.screen import ModerationScreener

KENJI = Identity("kenji", frozenset({"client"}), "Kenji", "ja", "Asia/Tokyo", time.time() + 3600)


def _screener() -> ModerationScreener:
    settings = Settings(jwt_secret=Secret("x" * 40))
    screener = ModerationScreener(settings, store=Any, fanout=Any, queue=Any)  # type: ignore[arg-type]
    screener._restricted_at = time.monotonic() + 3600  # no restriction lookups
    screener._recent[("t1", "kenji")] = deque(maxlen=settings.moderation_history)
    return screener


async def _send(screener: ModerationScreener, body: str, n: int) -> Any:
    verdict = await screener.screen_send(
        thread="t1", stage="inquiry", sender=KENJI, sender_role="client", body=body,
        client_msg_id=f"c{n}")
    screener._recent[("t1", "kenji")][-1].message_id = f"m{n}"  # stored (after_store's part)
    return verdict


async def test_a_number_sent_digit_by_digit_is_caught_on_its_last_digit() -> None:
    screener = _screener()
    verdicts = [await _send(screener, d, i) for i, d in enumerate("09012345678")]
    assert all(v.record is None for v in verdicts[:-1])
    last = verdicts[-1]
    assert last.action != "allow" and last.record is not None
    assert "contact_exchange" in last.record["categories"]
    assert len(last.record["earlier_messages"]) == 10


async def test_a_long_message_ends_what_is_remembered() -> None:
    screener = _screener()
    for i, body in enumerate(["090", "1234"]):
        await _send(screener, body, i)
    long = "お見積りありがとうございます。" * 5
    assert len(long) > HISTORY_TAIL_CHARS
    await _send(screener, long, 2)
    await _send(screener, "ok", 3)
    assert [e.body for e in screener._recent[("t1", "kenji")]] == [long, "ok"]
