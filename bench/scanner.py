"""Scanner throughput: ``python bench/scanner.py [dev.jsonl] [--rounds N]``.

Without a path the dev set is found like ``python -m moderation.score`` finds it
(`moderation.score.devset_path`: ``TSUNAGU_MODERATION_DEVSET``, then
``../shared/moderation/dev.jsonl`` beside the repository, then the vendored copy).

Measures single-core messages/s over the dev set's messages (alone, and each with the
five messages before it in the list as its history, as on the send path) and p50/p99
latency for a 2,000-character message (50 texts made of dev-set messages, each scanned several times);
prints a markdown table.

The machine this runs on is shared, so every figure is measured in ``--rounds`` rounds
(default 5) and reported as best and median.  Two clocks are used: CPU time of this
process (``time.process_time``: what one core spends, insensitive to being descheduled by
other jobs) and wall time (``time.perf_counter``: what a caller waits, including time the
process was not running).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moderation.scanner import Scanner
from moderation.score import devset_path

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def _messages(path: Path) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out.extend(rec.get("messages") or [rec["text"]])
    return out


def _long_texts(messages: list[str], n: int = 50, size: int = 2000) -> list[str]:
    rng = random.Random(7)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(messages))
        texts.append(" ".join(parts)[:size])
    return texts


def _throughput(scanner: Scanner, messages: list[str], seconds: float) -> dict[str, float]:
    """Messages/s by both clocks over passes of the whole list for about ``seconds``."""
    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        for m in messages:
            scanner.scan(m)
        n += len(messages)
    return {"wall": n / (time.perf_counter() - w0), "cpu": n / (time.process_time() - c0)}


def _throughput_history(
    scanner: Scanner, messages: list[str], seconds: float, depth: int = 5
) -> dict[str, float]:
    """Like `_throughput`, each message scanned with the ``depth`` messages before it in
    the list as its history (the send path scans a message with the sender's recent ones)."""
    pairs = [(m, messages[max(0, i - depth):i]) for i, m in enumerate(messages)]
    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        for m, history in pairs:
            scanner.scan(m, history)
        n += len(pairs)
    return {"wall": n / (time.perf_counter() - w0), "cpu": n / (time.process_time() - c0)}


def _latencies(scanner: Scanner, texts: list[str], clock: Callable[[], float]) -> list[float]:
    times = []
    for _ in range(4):
        for t in texts:
            t0 = clock()
            scanner.scan(t)
            times.append((clock() - t0) * 1000)
    return sorted(times)


def _p(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[max(0, int(len(sorted_ms) * q) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "path", nargs="?", type=Path, default=None,
        help="dev set (default: moderation.score.devset_path())",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="per throughput round")
    args = ap.parse_args()
    path = args.path if args.path is not None else devset_path()
    messages = _messages(path)
    long_texts = _long_texts(messages)
    scanner = Scanner()
    for m in messages:  # warm-up (regex compile, caches)
        scanner.scan(m)
    for t in long_texts:
        scanner.scan(t)

    rates: dict[str, list[float]] = {"cpu": [], "wall": []}
    with_history: dict[str, list[float]] = {"cpu": [], "wall": []}
    p50: dict[str, list[float]] = {"cpu": [], "wall": []}
    p99: dict[str, list[float]] = {"cpu": [], "wall": []}
    for _ in range(args.rounds):
        for clock, rate in _throughput(scanner, messages, args.seconds).items():
            rates[clock].append(rate)
        for clock, rate in _throughput_history(scanner, messages, args.seconds).items():
            with_history[clock].append(rate)
        for clock, fn in CLOCKS.items():
            ms = _latencies(scanner, long_texts, fn)
            p50[clock].append(_p(ms, 0.5))
            p99[clock].append(_p(ms, 0.99))

    def row(label: str, values: list[float], fmt: str, best: Callable[..., float]) -> str:
        return (
            f"| {label} | {format(best(values), fmt)} | "
            f"{format(statistics.median(values), fmt)} |"
        )

    print(f"dev set: {path}; messages: {len(messages)}; "
          f"2,000-char texts: {len(long_texts)} x 4 scans; rounds: {args.rounds}")
    print()
    print("| metric | best | median |")
    print("|---|---|---|")
    for clock in ("cpu", "wall"):
        print(row(f"throughput, one core ({clock} time), msgs/s", rates[clock], ",.0f", max))
    for clock in ("cpu", "wall"):
        print(row(f"throughput with 5 messages of history ({clock} time), msgs/s",
                  with_history[clock], ",.0f", max))
    for clock in ("cpu", "wall"):
        print(row(f"2,000-char message p50 ({clock} time), ms", p50[clock], ".2f", min))
        print(row(f"2,000-char message p99 ({clock} time), ms", p99[clock], ".2f", min))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
