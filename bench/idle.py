"""Memory per idle authenticated connection on one node.

Starts tsunagu (embedded by default; ``--backend production`` for PostgreSQL + Redis) pinned
to ``--server-cpu``, creates N/K threads of K participants (so each connection follows a
thread, as real users do; ``-k 0`` for connections with no thread), reads the server's VmRSS
from /proc/<pid>/status, opens N connections from ``--procs`` generator processes (each
sends ``hello`` and then stays idle), waits ``--settle`` seconds, reads VmRSS again and
reports (after - before) / N. Both processes raise their open-file limit to the hard limit.

    python -m bench.idle -n 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from bench.loadgen import ConnSpec, LoadConfig, _create_threads, pin, raise_nofile
from bench.server import rss_kib, running
from chat.auth import mint_token
from chat.config import Secret, Settings


async def _hold(url: str, specs: list[ConnSpec], ready: Any, done: Any, out: Any,
                concurrency: int) -> None:
    ws_url = url.replace("http://", "ws://") + "/v1/ws"
    sem = asyncio.Semaphore(concurrency)
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    failed = 0
    why: dict[str, int] = {}

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        # Keep reading: aiohttp answers the server's pings only while someone receives, and
        # the server drops a socket that misses its pong (heartbeat).
        async for _ in ws:
            pass
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(spec: ConnSpec) -> None:
            nonlocal failed
            async with sem:
                try:
                    for attempt in range(4):  # a starved server's accept queue overflows
                        try:
                            ws = await session.ws_connect(ws_url, autoping=True,
                                                          max_msg_size=0)
                            break
                        except (aiohttp.ClientError, OSError):
                            if attempt == 3:
                                raise
                            await asyncio.sleep(0.5 * (attempt + 1))
                    await ws.send_str(orjson.dumps({"type": "hello", "id": "h",
                                                    "token": spec.token}).decode())
                    msg = await ws.receive(timeout=60)
                    if msg.type != aiohttp.WSMsgType.TEXT or b'"ok"' not in msg.data.encode():
                        failed += 1
                        key = f"hello: {msg.type.name} {ws.close_code}"
                        why[key] = why.get(key, 0) + 1
                        return
                    sockets.append(ws)
                    readers.append(asyncio.create_task(read(ws)))
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    failed += 1
                    key = exc.__class__.__name__
                    why[key] = why.get(key, 0) + 1

        await asyncio.gather(*(one(s) for s in specs))
        out.put({"open": len(sockets), "failed": failed, "why": why})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ready.wait)
        await loop.run_in_executor(None, done.wait)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for r in readers:
            r.cancel()


def _worker(url: str, specs: list[ConnSpec], cpus: list[int], ready: Any, done: Any,
            out: Any, concurrency: int) -> None:
    pin(cpus)
    raise_nofile()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_hold(url, specs, ready, done, out, concurrency))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("-k", type=int, default=2, help="participants per thread (0: no threads)")
    p.add_argument("--backend", default="embedded", choices=["embedded", "production"])
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--gen-cpus", default="0")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--settle", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=64, help="connects in flight per proc")
    p.add_argument("--out", help="write the JSON result here")
    a = p.parse_args(argv)
    cpus = [int(x) for x in a.gen_cpus.split(",") if x.strip()]
    pin(cpus)
    raise_nofile()
    log_dir = Path(__file__).resolve().parent / "results"
    log_dir.mkdir(exist_ok=True)
    with running(a.backend, cpu=a.server_cpu, log_dir=log_dir) as srv:
        settings = Settings(jwt_secret=Secret(srv.secret))
        specs: list[ConnSpec] = []
        if a.k:
            cfg = LoadConfig(url=srv.url, secret=srv.secret, n=a.n, k=a.k)
            threads = asyncio.run(_create_threads(cfg, f"idle{os.getpid():x}"))
            for tid, users in threads:
                for u in users:
                    specs.append(ConnSpec(len(specs), u, tid, ""))
        else:
            specs = [ConnSpec(i, f"idle-{i}", "", "") for i in range(a.n)]
        for s in specs:
            s.token = mint_token(settings, s.user, ["worker"], ttl=3600)
        time.sleep(1.0)
        before = rss_kib(srv.pid)
        ctx = mp.get_context("fork")
        ready, done, out = ctx.Event(), ctx.Event(), ctx.Queue()
        parts = [specs[i::a.procs] for i in range(a.procs)]
        procs = [ctx.Process(target=_worker, args=(srv.url, part, cpus, ready, done, out,
                                                   a.concurrency), daemon=True)
                 for part in parts]
        t0 = time.monotonic()
        for pr in procs:
            pr.start()
        counts = [out.get(timeout=600) for _ in procs]
        connect_s = time.monotonic() - t0
        ready.set()
        time.sleep(a.settle)
        after = rss_kib(srv.pid)
        status = json.loads(urllib.request.urlopen(srv.url + "/healthz", timeout=10).read())
        done.set()
        for pr in procs:
            pr.join(60)
    opened = sum(c["open"] for c in counts)
    result = {
        "backend": a.backend, "n": a.n, "k": a.k, "opened": opened,
        "failed": sum(c["failed"] for c in counts),
        "failures": {k: sum(c["why"].get(k, 0) for c in counts)
                     for k in {k for c in counts for k in c["why"]}},
        "server_connections": status.get("connections"),
        "rss_before_kib": before, "rss_after_kib": after,
        "kib_per_connection": round((after - before) / max(1, opened), 2),
        "connect_s": round(connect_s, 1),
    }
    print(f"| {a.backend} | {a.n} | {a.k} | {opened} | {before} | {after} "
          f"| {result['kib_per_connection']} |")
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if opened == a.n and status.get("connections") == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
