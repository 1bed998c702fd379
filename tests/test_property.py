"""Property: random interleavings of sends, retries, disconnects and resumes never lose,
duplicate or reorder a message (both back ends).

Three devices take part in one thread: ``a1`` and ``a2`` (two devices of the client, same
user) and ``w`` (the worker). Hypothesis draws a program of steps: sends, retries with an
earlier ``client_msg_id`` (from any device of the same user), bursts of concurrent sends
(some of them retries), graceful and abrupt disconnects (also in the middle of a burst),
and reconnects that resume from the last seq the device saw. At the end every device
reconnects and catches up, and the checks are:

* on every connection, the ``message`` pushes of the thread have consecutive seqs that
  start right after the seq the connection resumed from: no repeat, no gap, no disorder,
  so a device never needs to deduplicate;
* over all its connections, each device saw seqs 1..N exactly once, where N is the
  thread's last seq, and what it saw is the stored history (ids, senders, bodies);
* every acknowledged send is in the history with the acknowledged id and seq; a retry of a
  ``client_msg_id`` is answered with the same message; no (sender, client_msg_id) is
  stored twice.

One node per back end serves all the examples; each example uses a fresh thread and fresh
users, so examples do not see each other.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Client, Node

# More examples for a deeper run: TSUNAGU_PROPERTY_EXAMPLES=500 scripts/test tests/test_property.py
EXAMPLES = int(os.environ.get("TSUNAGU_PROPERTY_EXAMPLES", "25"))
DEVICES = ("a1", "a2", "w")
USER_OF = {"a1": "client", "a2": "client", "w": "worker"}
_n = itertools.count()

device = st.sampled_from(DEVICES)
step = st.one_of(
    st.tuples(st.just("send"), device),
    st.tuples(st.just("retry"), device, st.integers(0, 1000)),
    st.tuples(
        st.just("burst"),
        st.lists(st.tuples(device, st.sampled_from(["send", "send", "retry", "drop"]),
                           st.integers(0, 1000)), min_size=2, max_size=5),
    ),
    st.tuples(st.just("drop"), device, st.booleans()),
    st.tuples(st.just("connect"), device),
)
programs = st.lists(step, min_size=1, max_size=14)


@dataclass
class Conn:
    client: Client
    resumed_from: int
    seqs: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Device:
    name: str
    user: str
    token: str
    conn: Conn | None = None
    history: list[Conn] = field(default_factory=list)


class World:
    def __init__(self, node: Node, thread: str, users: dict[str, str]) -> None:
        self.node = node
        self.thread = thread
        self.devices = {
            d: Device(d, users[USER_OF[d]], node.token(users[USER_OF[d]], USER_OF[d]))
            for d in DEVICES
        }
        self.cmids: dict[str, list[tuple[str, str]]] = {u: [] for u in users.values()}
        self.acked: dict[tuple[str, str], dict[str, Any]] = {}  # (user, cmid) -> message
        self.unacked: set[tuple[str, str]] = set()
        # answers with duplicate=false per (user, cmid); concurrent answers on different
        # sockets may arrive in any order, so this is counted, not ordered
        self.created: dict[tuple[str, str], int] = {}

    # --- connections
    def cursor(self, dev: Device) -> int:
        seen = [s for c in dev.history for s in c.seqs]
        if seen:
            return seen[-1]
        return 0

    async def connect(self, dev: Device) -> Conn:
        if dev.conn is not None:
            return dev.conn
        resume = self.cursor(dev)
        client = Client(self.node.ws_url, dev.token)
        await client.connect(resume={self.thread: resume})
        dev.conn = Conn(client, resume)
        dev.history.append(dev.conn)
        return dev.conn

    def pump(self, conn: Conn) -> None:
        for frame in conn.client.drain_pushes():
            if frame["type"] == "message" and frame["message"]["thread"] == self.thread:
                conn.messages.append(frame["message"])
                conn.seqs.append(frame["message"]["seq"])

    async def drop(self, dev: Device, abrupt: bool) -> None:
        conn = dev.conn
        if conn is None:
            return
        client = conn.client
        if abrupt and client.ws is not None:
            transport = client.ws._conn.transport if client.ws._conn is not None else None
            if transport is not None:
                transport.abort()
        await client.close()
        # Only now is the device disconnected: everything this socket received is counted
        # before a concurrent step may reconnect and resume from the device's cursor.
        self.pump(conn)
        if dev.conn is conn:
            dev.conn = None

    # --- sends
    async def send(self, dev: Device, cmid: str, body: str) -> None:
        conn = await self.connect(dev)
        key = (dev.user, cmid)
        try:
            ok = await conn.client.send(self.thread, body, cmid=cmid)
        except (ConnectionError, aiohttp.ClientError, TimeoutError):
            if key not in self.acked:
                self.unacked.add(key)
            return
        assert ok["type"] == "ok", ok
        msg = ok["message"]
        assert msg["sender"] == dev.user and msg["body"] == body
        earlier = self.acked.get(key)
        if earlier is not None:
            assert (msg["id"], msg["seq"]) == (earlier["id"], earlier["seq"]), (msg, earlier)
        self.acked[key] = msg
        self.created[key] = self.created.get(key, 0) + (0 if ok["duplicate"] else 1)
        self.unacked.discard(key)

    def new_cmid(self, dev: Device) -> tuple[str, str]:
        n = next(_n)
        cmid, body = f"m{n}", f"{dev.name} says {n} / こんにちは"
        self.cmids[dev.user].append((cmid, body))
        return cmid, body

    def old_cmid(self, dev: Device, pick: int) -> tuple[str, str]:
        mine = self.cmids[dev.user]
        return mine[pick % len(mine)] if mine else self.new_cmid(dev)

    async def run(self, program: list[Any]) -> None:
        for st_ in program:
            match st_:
                case ("send", d):
                    dev = self.devices[d]
                    await self.send(dev, *self.new_cmid(dev))
                case ("retry", d, pick):
                    dev = self.devices[d]
                    await self.send(dev, *self.old_cmid(dev, pick))
                case ("drop", d, abrupt):
                    await self.drop(self.devices[d], abrupt)
                case ("connect", d):
                    await self.connect(self.devices[d])
                case ("burst", items):
                    # connect first, so the burst itself is concurrent
                    for d, _, _ in items:
                        await self.connect(self.devices[d])
                    jobs = []
                    for d, what, pick in items:
                        dev = self.devices[d]
                        if what == "drop":
                            jobs.append(self.drop(dev, abrupt=pick % 2 == 0))
                        elif what == "retry":
                            jobs.append(self.send(dev, *self.old_cmid(dev, pick)))
                        else:
                            jobs.append(self.send(dev, *self.new_cmid(dev)))
                    await asyncio.gather(*jobs)
            for dev in self.devices.values():
                if dev.conn is not None:
                    self.pump(dev.conn)

    async def settle(self) -> list[dict[str, Any]]:
        """Retry what was never acknowledged, catch every device up; return the history."""
        for user, cmid in sorted(self.unacked):
            dev = next(d for d in self.devices.values() if d.user == user)
            body = dict(self.cmids[user])[cmid]
            await self.send(dev, cmid, body)
        assert not self.unacked
        status, body = await self.node.http(
            "GET", f"/v1/threads/{self.thread}/messages?after_seq=0&limit=500",
            self.node.token(self.devices["w"].user, "worker"),
        )
        assert status == 200, body
        history: list[dict[str, Any]] = body["messages"]
        last = len(history)
        for dev in self.devices.values():
            conn = await self.connect(dev)
            async with asyncio.timeout(10):
                while self.cursor(dev) < last:
                    frame = await conn.client.push("message")
                    if frame["message"]["thread"] == self.thread:
                        conn.messages.append(frame["message"])
                        conn.seqs.append(frame["message"]["seq"])
            await asyncio.sleep(0.02)  # anything extra (a duplicate) would show up now
            await self.drop(dev, abrupt=False)
        return history

    def check(self, history: list[dict[str, Any]]) -> None:
        seqs = [m["seq"] for m in history]
        assert seqs == list(range(1, len(history) + 1)), seqs
        # every body names its client_msg_id, so a body stored twice is a cmid stored twice
        stored = {(m["sender"], m["body"]) for m in history}
        assert len(stored) == len(history), "a client_msg_id was stored twice"
        by_seq = {m["seq"]: m for m in history}
        for key, n in self.created.items():
            assert n <= 1, f"{key} was answered as new {n} times"
        for (user, _cmid), msg in self.acked.items():
            got = by_seq[msg["seq"]]
            assert (got["id"], got["sender"], got["body"]) == (msg["id"], user, msg["body"])
        for dev in self.devices.values():
            cursor = 0
            for conn in dev.history:
                # resumed from exactly where the device was, then consecutive seqs
                assert conn.resumed_from == cursor, (dev.name, conn.resumed_from, cursor)
                expected = list(range(cursor + 1, cursor + 1 + len(conn.seqs)))
                assert conn.seqs == expected, (dev.name, conn.seqs, expected)
                for m in conn.messages:
                    s = by_seq[m["seq"]]
                    assert (m["id"], m["sender"], m["body"]) == (s["id"], s["sender"], s["body"])
                cursor = expected[-1] if expected else cursor
            assert cursor == len(history), (dev.name, cursor, len(history))


def _program_test(node: Node, loop: asyncio.AbstractEventLoop) -> Any:
    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(program=programs)
    def run(program: list[Any]) -> None:
        async def one() -> None:
            tag = secrets.token_hex(3)
            users = {"client": f"alice-{tag}", "worker": f"bob-{tag}"}
            thread = await node.create_thread((users["client"], "client"),
                                              (users["worker"], "worker"))
            world = World(node, thread["id"], users)
            try:
                await world.run(program)
                world.check(await world.settle())
            finally:
                for dev in world.devices.values():
                    await world.drop(dev, abrupt=False)

        loop.run_until_complete(one())

    return run


def test_interleavings_deliver_exactly_once_in_order(settings_factory: Any) -> None:
    loop = asyncio.new_event_loop()
    node = Node(settings_factory(rate_per_s=100000.0, rate_burst=100000,
                                 hello_rate_per_s=100000.0, hello_rate_burst=100000))
    try:
        loop.run_until_complete(node.start())
        _program_test(node, loop)()
    finally:
        loop.run_until_complete(node.stop())
        loop.close()


@pytest.fixture(autouse=True)
def _no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Any:
    import logging

    caplog.set_level(logging.ERROR, logger="tsunagu")
    yield
    errors = [r for r in caplog.records
              if r.name.startswith("tsunagu") and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
