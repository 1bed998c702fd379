"""chat.session's direct lane: frames written at the end of the loop's step, without a writer
task, and never out of order with what must wait (a storage read, a slow client, a close).

A real aiohttp server holds the Connection; a real client reads what it writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chat import wswrite
from chat.auth import Identity
from chat.fanout import Event, thread_channel
from chat.models import Message, ThreadBrief
from chat.session import Connection

T = "t_1"


def msg(seq: int, body: str = "") -> Message:
    return Message(id=f"m_{seq}", thread=T, seq=seq, sender="bob", kind="user",
                   body=body or f"message {seq}", created_at=1_700_000_000_000_000 + seq)


class History:
    """The store's history read (all a Connection uses), from a dict of messages."""

    def __init__(self) -> None:
        self.stored: dict[int, Message] = {}
        self.reads = 0

    async def history(self, thread: str, *, after_seq: int | None = None,
                      before_seq: int | None = None, limit: int = 100) -> list[Message]:
        self.reads += 1
        lo, hi = after_seq or 0, before_seq or 2**62
        return [self.stored[s] for s in sorted(self.stored) if lo < s < hi][:limit]


Served = tuple[Connection, aiohttp.ClientWebSocketResponse, History]


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., Any]]:
    """``await served(queue_depth=...)``: a started Connection on a real socket, the client
    end, and its history."""
    ready: asyncio.Queue[Connection] = asyncio.Queue()
    done = asyncio.Event()
    history = History()
    depth = {"n": 256}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        who = Identity("alice", frozenset({"user"}), "Alice", "ja", "Asia/Tokyo", 2e9)
        conn = Connection(ws, who, history, queue_depth=depth["n"])  # type: ignore[arg-type]
        conn.threads[T] = ThreadBrief(0, "inquiry", {"alice": "client", "bob": "worker"})
        conn.cursors[T] = 0
        conn.start()
        await ready.put(conn)
        await done.wait()
        await conn.stop()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    clients: list[TestClient[Any, Any]] = []

    async def make(queue_depth: int = 256) -> Served:
        depth["n"] = queue_depth
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        ws = await client.ws_connect("/ws", max_msg_size=0)
        return await ready.get(), ws, history

    yield make
    done.set()
    for client in clients:
        await client.close()


async def read(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    out = []
    for _ in range(n):
        m = await ws.receive(timeout=10)
        assert m.type == aiohttp.WSMsgType.TEXT, m
        out.append(orjson.loads(m.data))
    return out


def label(frame: dict[str, Any]) -> Any:
    return frame["message"]["seq"] if frame.get("type") == "message" else frame.get("n")


async def test_frames_of_one_step_go_out_in_one_write_without_a_writer_task(
        served: Callable[..., Any]) -> None:
    conn, ws, _ = await served()
    before = wswrite.fast_writes
    conn.deliver(Event(thread_channel(T), "message", {}, msg(1)))
    conn.send({"type": "ok", "n": "ok-1"})
    conn.deliver(Event(thread_channel(T), "message", {}, msg(2)))
    assert conn._writer is None  # nothing waits for a task: the lane holds the frames
    got = await read(ws, 3)
    assert [label(f) for f in got] == [1, "ok-1", 2]
    assert wswrite.fast_writes - before == 1  # one transport write for the whole step
    assert conn.cursors[T] == 2


async def test_a_gap_read_from_storage_keeps_the_order_of_the_step(
        served: Callable[..., Any]) -> None:
    """Seq 4 arrives before 2 and 3 (a fan-out fault): the connection reads them from
    storage; frames put before it go first, frames put after it wait behind it."""
    conn, ws, history = await served()
    history.stored = {s: msg(s) for s in (1, 2, 3, 4)}
    conn.send({"type": "ok", "n": "before"})
    conn.deliver(Event(thread_channel(T), "message", {}, msg(1)))
    conn.deliver(Event(thread_channel(T), "message", {}, msg(4)))  # gap: 2 and 3 from storage
    conn.send({"type": "ok", "n": "after"})
    conn.deliver(Event(thread_channel(T), "message", {}, msg(3)))  # a duplicate by then
    conn.deliver(Event(thread_channel(T), "message", {}, msg(5)))
    got = await read(ws, 7)
    assert [label(f) for f in got] == ["before", 1, 2, 3, 4, "after", 5]
    assert history.reads == 1
    await asyncio.sleep(0.05)
    assert conn._writer is None  # the task ended with its queue: the lane is open again
    conn.deliver(Event(thread_channel(T), "message", {}, msg(6)))
    assert conn._writer is None and [label(f) for f in await read(ws, 1)] == [6]


async def test_a_client_that_stops_reading_gets_everything_in_order_when_it_reads_again(
        served: Callable[..., Any]) -> None:
    """Pushes far beyond the socket buffers: the direct write finds the transport paused,
    later frames queue behind a drain, and once the client reads, all arrive once, in
    order (nothing dropped, nothing written twice)."""
    conn, ws, _ = await served(queue_depth=100_000)
    body = "x" * 60_000
    total = 400  # ~24 MB: more than the loopback socket buffers hold
    for seq in range(1, total + 1):
        conn.deliver(Event(thread_channel(T), "message", {}, msg(seq, body)))
        if seq % 20 == 0:
            await asyncio.sleep(0)  # let the lane write (and find the transport paused)
    await asyncio.sleep(0.2)
    assert conn._writer is not None or not conn.queue.empty()  # it waits for the drain
    got = await read(ws, total)
    assert [f["message"]["seq"] for f in got] == list(range(1, total + 1))
    assert not conn.closed


async def test_closing_writes_what_the_lane_holds_before_the_close_frame(
        served: Callable[..., Any]) -> None:
    conn, ws, _ = await served()
    conn.send({"type": "error", "n": "last words"})
    await conn.close_now(4001, "token expired")  # in the same step as the send
    got = await read(ws, 1)
    assert got[0]["n"] == "last words"
    close = await ws.receive(timeout=5)
    assert close.type == aiohttp.WSMsgType.CLOSE and close.data == 4001


async def test_a_push_that_cannot_be_rendered_closes_only_that_connection(
        served: Callable[..., Any]) -> None:
    """Rendering happens in ``deliver`` on the direct lane: a failure there must not reach
    the fan-out that delivers to everyone else; the client is closed (1011) to resume."""
    conn, ws, _ = await served()
    conn.send({"type": "ok", "n": "ok-1"})
    conn.deliver(Event(thread_channel(T), "message", {}, msg(1)))
    conn.deliver(Event(thread_channel(T), "receipt", {"thread": T, "x": object()}))  # no raise
    # what was put before the failure still goes out, before the close
    assert [label(f) for f in await read(ws, 2)] == ["ok-1", 1]
    close = await ws.receive(timeout=5)
    assert close.type == aiohttp.WSMsgType.CLOSE and close.data == 1011
    assert conn.closed
