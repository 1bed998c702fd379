"""A ``token`` frame with a later expiry keeps the socket open past the first token's expiry."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import Client, Node


async def test_refreshed_token_extends_the_connection(settings_factory: Any) -> None:
    node = await Node(settings_factory()).start()
    try:
        short = Client(node.ws_url, node.token("alice", "client", ttl=2))
        await short.connect()
        ok = await short.request({"type": "token", "token": node.token("alice", "client")})
        assert ok["type"] == "ok"
        await asyncio.sleep(2.5)  # past the first token's expiry
        pong = await short.request({"type": "ping"})
        assert pong["type"] == "ok" and not short.closed.is_set()
        await short.close()

        # Without a refresh the socket is closed with 4001 when the token runs out.
        lapsing = Client(node.ws_url, node.token("bob", "worker", ttl=1))
        await lapsing.connect()
        assert await lapsing.wait_closed(timeout=5) == 4001
        await lapsing.close()
    finally:
        await node.stop()
