"""``scan`` command: JSON lines in, one JSON line of findings out per input line.

Input lines: ``{"id": ..., "text": "..."}`` or ``{"id": ..., "messages": ["...", ...]}``
(consecutive messages of one sender, oldest first).  Output lines:
``{"id", "categories", "findings"}``, or ``{"id", "error"}`` for a line that cannot be
read; processing continues with the next line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import orjson

from moderation.scanner import Scanner


def _scan_record(scanner: Scanner, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise ValueError("'messages' must be a list of strings")
    elif isinstance(record.get("text"), str):
        messages = [record["text"]]
    else:
        raise ValueError("expected a string 'text' or a list 'messages'")
    findings = []
    for i, message in enumerate(messages):
        findings.extend(scanner.scan(message, messages[:i]))
    return {
        "id": record.get("id"),
        "categories": sorted({f.category for f in findings}),
        "findings": [f.to_dict() for f in findings],
    }


def scan_main(
    argv: list[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    parser = argparse.ArgumentParser(prog="tsunagu scan", description=__doc__)
    parser.add_argument("--allow-domain", action="append", default=[], help="platform domain")
    parser.add_argument("--allow-phrase", action="append", default=[], help="allowed phrase")
    args = parser.parse_args(argv)
    scanner = Scanner(allow_domains=args.allow_domain, allow_phrases=args.allow_phrase)
    for line in stdin:
        if not line.strip():
            continue
        rid: Any = None
        try:
            record = orjson.loads(line)
            if isinstance(record, dict):
                rid = record.get("id")
            out = _scan_record(scanner, record)
        except (orjson.JSONDecodeError, ValueError) as exc:
            out = {"id": rid, "error": str(exc)}
        stdout.write(orjson.dumps(out).decode("utf-8") + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(scan_main())
