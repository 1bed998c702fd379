"""Scanner throughput: ``python bench/scanner.py [dev.jsonl]``.

Measures single-core messages/s over the dev set's messages (repeated for >= 2 s) and
p50/p99 latency for a 2,000-character message; prints a markdown table.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moderation.scanner import Scanner

DEFAULT = Path(__file__).resolve().parents[2] / "shared/moderation/dev.jsonl"


def _messages(path: Path) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out.extend(rec.get("messages") or [rec["text"]])
    return out


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    messages = _messages(path)
    scanner = Scanner()
    for m in messages:  # warm-up (regex compile, caches)
        scanner.scan(m)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 2.0:
        for m in messages:
            scanner.scan(m)
        n += len(messages)
    rate = n / (time.perf_counter() - start)

    rng = random.Random(7)
    long_texts = []
    for _ in range(50):
        parts: list[str] = []
        while sum(map(len, parts)) < 2000:
            parts.append(rng.choice(messages))
        long_texts.append(" ".join(parts)[:2000])
    times = []
    for _ in range(4):
        for t in long_texts:
            t0 = time.perf_counter()
            scanner.scan(t)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p50 = statistics.median(times)
    p99 = times[int(len(times) * 0.99) - 1]
    print("| metric | value |")
    print("|---|---|")
    print(f"| dev-set messages | {len(messages)} |")
    print(f"| throughput, one core | {rate:,.0f} msgs/s |")
    print(f"| 2,000-char message p50 | {p50:.2f} ms |")
    print(f"| 2,000-char message p99 | {p99:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
