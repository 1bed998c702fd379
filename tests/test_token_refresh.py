"""A ``token`` frame with a later expiry keeps the socket open past the first token's expiry."""

from __future__ import annotations

import time
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
