"""Load generator for the tsunagu WebSocket protocol (and the bare relay in bench/relay.py).

Theory of operation:

* The parent creates N/K threads of K participants over HTTP with a ``service`` token, mints
  one token per participant (``chat.auth.mint_token`` with the server's secret) and forks
  ``--procs`` worker processes (pinned with ``--gen-cpus``). Participant j of thread i is
  connection ``i*K + j`` and goes to process ``(i*K + j) % procs``, so the participants of a
  thread sit in different processes and every delivery crosses a process boundary.
* Each worker opens its connections (``hello``), waits on a barrier, then sends ``send``
  frames open-loop at its share of ``--rate`` (round robin over its connections), for
  ``--duration`` seconds. A body is ``"<monotonic ns> <client_msg_id> "`` padded to
  ``--body-bytes``; CLOCK_MONOTONIC is shared by the processes of one machine, so the
  receiver computes send-to-receive latency from the body.
* After sending, each worker waits for its acknowledgements, then for a quiet period with no
  push, and reports: acknowledged (persisted) messages ``(thread, seq, client_msg_id)``, and
  per connection the ``(seq, client_msg_id)`` of every ``message`` push it got.
* The parent checks that every participant (the sender's own connection included, as the
  server pushes to every subscriber of the thread) received every acknowledged message of its
  thread exactly once and in seq order, and that no client_msg_id was stored twice.

Latency percentiles count pushes to participants other than the sender, for messages sent
after ``--warmup``. Delivered msgs/s counts those pushes too (one per message per other
participant).

Usage (the server prints nothing about its secret; pass the one you configured)::

    python -m bench.loadgen --url http://127.0.0.1:8080 --secret "$TSUNAGU_JWT_SECRET" \\
        -n 1000 -k 2 --rate 2000 --duration 20 --procs 2 --gen-cpus 0
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import gc
import itertools
import json
import multiprocessing as mp
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from chat.auth import mint_token
from chat.config import Secret, Settings

# Bodies look like chat: a header (send time, client_msg_id) spelled with letters so that
# the scanner sees no long digit runs that real messages would not have, then ordinary work
# talk in Japanese and English, about ``--body-bytes`` bytes in all.
_ENCODE = str.maketrans("0123456789-", "abcdefghijk")
_DECODE = str.maketrans("abcdefghijk", "0123456789-")
WORK_TALK = (
    "お世話になっております。ロゴ案を3パターン作成しましたので、ご確認をお願いいたします。",
    "Thanks for the quick feedback. I will revise the header and send the files tomorrow.",
    "納期について、来週の水曜日までに初稿をお送りする形でよろしいでしょうか。",
    "Could you share the brand colours and any fonts you would like me to use?",
    "修正点を反映しました。ボタンの色とフォントサイズを調整しています。",
    "The deposit has been paid through the platform, so I will start working today.",
)


def _padding(i: int, body_bytes: int) -> str:
    text = ""
    j = i
    while len(text.encode()) < body_bytes:
        text += WORK_TALK[j % len(WORK_TALK)] + " "
        j += 1
    while len(text.encode()) > body_bytes and len(text) > 1:
        text = text[:-1]
    return text


@dataclass
class LoadConfig:
    url: str = "http://127.0.0.1:8080"
    secret: str = ""
    n: int = 1000
    k: int = 2
    rate: float = 1000.0
    duration: float = 10.0
    warmup: float = 1.0
    procs: int = 2
    gen_cpus: list[int] = field(default_factory=list)
    body_bytes: int = 200
    retry_fraction: float = 0.0  # resend this share of sends with the same client_msg_id
    drain: float = 30.0  # max seconds to wait for acks and pushes after sending
    quiet: float = 0.5  # the run is over after this long without a frame
    connect_concurrency: int = 64
    max_inflight: int = 2000  # per connection: open-loop safety valve
    gc_freeze: bool = True  # freeze the connections' objects before sending (_worker_main)
    label: str = ""
    server_pid: int = 0  # when set, report the server's CPU use while sending
    on_start: Callable[[], None] | None = None  # called in the parent when sending starts


# --- setup (parent)
def _settings(secret: str) -> Settings:
    return Settings(jwt_secret=Secret(secret))


def group_commit(cfg: LoadConfig) -> tuple[int, int] | None:
    """The server's group-commit counters (batches, messages), or None (the relay has none)."""
    import urllib.request

    token = mint_token(_settings(cfg.secret), "bench-platform", ["service"], ttl=60)
    req = urllib.request.Request(cfg.url + "/metrics",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            gc = json.loads(r.read())["group_commit"]
    except Exception:
        return None
    return int(gc["batches"]), int(gc["messages"])


async def _create_threads(cfg: LoadConfig, run_id: str) -> list[tuple[str, list[str]]]:
    settings = _settings(cfg.secret)
    service = mint_token(settings, "bench-platform", ["service"], ttl=3600)
    headers = {"Authorization": f"Bearer {service}"}
    n_threads = cfg.n // cfg.k
    roles = ["client", "worker"] + ["member"] * max(0, cfg.k - 2)
    sem = asyncio.Semaphore(16)
    out: list[tuple[str, list[str]] | None] = [None] * n_threads

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as s:

        async def one(i: int) -> None:
            users = [f"b{run_id}-{i}-{j}" for j in range(cfg.k)]
            body = {"kind": "team" if cfg.k > 2 else "contract", "title": f"bench {i}",
                    "participants": [{"user_id": u, "role": r}
                                     for u, r in zip(users, roles, strict=False)]}
            async with sem:
                for attempt in range(5):
                    async with s.post(cfg.url + "/v1/threads", json=body,
                                      headers=headers) as r:
                        data = await r.json(content_type=None)
                        if r.status == 201:
                            out[i] = (data["thread"]["id"], users)
                            return
                        if r.status != 429:
                            raise RuntimeError(f"create thread: {r.status} {data}")
                    await asyncio.sleep(0.2 * (attempt + 1))
                raise RuntimeError("create thread: rate limited")

        await asyncio.gather(*(one(i) for i in range(n_threads)))
    return [t for t in out if t is not None]


@dataclass
class ConnSpec:
    index: int
    user: str
    thread: str
    token: str


def plan_connections(cfg: LoadConfig, threads: list[tuple[str, list[str]]]
                     ) -> list[list[ConnSpec]]:
    settings = _settings(cfg.secret)
    per_proc: list[list[ConnSpec]] = [[] for _ in range(cfg.procs)]
    index = 0
    ttl = cfg.duration + cfg.drain + 600
    for tid, users in threads:
        for u in users:
            token = mint_token(settings, u, ["worker"], ttl=ttl)
            per_proc[index % cfg.procs].append(ConnSpec(index, u, tid, token))
            index += 1
    return per_proc


# --- worker
def proc_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


class GcPauses:
    """The collector's pauses in this process (gc.callbacks): the longest, and the total."""

    def __init__(self) -> None:
        self.longest = self.total = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._t0
            self.total += took
            self.longest = max(self.longest, took)


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def pin(cpus: list[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Conn:
    __slots__ = ("acked", "cmids", "errors", "inflight", "pending", "received", "spec", "ws")

    def __init__(self, spec: ConnSpec) -> None:
        self.spec = spec
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: dict[str, tuple[int, str, bool]] = {}  # request id -> (t_ns, cmid, retry)
        self.received: list[int] = []  # seqs of message pushes, in arrival order
        self.cmids: list[str] = []  # client_msg_id (from the body) of each push
        self.acked: list[tuple[int, str, bool]] = []  # (seq, cmid, duplicate)
        self.errors: dict[str, int] = {}
        self.inflight = 0


class Stats:
    def __init__(self) -> None:
        self.lat = array.array("d")  # ms, pushes to others, after warm-up
        self.ack_lat = array.array("d")  # ms, send -> ok
        self.pushes_others = 0
        self.pushes_others_window = 0
        self.last_frame = time.monotonic()
        self.retry_ok = 0
        self.retry_bad = 0
        self.closed: dict[str, int] = {}


async def _open(session: aiohttp.ClientSession, url: str, conn: Conn,
                sem: asyncio.Semaphore) -> None:
    async with sem:
        for attempt in range(6):
            try:
                ws = await session.ws_connect(url, autoping=True, max_msg_size=0,
                                              timeout=aiohttp.ClientWSTimeout(ws_close=2))
                break
            except (aiohttp.ClientError, OSError):
                if attempt == 5:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1) * random.random())
        await ws.send_str(orjson.dumps({"type": "hello", "id": "h",
                                        "token": conn.spec.token}).decode())
        msg = await ws.receive(timeout=30)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"hello: {msg.type} {ws.close_code}")
        frame = orjson.loads(msg.data)
        if frame.get("type") != "ok":
            raise RuntimeError(f"hello refused: {frame}")
        conn.ws = ws


async def _reader(conn: Conn, stats: Stats, warm_ns: int) -> None:
    ws = conn.ws
    assert ws is not None
    me = conn.spec.user
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        now = time.monotonic_ns()
        stats.last_frame = time.monotonic()
        frame = orjson.loads(msg.data)
        kind = frame.get("type")
        if kind == "message":
            m = frame["message"]
            body = m["body"]
            sp1 = body.index(" ")
            sp2 = body.index(" ", sp1 + 1)
            sent = int(body[:sp1].translate(_DECODE))
            conn.received.append(m["seq"])
            conn.cmids.append(body[sp1 + 1 : sp2].translate(_DECODE))
            if m["sender"] != me:
                stats.pushes_others += 1
                if sent >= warm_ns:
                    stats.pushes_others_window += 1
                    stats.lat.append((now - sent) / 1e6)
        elif kind == "ok":
            req = conn.pending.pop(frame.get("re"), None)
            if req is None:
                continue
            conn.inflight -= 1
            t_ns, cmid, retry = req
            m = frame.get("message")
            if m is None:
                continue
            if retry:
                if frame.get("duplicate") is True:
                    stats.retry_ok += 1
                else:
                    stats.retry_bad += 1
            conn.acked.append((m["seq"], cmid, bool(frame.get("duplicate"))))
            if t_ns >= warm_ns:
                stats.ack_lat.append((now - t_ns) / 1e6)
        elif kind == "error":
            code = frame.get("code", "?")
            conn.errors[code] = conn.errors.get(code, 0) + 1
            if conn.pending.pop(frame.get("re"), None) is not None:
                conn.inflight -= 1
    code = str(ws.close_code)
    stats.closed[code] = stats.closed.get(code, 0) + 1


async def _worker_main(cfg: LoadConfig, specs: list[ConnSpec], proc: int,
                       barrier: Any, go: Any, t0: Any, result_q: Any) -> None:
    conns = [Conn(s) for s in specs]
    stats = Stats()
    ws_url = cfg.url.replace("http://", "ws://").replace("https://", "wss://") + "/v1/ws"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        sem = asyncio.Semaphore(cfg.connect_concurrency)
        t_conn = time.monotonic()
        await asyncio.gather(*(_open(session, ws_url, c, sem) for c in conns))
        connect_s = time.monotonic() - t_conn
        # The connections' objects live for the whole run: out of the collector's reach
        # (gc.freeze), or every full collection walks them all and stalls this process's
        # reads, which the run then reports as the server's latency. The collector's pauses
        # while sending are reported (gen_gc_max_ms).
        if cfg.gc_freeze:
            gc.collect()
            gc.freeze()
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, barrier.wait)
        await loop.run_in_executor(None, go.wait)
        start_ns = t0.value
        warm_ns = start_ns + int(cfg.warmup * 1e9)
        readers = [asyncio.create_task(_reader(c, stats, warm_ns)) for c in conns]
        while time.monotonic_ns() < start_ns:
            await asyncio.sleep(0.001)

        # Open-loop sending at this process's share of the rate.
        my_rate = cfg.rate * len(conns) / cfg.n
        end_ns = start_ns + int(cfg.duration * 1e9)
        pads = [_padding(i, cfg.body_bytes) for i in range(len(WORK_TALK))]
        rr = itertools.cycle(conns)
        ids = itertools.count()
        sent = skipped = retries = 0
        rng = random.Random(proc)
        cpu0 = self_cpu_s()
        while True:
            now = time.monotonic_ns()
            if now >= end_ns:
                break
            due = int((now - start_ns) / 1e9 * my_rate)
            while sent + skipped < due:
                c = next(rr)
                if c.inflight >= cfg.max_inflight or c.ws is None or c.ws.closed:
                    skipped += 1
                    continue
                n = next(ids)
                cmid = f"{c.spec.index}-{n}"
                t_ns = time.monotonic_ns()
                head = f"{t_ns} {cmid} ".translate(_ENCODE)
                body = head + pads[n % len(pads)]
                rid = f"s{n}"
                c.pending[rid] = (t_ns, cmid, False)
                c.inflight += 1
                data = orjson.dumps({"type": "send", "id": rid, "thread": c.spec.thread,
                                     "client_msg_id": cmid, "body": body}).decode()
                await c.ws.send_str(data)
                sent += 1
                if cfg.retry_fraction and rng.random() < cfg.retry_fraction:
                    rid2 = f"r{n}"
                    c.pending[rid2] = (t_ns, cmid, True)
                    c.inflight += 1
                    await c.ws.send_str(data.replace(f'"id":"{rid}"', f'"id":"{rid2}"', 1))
                    retries += 1
            # Never under 1 ms: uvloop's timers count whole milliseconds, and a shorter sleep
            # returns at once. With 0.5 ms (the floor until 2026-12-07, reached from 4,000
            # msgs/s) this loop spun at 100 % of the generator's core, delaying the other
            # generator process's reads by a scheduler slice (the relay's p50 jumped from
            # 0.3 to 3.7 ms) and starving PostgreSQL and Redis whenever they ran on that core.
            await asyncio.sleep(min(0.005, max(0.001, 1.0 / my_rate if my_rate else 0.005)))
        send_end = time.monotonic()
        gen_cpu = self_cpu_s() - cpu0
        gc.callbacks.remove(pauses)

        # Wait for acks, then for a quiet period.
        deadline = send_end + cfg.drain
        while time.monotonic() < deadline and any(c.inflight > 0 for c in conns):
            await asyncio.sleep(0.02)
        while time.monotonic() < deadline and time.monotonic() - stats.last_frame < cfg.quiet:
            await asyncio.sleep(0.05)
        drained_s = time.monotonic() - send_end
        timed_out = time.monotonic() >= deadline
        unacked = sum(c.inflight for c in conns)
        for c in conns:
            if c.ws is not None:
                with contextlib.suppress(Exception):
                    await c.ws.close()
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    errors: dict[str, int] = {}
    for c in conns:
        for code, cnt in c.errors.items():
            errors[code] = errors.get(code, 0) + cnt
    result_q.put({
        "proc": proc,
        "connect_s": connect_s,
        "gen_cpu_s": gen_cpu,
        "gc_max_s": pauses.longest,
        "gc_total_s": pauses.total,
        "sent": sent,
        "skipped": skipped,
        "retries": retries,
        "unacked": unacked,
        "drained_s": drained_s,
        "drain_timed_out": timed_out,
        "errors": errors,
        "closed": stats.closed,
        "retry_ok": stats.retry_ok,
        "retry_bad": stats.retry_bad,
        "pushes_others": stats.pushes_others,
        "pushes_others_window": stats.pushes_others_window,
        "lat": stats.lat.tobytes(),
        "ack_lat": stats.ack_lat.tobytes(),
        "conns": [(c.spec.index, c.spec.thread, c.received, c.cmids, c.acked) for c in conns],
    })


def _worker(cfg: LoadConfig, specs: list[ConnSpec], proc: int, barrier: Any, go: Any,
            t0: Any, result_q: Any) -> None:
    pin(cfg.gen_cpus)
    raise_nofile()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(_worker_main(cfg, specs, proc, barrier, go, t0, result_q))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        result_q.put({"proc": proc, "failed": f"{exc.__class__.__name__}: {exc}"})
        raise


# --- analysis (parent)
def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def analyse(cfg: LoadConfig, results: list[dict[str, Any]], window_s: float) -> dict[str, Any]:
    lat: list[float] = []
    ack_lat: list[float] = []
    acked: dict[str, dict[int, str]] = {}
    stored_cmids: dict[tuple[str, str], set[int]] = {}
    members: dict[str, list[tuple[list[int], list[str]]]] = {}
    errors: dict[str, int] = {}
    closed: dict[str, int] = {}
    for r in results:
        a = array.array("d")
        a.frombytes(r["lat"])
        lat.extend(a)
        b = array.array("d")
        b.frombytes(r["ack_lat"])
        ack_lat.extend(b)
        for code, cnt in r["errors"].items():
            errors[code] = errors.get(code, 0) + cnt
        for code, cnt in r["closed"].items():
            closed[code] = closed.get(code, 0) + cnt
        for _index, tid, received, cmids, acks in r["conns"]:
            members.setdefault(tid, []).append((received, cmids))
            t_acked = acked.setdefault(tid, {})
            for seq, cmid, _dup in acks:
                t_acked[seq] = cmid
                stored_cmids.setdefault((tid, cmid), set()).add(seq)
    lat.sort()
    ack_lat.sort()
    lost = duplicated = reordered = unexpected = 0
    for tid, conns in members.items():
        expect = acked.get(tid, {})
        for received, cmids in conns:
            got = set(received)
            lost += sum(1 for s in expect if s not in got)
            duplicated += len(received) - len(got)
            duplicated += len(cmids) - len(set(cmids))
            reordered += sum(1 for x, y in itertools.pairwise(received) if y <= x)
            unexpected += sum(1 for s in got if s not in expect)
    double_stored = sum(len(v) - 1 for v in stored_cmids.values() if len(v) > 1)
    sent = sum(r["sent"] for r in results)
    n_acked = sum(len(v) for v in acked.values())
    delivered_window = sum(r["pushes_others_window"] for r in results)
    window = max(1e-9, window_s)
    return {
        "label": cfg.label,
        "n": cfg.n,
        "k": cfg.k,
        "procs": cfg.procs,
        "offered_rate": cfg.rate,
        "duration_s": cfg.duration,
        "sent": sent,
        "skipped": sum(r["skipped"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "acked": n_acked,
        "acked_per_s": round(n_acked / cfg.duration, 1),
        "unacked": sum(r["unacked"] for r in results),
        "delivered": sum(r["pushes_others"] for r in results),
        "delivered_per_s": round(delivered_window / window, 1),
        "lat_ms": {"p50": round(percentile(lat, 50), 2), "p99": round(percentile(lat, 99), 2),
                   "max": round(lat[-1], 2) if lat else None, "count": len(lat)},
        "ack_ms": {"p50": round(percentile(ack_lat, 50), 2),
                   "p99": round(percentile(ack_lat, 99), 2),
                   "max": round(ack_lat[-1], 2) if ack_lat else None},
        "lost": lost,
        "duplicated": duplicated + double_stored,
        "reordered": reordered,
        "unexpected": unexpected,
        "retry_ok": sum(r["retry_ok"] for r in results),
        "retry_bad": sum(r["retry_bad"] for r in results),
        "errors": errors,
        "closed": closed,
        "connect_s": round(max(r["connect_s"] for r in results), 2),
        "gen_cpu": round(sum(r["gen_cpu_s"] for r in results) / cfg.duration, 2),
        "gen_gc_max_ms": round(max(r["gc_max_s"] for r in results) * 1000, 1),
        "drained_s": round(max(r["drained_s"] for r in results), 2),
        # When the drain timed out, "lost" may count pushes still queued in the server.
        "drain_timed_out": any(r["drain_timed_out"] for r in results),
    }


TABLE_HEADER = ("| label | N | K | offered/s | acked/s | delivered/s | p50 ms | p99 ms | max ms "
                "| lost | dup | errors | server CPU | gen CPU (GC max ms) | msgs/batch |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(r: dict[str, Any]) -> str:
    errs = ", ".join(f"{k}:{v}" for k, v in sorted(r["errors"].items())) or "0"
    if r.get("unacked"):
        errs += f", unacked:{r['unacked']}"
    if r.get("skipped"):
        errs += f", skipped:{r['skipped']}"
    if r.get("drain_timed_out"):
        errs += ", drain timed out"
    lat = r["lat_ms"]
    return (f"| {r['label']} | {r['n']} | {r['k']} | {r['offered_rate']:g} | {r['acked_per_s']:g} "
            f"| {r['delivered_per_s']:g} | {lat['p50']} | {lat['p99']} | {lat['max']} "
            f"| {r['lost']} | {r['duplicated']} | {errs} | {r.get('server_cpu')} "
            f"({r.get('server_cpu_sys')} sys) | {r.get('gen_cpu')} ({r.get('gen_gc_max_ms')}) "
            f"| {r.get('batch_avg', '-')} |")


def run_load(cfg: LoadConfig) -> dict[str, Any]:
    """Run one load test; return the analysed result (see :func:`analyse`)."""
    if not cfg.secret:
        raise SystemExit("loadgen: --secret (or TSUNAGU_JWT_SECRET) is required")
    if cfg.n % cfg.k:
        raise SystemExit("loadgen: N must be a multiple of K")
    pin(cfg.gen_cpus)
    raise_nofile()
    run_id = f"{os.getpid():x}{random.randrange(1 << 20):05x}"
    threads = asyncio.run(_create_threads(cfg, run_id))
    per_proc = plan_connections(cfg, threads)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(cfg.procs + 1)
    go = ctx.Event()
    t0 = ctx.Value("q", 0)
    result_q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, per_proc[i], i, barrier, go, t0, result_q),
                         daemon=True) for i in range(cfg.procs)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=300)
    except Exception:
        failures = []
        while not result_q.empty():
            failures.append(result_q.get())
        for p in procs:
            p.kill()
        raise RuntimeError(f"workers failed to connect: {failures}") from None
    t0.value = time.monotonic_ns() + 200_000_000  # every worker starts at the same instant
    go.set()
    if cfg.on_start is not None:
        cfg.on_start()
    server_cpu = server_sys = None
    gc0 = group_commit(cfg)
    if cfg.server_pid:
        time.sleep(0.2)
        u0, s0 = proc_cpu(cfg.server_pid)
        time.sleep(cfg.duration)
        u1, s1 = proc_cpu(cfg.server_pid)
        server_cpu = (u1 - u0 + s1 - s0) / cfg.duration
        server_sys = (s1 - s0) / cfg.duration
    gc1 = group_commit(cfg)
    results = []
    timeout = cfg.duration + cfg.drain + 120
    for _ in procs:
        r = result_q.get(timeout=timeout)
        if "failed" in r:
            for p in procs:
                p.kill()
            raise RuntimeError(f"worker {r['proc']} failed: {r['failed']}")
        results.append(r)
    for p in procs:
        p.join(10)
    out = analyse(cfg, results, cfg.duration - cfg.warmup)
    out["server_cpu"] = None if server_cpu is None else round(server_cpu, 2)
    out["server_cpu_sys"] = None if server_sys is None else round(server_sys, 2)
    if gc0 and gc1 and gc1[0] > gc0[0]:  # messages per group-commit batch while sending
        out["batch_avg"] = round((gc1[1] - gc0[1]) / (gc1[0] - gc0[0]), 2)
    return out


def parse_args(argv: list[str] | None = None) -> tuple[LoadConfig, str | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--secret", default=os.environ.get("TSUNAGU_JWT_SECRET", ""),
                   help="HS256 secret of the server (default: $TSUNAGU_JWT_SECRET)")
    p.add_argument("-n", type=int, default=1000, help="connections")
    p.add_argument("-k", type=int, default=2, help="participants per thread")
    p.add_argument("--rate", type=float, default=1000.0, help="aggregate sends per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds excluded from latency")
    p.add_argument("--procs", type=int, default=2, help="generator processes")
    p.add_argument("--gen-cpus", default="", help="pin the generator to these CPUs: 0 or 0,1")
    p.add_argument("--body-bytes", type=int, default=200)
    p.add_argument("--retry-fraction", type=float, default=0.0,
                   help="share of sends repeated with the same client_msg_id")
    p.add_argument("--label", default="")
    p.add_argument("--json", help="also write the JSON result to this file")
    a = p.parse_args(argv)
    cpus = [int(x) for x in a.gen_cpus.split(",") if x.strip()]
    cfg = LoadConfig(url=a.url.rstrip("/"), secret=a.secret, n=a.n, k=a.k, rate=a.rate,
                     duration=a.duration, warmup=a.warmup, procs=a.procs, gen_cpus=cpus,
                     body_bytes=a.body_bytes, retry_fraction=a.retry_fraction,
                     label=a.label or f"N={a.n} K={a.k}")
    return cfg, a.json


def main(argv: list[str] | None = None) -> int:
    cfg, out_path = parse_args(argv)
    result = run_load(cfg)
    result["config"] = {k: v for k, v in asdict(cfg).items() if k not in ("secret", "on_start")}
    print(TABLE_HEADER)
    print(table_row(result))
    text = json.dumps(result, indent=2)
    print(text)
    if out_path:
        Path(out_path).write_text(text + "\n", encoding="utf-8")
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["reordered"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
