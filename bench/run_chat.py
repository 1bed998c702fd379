"""The issue-2 chat benchmark in one command (see BENCHMARKS.md).

For each target - the bare relay (the ceiling), tsunagu on the embedded back end (SQLite in
a temporary directory, in-process fan-out) and on the production back end (a fresh
PostgreSQL database + Redis, migrated first) - it starts the server pinned to one CPU
(``--server-cpu``, default 1), runs bench/loadgen.py pinned to the other (``--gen-cpus``,
default 0), and:

* climbs a ladder of rates with N=1000 connections in threads of K=2 and reports the
  sustained persisted throughput: the highest acknowledged msgs/s of a step whose p99
  send-to-receive latency is <= ``--p99-ms`` (50) with nothing lost, duplicated, reordered or
  unacknowledged; as a ratio to the relay's;
* reports p99 at 2,000 msgs/s (a step of the ladder);
* checks zero lost / duplicated in every run (chat runs also repeat 1 % of their sends with
  the same client_msg_id, which must be answered as duplicates and never stored twice);
* runs tsunagu with moderation scanning on (the default) and off
  (``TSUNAGU_MODERATION_ENABLED=false``);
* with ``--evidence on,nolog,nohash``, also without the dispute log on the send path, or
  with its hashing stubbed (bench/serve_variant.py): the cost of tamper evidence.

``--quick`` is a smoke run (short steps, few rates, the moderation-off variant at 2,000/s
only). ``--profile`` adds one extra 2,000 msgs/s run per tsunagu back end with py-spy
attached (not counted in the figures) and prints the hot spots.

    python -m bench.run_chat --quick
    python -m bench.run_chat --out bench/results/run.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import TABLE_HEADER, LoadConfig, run_load, table_row
from bench.profile_summary import summarize
from bench.server import ROOT, running

FULL_RATES = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000]
QUICK_RATES = [1000, 2000, 4000]


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "loadavg_at_start": os.getloadavg()}


def passes(r: dict[str, Any], p99_ms: float) -> bool:
    return (r["lat_ms"]["p99"] <= p99_ms and r["lost"] == 0 and r["duplicated"] == 0
            and r["reordered"] == 0 and r["unacked"] == 0 and r["skipped"] == 0
            and not r["errors"] and r["retry_bad"] == 0
            and r["acked_per_s"] >= 0.95 * r["offered_rate"])


def ladder(url: str, secret: str, label: str, rates: list[int], a: argparse.Namespace,
           retry: float, pid: int) -> list[dict[str, Any]]:
    out = []
    for rate in rates:
        cfg = LoadConfig(url=url, secret=secret, n=a.n, k=a.k, rate=rate, duration=a.duration,
                         warmup=a.warmup, procs=a.procs, gen_cpus=a.gen_cpus,
                         retry_fraction=retry, label=f"{label} @{rate}", server_pid=pid,
                         gc_freeze=not a.no_gc_freeze)
        r = run_load(cfg)
        r["pass"] = passes(r, a.p99_ms)
        print(table_row(r) + ("" if r["pass"] else "  ← over the limit"), flush=True)
        out.append(r)
        if not r["pass"] and rate > 2000:
            break
    return out


def sustained(runs: list[dict[str, Any]]) -> float:
    ok = [r["acked_per_s"] for r in runs if r["pass"]]
    return max(ok) if ok else 0.0


def at_rate(runs: list[dict[str, Any]], rate: int) -> dict[str, Any] | None:
    return next((r for r in runs if r["offered_rate"] == rate), None)


def profile_run(server: Any, label: str, a: argparse.Namespace, out_dir: Path) -> str:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = out_dir / f"profile-{label}.txt"
    raw.unlink(missing_ok=True)  # a failed py-spy must not leave an older run's profile
    duration = max(1, int(a.duration - 1))
    spies: list[subprocess.Popen[bytes]] = []

    extra = a.profile_args.split()
    # --native (C frames too: uvloop, SQLite, system calls) cannot sample without pausing
    blocking = [] if "--native" in extra else ["--nonblocking"]

    def start() -> None:  # sample the steady state only, not the connection phase
        spies.append(subprocess.Popen(
            [pyspy, "record", "-p", str(server.pid), "-d", str(duration), "-r", "200",
             "-f", "raw", *blocking, *extra, "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    cfg = LoadConfig(url=server.url, secret=server.secret, n=a.n, k=a.k, rate=a.profile_rate,
                     duration=a.duration, warmup=a.warmup, procs=a.procs, gen_cpus=a.gen_cpus,
                     label=f"{label} @{a.profile_rate} (profiled)", on_start=start)
    r = run_load(cfg)
    print(table_row(r), flush=True)
    for spy in spies:
        spy.wait(duration + 30)
    if not raw.exists():
        return f"(py-spy wrote nothing for {label})"
    return summarize(raw.read_text(), top=25)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--targets", default="relay,embedded,production")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-k", type=int, default=2)
    p.add_argument("--rates", help="comma-separated ladder (default: built in)")
    p.add_argument("--duration", type=float, help="seconds per step (default 15, quick 4)")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--gen-cpus", default="0")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--p99-ms", type=float, default=50.0)
    p.add_argument("--moderation", default="on,off", help="variants to run: on,off")
    p.add_argument("--evidence", default="on",
                   help="dispute-log variants: on,nolog,nohash (see bench/serve_variant.py)")
    p.add_argument("--profile", action="store_true", help="py-spy the server under load")
    p.add_argument("--profile-rate", type=int, default=2000)
    p.add_argument("--profile-args", default="",
                   help='extra py-spy arguments, e.g. "--gil" (only the thread holding the GIL)')
    p.add_argument("--no-gc-freeze", action="store_true",
                   help="leave the generator's connections to its collector (before 2026-12-07)")
    p.add_argument("--out", help="write the JSON results here")
    a = p.parse_args(argv)
    a.gen_cpus = [int(x) for x in a.gen_cpus.split(",") if x.strip()]
    a.duration = a.duration or (4.0 if a.quick else 15.0)
    rates = [int(x) for x in a.rates.split(",")] if a.rates else (
        QUICK_RATES if a.quick else FULL_RATES)
    if 2000 not in rates:
        rates = sorted({*rates, 2000})
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(f"machine: {info}", flush=True)
    print(TABLE_HEADER, flush=True)
    report: dict[str, Any] = {"machine": info, "args": {k: v for k, v in vars(a).items()},
                              "targets": {}, "profiles": {}}
    targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    variants = [v.strip() for v in a.moderation.split(",") if v.strip()]
    evidence = [v.strip() for v in a.evidence.split(",") if v.strip()]
    for target in targets:
        combos = [("-", "on")] if target == "relay" else [
            (v, e) for v in variants for e in evidence]
        for variant, ev in combos:
            label = target if target == "relay" else f"{target} mod={variant}" + (
                "" if ev == "on" else f" evidence={ev}")
            extra = {} if target == "relay" else {
                "TSUNAGU_MODERATION_ENABLED": "true" if variant == "on" else "false",
                "TSUNAGU_BENCH_EVIDENCE": ev}
            with running(target, cpu=a.server_cpu, extra_env=extra, log_dir=out_dir) as srv:
                quick_variant = a.quick and (variant == "off" or ev != "on")
                steps = [2000] if quick_variant else rates
                retry = 0.0 if target == "relay" else 0.01
                runs = ladder(srv.url, srv.secret, label, steps, a, retry, srv.pid)
                report["targets"][label] = runs
                if a.profile and target != "relay" and (variant, ev) == combos[0]:
                    report["profiles"][label] = profile_run(srv, target, a, out_dir)
    # summary
    relay = report["targets"].get("relay")
    ceiling = sustained(relay) if relay else 0.0
    lines = ["", "## Summary", "",
             f"| target | sustained persisted msgs/s (p99 ≤ {a.p99_ms:g} ms) | ratio to relay "
             "| p50 / p99 / max ms at 2,000/s | lost | dup |",
             "|---|---|---|---|---|---|"]
    summary = {}
    for label, runs in report["targets"].items():
        s = sustained(runs)
        r2 = at_rate(runs, 2000)
        lat = r2["lat_ms"] if r2 else {"p50": None, "p99": None, "max": None}
        # "lost" is only conclusive when every ack arrived and the pushes went quiet.
        lost = sum(r["lost"] for r in runs if not r.get("drain_timed_out"))
        dup = sum(r["duplicated"] for r in runs)
        cut = sum(1 for r in runs if r.get("drain_timed_out"))
        ratio = f"{s / ceiling:.0%}" if ceiling and label != "relay" else "-"
        top = max(r["offered_rate"] for r in runs)
        s_text = f"{s:g}" + (" (ladder top)" if runs and runs[-1]["pass"] and
                              s >= 0.95 * top else "")
        lines.append(f"| {label} | {s_text} | {ratio} | {lat['p50']} / {lat['p99']} / "
                     f"{lat['max']} | {lost}{f' ({cut} runs cut short)' if cut else ''} "
                     f"| {dup} |")
        summary[label] = {"sustained": s, "ratio": s / ceiling if ceiling else None,
                          "p99_at_2000": lat["p99"], "lost": lost, "duplicated": dup}
    report["summary"] = summary
    print("\n".join(lines), flush=True)
    for label, text in report["profiles"].items():
        print(f"\n## Profile: {label} at {a.profile_rate} msgs/s\n\n{text}")
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    bad = any(v["lost"] or v["duplicated"] for v in summary.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
