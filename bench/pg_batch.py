"""Cost of one PostgreSQL group-commit batch, in isolation: the client's, and the server's.

    python -m bench.pg_batch --batch 5 --batches 2000

Creates a fresh database (``TSUNAGU_BENCH_PG`` or the local server), 500 threads, and
appends ``--batches`` batches of ``--batch`` messages through ``PostgresStore.append_batch``
one after another (no other load). Prints wall time and this process's CPU time per batch
and per message, and how many batches took the fast path.

    python -m bench.pg_batch --server-cpu

PostgreSQL's own CPU per stored message (the server must run on this machine: it reads
/proc). Batches of 12 to 15 messages to random threads of the 500, about 1 % of them retries
of a message sent earlier (most of them older than the node remembers: the fast path's
second round trip), after ``--stored`` messages (default 30,000) are stored. The store's
pools have one connection each; prints their backends' CPU (user + system, /proc/<pid>/stat) per
message and per batch, the CPU of all the server's other processes (WAL writer,
checkpointer, autovacuum...: on a shared server, other clients' too), the WAL written per
message (pg_stat_wal: records, full-page images, bytes), the client's CPU, and the paths
taken. ``--perf FILE`` also records the backend with ``perf record -g`` into FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg

from chat.models import NewMessage
from chat.store.postgres import PostgresStore

ADMIN_DSN = os.environ.get("TSUNAGU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
THREADS = 500


@contextlib.asynccontextmanager
async def bench_store(label: str, **pool: int) -> AsyncIterator[tuple[PostgresStore, str]]:
    """A PostgresStore on a fresh database with THREADS threads (dropped afterwards);
    ``pool``: its min_size and max_size."""
    name = f"tsunagu_{label}_{os.getpid()}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f"CREATE DATABASE {name}")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    store = PostgresStore(dsn, **pool)
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


def mixed_batches(seed: int, retry: float) -> Iterator[list[NewMessage]]:
    """Batches of 12 to 15 ~300-byte messages to random threads; a fraction ``retry`` of
    the messages repeat (same thread, sender and client_msg_id) one sent earlier."""
    rnd = random.Random(seed)
    sent: list[NewMessage] = []
    n = 0
    while True:
        out = []
        for _ in range(rnd.randint(12, 15)):
            if sent and rnd.random() < retry:
                old = sent[rnd.randrange(len(sent))]
                out.append(NewMessage(thread=old.thread, sender=old.sender, kind="user",
                                      body=old.body, client_msg_id=old.client_msg_id))
                continue
            n += 1
            m = NewMessage(thread=f"t{rnd.randrange(THREADS)}", sender=rnd.choice("ab"),
                           kind="user", body="納期について確認させてください。" * 6,
                           client_msg_id=f"c{n}")
            sent.append(m)
            out.append(m)
        yield out


def _proc_cpu(pid: int) -> float:
    """utime + stime of process ``pid``, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(backends: set[int]) -> tuple[float, float]:
    """CPU of the ``backends``, and of every other process named postgres on this machine."""
    other = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in backends:
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        other += _proc_cpu(int(entry))
    return sum(_proc_cpu(b) for b in backends), other


_WAL = "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"


async def server_cpu(count: int, stored: int, retry: float, perf: str | None) -> None:
    async with bench_store("pg_cpu", min_size=1, max_size=1) as (store, dsn):
        backends = set()
        for pool in (store._pool, getattr(store, "_fast", None)):  # the fast path's own
            if pool is not None:
                async with pool.acquire() as c:
                    backends.add(await c.fetchval("SELECT pg_backend_pid()"))
        gen = mixed_batches(1, retry)
        msgs = 0
        while msgs < stored:
            b = next(gen)
            msgs += len(b)
            await store.append_batch(b)
        work = [next(gen) for _ in range(count)]
        msgs = sum(len(b) for b in work)
        mon = await asyncpg.connect(dsn)
        await mon.execute("CHECKPOINT")  # full-page images: as after any checkpoint
        fast, slow = store.fast_batches, store.slow_batches
        fetches = 0
        fetch = asyncpg.connection.Connection.fetch

        async def counting(self: Any, *a: Any, **kw: Any) -> Any:
            nonlocal fetches
            fetches += 1
            return await fetch(self, *a, **kw)

        asyncpg.connection.Connection.fetch = counting  # type: ignore[method-assign]
        rec = None
        if perf:
            rec = await asyncio.create_subprocess_exec(
                "perf", "record", "-g", "-o", perf, "-p", ",".join(map(str, backends)),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(1)
        wal0 = await mon.fetchrow(_WAL)
        cpu0, other0 = _server_cpu(backends)
        wall, client = time.perf_counter(), time.process_time()
        try:
            for b in work:
                await store.append_batch(b)
        finally:
            asyncpg.connection.Connection.fetch = fetch  # type: ignore[method-assign]
        wall, client = time.perf_counter() - wall, time.process_time() - client
        cpu1, other1 = _server_cpu(backends)
        wal1 = await mon.fetchrow(_WAL)
        if rec is not None:
            rec.send_signal(signal.SIGINT)
            await rec.wait()
        await mon.close()
        cpu, other = cpu1 - cpu0, other1 - other0
        rec_, fpi, wal_bytes = (wal1[i] - wal0[i] for i in range(3))
        print(f"{count} batches, {msgs} messages ({msgs / count:.1f} per batch), "
              f"{wall / msgs * 1e6:.0f} µs wall per message")
        print(f"backend CPU: {cpu / msgs * 1e6:.1f} µs per message, "
              f"{cpu / count * 1e6:.0f} µs per batch")
        print(f"other postgres processes: {other / msgs * 1e6:.1f} µs per message")
        print(f"WAL per message: {rec_ / msgs:.2f} records, {fpi / msgs:.3f} full-page images, "
              f"{int(wal_bytes) / msgs:.0f} bytes")
        print(f"client CPU: {client / msgs * 1e6:.1f} µs per message; statements per batch "
              f"{fetches / count:.2f}; fast path {store.fast_batches - fast}, "
              f"locked {store.slow_batches - slow}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--server-cpu", action="store_true",
                   help="PostgreSQL's CPU per message, batches of 12-15 (see above)")
    p.add_argument("--stored", type=int, default=30_000, help="--server-cpu: stored first")
    p.add_argument("--retry", type=float, default=0.01, help="--server-cpu: retried share")
    p.add_argument("--perf", help="--server-cpu: perf record the backend into this file")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if a.server_cpu:
        asyncio.run(server_cpu(a.batches, a.stored, a.retry, a.perf))
    else:
        asyncio.run(run(a.batch, a.batches))


if __name__ == "__main__":
    main()
