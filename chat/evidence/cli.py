"""``tsunagu verify BUNDLE`` (offline) and ``tsunagu purge [--dry-run]``.

``verify`` exits 0 when the bundle verifies, 1 when it does not (one line per problem:
kind, log_seq, what), 2 when the bundle or key cannot be read.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from chat.config import Settings
from chat.models import now_us, rfc3339

from . import bundle, retention
from .keys import load_public_key


def verify_main(path: str, public_key: str | None, *, as_json: bool = False,
                checkpoint: str | None = None) -> int:
    try:
        files = bundle.read(Path(path))
        key = load_public_key(Path(public_key).read_bytes()) if public_key else None
        kept = orjson.loads(Path(checkpoint).read_bytes()) if checkpoint else None
    except (OSError, ValueError) as exc:
        print(f"tsunagu verify: {exc}", file=sys.stderr)
        return 2
    rep = bundle.verify_bundle(files, key, kept)
    if as_json:
        print(orjson.dumps(rep.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        for note in rep.notes:
            print(f"note: {note}")
        if rep.ok:
            print(f"OK: thread {rep.thread}: {rep.entries} entries, chain intact, "
                  "heads included in the signed checkpoint")
        else:
            print(f"FAILED: thread {rep.thread}: {len(rep.problems)} problem(s)")
            for p in rep.problems:
                print(f"  {p}")
    return 0 if rep.ok else 1


def purge_main(settings: Settings, *, dry_run: bool) -> int:
    from chat.store import open_store

    async def run() -> list[retention.Candidate]:
        store = open_store(settings)
        await store.open()
        try:
            now = now_us()
            days = settings.evidence_retention_days
            if dry_run:
                return await retention.candidates(store.db, now=now, retention_days=days)
            return await retention.purge(store.db, now=now, retention_days=days)
        finally:
            await store.close()

    done = asyncio.run(run())
    verb = "would purge" if dry_run else "purged"
    print(f"policy: {retention.policy_text(settings.evidence_retention_days)}")
    for c in done:
        print(f"{verb} {c.thread_id}: {c.entries} log entries with content, "
              f"{len(c.messages)} message(s) and {c.revisions} revision(s) blanked, "
              f"last activity {rfc3339(c.last_activity)}")
        if c.messages:
            print(f"  messages: {' '.join(c.messages)}")
    print(f"{verb} {len(done)} thread(s)")
    return 0
