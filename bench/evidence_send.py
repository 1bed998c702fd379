"""Cost of the thread log on the send path: append_batch with and without the log.

    python -m bench.evidence_send [--messages 20000] [--batch 1 --batch 32]

"Without" replaces the log append (chat.evidence.log.append_sync / append_rows_sync /
append_entries / append_pg) by a no-op for the run; everything else - planning, inserts, commit - is identical. Runs
alternate (with, without, with, ...) and medians of ``--rounds`` are reported: throughput
(wall clock; noisy on a shared machine) and this process's CPU time per message (for
SQLite that includes the database work; for PostgreSQL only the client side).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from typing import Any

from bench.evidence_common import fresh_store
from chat.evidence import log as evidence_log
from chat.models import NewMessage, now_us

THREADS = 50  # default of --threads (the messages go round robin over them)


async def run_once(backend: str, sync: str, messages: int, batch: int, with_log: bool,
                   threads: int = THREADS) -> tuple[float, float]:
    """(messages per second, CPU microseconds of this process per message)."""
    real = (evidence_log.append_sync, evidence_log.append_rows_sync, evidence_log.append_entries,
            evidence_log.append_pg)

    async def no_async(*a: Any, **k: Any) -> list[Any]:
        return []

    if not with_log:
        evidence_log.append_sync = lambda *a, **k: []  # type: ignore[assignment]
        evidence_log.append_rows_sync = lambda *a, **k: ([], {})  # SQLite's message batches
        evidence_log.append_entries = no_async  # type: ignore[assignment]
        evidence_log.append_pg = no_async  # type: ignore[assignment]
    try:
        async with fresh_store(backend, synchronous=sync) as store:
            for t in range(threads):
                await store.create_thread(id=f"t{t}", kind="team", title="bench",
                                          stage="in_progress", ref={},
                                          participants=[("a", "member"), ("b", "member")],
                                          at=now_us())
            body = "お世話になっております。納期についてご相談です。" * 3
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(0, messages, batch):
                await store.append_batch([
                    NewMessage(thread=f"t{(i + j) % threads}", sender="a", kind="user",
                               body=body, client_msg_id=f"c{i + j}")
                    for j in range(batch)])
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            return messages / wall, cpu / messages * 1e6
    finally:
        (evidence_log.append_sync, evidence_log.append_rows_sync, evidence_log.append_entries,
         evidence_log.append_pg) = real


def hashing_cost(n: int = 10000) -> float:
    """Microseconds per entry to chain (canonicalise, hash twice) a typical message."""
    from chat.evidence.chain import extend
    from chat.models import Message

    body = "お世話になっております。納期についてご相談です。" * 3
    pending = [evidence_log.message_entry(Message(
        id=f"m_{i:020x}", thread=f"t{i % THREADS}", seq=i, sender="a", kind="user", body=body,
        created_at=now_us(), client_msg_id=f"c{i}")) for i in range(n)]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        extend({}, pending)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved runs; medians")
    ap.add_argument("--threads", type=int, default=THREADS, help="threads the messages go to")
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"hashing (chain.extend, best of 5): {hashing_cost():.1f} µs per message entry\n")
    print("| back end | batch | with log (msg/s) | without (msg/s) | ratio | "
          "CPU with (µs/msg) | CPU without | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    configs = [("sqlite", "FULL"), ("sqlite", "OFF"), ("postgres", "")]
    for backend, sync in configs:
        if args.backend and backend not in args.backend:
            continue
        for batch in args.batch or [1, 32]:
            n = args.messages if batch > 1 or sync == "OFF" \
                else min(args.messages, 2000)
            w, wo = [], []
            for _ in range(args.rounds):
                w.append(await run_once(backend, sync or "FULL", n, batch, True, args.threads))
                wo.append(await run_once(backend, sync or "FULL", n, batch, False, args.threads))
            mw, mwo = (statistics.median(x[0] for x in r) for r in (w, wo))
            cw, cwo = (statistics.median(x[1] for x in r) for r in (w, wo))
            label = f"sqlite synchronous={sync}" if backend == "sqlite" else "postgresql"
            print(f"| {label} | {batch} | {mw:,.0f} | {mwo:,.0f} | {mw / mwo:.2f} | "
                  f"{cw:.0f} | {cwo:.0f} | {cwo / cw:.2f} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
