"""CPU of SQLite group-commit batches, in isolation, with and without the thread log.

    python -m bench.sqlite_batch --batch 13 --batches 3000 --rounds 3

Creates a fresh SQLite database (``synchronous=FULL``, the background checkpointer on, as
the service runs it) with 500 threads, writes 300 batches to warm up, then appends
``--batches`` batches of ``--batch`` messages (each to a random thread, ~200-byte bodies)
through ``SQLiteStore.append_batch``, one after another. Prints this process's CPU time per
message. Variant ``nolog`` skips the thread log's part of each batch (the dispute log of
issue 5: hashing and its rows), so the difference is what the log costs the writer. The
variants alternate, ``--rounds`` times each: on a noisy VM compare only within one run.
Numbers are CPU time (writer thread and event loop together), so they hold on a busy machine
better than wall time does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chat.store.sqlite as sqlite_store
from chat.models import NewMessage, now_us
from chat.store.sqlite import SQLiteStore

THREADS = 500
WARMUP_BATCHES = 300
BODY = ("お世話になっております。ロゴ案を3パターン作成しましたので、ご確認をお願いいたします。"
        " Thanks for the quick feedback. I will revise the header and")


def _no_log(conn: Any, pending: Sequence[Any], heads: Any) -> tuple[list[Any], dict[str, Any]]:
    return [], {}


async def run_variant(variant: str, batch: int, batches: int, seed: int) -> float:
    """CPU µs per message for one variant on a fresh database."""
    real = sqlite_store.evidence.append_rows_sync
    if variant == "nolog":
        sqlite_store.evidence.append_rows_sync = _no_log
    try:
        with tempfile.TemporaryDirectory(prefix="tsunagu-sqlite-batch-") as tmp:
            store = SQLiteStore(str(Path(tmp) / "bench.db"), synchronous="FULL",
                                checkpoint_interval=0.25)
            await store.open()
            try:
                await store.migrate()
                for i in range(THREADS):
                    await store.create_thread(
                        id=f"t_{i:04d}", kind="contract", title=f"bench {i}", stage="inquiry",
                        ref={}, participants=[(f"c{i}", "client"), (f"w{i}", "worker")],
                        at=now_us())
                rnd = random.Random(seed)

                def one() -> NewMessage:
                    i = rnd.randrange(THREADS)
                    return NewMessage(thread=f"t_{i:04d}", sender=f"c{i}", kind="user",
                                      body=BODY, client_msg_id=os.urandom(8).hex())

                todo = [[one() for _ in range(batch)] for _ in range(WARMUP_BATCHES + batches)]
                for b in todo[:WARMUP_BATCHES]:
                    await store.append_batch(b)
                t0 = time.process_time()
                for b in todo[WARMUP_BATCHES:]:
                    await store.append_batch(b)
                cpu = time.process_time() - t0
            finally:
                await store.close()
    finally:
        sqlite_store.evidence.append_rows_sync = real
    return cpu / (batches * batch) * 1e6


async def main_async(a: argparse.Namespace) -> None:
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    got: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(a.rounds):
        for v in variants:
            us = await run_variant(v, a.batch, a.batches, seed=r)
            got[v].append(us)
            print(f"round {r + 1} {v}: {us:.1f} µs CPU per message", flush=True)
    print(f"\nbatch {a.batch}, {a.batches} batches, {THREADS} threads; median of {a.rounds}:")
    for v, xs in got.items():
        print(f"  {v}: {statistics.median(xs):.1f} µs per message ({', '.join(f'{x:.1f}' for x in xs)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=13, help="messages per batch")
    p.add_argument("--batches", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default="base,nolog")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
