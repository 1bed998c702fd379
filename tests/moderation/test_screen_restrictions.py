"""The screener's cache of restricted users refreshes with ONE query, however many sends
arrive while it runs (no burst of identical queries against the store every few seconds)."""

from __future__ import annotations

import asyncio
from typing import Any

from chat.config import Secret, Settings
from moderation.screen import ModerationScreener


class CountingQueue:
    """Only what ``_is_restricted`` uses of :class:`moderation.queue.ReviewQueue`."""

    def __init__(self) -> None:
        self.calls = 0

    async def restricted_users(self) -> list[str]:
        self.calls += 1
        await asyncio.sleep(0.05)  # a query in flight while more sends arrive
        return ["mallory"]


async def test_restrictions_refresh_once_for_concurrent_sends() -> None:
    queue = CountingQueue()
    settings = Settings(jwt_secret=Secret("x" * 40))
    screener = ModerationScreener(settings, store=Any, fanout=Any, queue=queue)  # type: ignore[arg-type]
    users = ["mallory", "alice"] * 50
    results = await asyncio.gather(*(screener._is_restricted(u) for u in users))
    assert queue.calls == 1
    assert results == [True, False] * 50
    # Within the TTL: no query at all; after forget_restrictions(): exactly one more.
    assert await screener._is_restricted("mallory") and queue.calls == 1
    screener.forget_restrictions()
    await asyncio.gather(*(screener._is_restricted(u) for u in users))
    assert queue.calls == 2
