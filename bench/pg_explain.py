"""PostgreSQL's own work for one fast-path batch: ``EXPLAIN (ANALYZE, BUFFERS)`` of it.

    python -m bench.pg_explain --batch 70 --stored 3000

Creates a fresh database (``TSUNAGU_BENCH_PG`` or the local server) with 500 threads and
``--stored`` messages, captures the one statement ``PostgresStore.append_batch`` sends for
the next batch of ``--batch`` messages, and prints its plan with actual times - run inside a
transaction that is rolled back, so nothing is written. Shows where the statement's time
goes (row decoding, each insert, the foreign-key trigger), which the node cannot see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import asyncpg

from chat.models import NewMessage
from chat.store.postgres import PostgresStore

ADMIN_DSN = os.environ.get("TSUNAGU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
THREADS = 500


class _Captured(Exception):
    def __init__(self, query: str, args: tuple[Any, ...]) -> None:
        super().__init__("captured")
        self.query, self.args = query, args


async def run(batch: int, stored: int) -> None:
    name = f"tsunagu_pg_explain_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    store = PostgresStore(dsn)
    n = 0

    def next_batch() -> list[NewMessage]:
        nonlocal n
        out = []
        for _ in range(batch):
            n += 1
            out.append(NewMessage(thread=f"t{n % THREADS}", sender="a", kind="user",
                                  body="納期について確認させてください。" * 6,
                                  client_msg_id=f"c{n}"))
        return out

    try:
        await store.open()
        await store.migrate()
        for i in range(THREADS):
            await store.create_thread(id=f"t{i}", kind="contract", title="bench", stage="inquiry",
                                      ref={}, participants=[("a", "client"), ("b", "worker")],
                                      at=1)
        for _ in range(max(stored // batch, THREADS // batch + 1)):
            await store.append_batch(next_batch())
        await admin.close()
        admin = await asyncpg.connect(dsn)
        await admin.execute("ANALYZE")
        fetch = asyncpg.connection.Connection.fetch

        async def capture(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            raise _Captured(query, args)

        asyncpg.connection.Connection.fetch = capture  # type: ignore[method-assign]
        try:
            await store.append_batch(next_batch())
            raise SystemExit("append_batch sent no statement through fetch")
        except _Captured as got:
            query, args = got.query, got.args
        finally:
            asyncpg.connection.Connection.fetch = fetch  # type: ignore[method-assign]
        rows: list[Any] = []
        for _ in range(3):  # warm the caches; print the last (each run rolled back)
            tx = admin.transaction()
            await tx.start()
            try:
                rows = await admin.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args)
            finally:
                await tx.rollback()
        print("\n".join(r[0] for r in rows))
    finally:
        await store.close()
        await admin.close()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=70)
    p.add_argument("--stored", type=int, default=3000)
    a = p.parse_args()
    asyncio.run(run(a.batch, a.stored))


if __name__ == "__main__":
    main()
