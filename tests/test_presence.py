"""Presence: local counts, and Redis presence shared by nodes (stale nodes do not count)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chat.presence import PIPELINE_USERS, STALE_S, LocalPresence, RedisPresence
from tests.conftest import REDIS_URL, require_servers
from tests.redis_server import free_port


async def test_local_presence_counts_connections() -> None:
    p = LocalPresence()
    assert await p.online(["alice"]) == set()
    assert await p.connected("alice") is True
    assert await p.connected("alice") is False  # second tab
    assert p.connections("alice") == 2
    assert await p.online(["alice", "bob"]) == {"alice"}
    assert await p.disconnected("alice") is False
    assert await p.online(["alice"]) == {"alice"}
    assert await p.disconnected("alice") is True
    assert await p.online(["alice"]) == set() and p.connections("alice") == 0
    assert "alice" not in p.local


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    require_servers("redis")
    r = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"tsunagu-test-{secrets.token_hex(4)}"
    r.test_prefix = prefix  # type: ignore[attr-defined]
    try:
        yield r
    finally:
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def test_redis_presence_across_nodes(redis_client: aioredis.Redis) -> None:
    prefix = redis_client.test_prefix  # type: ignore[attr-defined]
    a = RedisPresence(redis_client, prefix=prefix, node_id="node-a")
    b = RedisPresence(redis_client, prefix=prefix, node_id="node-b")
    await a.start()
    await b.start()
    try:
        assert await b.online(["alice", "bob"]) == set()
        assert await a.connected("alice") is True
        assert await b.online(["alice", "bob"]) == {"alice"}  # seen from the other node
        assert await b.connected("alice") is True  # first on node b
        assert await a.connected("alice") is False  # second on node a
        assert await a.disconnected("alice") is False
        assert await a.disconnected("alice") is False  # still on node b
        assert await a.online(["alice"]) == {"alice"}
        assert await b.disconnected("alice") is True  # the last connection anywhere
        assert await a.online(["alice"]) == set() and await b.online(["alice"]) == set()
        assert await a.online([]) == set()
    finally:
        await a.stop()
        await b.stop()


async def test_stale_node_field_is_ignored(redis_client: aioredis.Redis) -> None:
    prefix = redis_client.test_prefix  # type: ignore[attr-defined]
    a = RedisPresence(redis_client, prefix=prefix, node_id="node-a")
    key = f"{prefix}:presence:carol"
    await redis_client.hset(key, "node-dead", time.time() - STALE_S - 5)
    assert await a.online(["carol"]) == set()  # a dead node's old refresh
    await redis_client.hset(key, "node-live", time.time() - STALE_S + 30)
    assert await a.online(["carol"]) == {"carol"}
    await redis_client.hdel(key, "node-live")
    # carol's last connection on node a ends: offline, although the stale field remains
    assert await a.connected("carol") is True
    assert await a.disconnected("carol") is True
    assert await redis_client.hkeys(key) == [b"node-dead"]


async def test_keys_expire_and_stop_removes_own_fields(redis_client: aioredis.Redis) -> None:
    prefix = redis_client.test_prefix  # type: ignore[attr-defined]
    a = RedisPresence(redis_client, prefix=prefix, node_id="node-a")
    b = RedisPresence(redis_client, prefix=prefix, node_id="node-b")
    await a.start()
    await a.connected("dave")
    await b.connected("dave")
    key = f"{prefix}:presence:dave"
    assert 0 < await redis_client.ttl(key) <= STALE_S
    await a.stop()  # node a shuts down
    assert await redis_client.hkeys(key) == [b"node-b"]
    observer = RedisPresence(redis_client, prefix=prefix, node_id="node-c")
    assert await observer.online(["dave"]) == {"dave"}
    await b.stop()
    assert await observer.online(["dave"]) == set()
    assert await redis_client.exists(key) == 0


async def test_redis_down_falls_back_to_local() -> None:
    r = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    p = RedisPresence(r, prefix="x", node_id="n")
    try:
        assert await p.connected("erin") is True
        assert await p.online(["erin", "frank"]) == {"erin"}
        assert await p.disconnected("erin") is True
        assert await p.online(["erin"]) == set()
    finally:
        await r.aclose()


async def test_refresh_and_stop_cover_every_user_in_chunks(redis_client: aioredis.Redis) -> None:
    """A node's periodic refresh (and its shutdown) goes to Redis in pipelines of
    PIPELINE_USERS users, and still reaches every connected user."""
    prefix = redis_client.test_prefix  # type: ignore[attr-defined]
    a = RedisPresence(redis_client, prefix=prefix, node_id="node-a")
    users = [f"u{i}" for i in range(2 * PIPELINE_USERS + 7)]
    for u in users:
        a.local[u] = 1  # connected here (as LocalPresence counts them)
    await a._mark(users)
    observer = RedisPresence(redis_client, prefix=prefix, node_id="node-o")
    assert await observer.online(users) == set(users)
    await a.stop()
    assert await observer.online(users) == set()
