"""System calls per stored message of SQLite's write pattern, by schema variant.

    python -m bench.sqlite_syscalls                  # every variant, 40,000 messages each
    python -m bench.sqlite_syscalls --variants full,noidem --autocheckpoint 1000,16000

A stand-alone model of the node's group-commit transaction on SQLite (WAL,
``synchronous=FULL``): batches of ``--batch`` messages over ``--threads`` threads, each
message one row in ``messages`` (its id time-ordered, as chat.models.new_id makes it, and
its client_msg_id a UUID), one row in the thread log, one update of its thread. The
variants drop one part (``nolog``: no log row; ``noidem``: no idempotency index;
``noupd``: no thread update) or change one (``idemhash``: the idempotency index on
(thread, 64-bit hash) instead of (thread, sender, client_msg_id)), to show what each part
costs in WAL frames. Each run is counted by ``strace -f -c`` (needs strace): unlike CPU
time on this VM, the counts repeat from run to run. Each WAL frame is two ``pwrite``
calls (header, page); a checkpoint adds a ``pread`` of the frame and a ``pwrite`` of the
page into the database file.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

VARIANTS = ("full", "nolog", "noidem", "noupd", "idemhash")


def workload(path: str, variant: str, messages: int, batch: int, threads: int,
             autocheckpoint: int) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
    c.execute("CREATE TABLE threads (id TEXT PRIMARY KEY, last_seq INT, updated_at INT, "
              "log_seq INT, log_head TEXT)")
    c.execute("CREATE TABLE messages (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL "
              "REFERENCES threads (id), seq BIGINT NOT NULL, sender TEXT, kind TEXT, body TEXT, "
              "created_at BIGINT, client_msg_id TEXT, data TEXT, edited_at BIGINT, "
              "deleted_at BIGINT, rev INT DEFAULT 0, thanks INT DEFAULT 0, masked TEXT, "
              "moderation TEXT, idem INTEGER, UNIQUE (thread_id, seq))")
    if variant == "idemhash":
        c.execute("CREATE UNIQUE INDEX mi ON messages (thread_id, idem) WHERE idem IS NOT NULL")
    elif variant != "noidem":
        c.execute("CREATE UNIQUE INDEX mi ON messages (thread_id, sender, client_msg_id) "
                  "WHERE client_msg_id IS NOT NULL")
    c.execute("CREATE TABLE log (thread_id TEXT NOT NULL, log_seq BIGINT NOT NULL, kind TEXT, "
              "actor TEXT, at BIGINT, payload TEXT, content_hash TEXT, prev_hash TEXT, "
              "hash TEXT, PRIMARY KEY (thread_id, log_seq))")
    c.execute("PRAGMA foreign_keys=ON")
    tids = [f"t_{secrets.token_hex(8)}" for _ in range(threads)]
    c.executemany("INSERT INTO threads VALUES (?, 0, 0, 0, '')", [(t,) for t in tids])
    seqs = dict.fromkeys(tids, 0)
    body = "x" * 200
    digest = "0" * 64
    for k in range(messages // batch):
        rows, logs, ups = [], [], []
        for j in range(batch):
            t = tids[(k * batch + j) % threads]
            seqs[t] += 1
            s = seqs[t]
            mid = f"m_{time.time_ns() // 1_000_000:010x}{secrets.token_hex(8)}"
            cmid = str(uuid.uuid4())
            rows.append((mid, t, s, "u1", "user", body, time.time_ns() // 1000, cmid, None,
                         None, None, 0, 0, None, None,
                         hash(("u1", cmid)) if variant == "idemhash" else None))
            logs.append((t, s, "message", "u1", 1, f'{{"body":"{body}","id":"{mid}"}}',
                         digest, digest, digest))
            ups.append((s, 1, s, digest, t))
        c.execute("BEGIN")
        c.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                      "?, ?)", rows)
        if variant != "nolog":
            c.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", logs)
        if variant != "noupd":
            c.executemany("UPDATE threads SET last_seq = ?, updated_at = ?, log_seq = ?, "
                          "log_head = ? WHERE id = ?", ups)
        c.execute("COMMIT")
    c.close()


def counted(variant: str, a: argparse.Namespace, autocheckpoint: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace.txt")
        subprocess.run(["strace", "-f", "-c", "-o", out, sys.executable, "-m",
                        "bench.sqlite_syscalls", "--child", variant, "--messages",
                        str(a.messages), "--batch", str(a.batch), "--threads", str(a.threads),
                        "--autocheckpoint", str(autocheckpoint), "--db",
                        os.path.join(tmp, "x.db")], check=True)
        counts: dict[str, int] = {}
        with open(out) as f:
            for line in f:
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
                if m:
                    counts[m.group(2)] = int(m.group(1))
        return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--messages", type=int, default=40_000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=500)
    p.add_argument("--autocheckpoint", default="1000", help="WAL pages, comma-separated")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        workload(a.db, a.child, a.messages, a.batch, a.threads, int(a.autocheckpoint))
        return
    print(f"# {a.messages} messages, batches of {a.batch}, {a.threads} threads; "
          f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| variant | wal_autocheckpoint | pwrite/msg | pread/msg | fdatasync/commit |")
    print("|---|---|---|---|---|")
    for ac in (int(x) for x in a.autocheckpoint.split(",")):
        for v in a.variants.split(","):
            n = counted(v, a, ac)
            commits = a.messages // a.batch
            print(f"| {v} | {ac} | {n.get('pwrite64', 0) / a.messages:.2f} | "
                  f"{n.get('pread64', 0) / a.messages:.2f} | "
                  f"{n.get('fdatasync', 0) / commits:.2f} |")


if __name__ == "__main__":
    main()
