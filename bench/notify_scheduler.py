"""Benchmark: 100,000 due notices dispatched by the scheduler; time and lateness p50/p99.

    /work/venv/bin/python bench/notify_scheduler.py --backend sqlite   [--n 100000]
    /work/venv/bin/python bench/notify_scheduler.py --backend postgres [--dsn ...]

Every notice is due at the start (as after a downtime); "lateness" is the time from a
notice's due time to its in-app notice being stored and published (the commit of its batch).
Both back ends use the real scheduler code path (claim, re-check, render, inbox, publish).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from dataclasses import replace

from chat.config import load_settings
from chat.fanout import LocalFanOut
from chat.store import open_store
from notifications import repo
from notifications.rules import JobSpec
from notifications.scheduler import Scheduler, SchedulerConfig, SystemClock

PG = "postgresql://postgres@127.0.0.1:5432/test"


async def run(backend: str, n: int, batch: int, dsn: str) -> None:
    tmp = tempfile.mkdtemp()
    dbname = ""
    if backend == "postgres":
        import asyncpg

        dbname = f"tsunagu_bench_{secrets.token_hex(4)}"
        c = await asyncpg.connect(dsn)
        await c.execute(f'CREATE DATABASE "{dbname}"')
        await c.close()
        url = dsn.rsplit("/", 1)[0] + "/" + dbname
    else:
        url = f"sqlite:///{tmp}/bench.db"
    settings = replace(load_settings(env={}, data_dir=tmp), database_url=url,
                       sqlite_synchronous="NORMAL")
    store = open_store(settings)
    await store.open()
    try:
        await store.migrate()
        clock = SystemClock()
        due = clock.now_us()
        specs = [JobSpec("chat", f"user{i % 10000}", due, {"count": 1, "sender": "田中",
                                                          "last_seq": 1, "title": "bench"},
                         slot=str(i)) for i in range(n)]
        for i in range(0, n, 10000):
            async with store.db.transaction() as tx:
                await repo.insert_jobs(tx, "t_bench", "bench", specs[i:i + 10000], due)
        due = clock.now_us()  # due now: lateness counts from the start of dispatch
        await store.db.execute("UPDATE notify_jobs SET due_at = ?", due)
        sched = Scheduler(store.db, LocalFanOut(), clock, SchedulerConfig(batch=batch))
        t0 = time.perf_counter()
        await sched.run_until_idle()
        elapsed = time.perf_counter() - t0
        rows = await store.db.fetch(
            "SELECT n.created_at - j.due_at FROM notify_inbox n JOIN notify_jobs j "
            "ON j.id = n.job_id")
        late = sorted(r[0] / 1000 for r in rows)
        assert len(late) == n, len(late)
        p = statistics.quantiles(late, n=100)
        print(f"backend={backend} notices={n} batch={batch} time={elapsed:.2f}s "
              f"rate={n / elapsed:,.0f}/s lateness_ms p50={p[49]:.0f} p99={p[98]:.0f} "
              f"max={late[-1]:.0f}")
    finally:
        await store.close()
        if dbname:
            import asyncpg

            c = await asyncpg.connect(dsn)
            await c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--dsn", default=PG)
    a = ap.parse_args()
    asyncio.run(run(a.backend, a.n, a.batch, a.dsn))


if __name__ == "__main__":
    main()
