"""``tsunagu verify BUNDLE`` (offline), ``tsunagu purge [--dry-run]`` and
``tsunagu evidence accept-restore`` (after a database restore).

``verify`` exits 0 when the bundle verifies, 1 when it does not (one line per problem:
kind, log_seq, what), 2 when the bundle or key cannot be read.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from chat.config import Settings
from chat.errors import ChatError
from chat.models import now_us, rfc3339

from . import bundle, retention, tree
from .keys import load_public_key
from .schema import ACCESS, TREE


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


#: ``evidence_access.thread_id`` of audit rows about the whole tree, not one thread.
ALL_THREADS = "*"


async def accept_restore(db: Any, path: Path, *, staff: str, reason: str, at: int,
                         legacy: Path | None = None) -> tuple[int, str]:
    """Accept that the database was restored to a state older than this node's last signed
    checkpoint (``path``; else ``legacy``, where versions before 2026-12-07 kept it): audit
    it and move the file(s) aside. (exit code, message)

    Refuses (1) when the restored database does not verify on its own (its latest stored
    checkpoint against its leaves and frontier); does nothing (0) when the database still
    extends the saved checkpoint."""
    from chat.models import new_id

    saved = tree.TreeState.load(path, *([legacy] if legacy is not None else []))
    files = [p for p in (path, legacy) if p is not None and p.exists()]
    if saved.witness is None:
        return 0, f"no saved checkpoint at {path}: nothing to accept"
    w = saved.witness
    try:
        await tree.verify_stored(db, None, saved)
    except tree.TreeTampered as exc:
        refusal = exc.message
    else:
        return 0, (f"the database extends this node's last signed checkpoint (size {w.size}): "
                   "nothing to accept")
    try:
        await tree.verify_stored(db, None, None)
    except tree.TreeTampered as exc:
        return 1, (f"the restored database does not verify on its own: {exc.message}; not "
                   "accepted (restore a consistent backup)")
    size = int(await db.fetchval(f"SELECT size FROM {TREE} WHERE id = 1"))
    cp = await tree.latest(db)
    new = f"size {cp.size}, root {cp.root}" if cp is not None else "no checkpoint"
    aside = path.with_name(f"{path.name}.superseded-{at}")
    text = (f"accept-restore: this node's last signed checkpoint (size {w.size}, root {w.root}, "
            f"at {w.body.get('at')}) replaced by the restored database's (tree size {size}, "
            f"latest checkpoint {new}); refusal was: {refusal}; kept as {aside.name}; "
            f"reason: {reason}")
    await db.execute(
        f"INSERT INTO {ACCESS} (id, at, staff, action, thread_id, dispute_id, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", new_id("ax"), at, staff, "accept_restore",
        ALL_THREADS, None, text)
    for i, p in enumerate(files):
        p.replace(aside if i == 0 else p.with_name(f"{p.name}.superseded-{at}"))
    return 0, text


def accept_restore_main(settings: Settings, *, staff: str, reason: str) -> int:
    from chat.store import open_store

    from .service import check_reason, legacy_witness_path, witness_path

    try:
        reason = check_reason(reason)
    except ChatError as exc:
        print(f"tsunagu evidence accept-restore: {exc.message}", file=sys.stderr)
        return 2
    if not staff.strip():
        print("tsunagu evidence accept-restore: --staff is required", file=sys.stderr)
        return 2

    async def run() -> tuple[int, str]:
        store = open_store(settings)
        await store.open()
        try:
            return await accept_restore(store.db, witness_path(settings), staff=staff.strip(),
                                        reason=reason, at=now_us(),
                                        legacy=legacy_witness_path(settings))
        finally:
            await store.close()

    code, text = asyncio.run(run())
    print(text, file=sys.stderr if code else sys.stdout)
    return code
