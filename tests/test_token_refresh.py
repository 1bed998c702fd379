"""A ``token`` frame with a later expiry keeps the socket open past the first token's expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import jwt
import orjson
import pytest

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

    close_after_frame = close_soon  # no frame is ever in flight here


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


def _expire_now(node: Node, user: str) -> Any:
    """Let ``user``'s connection's token run out now (as the expiry timer would)."""
    gw = node.gateway
    [conn] = [c for c in gw.connections if c.user == user]
    conn.identity = dataclasses.replace(conn.identity, exp=time.time() - 1)
    gw._schedule_expiry(conn)
    gw._expire()  # what the timer, due at once, does (called here so it has run)
    return conn


async def test_a_send_in_flight_when_the_token_runs_out_is_answered_before_4001(
        settings_factory: Any) -> None:
    """The token runs out while a ``send`` waits for its commit: the client gets the send's
    ``ok`` and then the close 4001 (not a close that overtakes an answer it is owed); a frame
    it sent after that one is not handled; the message is stored and pushed once."""
    node = await Node(settings_factory()).start()
    try:
        t = await node.create_thread(("alice", "client"), ("bob", "worker"))
        tid = t["id"]
        a = await Client(node.ws_url, node.token("alice", "client")).connect()
        b = await Client(node.ws_url, node.token("bob", "worker")).connect()
        svc = node.gateway.service
        release, entered = asyncio.Event(), asyncio.Event()
        real_send = svc.send

        async def held_send(*args: Any, **kw: Any) -> Any:
            entered.set()
            await release.wait()
            return await real_send(*args, **kw)

        svc.send = held_send
        first = asyncio.create_task(a.send(tid, "納品しました / delivered", cmid="in-flight"))
        await asyncio.wait_for(entered.wait(), 5)
        conn = _expire_now(node, "alice")
        assert conn.ending == (4001, "token expired") and not conn.closed  # waits for the answer
        await asyncio.sleep(0.05)
        assert not a.closed.is_set()
        await a.send_raw(orjson.dumps({"type": "send", "id": "late", "thread": tid,
                                       "client_msg_id": "late", "body": "after"}).decode())
        release.set()
        ok = await asyncio.wait_for(first, 5)
        assert ok["type"] == "ok" and ok["message"]["seq"] == 1
        assert await a.wait_closed() == 4001
        svc.send = real_send
        [got] = await b.messages(1)
        assert got["body"] == "納品しました / delivered"
        _, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                  node.token("alice", "client"))
        assert [m["client_msg_id"] for m in hist["messages"]] == ["in-flight"]
        await b.close()
        await a.close()
    finally:
        await node.stop()


async def test_an_idle_connection_whose_token_runs_out_closes_at_once(
        settings_factory: Any) -> None:
    """No frame in flight: the close 4001 does not wait for anything."""
    node = await Node(settings_factory()).start()
    try:
        a = await Client(node.ws_url, node.token("alice", "client")).connect()
        _expire_now(node, "alice")
        assert await a.wait_closed(timeout=2) == 4001
        await a.close()
    finally:
        await node.stop()


async def test_a_frame_stuck_past_the_close_timeout_does_not_keep_the_socket(
        settings_factory: Any) -> None:
    """The close waits for an in-flight frame at most the close timeout."""
    node = await Node(settings_factory(close_timeout_s=0.3)).start()
    try:
        t = await node.create_thread(("alice", "client"), ("bob", "worker"))
        a = await Client(node.ws_url, node.token("alice", "client")).connect()
        svc = node.gateway.service
        never, entered = asyncio.Event(), asyncio.Event()

        async def stuck_send(*args: Any, **kw: Any) -> Any:
            entered.set()
            await never.wait()

        svc.send = stuck_send
        stuck = asyncio.create_task(a.send(t["id"], "hello", cmid="stuck"))
        await asyncio.wait_for(entered.wait(), 5)
        _expire_now(node, "alice")
        assert await a.wait_closed(timeout=3) == 4001
        with pytest.raises(ConnectionError):  # unanswered: the client retries it later
            await stuck
        await a.close()
    finally:
        never.set()
        await node.stop()
