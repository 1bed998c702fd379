"""A ``token`` frame with a later expiry keeps the socket open past the first token's expiry."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import jwt

from tests.support import Client, Node

# Generous: a JWT ``exp`` has whole-second granularity and a loaded CI machine may take a
# second or more to connect, so a shorter life could run out before ``hello`` is answered.
TTL = 4


async def test_refreshed_token_extends_the_connection(settings_factory: Any) -> None:
    node = await Node(settings_factory()).start()
    try:
        first = node.token("alice", "client", ttl=TTL)
        short = Client(node.ws_url, first)
        # Without a refresh the socket is closed with 4001 when the token runs out.
        lapsing = Client(node.ws_url, node.token("bob", "worker", ttl=TTL))
        await short.connect()
        await lapsing.connect()
        ok = await short.request({"type": "token", "token": node.token("alice", "client")})
        assert ok["type"] == "ok"

        assert await lapsing.wait_closed(timeout=TTL + 6) == 4001
        exp = jwt.decode(first, options={"verify_signature": False})["exp"]
        assert time.time() >= exp  # the first token has run out by now
        pong = await short.request({"type": "ping"})
        assert pong["type"] == "ok" and not short.closed.is_set()
        await short.close()
        await lapsing.close()
    finally:
        await node.stop()


class _Conn:
    """What the gateway's expiry heap uses of a connection."""

    def __init__(self, exp: float) -> None:
        self.identity = SimpleNamespace(exp=exp)
        self.closed = False
        self.closed_with: int | None = None

    def close_soon(self, code: int, reason: str) -> None:
        self.closed, self.closed_with = True, code


async def test_one_timer_ends_each_connection_at_its_own_expiry(settings_factory: Any) -> None:
    """The node keeps one heap of expiries and one timer (not a timer per connection): each
    connection is closed with 4001 at its token's expiry, not before; a refreshed one is
    not; entries of closed connections do not pile up under churn."""
    node = await Node(settings_factory()).start()
    try:
        gw = node.gateway
        now = time.time()
        soon, later, refreshed = _Conn(now + 0.3), _Conn(now + 0.9), _Conn(now + 0.3)
        for c in (later, soon, refreshed):
            gw._schedule_expiry(c)  # type: ignore[arg-type]
        refreshed.identity.exp = now + 3600  # a ``token`` frame, then scheduled again
        gw._schedule_expiry(refreshed)  # type: ignore[arg-type]
        await asyncio.sleep(0.6)
        assert (soon.closed_with, later.closed, refreshed.closed) == (4001, False, False)
        await asyncio.sleep(0.6)
        assert later.closed_with == 4001 and not refreshed.closed
        gone = [_Conn(now + 3600) for _ in range(3000)]  # churn: closed long before expiry
        for c in gone:
            c.closed = True
            gw._schedule_expiry(c)  # type: ignore[arg-type]
        assert len(gw._expiries) <= 2 * len(gw.connections) + 1024 + 1
    finally:
        await node.stop()
