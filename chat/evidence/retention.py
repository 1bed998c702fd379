"""Retention: content is kept ``evidence_retention_days`` after a thread closes, then purged.

A thread is purgeable when its stage is ``closed``, its last activity (``updated_at``, at or
after the close) is older than the retention period, no legal hold is in force on it, and it
still has content. Purging clears the content of its log entries (``payload``; the content
and entry hashes stay, so the chain still verifies), blanks its messages and their
revisions, appends a ``purged`` entry to its log and records the purge in
``evidence_purges`` - all in one transaction, rechecking the hold under the thread's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat.models import new_id
from chat.store.db import Db

from .log import PURGED, record
from .schema import HOLDS, LOG, PURGES

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class Candidate:
    thread_id: str
    last_activity: int
    entries: int  # log entries that still have content

    def to_json(self) -> dict[str, Any]:
        return {"thread": self.thread_id, "last_activity": self.last_activity,
                "entries": self.entries}


def cutoff(now: int, retention_days: int) -> int:
    """Threads whose last activity is before this time are past retention."""
    return now - retention_days * DAY_US


def policy_text(retention_days: int) -> str:
    return f"content kept {retention_days} days after the thread closes; hashes kept forever"


_ELIGIBLE = (
    f"SELECT t.id, t.updated_at, (SELECT count(*) FROM {LOG} l WHERE l.thread_id = t.id "
    f"AND l.payload IS NOT NULL AND l.kind <> '{PURGED}') AS n FROM threads t "
    "WHERE t.stage = 'closed' AND t.updated_at < ? "
    f"AND NOT EXISTS (SELECT 1 FROM {HOLDS} h WHERE h.thread_id = t.id AND h.released_at IS NULL) "
)


async def candidates(db: Db, *, now: int, retention_days: int) -> list[Candidate]:
    """What a purge at ``now`` would remove (the dry run)."""
    rows = await db.fetch(_ELIGIBLE + "ORDER BY t.id", cutoff(now, retention_days))
    return [Candidate(r[0], int(r[1]), int(r[2])) for r in rows if int(r[2]) > 0]


async def purge(db: Db, *, now: int, retention_days: int) -> list[Candidate]:
    """Purge every candidate, one transaction per thread; return what was purged."""
    done = []
    policy = policy_text(retention_days)
    for cand in await candidates(db, now=now, retention_days=retention_days):
        async with db.transaction() as tx:
            if db.dialect == "postgres":  # same order as edits: message rows, then thread
                await tx.fetch("SELECT id FROM messages WHERE thread_id = ? ORDER BY id "
                               "FOR UPDATE", cand.thread_id)
                await tx.fetch("SELECT id FROM threads WHERE id = ? FOR UPDATE", cand.thread_id)
            row = await tx.fetchrow(_ELIGIBLE + "AND t.id = ?", cutoff(now, retention_days),
                                    cand.thread_id)
            if row is None:
                continue  # a hold was placed, or the thread reopened, meanwhile
            through = int(await tx.fetchval(
                f"SELECT coalesce(max(log_seq), 0) FROM {LOG} WHERE thread_id = ?",
                cand.thread_id))
            entries = await tx.execute(
                f"UPDATE {LOG} SET payload = NULL WHERE thread_id = ? AND log_seq <= ? "
                "AND payload IS NOT NULL", cand.thread_id, through)
            await tx.execute(
                "UPDATE message_revisions SET body = '', masked = NULL, moderation = NULL "
                "WHERE message_id IN (SELECT id FROM messages WHERE thread_id = ?)",
                cand.thread_id)
            messages = await tx.execute(
                "UPDATE messages SET body = '', masked = NULL, data = NULL, moderation = NULL "
                "WHERE thread_id = ?", cand.thread_id)
            await record(tx, cand.thread_id, PURGED, "system",
                         {"through_seq": through, "entries": entries, "policy": policy}, now)
            await tx.execute(
                f"INSERT INTO {PURGES} (id, at, thread_id, through_seq, entries, messages, "
                "policy) VALUES (?, ?, ?, ?, ?, ?, ?)", new_id("pg"), now, cand.thread_id,
                through, entries, messages, policy)
            done.append(Candidate(cand.thread_id, cand.last_activity, entries))
    return done
