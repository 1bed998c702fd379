"""A node's shutdown ends even when something it closes does not let go: a PostgreSQL
connection still held by a stuck task, a Redis fan-out task stuck in its clean-up.
(Production parts only: SQLite and the in-process fan-out hold nothing of the kind.)"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path

import asyncpg
import pytest

from chat import fanout as fanout_mod
from chat.store import postgres as pg_mod
from chat.store.postgres import PostgresStore
from tests.conftest import REDIS_URL, create_pg_database, drop_pg_database, require_servers


async def test_closing_the_pool_terminates_connections_still_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_servers("postgres")
    monkeypatch.setattr(pg_mod, "POOL_CLOSE_S", 0.3)
    dsn = await create_pg_database()
    try:
        store = PostgresStore(dsn)
        await store.open()
        pool = store._pool
        assert pool is not None
        held = await pool.acquire()  # never released: Pool.close alone would wait forever
        started = time.monotonic()
        await asyncio.wait_for(store.close(), 5)
        assert time.monotonic() - started < 3
        assert pool.is_closing()  # terminated, the held connection with it
        with pytest.raises(asyncpg.InterfaceError):  # the held one is cut off
            await held.fetchval("SELECT 1")
    finally:
        await drop_pg_database(dsn)


async def test_redis_fanout_stop_ends_with_a_task_stuck_in_its_clean_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_servers("redis")
    monkeypatch.setattr(fanout_mod, "STOP_WAIT_S", 0.3)
    fan = fanout_mod.RedisFanOut(REDIS_URL, prefix=f"t-{secrets.token_hex(4)}", node_id="n1")
    await fan.start()
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await release.wait()  # a clean-up that never ends

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    fan._tasks.append(task)
    started = time.monotonic()
    await asyncio.wait_for(fan.stop(), 5)
    assert time.monotonic() - started < 3
    assert not task.done()  # left behind, not waited for
    release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
