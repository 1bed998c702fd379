"""Client-side cost of one PostgreSQL group-commit batch, in isolation.

    python -m bench.pg_batch --batch 5 --batches 2000

Creates a fresh database (``TSUNAGU_BENCH_PG`` or the local server), 500 threads, and
appends ``--batches`` batches of ``--batch`` messages through ``PostgresStore.append_batch``
one after another (no other load). Prints wall time and this process's CPU time per batch
and per message, and how many batches took the fast path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg

from chat.models import NewMessage
from chat.store.postgres import PostgresStore

ADMIN_DSN = os.environ.get("TSUNAGU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
THREADS = 500


@contextlib.asynccontextmanager
async def bench_store(label: str) -> AsyncIterator[tuple[PostgresStore, str]]:
    """A PostgresStore on a fresh database with THREADS threads (dropped afterwards)."""
    name = f"tsunagu_{label}_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    store = PostgresStore(dsn)
    try:
        await store.open()
        await store.migrate()
        for i in range(THREADS):
            await store.create_thread(id=f"t{i}", kind="contract", title="bench", stage="inquiry",
                                      ref={}, participants=[("a", "client"), ("b", "worker")],
                                      at=1)
        yield store, dsn
    finally:
        await store.close()
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()


def batches(size: int) -> Iterator[list[NewMessage]]:
    """Batches of ``size`` ~300-byte messages, round robin over the threads."""
    n = 0
    while True:
        out = []
        for _ in range(size):
            n += 1
            out.append(NewMessage(thread=f"t{n % THREADS}", sender="a", kind="user",
                                  body="納期について確認させてください。" * 6,
                                  client_msg_id=f"c{n}"))
        yield out


async def run(batch: int, count: int) -> None:
    async with bench_store("pg_batch") as (store, _):
        gen = batches(batch)
        for _ in range(THREADS // batch + 1):  # every thread written once: remembered
            await store.append_batch(next(gen))
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            await store.append_batch(next(gen))
        wall = (time.perf_counter() - wall) / count
        cpu = (time.process_time() - cpu) / count
        print(f"batch of {batch}: {wall * 1e3:.2f} ms wall, {cpu * 1e6:.0f} µs CPU per batch, "
              f"{cpu * 1e6 / batch:.0f} µs CPU per message; fast path "
              f"{store.fast_batches}, locked {store.slow_batches}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--batches", type=int, default=2000)
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(a.batch, a.batches))


if __name__ == "__main__":
    main()
