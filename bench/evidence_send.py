"""Cost of the thread log on the send path: append_batch with and without the log.

    python -m bench.evidence_send [--messages 20000] [--batch 1 --batch 32]

"Without" replaces the log append (chat.evidence.log.append_sync / append_entries /
append_pg) by a no-op for the run; everything else - planning, inserts, commit - is identical. Runs
alternate (with, without, with, ...) and the median of three is reported.
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

THREADS = 50


async def run_once(backend: str, sync: str, messages: int, batch: int, with_log: bool) -> float:
    real = (evidence_log.append_sync, evidence_log.append_entries, evidence_log.append_pg)

    async def no_async(*a: Any, **k: Any) -> list[Any]:
        return []

    if not with_log:
        evidence_log.append_sync = lambda *a, **k: []  # type: ignore[assignment]
        evidence_log.append_entries = no_async  # type: ignore[assignment]
        evidence_log.append_pg = no_async  # type: ignore[assignment]
    try:
        async with fresh_store(backend, synchronous=sync) as store:
            for t in range(THREADS):
                await store.create_thread(id=f"t{t}", kind="team", title="bench",
                                          stage="in_progress", ref={},
                                          participants=[("a", "member"), ("b", "member")],
                                          at=now_us())
            body = "お世話になっております。納期についてご相談です。" * 3
            start = time.perf_counter()
            for i in range(0, messages, batch):
                await store.append_batch([
                    NewMessage(thread=f"t{(i + j) % THREADS}", sender="a", kind="user",
                               body=body, client_msg_id=f"c{i + j}")
                    for j in range(batch)])
            return messages / (time.perf_counter() - start)
    finally:
        evidence_log.append_sync, evidence_log.append_entries, evidence_log.append_pg = real


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| back end | batch | with log (msg/s) | without (msg/s) | ratio |")
    print("|---|---|---|---|---|")
    configs = [("sqlite", "FULL"), ("sqlite", "OFF"), ("postgres", "")]
    for backend, sync in configs:
        if args.backend and backend not in args.backend:
            continue
        for batch in args.batch or [1, 32]:
            n = args.messages if batch > 1 or sync == "OFF" \
                else min(args.messages, 2000)
            w, wo = [], []
            for _ in range(3):
                w.append(await run_once(backend, sync or "FULL", n, batch, True))
                wo.append(await run_once(backend, sync or "FULL", n, batch, False))
            mw, mwo = statistics.median(w), statistics.median(wo)
            label = f"sqlite synchronous={sync}" if backend == "sqlite" else "postgresql"
            print(f"| {label} | {batch} | {mw:,.0f} | {mwo:,.0f} | {mw / mwo:.2f} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
