"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): top functions by self and
total share of samples, with line numbers folded away.

    python -m bench.profile_summary bench/results/profile-embedded.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter

_LINE = re.compile(r":\d+\)")
# A thread-pool worker waiting for work: `py-spy --native` (which must sample in blocking
# mode) reports such threads as running.
_WAITING = "_queue_SimpleQueue_get"


def _fn(frame: str) -> str:
    frame = _LINE.sub(")", frame.strip())
    # shorten site-packages paths: "send_str (aiohttp/web_ws.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", "wt-bench/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def summarize(text: str, top: int = 25) -> str:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    samples = 0
    idle = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        if _WAITING in stack:  # an idle worker thread (a native profile counts those too)
            continue
        frames = [_fn(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        samples += n
        leaf = frames[-1]
        if leaf.startswith(("select (", "poll (", "epoll", "run_once (")) or "_run_once" in leaf:
            idle += n
        self_c[leaf] += n
        for f in set(frames):
            total_c[f] += n
    if not samples:
        return "(no samples)"
    out = [f"samples: {samples} (of which waiting in the event loop's poll: {idle / samples:.0%})",
           "", "| self % | function |", "|---|---|"]
    out += [f"| {c / samples:.1%} | `{f}` |" for f, c in self_c.most_common(top)]
    out += ["", "| total % | function |", "|---|---|"]
    out += [f"| {c / samples:.1%} | `{f}` |" for f, c in total_c.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        print(summarize(fh.read(), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
