"""The gateway against a second, independent WebSocket client: the ``websockets`` library.

Every other WebSocket test talks to the server through aiohttp, the library that also serves
``/v1/ws``; a shared quirk of aiohttp's client and server (framing, masking, compression
negotiation, close handshake) could hide there. Here a real node on each back end is driven by
``websockets``' asyncio client: hello, send, the ``ok`` and the ``message`` push, and bad
frames answered with ``error``/``bad_frame`` on a connection that stays open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from tests.support import Node

Frame = dict[str, Any]


async def next_frame(ws: ClientConnection, where: Callable[[Frame], bool],
                     timeout: float = 5) -> Frame:
    """The next text frame matching ``where`` (others are skipped: presence, receipts...)."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, str), f"the server sent a binary frame: {raw!r}"
            frame: Frame = orjson.loads(raw)
            if where(frame):
                return frame


async def request(ws: ClientConnection, frame: Frame) -> Frame:
    """Send ``frame`` (it has an ``id``) and return its answer (``ok`` or ``error``)."""
    await ws.send(orjson.dumps(frame).decode())
    return await next_frame(
        ws, lambda f: f.get("type") in ("ok", "error") and f.get("re") == frame["id"])


async def hello(node: Node, user: str, role: str) -> tuple[ClientConnection, Frame]:
    ws = await connect(node.ws_url.replace("http://", "ws://", 1), open_timeout=5)
    ok = await request(ws, {"type": "hello", "id": "h1", "token": node.token(user, role)})
    return ws, ok


async def test_hello_send_push_and_bad_frames_with_the_websockets_client(
    settings_factory: Any,
) -> None:
    node = await Node(settings_factory()).start()
    try:
        thread = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        alice, ok_a = await hello(node, "alice", "client")
        bob, ok_b = await hello(node, "bob", "worker")
        try:
            assert ok_a["type"] == "ok" and ok_a["user"]["id"] == "alice", ok_a
            assert thread in ok_a["threads"] and thread in ok_b["threads"]

            ok = await request(alice, {"type": "send", "id": "s1", "thread": thread,
                                       "client_msg_id": "c-1", "body": "こんにちは 👋"})
            assert ok["type"] == "ok" and ok["duplicate"] is False, ok
            sent = ok["message"]
            assert (sent["seq"], sent["body"], sent["client_msg_id"]) == (1, "こんにちは 👋", "c-1")
            push = await next_frame(bob, lambda f: f.get("type") == "message")
            got = push["message"]
            assert (got["id"], got["seq"], got["sender"], got["body"]) == (
                sent["id"], 1, "alice", "こんにちは 👋")
            assert "client_msg_id" not in got  # the sender's key is the sender's only

            # Bad frames: each answered with bad_frame, and the socket stays usable.
            await alice.send("not json")
            err = await next_frame(alice, lambda f: f.get("type") == "error")
            assert err["code"] == "bad_frame", err
            err = await request(alice, {"type": "send", "id": "b1", "thread": thread,
                                        "client_msg_id": "c-2"})  # no body
            assert (err["type"], err["code"]) == ("error", "bad_frame"), err
            assert "body" in err["message"]
            err = await request(alice, {"type": "no_such_type", "id": "b2"})
            assert (err["type"], err["code"]) == ("error", "bad_frame"), err
            await alice.send(b"\x00binary")
            err = await next_frame(alice, lambda f: f.get("type") == "error")
            assert err["code"] == "bad_frame", err

            assert alice.state is State.OPEN
            pong = await request(alice, {"type": "ping", "id": "p1"})
            assert pong["type"] == "ok" and isinstance(pong["time"], float), pong
            ok2 = await request(alice, {"type": "send", "id": "s2", "thread": thread,
                                        "client_msg_id": "c-3", "body": "まだ繋がっている"})
            assert ok2["type"] == "ok" and ok2["message"]["seq"] == 2, ok2
            push2 = await next_frame(bob, lambda f: f.get("type") == "message")
            assert push2["message"]["seq"] == 2
        finally:
            await alice.close()
            await bob.close()
        assert alice.close_code == 1000
    finally:
        await node.stop()
