"""Benchmark: one event fanned out to the in-app channel of 10,000 users.

    /work/venv/bin/python bench/notify_fanout.py --backend sqlite|postgres [--users 10000]

One notice per user is scheduled due now (as a broadcast event would), then the scheduler
stores the 10,000 inbox rows and publishes one ``notification`` frame per user; each user
has a subscriber on the node's hub, which counts what it receives. Reports the time from
dispatch start until every user's frame was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from dataclasses import replace

from chat.config import load_settings
from chat.fanout import Event, LocalFanOut, user_channel
from chat.store import open_store
from notifications import repo
from notifications.rules import JobSpec
from notifications.scheduler import Scheduler, SchedulerConfig, SystemClock

PG = "postgresql://postgres@127.0.0.1:5432/test"


class Counter:
    def __init__(self, done: asyncio.Event, total: int) -> None:
        self.n = 0
        self.total = total
        self.done = done

    def deliver(self, event: Event) -> None:
        self.n += 1
        if self.n == self.total:
            self.done.set()


async def run(backend: str, users: int, dsn: str) -> None:
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
        fanout = LocalFanOut()
        done = asyncio.Event()
        counter = Counter(done, users)
        for i in range(users):
            fanout.hub.add(user_channel(f"user{i}"), counter)
        clock = SystemClock()
        specs = [JobSpec("chat", f"user{i}", 0, {"count": 1, "sender": "田中", "last_seq": 1,
                                                  "title": "broadcast"}) for i in range(users)]
        async with store.db.transaction() as tx:
            await repo.insert_jobs(tx, "t_fan", "evt-broadcast", specs, clock.now_us())
            await tx.execute("UPDATE notify_jobs SET due_at = ?", clock.now_us())
        sched = Scheduler(store.db, fanout, clock, SchedulerConfig(batch=500))
        t0 = time.perf_counter()
        await sched.run_until_idle()
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - t0
        stored = await store.db.fetchval("SELECT count(*) FROM notify_inbox")
        assert stored == users and counter.n == users
        print(f"backend={backend} users={users} time={elapsed:.2f}s "
              f"rate={users / elapsed:,.0f} users/s frames={counter.n}")
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
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--dsn", default=PG)
    a = ap.parse_args()
    asyncio.run(run(a.backend, a.users, a.dsn))


if __name__ == "__main__":
    main()
