"""The notifications component's SQL, portable (``?`` placeholders) through ``store.db``.

Every function takes an :class:`~chat.store.db.Executor` (the database or an open
transaction), so callers decide what goes in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from chat.models import new_id
from chat.store.db import Executor

from .prefs import UserProfile
from .rules import ContractState, JobSpec
from .schema import (
    CONTRACTS,
    DELIVERIES,
    DELIVERY_LOG,
    DEVICES,
    EVENTS,
    INBOX,
    JOBS,
    PREFS,
    USERS,
    WEBPUSH,
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _in(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# --- events
async def get_event(tx: Executor, event_id: str) -> tuple[str, dict[str, Any]] | None:
    row = await tx.fetchrow(f"SELECT digest, result FROM {EVENTS} WHERE id = ?", event_id)
    return None if row is None else (row[0], orjson.loads(row[1]))


async def insert_event(tx: Executor, event_id: str, type_: str, thread: str, digest: str,
                       result: dict[str, Any], now: int) -> None:
    await tx.execute(f"INSERT INTO {EVENTS} VALUES (?, ?, ?, ?, ?, ?)",
                     event_id, type_, thread, digest, dumps(result), now)


# --- contracts
_CONTRACT_COLS = ("thread_id, client, worker, title, amount, currency, deadline, deposit, "
                  "status, stage, concluded_at, delivered_at")


async def load_contract(tx: Executor, thread: str, *, lock: bool, dialect: str
                        ) -> ContractState | None:
    sql = f"SELECT {_CONTRACT_COLS} FROM {CONTRACTS} WHERE thread_id = ?"
    if lock and dialect == "postgres":
        sql += " FOR UPDATE"
    row = await tx.fetchrow(sql, thread)
    return None if row is None else ContractState(*row)


async def contract_stage(tx: Executor, thread: str) -> str | None:
    value = await tx.fetchval(f"SELECT stage FROM {CONTRACTS} WHERE thread_id = ?", thread)
    return None if value is None else str(value)


async def load_contracts(tx: Executor, threads: Sequence[str]) -> dict[str, ContractState]:
    if not threads:
        return {}
    rows = await tx.fetch(
        f"SELECT {_CONTRACT_COLS} FROM {CONTRACTS} WHERE thread_id IN ({_in(threads)})",
        *threads)
    return {r[0]: ContractState(*r) for r in rows}


async def insert_contract(tx: Executor, s: ContractState, now: int) -> bool:
    """Store a new contract; False if the thread has one already (a concurrent
    ``contract.concluded`` with another id committed first: on PostgreSQL this waits for it)."""
    n = await tx.execute(
        f"INSERT INTO {CONTRACTS} ({_CONTRACT_COLS}, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING",
        s.thread_id, s.client, s.worker, s.title, s.amount, s.currency, s.deadline, s.deposit,
        s.status, s.stage, s.concluded_at, s.delivered_at, now)
    return n == 1


async def save_contract(tx: Executor, s: ContractState, now: int) -> None:
    await tx.execute(
        f"INSERT INTO {CONTRACTS} ({_CONTRACT_COLS}, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
        "deadline = excluded.deadline, deposit = excluded.deposit, status = excluded.status, "
        "stage = excluded.stage, delivered_at = excluded.delivered_at, "
        "updated_at = excluded.updated_at",
        s.thread_id, s.client, s.worker, s.title, s.amount, s.currency, s.deadline, s.deposit,
        s.status, s.stage, s.concluded_at, s.delivered_at, now)


# --- schedule
async def cancel_jobs(tx: Executor, thread: str, kinds: Sequence[str], now: int,
                      why: str) -> int:
    if not kinds:
        return 0
    if tuple(kinds) == ("*",):
        return await tx.execute(
            f"UPDATE {JOBS} SET state = 'cancelled', fired_at = ?, outcome = ? "
            "WHERE thread_id = ? AND state = 'pending'", now, why, thread)
    return await tx.execute(
        f"UPDATE {JOBS} SET state = 'cancelled', fired_at = ?, outcome = ? "
        f"WHERE thread_id = ? AND state = 'pending' AND kind IN ({_in(kinds)})",
        now, why, thread, *kinds)


async def insert_jobs(tx: Executor, thread: str, source: str, specs: Iterable[JobSpec],
                      now: int) -> int:
    rows = [(new_id("j"), f"{source}:{s.kind}:{s.user}:{s.slot}", None, s.kind, thread, s.user,
             s.due_at, "pending", dumps(s.payload), now) for s in specs]
    if rows:
        await tx.executemany(
            f"INSERT INTO {JOBS} (id, dedupe_key, group_key, kind, thread_id, user_id, due_at, "
            "state, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    thread: str
    user: str
    due_at: int
    payload: dict[str, Any]


async def claim_due(tx: Executor, now: int, limit: int, dialect: str,
                    exclude: Sequence[str] = ()) -> list[Job]:
    """The oldest due pending jobs, locked for this transaction (skipping others' locks)."""
    skip = f"AND id NOT IN ({_in(exclude)}) " if exclude else ""
    sql = (f"SELECT id, kind, thread_id, user_id, due_at, payload FROM {JOBS} "
           f"WHERE state = 'pending' AND due_at <= ? {skip}ORDER BY due_at, id LIMIT ?")
    if dialect == "postgres":
        sql += " FOR UPDATE SKIP LOCKED"
    rows = await tx.fetch(sql, now, *exclude, limit)
    return [Job(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5])) for r in rows]


async def finish_jobs(tx: Executor, outcomes: Sequence[tuple[str, str, int, str]]) -> None:
    """(state, outcome, fired_at, id) for each job; a ``failed`` one counts one attempt."""
    if outcomes:
        await tx.executemany(
            f"UPDATE {JOBS} SET state = ?, outcome = ?, fired_at = ? WHERE id = ?", outcomes)
        failed = [o[3] for o in outcomes if o[0] == "failed"]
        for i in range(0, len(failed), 500):
            part = failed[i:i + 500]
            await tx.execute(f"UPDATE {JOBS} SET attempts = COALESCE(attempts, 0) + 1 "
                             f"WHERE id IN ({_in(part)})", *part)


async def job_error(db: Executor, job_id: str, why: str, now: int, *, give_up_after: int
                    ) -> bool:
    """Count one failed attempt to fire a pending job (in ``outcome`` and ``attempts``); after
    ``give_up_after`` of them the job is ``failed``. True when it was marked failed."""
    prior = await db.fetchval(f"SELECT outcome FROM {JOBS} WHERE id = ? AND state = 'pending'",
                              job_id)
    if prior is None and not await db.fetchval(
            f"SELECT count(*) FROM {JOBS} WHERE id = ? AND state = 'pending'", job_id):
        return False
    tries = 1
    if isinstance(prior, str) and prior.startswith("attempt "):
        head = prior[len("attempt "):].split(" ", 1)[0]
        tries = int(head) + 1 if head.isdigit() else 1
    if tries >= give_up_after:
        await db.execute(f"UPDATE {JOBS} SET state = 'failed', fired_at = ?, outcome = ?, "
                         "attempts = ? WHERE id = ? AND state = 'pending'",
                         now, why, tries, job_id)
        return True
    await db.execute(f"UPDATE {JOBS} SET outcome = ?, attempts = ? "
                     "WHERE id = ? AND state = 'pending'",
                     f"attempt {tries} failed: {why}"[:500], tries, job_id)
    return False


async def next_due(db: Executor) -> int | None:
    value = await db.fetchval(f"SELECT min(due_at) FROM {JOBS} WHERE state = 'pending'")
    return None if value is None else int(value)


async def chat_job(tx: Executor, group: str, dialect: str = "sqlite"
                   ) -> tuple[str, dict[str, Any]] | None:
    """The pending chat digest job of ``group``, row-locked on PostgreSQL (a scheduler that
    has claimed it is waited for; the job is then no longer pending)."""
    sql = f"SELECT id, payload FROM {JOBS} WHERE group_key = ? AND state = 'pending'"
    if dialect == "postgres":
        sql += " FOR UPDATE"
    row = await tx.fetchrow(sql, group)
    return None if row is None else (row[0], orjson.loads(row[1]))


async def add_chat_job(tx: Executor, group: str, thread: str, user: str, due_at: int,
                       payload: dict[str, Any], now: int) -> None:
    jid = new_id("j")
    await tx.execute(
        f"INSERT INTO {JOBS} (id, dedupe_key, group_key, kind, thread_id, user_id, due_at, "
        "state, payload, created_at) VALUES (?, ?, ?, 'chat', ?, ?, ?, 'pending', ?, ?)",
        jid, f"chat:{jid}", group, thread, user, due_at, dumps(payload), now)


async def set_payload(tx: Executor, job_id: str, payload: dict[str, Any]) -> bool:
    """Update a job's payload if it is still pending; False if it has fired meanwhile."""
    n = await tx.execute(f"UPDATE {JOBS} SET payload = ? WHERE id = ? AND state = 'pending'",
                         dumps(payload), job_id)
    return n == 1


async def read_seqs(tx: Executor, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(thread, user) -> read_seq from chat's participants table."""
    out: dict[tuple[str, str], int] = {}
    threads = sorted({t for t, _ in pairs})
    if not threads:
        return out
    rows = await tx.fetch(
        f"SELECT thread_id, user_id, read_seq FROM participants WHERE thread_id IN "
        f"({_in(threads)})", *threads)
    wanted = set(pairs)
    for t, u, seq in rows:
        if (t, u) in wanted:
            out[(t, u)] = int(seq)
    return out


async def chat_overtaken(tx: Executor, notices: Sequence[str]) -> dict[str, str]:
    """Chat notices (by id) whose conversation has had a newer chat notice delivered to the
    user since (a delivery of it ``sent``, on any channel): notice id -> that delivery's id.
    The newer digest told the user; the older one would alert again about what it covered."""
    if not notices:
        return {}
    rows = await tx.fetch(
        f"SELECT o.id, d.id FROM {INBOX} AS o JOIN {INBOX} AS n ON n.user_id = o.user_id "
        "AND n.thread_id = o.thread_id AND n.kind = 'chat' AND n.created_at > o.created_at "
        f"JOIN {DELIVERIES} AS d ON d.notice_id = n.id AND d.state = 'sent' "
        f"WHERE o.id IN ({_in(notices)}) ORDER BY o.id, d.id", *notices)
    out: dict[str, str] = {}
    for notice, delivery in rows:
        out.setdefault(str(notice), str(delivery))
    return out


# --- users and preferences
async def profiles(tx: Executor, users: Sequence[str], *, tz: str, quiet: tuple[str, str]
                   ) -> dict[str, UserProfile]:
    out = {u: UserProfile(u, u, "ja", tz, None, *quiet) for u in users}
    if not users:
        return out
    rows = await tx.fetch(
        f"SELECT user_id, name, locale, tz, email, quiet_start, quiet_end FROM {USERS} "
        f"WHERE user_id IN ({_in(users)})", *users)
    for uid, name, locale, utz, email, qs, qe in rows:
        out[uid] = UserProfile(uid, name or uid, locale or "ja", utz or tz, email,
                               qs or quiet[0], qe or quiet[1])
    return out


async def upsert_user(tx: Executor, user: str, now: int, **fields: Any) -> None:
    """Set the given profile fields (None leaves a field as it is)."""
    cols = [k for k, v in fields.items() if v is not None]
    if not cols:
        await tx.execute(f"INSERT INTO {USERS} (user_id, updated_at) VALUES (?, ?) "
                         "ON CONFLICT (user_id) DO NOTHING", user, now)
        return
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    await tx.execute(
        f"INSERT INTO {USERS} (user_id, {', '.join(cols)}, updated_at) "
        f"VALUES (?, {_in(cols)}, ?) ON CONFLICT (user_id) DO UPDATE SET {sets}, "
        "updated_at = excluded.updated_at", user, *[fields[c] for c in cols], now)


async def user_prefs(tx: Executor, users: Sequence[str]
                     ) -> dict[str, dict[tuple[str, str], bool]]:
    out: dict[str, dict[tuple[str, str], bool]] = {u: {} for u in users}
    if not users:
        return out
    rows = await tx.fetch(f"SELECT user_id, category, channel, enabled FROM {PREFS} "
                          f"WHERE user_id IN ({_in(users)})", *users)
    for uid, cat, chan, on in rows:
        out[uid][(cat, chan)] = bool(on)
    return out


async def set_pref(tx: Executor, user: str, category: str, channel: str, on: bool) -> None:
    await tx.execute(
        f"INSERT INTO {PREFS} VALUES (?, ?, ?, ?) ON CONFLICT (user_id, category, channel) "
        "DO UPDATE SET enabled = excluded.enabled", user, category, channel, int(on))


# --- targets
async def targets(tx: Executor, users: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """user -> [(channel, target)] for webpush endpoints and fcm/apns tokens."""
    out: dict[str, list[tuple[str, str]]] = {u: [] for u in users}
    if not users:
        return out
    for uid, endpoint in await tx.fetch(
            f"SELECT user_id, endpoint FROM {WEBPUSH} WHERE user_id IN ({_in(users)})", *users):
        out[uid].append(("webpush", endpoint))
    for uid, platform, token in await tx.fetch(
            f"SELECT user_id, platform, token FROM {DEVICES} WHERE user_id IN ({_in(users)})",
            *users):
        out[uid].append((platform, token))
    return out


# --- inbox
INBOX_COLS = ("id, user_id, kind, category, thread_id, title, body, data, urgent, created_at, "
              "seen_at, read_at, archived_at")


def notice_json(row: Sequence[Any]) -> dict[str, Any]:
    from chat.models import rfc3339

    return {"id": row[0], "kind": row[2], "category": row[3], "thread": row[4],
            "title": row[5], "body": row[6], "data": orjson.loads(row[7]),
            "urgent": bool(row[8]), "created_at": rfc3339(row[9]), "seen": row[10] is not None,
            "read": row[11] is not None, "archived": row[12] is not None}


async def insert_notices(tx: Executor, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows: (id, user, job_id, kind, category, thread, title, body, data json, urgent, at,
    archived_at) - a notice whose in-app channel is off is stored archived (for the log)."""
    if rows:
        await tx.executemany(
            f"INSERT INTO {INBOX} (id, user_id, job_id, kind, category, thread_id, title, body, "
            "data, urgent, created_at, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows)


# The detail of the ``queued`` log entry of a copy held for quiet hours (then its due time).
HELD = "deferred until "


async def insert_deliveries(tx: Executor, rows: Sequence[tuple[Any, ...]], now: int) -> None:
    """Rows: (id, notice_id, user, channel, target, next_at)."""
    if not rows:
        return
    await tx.executemany(
        f"INSERT INTO {DELIVERIES} (id, notice_id, user_id, channel, target, state, attempts, "
        "next_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
        [(*r, now, now) for r in rows])
    await tx.executemany(
        f"INSERT INTO {DELIVERY_LOG} VALUES (?, ?, ?, ?, 'queued', ?, ?)",
        [(new_id("l"), r[0], r[1], r[3], None if r[5] <= now else f"{HELD}{r[5]}",
          now) for r in rows])


async def held_deliveries(tx: Executor, notices: Sequence[str]) -> set[str]:
    """Which deliveries of ``notices`` were held for quiet hours when queued (their
    ``queued`` log entry says so; served by the log's (notice_id, at) index)."""
    out: set[str] = set()
    for i in range(0, len(notices), 500):
        part = notices[i:i + 500]
        out.update(r[0] for r in await tx.fetch(
            f"SELECT delivery_id FROM {DELIVERY_LOG} WHERE notice_id IN ({_in(part)}) "
            "AND state = 'queued' AND detail LIKE ?", *part, f"{HELD}%"))
    return out


async def log_delivery(tx: Executor, rows: Sequence[tuple[str, str, str, str, str | None, int]]
                       ) -> None:
    """Rows: (delivery_id, notice_id, channel, state, detail, at)."""
    if rows:
        await tx.executemany(f"INSERT INTO {DELIVERY_LOG} VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(new_id("l"), *r) for r in rows])
