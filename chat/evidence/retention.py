"""Retention: content is kept ``evidence_retention_days`` after a thread closes, then purged.

A thread is purgeable when its stage is ``closed``, its last activity (``updated_at``, at or
after the close) is older than the retention period, no legal hold is in force on it, and it
still has content. Purging clears the content of its log entries (``payload``; the content
and entry hashes stay, so the chain still verifies) - except the kinds in :data:`KEPT`
(earlier purge records, the thread's creation, title and stage changes, participants,
disputes) - blanks its messages and their revisions that still have content, appends a
``purged`` entry to its log and records the purge in ``evidence_purges`` - all in one
transaction, rechecking the hold under the thread's lock. The dry run
(:func:`candidates`) counts with the same predicates, so its numbers are the purge's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat.models import new_id
from chat.store.db import Db

from . import log
from .log import PURGED, record
from .schema import HOLDS, LOG, PURGES

DAY_US = 86_400 * 1_000_000

# Log entry kinds whose payload a purge keeps: not message content (titles, participant
# lists, dispute records, and the purge records that make the purged entries verify).
KEPT = (log.PURGED, log.THREAD_CREATED, log.THREAD_UPDATED, log.PARTICIPANT_ADDED,
        log.DISPUTE_OPENED, log.DISPUTE_CLOSED)
_KEPT_SQL = ", ".join(f"'{k}'" for k in KEPT)
_HAS_CONTENT = ("(body <> '' OR masked IS NOT NULL OR data IS NOT NULL "
                "OR moderation IS NOT NULL)")
_REV_HAS_CONTENT = "(body <> '' OR masked IS NOT NULL OR moderation IS NOT NULL)"


@dataclass(frozen=True, slots=True)
class Candidate:
    thread_id: str
    last_activity: int
    entries: int  # log entries that still have content
    messages: tuple[str, ...] = ()  # ids of the messages that still have content
    revisions: int = 0  # their revisions that still have content

    def to_json(self) -> dict[str, Any]:
        return {"thread": self.thread_id, "last_activity": self.last_activity,
                "entries": self.entries, "messages": list(self.messages),
                "revisions": self.revisions}


def cutoff(now: int, retention_days: int) -> int:
    """Threads whose last activity is before this time are past retention."""
    return now - retention_days * DAY_US


def policy_text(retention_days: int) -> str:
    return f"content kept {retention_days} days after the thread closes; hashes kept forever"


_ELIGIBLE = (
    f"SELECT t.id, t.updated_at, (SELECT count(*) FROM {LOG} l WHERE l.thread_id = t.id "
    f"AND l.payload IS NOT NULL AND l.kind NOT IN ({_KEPT_SQL})) AS n FROM threads t "
    "WHERE t.stage = 'closed' AND t.updated_at < ? "
    f"AND NOT EXISTS (SELECT 1 FROM {HOLDS} h WHERE h.thread_id = t.id AND h.released_at IS NULL) "
)


_MESSAGES = f"SELECT id FROM messages WHERE thread_id = ? AND {_HAS_CONTENT} ORDER BY seq"
_REVISIONS = (f"SELECT count(*) FROM message_revisions WHERE {_REV_HAS_CONTENT} AND message_id "
              "IN (SELECT id FROM messages WHERE thread_id = ?)")


async def candidates(db: Db, *, now: int, retention_days: int) -> list[Candidate]:
    """What a purge at ``now`` would remove (the dry run): per thread, the log entries, the
    messages (ids) and the revisions that would be blanked."""
    rows = await db.fetch(_ELIGIBLE + "ORDER BY t.id", cutoff(now, retention_days))
    out = []
    for r in rows:
        if int(r[2]) == 0:
            continue
        msgs = tuple(m[0] for m in await db.fetch(_MESSAGES, r[0]))
        revs = int(await db.fetchval(_REVISIONS, r[0]))
        out.append(Candidate(r[0], int(r[1]), int(r[2]), msgs, revs))
    return out


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
            msgs = tuple(m[0] for m in await tx.fetch(_MESSAGES, cand.thread_id))
            entries = await tx.execute(
                f"UPDATE {LOG} SET payload = NULL WHERE thread_id = ? AND log_seq <= ? "
                f"AND payload IS NOT NULL AND kind NOT IN ({_KEPT_SQL})", cand.thread_id,
                through)
            revisions = await tx.execute(
                "UPDATE message_revisions SET body = '', masked = NULL, moderation = NULL "
                f"WHERE {_REV_HAS_CONTENT} AND message_id IN "
                "(SELECT id FROM messages WHERE thread_id = ?)", cand.thread_id)
            messages = await tx.execute(
                "UPDATE messages SET body = '', masked = NULL, data = NULL, moderation = NULL "
                f"WHERE thread_id = ? AND {_HAS_CONTENT}", cand.thread_id)
            await record(tx, cand.thread_id, PURGED, "system",
                         {"through_seq": through, "entries": entries, "messages": messages,
                          "revisions": revisions, "policy": policy}, now)
            await tx.execute(
                f"INSERT INTO {PURGES} (id, at, thread_id, through_seq, entries, messages, "
                "policy) VALUES (?, ?, ?, ?, ?, ?, ?)", new_id("pg"), now, cand.thread_id,
                through, entries, messages, policy)
            done.append(Candidate(cand.thread_id, cand.last_activity, entries, msgs,
                                  revisions))
    return done
