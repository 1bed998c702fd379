"""The scanner's work counted in instructions, which repeat where CPU time on this VM does not.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/scan_instructions.py --scans 0          # start-up only
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/scan_instructions.py --scans 3000 [--history 5]

valgrind prints "Collected : N" for each run; (N with scans − N without) / scans is the
scanner's instructions per message. Each scan takes the next message of the development
set and, with ``--history``, the messages before it as the sender's history (as on the send
path). To compare two commits, run both from their own checkouts (``PYTHONPATH``): the
counts are the same run after run, whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moderation.scanner import Scanner

DEV = Path(__file__).resolve().parents[2] / "shared" / "moderation" / "dev.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dev", type=Path, default=DEV)
    p.add_argument("--scans", type=int, default=3000)
    p.add_argument("--history", type=int, default=0, help="messages of history per scan")
    a = p.parse_args()
    texts = [t for t in (json.loads(line).get("text") for line in a.dev.open()) if t]
    scanner = Scanner(allow_domains=("example.com",))
    h = a.history
    for i in range(a.scans):
        j = h + i % (len(texts) - h)
        scanner.scan(texts[j], texts[j - h:j])


if __name__ == "__main__":
    main()
