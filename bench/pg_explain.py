"""PostgreSQL's own work for one fast-path batch: ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` of it.

    python -m bench.pg_explain --batch 70 --stored 3000
    python -m bench.pg_explain --batch 13 --stored 3000 --generic

Creates a fresh database (``TSUNAGU_BENCH_PG`` or the local server) with 500 threads and
``--stored`` messages, captures the one statement ``PostgresStore.append_batch`` sends for
the next batch of ``--batch`` messages, and prints its plan with actual times - run inside a
transaction that is rolled back, so nothing is written. Shows where the statement's time
goes (row decoding, each insert, the foreign-key trigger), which the node cannot see.
``--generic`` shows the plan the fast path's connections use instead (one generic plan per
statement, made under ``_FAST_SETTINGS``: see chat.store.postgres), planned when the tables
hold what ``--stored`` put there, and analysed.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import asyncpg

from bench.pg_batch import THREADS, batches, bench_store
from chat.store.postgres import _FAST_SETTINGS


class _Captured(Exception):
    def __init__(self, query: str, args: tuple[Any, ...]) -> None:
        super().__init__("captured")
        self.query, self.args = query, args


def _literal(value: Any) -> str:
    """``value`` (a JSON text parameter) as an SQL literal: EXPLAIN EXECUTE takes no $n."""
    assert isinstance(value, str)
    return "'" + value.replace("'", "''") + "'"


async def run(batch: int, stored: int, generic: bool) -> None:
    async with bench_store("pg_explain") as (store, dsn):
        gen = batches(batch)
        for _ in range(max(stored // batch, THREADS // batch + 1)):
            await store.append_batch(next(gen))
        fetch = asyncpg.connection.Connection.fetch

        async def capture(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            raise _Captured(query, args)

        asyncpg.connection.Connection.fetch = capture  # type: ignore[method-assign]
        try:
            await store.append_batch(next(gen))
            raise SystemExit("append_batch sent no statement through fetch")
        except _Captured as got:
            query, args = got.query, got.args
        finally:
            asyncpg.connection.Connection.fetch = fetch  # type: ignore[method-assign]
        conn = await asyncpg.connect(dsn, server_settings=_FAST_SETTINGS if generic else None)
        try:
            await conn.execute("ANALYZE")
            explain = "EXPLAIN (ANALYZE, BUFFERS, WAL) "
            if generic:  # a prepared statement: its generic plan, as the fast path runs it
                await conn.execute(f"PREPARE fast AS {query}")
                query = "EXECUTE fast (" + ", ".join(_literal(a) for a in args) + ")"
                args = ()
            rows: list[Any] = []
            for _ in range(3):  # warm the caches; print the last (each run rolled back)
                tx = conn.transaction()
                await tx.start()
                try:
                    rows = await conn.fetch(explain + query, *args)
                finally:
                    await tx.rollback()
            print("\n".join(r[0] for r in rows))
        finally:
            await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=70)
    p.add_argument("--stored", type=int, default=3000)
    p.add_argument("--generic", action="store_true",
                   help="the fast path's generic plan (see above), not a custom plan")
    a = p.parse_args()
    asyncio.run(run(a.batch, a.stored, a.generic))


if __name__ == "__main__":
    main()
