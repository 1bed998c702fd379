"""``tsunagu serve`` with the dispute log's cost taken out — for benchmarks only.

``python -m bench.serve_variant {nolog|nohash} serve ...`` runs the normal command line
after patching, in this process only:

* ``nolog``: no thread-log entry is written on the send path (SQLite and PostgreSQL): the
  messages and threads are stored as usual, the evidence log is not. The difference to the
  normal server is the whole cost of tamper evidence on the send path (canonical JSON, two
  SHA-256, the log row and the head update).
* ``nohash``: the log rows are written, but canonicalization is plain ``orjson.dumps`` and
  the hashes are a constant: the difference is the cost of RFC 8785 + SHA-256 alone.

Never use either outside a benchmark: the log is what makes the evidence trustworthy.

A third variant changes nothing and watches: ``stalls`` logs (at WARNING, into the server's
log in ``bench/results/``) every garbage collection that takes more than 10 ms and every
time the event loop comes back more than 50 ms late (``BENCH_GC_MS`` and ``BENCH_STALL_MS``
in the environment set other limits) — how the collector's pauses were found.
``cprofile`` runs cProfile over the event loop's thread between SIGUSR1 and SIGUSR2 and
writes the statistics to ``$BENCH_CPROFILE_OUT`` (call counts per message, which
py-spy's samples do not give).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson


def _nolog() -> None:
    from chat.evidence import log
    from chat.evidence.chain import GENESIS, Head, LogEntry, Pending
    from chat.store import postgres

    def append_sync(conn: Any, pending: Sequence[Pending]) -> list[LogEntry]:
        return []

    def append_rows_sync(conn: Any, pending: Sequence[Pending], heads: Mapping[str, Head]
                         ) -> tuple[list[LogEntry], dict[str, Head]]:
        return [], {}

    def extend(heads: Mapping[str, Head], pending: Sequence[Pending]
               ) -> tuple[list[LogEntry], dict[str, Head]]:
        return [], {p.thread: heads.get(p.thread, (0, GENESIS)) for p in pending}

    log.append_sync = append_sync  # type: ignore[assignment]
    log.append_rows_sync = append_rows_sync  # SQLite's message batches
    postgres.extend = extend  # type: ignore[assignment]


def _nohash() -> None:
    from chat.evidence import chain

    constant = "0" * 64
    chain.canonical = orjson.dumps  # type: ignore[assignment]
    chain.sha256_hex = lambda data: constant  # type: ignore[assignment]


def _stalls() -> None:
    import asyncio
    import gc
    import logging
    import os
    import threading
    import time
    from collections.abc import AsyncIterator

    from aiohttp import web

    from chat import app as chat_app

    log = logging.getLogger("tsunagu.bench.stalls")
    late_limit = float(os.environ.get("BENCH_STALL_MS", "50")) / 1e3
    gc_limit = float(os.environ.get("BENCH_GC_MS", "10")) / 1e3
    started = [0.0]
    spent = [[0, 0.0], [0, 0.0], [0, 0.0]]  # per generation: collections, seconds

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        spent[info["generation"]][0] += 1
        spent[info["generation"]][1] += took
        if took > gc_limit:
            log.warning("gc generation %d took %.1f ms (%d collected) in thread %s",
                        info["generation"], took * 1e3, info["collected"],
                        threading.current_thread().name)

    async def watch_loop(app: web.Application) -> AsyncIterator[None]:
        async def watch() -> None:
            loop = asyncio.get_running_loop()
            report = loop.time() + 5
            while True:
                t0 = loop.time()
                await asyncio.sleep(0.01)
                late = loop.time() - t0 - 0.01
                if late > late_limit:
                    log.warning("event loop %.1f ms late", late * 1e3)
                if t0 > report:  # the collector's share of the last 5 s, per generation
                    log.warning("gc in 5 s: %s", ", ".join(
                        f"gen {g} {n}x {sec * 1e3:.1f} ms" for g, (n, sec) in enumerate(spent)))
                    spent[:] = [[0, 0.0], [0, 0.0], [0, 0.0]]
                    report = t0 + 5

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    build = chat_app.build_app

    def build_app(settings: Any) -> web.Application:
        app = build(settings)
        app.cleanup_ctx.append(watch_loop)
        return app

    gc.callbacks.append(on_gc)
    chat_app.build_app = build_app  # type: ignore[assignment]


def _cprofile() -> None:
    import cProfile
    import os
    import signal

    prof = cProfile.Profile()
    out = os.environ.get("BENCH_CPROFILE_OUT", "bench/results/cprofile.out")

    def start(*_: Any) -> None:
        prof.enable()

    def stop(*_: Any) -> None:
        prof.disable()
        prof.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def main() -> None:
    variant = sys.argv.pop(1)
    {"nolog": _nolog, "nohash": _nohash, "stalls": _stalls, "cprofile": _cprofile}[variant]()
    from chat.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
