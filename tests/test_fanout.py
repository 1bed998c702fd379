"""Fan-out: the local hub, the in-process back end, and Redis between nodes (with outages)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from chat.fanout import (
    BATCH_MAX_BYTES,
    Event,
    Hub,
    LocalFanOut,
    RedisFanOut,
    decode_batch,
    encode_batch,
    role_channel,
    thread_channel,
    user_channel,
)
from chat.models import Message
from tests.conftest import REDIS_URL, require_servers
from tests.redis_server import PrivateRedis


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    def deliver(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, n: int, timeout: float = 10) -> list[Event]:
        async with asyncio.timeout(timeout):
            while len(self.events) < n:
                self.changed.clear()
                await self.changed.wait()
        return self.events


async def until(cond: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


def ev(channel: str = "t:1", kind: str = "typing", **payload: Any) -> Event:
    return Event(channel, kind, payload or {"thread": "1", "user": "alice"})


MESSAGE = Message(
    id="m_1", thread="t1", seq=7, sender="alice", kind="user", body="こんにちは 👋",
    created_at=1_700_000_000_123_456, client_msg_id="c-1", data={"a": [1, "二", None]},
    edited_at=1_700_000_000_999_999, deleted_at=None, rev=2, thanks=3, masked="こ***",
    moderation={"action": "mask", "categories": ["contact"]},
)


# --- the hub and the in-process back end
def test_channel_names() -> None:
    assert (thread_channel("x"), user_channel("y"), role_channel("z")) == ("t:x", "u:y", "r:z")


def test_hub_add_discard_dispatch() -> None:
    hub = Hub()
    a, b = Sink(), Sink()
    hub.add("t:1", a)
    hub.add("t:1", b)
    hub.add("t:1", a)  # once only
    hub.add("u:a", a)
    assert hub.dispatch(ev("t:1")) == 2
    assert hub.dispatch(ev("t:2")) == 0
    assert (len(a.events), len(b.events)) == (1, 1)
    hub.discard("t:1", a)
    hub.discard("t:1", a)  # harmless twice
    hub.discard("t:9", a)  # and on an unknown channel
    assert hub.dispatch(ev("t:1")) == 1 and (len(a.events), len(b.events)) == (1, 2)
    hub.discard("t:1", b)
    assert sorted(hub.channels()) == ["u:a"] and len(hub) == 1  # empty channels are dropped


def test_hub_tolerates_subscribers_leaving_during_dispatch() -> None:
    hub = Hub()

    class Leaver(Sink):
        def deliver(self, event: Event) -> None:
            super().deliver(event)
            hub.discard(event.channel, self)

    subs = [Leaver() for _ in range(3)]
    for s in subs:
        hub.add("t:1", s)
    hub.dispatch(ev())
    assert all(len(s.events) == 1 for s in subs) and len(hub) == 0


async def test_local_fanout_delivers_on_this_node() -> None:
    fan = LocalFanOut()
    await fan.start()
    sink = Sink()
    fan.hub.add("t:1", sink)
    e = Event("t:1", "message", {}, MESSAGE)
    fan.publish(e)
    assert sink.events == [e]
    assert fan.health() == {"backend": "in-process", "ok": True}
    await fan.stop()


def test_event_batch_encoding_round_trips_messages_in_order() -> None:
    e = Event("t:t1", "message", {"x": 1}, MESSAGE)
    origin, back = decode_batch(encode_batch("node-a", [e.encode(), ev().encode()]))
    assert origin == "node-a" and back == [e, ev()]
    assert back[0].message == MESSAGE and back[1].message is None


def test_a_bare_event_is_read_as_a_batch_of_one_and_a_bad_event_is_left_out() -> None:
    # the shape nodes sent before batching: {"o": ..., "c": ..., "k": ..., "p": ...}
    bare = b'{"o":"old-node",' + ev().encode()[1:]
    assert decode_batch(bare) == ("old-node", [ev()])
    mixed = encode_batch("n", [ev(user="a").encode(), b'{"c":"t:1"}', ev(user="b").encode()])
    assert decode_batch(mixed) == ("n", [ev(user="a"), ev(user="b")])


def test_large_batches_are_split_in_order() -> None:
    fan = RedisFanOut(REDIS_URL, prefix="p", node_id="n")
    big = "x" * (BATCH_MAX_BYTES // 3)
    events = [ev(user=f"{i}-{big}").encode() for i in range(7)]
    parts = fan._batches(events)
    assert len(parts) == 4  # two events per part fit, not three
    assert all(len(p) <= BATCH_MAX_BYTES + 100 for p in parts)
    decoded = [e for p in parts for e in decode_batch(p)[1]]
    assert decoded == [ev(user=f"{i}-{big}") for i in range(7)]


# --- Redis between nodes
@pytest.fixture
async def redis_pair() -> AsyncIterator[tuple[RedisFanOut, RedisFanOut]]:
    require_servers("redis")
    prefix = f"tsunagu-test-{secrets.token_hex(4)}"
    a = RedisFanOut(REDIS_URL, prefix=prefix, node_id="node-a")
    b = RedisFanOut(REDIS_URL, prefix=prefix, node_id="node-b")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def test_events_cross_nodes_and_own_echo_is_ignored(
        redis_pair: tuple[RedisFanOut, RedisFanOut]) -> None:
    a, b = redis_pair
    assert a.health()["ok"] and b.health()["ok"] and a.health()["backend"] == "redis"
    sa, sb = Sink(), Sink()
    a.hub.add("t:1", sa)
    b.hub.add("t:1", sb)
    e1 = ev(user="alice")
    a.publish(e1)
    assert sa.events == [e1]  # delivered locally at once
    assert await sb.wait_for(1) == [e1]
    e2 = ev(user="bob")
    b.publish(e2)
    # Redis delivers in order: when e2 reaches node A, A's own echo of e1 came before it
    assert await sa.wait_for(2) == [e1, e2]
    assert sb.events == [e1, e2]
    assert (a.received, b.received) == (1, 1)
    await until(lambda: a.published >= 1 and b.published >= 1)


async def test_message_events_round_trip_exactly(
        redis_pair: tuple[RedisFanOut, RedisFanOut]) -> None:
    a, b = redis_pair
    sb, other = Sink(), Sink()
    b.hub.add("t:t1", sb)
    b.hub.add("t:t2", other)
    e = Event("t:t1", "message", {}, MESSAGE)
    a.publish(e)
    [got] = await sb.wait_for(1)
    assert got == e and got.message == MESSAGE
    assert isinstance(got.message, Message) and got.message.data == {"a": [1, "二", None]}
    assert other.events == []


async def test_undecodable_event_is_dropped(redis_pair: tuple[RedisFanOut, RedisFanOut]
                                            ) -> None:
    a, b = redis_pair
    sb = Sink()
    b.hub.add("t:1", sb)
    r = aioredis.Redis.from_url(REDIS_URL)
    try:
        await r.publish(b.channel, b"not json")
        await r.publish(b.channel, b'{"o": "x"}')
    finally:
        await r.aclose()
    a.publish(ev())
    assert await sb.wait_for(1) == [ev()]  # still alive after the bad ones
    assert b.health()["ok"]


# --- outages, on a private redis-server that the test kills and restarts
@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def pair_on(url: str) -> tuple[RedisFanOut, RedisFanOut, list[str]]:
    resyncs: list[str] = []
    fans = []
    for name in ("node-a", "node-b"):
        fan = RedisFanOut(url, prefix="p", node_id=name)

        def hook(name: str = name) -> Awaitable[None]:
            async def run() -> None:
                resyncs.append(name)
            return run()

        fan.on_resync = hook
        await fan.start()
        assert fan.health()["ok"]
        fans.append(fan)
    return fans[0], fans[1], resyncs


async def test_killed_subscription_resubscribes_and_resyncs(private_redis: PrivateRedis
                                                             ) -> None:
    a, b, resyncs = await pair_on(private_redis.url)
    try:
        r = aioredis.Redis.from_url(private_redis.url)
        try:
            assert await r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 2
        finally:
            await r.aclose()
        await until(lambda: sorted(resyncs) == ["node-a", "node-b"])
        await until(lambda: a.health()["ok"] and b.health()["ok"])
        assert a.health()["reconnects"] == 1 and b.health()["reconnects"] == 1
        sb = Sink()
        b.hub.add("t:1", sb)
        a.publish(ev())
        assert await sb.wait_for(1) == [ev()]
    finally:
        await a.stop()
        await b.stop()


async def test_redis_outage_health_resync_and_retried_publishes(private_redis: PrivateRedis
                                                                ) -> None:
    a, b, resyncs = await pair_on(private_redis.url)
    try:
        sb = Sink()
        b.hub.add("t:1", sb)
        private_redis.kill()
        await until(lambda: not a.health()["ok"] and not b.health()["ok"])
        during = ev(user="during-outage")
        a.publish(during)
        await asyncio.sleep(0.3)  # let the publisher fail at least once
        assert a.health()["pending_publishes"] == 1
        # Back, but refusing PUBLISH at first: node B resubscribes before A's retry gets in.
        await private_redis.start("--user", "default", "on", "nopass", "~*", "&*", "+@all", "-publish")
        await until(lambda: sorted(resyncs) == ["node-a", "node-b"])
        await until(lambda: a.health()["ok"] and b.health()["ok"])
        assert sb.events == []
        assert a.health()["pending_publishes"] == 1  # still held, still retried
        r = aioredis.Redis.from_url(private_redis.url)
        try:
            await r.execute_command("ACL", "SETUSER", "default", "+publish")
        finally:
            await r.aclose()
        assert await sb.wait_for(1) == [during]
        await until(lambda: a.health()["pending_publishes"] == 0)
        assert a.health()["reconnects"] == 1 and b.health()["reconnects"] == 1
    finally:
        await a.stop()
        await b.stop()
