"""Where one load step spends CPU: the node's threads, the other processes, the commits.

    python -m bench.node_cpu --target embedded --rate 1500 --moderation off
    python -m bench.node_cpu --target production --rate 2000 --server-env GROUP_COMMIT_LINGER_MS=1

Starts a fresh server (as bench.run_chat does), runs one load step, and over 8 s of its
steady state reads ``/proc``: CPU seconds per second of every thread of the node (the event
loop, SQLite's writer), of every other process by name (the generator's ``python``,
``postgres``, ``redis-server``), then the node's ``/metrics`` group-commit counters. For an
A/B of two commits, run it from two checkouts in turn (see BENCHMARKS.md): at a rate the
node is not saturated at, the CPU difference is what a change saves; p99 on this VM is too
noisy for that.

``--cprofile FILE`` runs the node under cProfile instead (its CPU figures are then inflated,
about twice for Python code) and prints, per message of the step, the event loop's top
functions by own time with their calls: where the loop's Python work goes, and how often
each step of the path runs. The writer thread is not profiled.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from typing import Any

from bench.loadgen import LoadConfig, run_load
from bench.server import running
from chat.auth import mint_token
from chat.config import Secret, Settings

WINDOW_S = 8.0


def _ticks(path: str) -> tuple[str, int] | None:
    try:
        with open(path) as f:
            stat = f.read()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def threads_of(pid: int) -> dict[str, tuple[str, int]]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        got = _ticks(f"/proc/{pid}/task/{tid}/stat")
        if got is not None:
            out[tid] = got
    return out


def processes() -> dict[str, tuple[str, int]]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            got = _ticks(f"/proc/{pid}/stat")
            if got is not None:
                out[pid] = got
    return out


def _delta(a: dict[str, tuple[str, int]], b: dict[str, tuple[str, int]], by_name: bool
           ) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for key, (name, ticks) in b.items():
        before = a.get(key, (name, ticks))[1]
        label = name if by_name else f"{name}[{key}]"
        out[label] = out.get(label, 0.0) + (ticks - before) / hz / WINDOW_S
    return {k: round(v, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.005}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="embedded", choices=("embedded", "production"))
    p.add_argument("--rate", type=int, default=1500)
    p.add_argument("--moderation", default="on", choices=("on", "off"))
    p.add_argument("--server-env", action="append", default=[],
                   help="NAME=value, a setting without the TSUNAGU_ prefix (repeatable)")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--gen-cpus", default="0")
    p.add_argument("--cprofile", metavar="FILE", help="profile the event loop into FILE")
    a = p.parse_args()
    extra = {"TSUNAGU_MODERATION_ENABLED": "true" if a.moderation == "on" else "false"}
    for kv in a.server_env:
        name, _, value = kv.partition("=")
        extra["TSUNAGU_" + name.strip().upper()] = value.strip()
    report: dict[str, Any] = {}
    with running(a.target, cpu=a.server_cpu, extra_env=extra, cprofile=a.cprofile) as srv:
        def start() -> None:  # the steady state only, not the connection phase
            def measure() -> None:
                time.sleep(2)
                t0, p0 = threads_of(srv.pid), processes()
                time.sleep(WINDOW_S)
                t1, p1 = threads_of(srv.pid), processes()
                report["node_threads"] = _delta(t0, t1, by_name=False)
                report["processes"] = _delta(p0, p1, by_name=True)
            threading.Thread(target=measure, daemon=True).start()

        cfg = LoadConfig(url=srv.url, secret=srv.secret, n=1000, k=2, rate=a.rate,
                         duration=12, warmup=1, procs=2,
                         gen_cpus=[int(x) for x in a.gen_cpus.split(",")],
                         label=f"{a.target} @{a.rate}", on_start=start)
        load = run_load(cfg)
        report["load"] = {k: v for k, v in load.items() if not isinstance(v, (list, dict))}
        token = mint_token(Settings(jwt_secret=Secret(srv.secret)), "bench", ["admin"])
        req = urllib.request.Request(srv.url + "/metrics",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req) as resp:
            report["group_commit"] = json.loads(resp.read())["group_commit"]
    node = sum(report.get("node_threads", {}).values())
    gc_ = report["group_commit"]
    print(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"node CPU {node:.3f} ({node / a.rate * 1e6:.0f} µs per message); "
          f"{gc_['messages'] / max(1, gc_['batches']):.2f} messages per commit")
    if a.cprofile:
        print_profile(a.cprofile, gc_["messages"])


def print_profile(path: str, messages: int, top: int = 40) -> None:
    """The top functions of a cProfile file by own time, per message (idle time left out:
    the event loop's wait is charged to the call that runs it)."""
    import pstats

    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    idle = ("run_forever", "run_until_complete", "_on_cleanup", "select", "run_app")
    rows = sorted(((tt, calls, cum, f"{file.rsplit('site-packages/', 1)[-1]}:{line}:{name}")
                   for (file, line, name), (_cc, calls, tt, cum, _callers) in stats.items()
                   if not any(word in name for word in idle)), reverse=True)
    total = sum(r[0] for r in rows)
    n = max(1, messages)
    print(f"\nevent loop, profiled: {total / n * 1e6:.1f} µs of own time per message")
    print("| own µs/msg | calls/msg | cumulative µs/msg | function |\n|---|---|---|---|")
    for tt, calls, cum, where in rows[:top]:
        print(f"| {tt / n * 1e6:.2f} | {calls / n:.2f} | {cum / n * 1e6:.1f} | `{where}` |")


if __name__ == "__main__":
    main()
