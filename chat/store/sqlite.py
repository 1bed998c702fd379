"""SQLite back end: the embedded default. One file, WAL mode, no server.

One writer thread owns the write connection, so writes are serialised without locks and a
whole group-committed batch runs as one call on that thread. A second thread owns a read
connection (WAL lets it read while the writer writes). asyncio code awaits both through
``run_in_executor``; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..errors import ChatError, Conflict, NotFound
from ..evidence import log as evidence
from ..evidence.chain import GENESIS, LogEntry, Pending
from ..models import (
    Appended,
    Message,
    NewMessage,
    Participant,
    Thread,
    ThreadBrief,
    ThreadSummary,
    now_us,
)
from .base import (
    WITHHELD_KEY_COLUMNS,
    WITHHELD_TABLE,
    BatchResult,
    IdemKey,
    Store,
    Withheld,
    _brief,
    dumps,
    edited,
    message_from_row,
    plan_batch,
    screened_keys,
    thread_from_row,
    withheld_from_row,
)
from .db import SqliteDb
from .schema import (
    MESSAGE_COLUMNS,
    MIGRATIONS_DDL,
    MIGRATIONS_TABLE,
    THREAD_COLUMNS,
    all_migrations,
)

T = TypeVar("T")
Conn = sqlite3.Connection

log = logging.getLogger("tsunagu.store")


ThreadState = tuple[int, int, str]  # last_seq, log_seq, log_head as stored
# The stored messages matching a batch's idempotency keys, in one statement: the keys travel
# as one JSON array of [thread, sender, client_msg_id] (the lookup uses messages_idempotency).
_FIND_KEYS = (
    f"SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))} "
    "FROM json_each(?) AS k JOIN messages AS m "
    "ON m.thread_id = json_extract(k.value, '$[0]') AND m.sender = json_extract(k.value, '$[1]') "
    "AND m.client_msg_id = json_extract(k.value, '$[2]')"
)


def _batch_keys(batch: Sequence[NewMessage]) -> list[IdemKey]:
    return [(m.thread, m.sender, m.client_msg_id) for m in batch if m.client_msg_id is not None]


def _stored_keys(c: Conn, keys: Sequence[IdemKey]) -> dict[IdemKey, Message]:
    if not keys:
        return {}
    out: dict[IdemKey, Message] = {}
    for row in c.execute(_FIND_KEYS, (orjson.dumps(keys).decode(),)):
        m = message_from_row(row)
        assert m.client_msg_id is not None  # matched on it
        out[(m.thread, m.sender, m.client_msg_id)] = m
    return out


# Moderation's withheld records matching the keys of a batch's screened requests (see
# chat.store.base), the same way (the lookup uses the withheld table's idempotency index).
_FIND_WITHHELD = (
    f"SELECT {', '.join('w.' + c.strip() for c in WITHHELD_KEY_COLUMNS.split(','))} "
    f"FROM json_each(?) AS k JOIN {WITHHELD_TABLE} AS w "
    "ON w.thread_id = json_extract(k.value, '$[0]') AND w.sender = json_extract(k.value, '$[1]') "
    "AND w.client_msg_id = json_extract(k.value, '$[2]')"
)


def _withheld_keys(c: Conn, keys: list[IdemKey]) -> dict[IdemKey, Withheld]:
    if not keys:  # no screened request (moderation off), or all of them stored
        return {}
    return dict(withheld_from_row(row)
                for row in c.execute(_FIND_WITHHELD, (orjson.dumps(keys).decode(),)))


_STATE_MAX = 100_000  # threads whose state the writer remembers (see append_batch)
_RECENT_KEYS_MAX = 20_000  # idempotency keys of messages stored lately (see append_batch)


class _Stale(Exception):
    """A remembered thread state no longer matches storage (see append_batch)."""


# With the background checkpointer on, the writer's own checkpoints (in its commits) start
# only at this many WAL pages instead of SQLite's 1,000 (see SQLiteStore._checkpoint_loop).
WRITER_AUTOCHECKPOINT = 4000


class SQLiteStore(Store):
    def __init__(self, path: str, *, synchronous: str = "FULL",
                 checkpoint_interval: float = 0.0) -> None:
        self.path = path
        self._sync = synchronous.upper()
        self.db: SqliteDb = SqliteDb()
        self._checkpoint_interval = checkpoint_interval
        self._checkpointer: asyncio.Task[None] | None = None
        self._cpool: ThreadPoolExecutor | None = None
        self._cconn: Conn | None = None
        self.checkpoints = 0  # background checkpoints that copied pages
        # Each thread's state as the writer last left it: the fast path's guess, used and
        # changed on the writer thread only.
        self._state: dict[str, ThreadState] = {}
        self._recent_keys: OrderedDict[IdemKey, None] = OrderedDict()
        self.fast_batches = 0  # batches written from remembered state (no reads)
        self.slow_batches = 0  # batches that read their threads' state first

    def _log(self, c: Conn, pending: Sequence[Pending]) -> list[LogEntry]:
        """Append to the thread log (see chat.evidence.log) and keep remembered heads current,
        so a receipt or an edit does not cost the next batch its fast path. If the
        transaction later rolls back, the fast path's check finds the difference."""
        entries = evidence.append_sync(c, pending)
        for e in entries:
            st = self._state.get(e.thread)
            if st is not None:
                self._state[e.thread] = (st[0], e.seq, e.hash)
        return entries

    # --- plumbing
    def _connect(self) -> Conn:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._sync}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        return await self.db.run_write(fn)

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        return await self.db.run_read(fn)

    async def open(self) -> None:
        if self.db.wconn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db.wconn = await self.db.call(self.db.writer, self._connect)
        self.db.rconn = await self.db.call(self.db.reader, self._connect)
        if self._checkpoint_interval > 0 and self.path != ":memory:":
            wconn = self.db.wconn
            await self.db.call(self.db.writer, lambda: wconn.execute(
                f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}"))
            self._cpool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-c")
            self._cconn = await self.db.call(self._cpool, self._connect)
            self._checkpointer = asyncio.create_task(self._checkpoint_loop(),
                                                     name="sqlite-checkpoint")

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database file off the commit path.

        SQLite's default checkpoint runs inside the commit that brings the WAL to 1,000
        pages: under load that commit (and every message waiting for it) takes 15-25 ms
        instead of ~1.5, every ~200 ms. Here a connection of its own runs a PASSIVE
        checkpoint every ``checkpoint_interval`` seconds on its own thread, which never
        blocks the writer; the writer's own checkpoint, at WRITER_AUTOCHECKPOINT pages,
        then only copies what came since, and resets the WAL.
        """
        assert self._cpool is not None and self._cconn is not None
        conn, pool = self._cconn, self._cpool
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            try:
                _busy, wal, copied = await self.db.call(
                    pool, lambda: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
            except ChatError as exc:
                log.warning("background checkpoint failed: %s", exc.message)
                continue
            if copied > 0 and wal > 0:
                self.checkpoints += 1

    async def close(self) -> None:
        db = self.db
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._cconn is not None and self._cpool is not None:
            await asyncio.get_running_loop().run_in_executor(self._cpool, self._cconn.close)
            self._cpool.shutdown(wait=False)
            self._cconn = self._cpool = None
        for conn, pool in ((db.wconn, db.writer), (db.rconn, db.reader)):
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        db.wconn = db.rconn = None
        db.writer.shutdown(wait=False)
        db.reader.shutdown(wait=False)

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    async def migrate(self) -> list[str]:
        def run(c: Conn) -> list[str]:
            c.execute(MIGRATIONS_DDL)
            done = {(r[0], r[1]) for r in c.execute(
                f"SELECT component, version FROM {MIGRATIONS_TABLE}")}
            applied = []
            for m in all_migrations():
                if (m.component, m.version) in done:
                    continue
                for stmt in m.statements:
                    c.execute(stmt)
                c.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES "
                    "(?, ?, ?, CAST(strftime('%s','now') AS INTEGER) * 1000000)",
                    (m.component, m.version, m.name),
                )
                applied.append(f"{m.component}:{m.version}")
            return applied

        return await self._write(run)

    async def schema_version(self) -> int:
        def run(c: Conn) -> int:
            try:
                row = c.execute(
                    f"SELECT max(version) FROM {MIGRATIONS_TABLE} WHERE component = 'chat'"
                ).fetchone()
            except sqlite3.OperationalError:
                return 0
            return int(row[0] or 0)

        return await self._read(run)

    # --- threads
    @staticmethod
    def _thread(c: Conn, thread_id: str) -> Thread | None:
        row = c.execute(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None:
            return None
        parts = c.execute(
            "SELECT user_id, role, joined_at, read_seq FROM participants WHERE thread_id = ? "
            "ORDER BY joined_at, user_id",
            (thread_id,),
        ).fetchall()
        return thread_from_row(row, (Participant(*p) for p in parts))

    async def create_thread(
        self,
        *,
        id: str,
        kind: str,
        title: str,
        stage: str,
        ref: dict[str, Any],
        participants: Sequence[tuple[str, str]],
        at: int,
    ) -> Thread:
        def run(c: Conn) -> Thread:
            try:
                c.execute(
                    f"INSERT INTO threads ({THREAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                    (id, kind, title, stage, dumps(ref), at, at),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"thread {id!r} already exists") from None
            c.executemany(
                "INSERT INTO participants (thread_id, user_id, role, joined_at) VALUES (?,?,?,?)",
                [(id, user, role, at) for user, role in participants],
            )
            self._log(c, [evidence.thread_created_entry(
                id, kind=kind, title=title, stage=stage, ref=ref, participants=participants,
                at=at)])
            thread = self._thread(c, id)
            assert thread is not None
            return thread

        return await self._write(run)

    async def get_thread(self, thread_id: str) -> Thread | None:
        return await self._read(lambda c: self._thread(c, thread_id))

    async def update_thread(
        self, thread_id: str, *, stage: str | None = None, title: str | None = None, at: int
    ) -> Thread:
        def run(c: Conn) -> Thread:
            cur = c.execute(
                "UPDATE threads SET stage = coalesce(?, stage), title = coalesce(?, title), "
                "updated_at = ? WHERE id = ?",
                (stage, title, at, thread_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"thread {thread_id!r} does not exist")
            self._log(c, [evidence.thread_updated_entry(
                thread_id, stage=stage, title=title, at=at)])
            thread = self._thread(c, thread_id)
            assert thread is not None
            return thread

        return await self._write(run)

    async def add_participant(
        self, thread_id: str, user_id: str, role: str, *, at: int
    ) -> tuple[Thread, bool]:
        def run(c: Conn) -> tuple[Thread, bool]:
            if c.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
                raise NotFound(f"thread {thread_id!r} does not exist")
            row = c.execute(
                "SELECT role FROM participants WHERE thread_id = ? AND user_id = ?",
                (thread_id, user_id),
            ).fetchone()
            if row is not None and row[0] != role:
                raise Conflict(f"{user_id!r} already takes part as {row[0]!r}")
            if row is None:
                c.execute(
                    "INSERT INTO participants (thread_id, user_id, role, joined_at) "
                    "VALUES (?, ?, ?, ?)",
                    (thread_id, user_id, role, at),
                )
                self._log(c, [evidence.participant_entry(thread_id, user_id, role, at)])
            thread = self._thread(c, thread_id)
            assert thread is not None
            return thread, row is None

        return await self._write(run)

    async def user_threads(self, user_id: str, *, limit: int,
                           before: tuple[int, str] | None = None) -> list[ThreadSummary]:
        page = ""
        args: tuple[object, ...] = ()
        if before is not None:
            page = "AND (t.updated_at < ? OR (t.updated_at = ? AND t.id > ?)) "
            args = (before[0], before[0], before[1])

        def run(c: Conn) -> list[ThreadSummary]:
            rows = c.execute(
                f"SELECT {', '.join('t.' + x.strip() for x in THREAD_COLUMNS.split(','))}, "
                "p.role, p.read_seq, (SELECT count(*) FROM messages m WHERE m.thread_id = t.id "
                "AND m.seq > p.read_seq AND m.sender <> p.user_id AND m.deleted_at IS NULL) "
                "FROM participants p JOIN threads t ON t.id = p.thread_id WHERE p.user_id = ? "
                f"{page}ORDER BY t.updated_at DESC, t.id LIMIT ?",
                (user_id, *args, limit),
            ).fetchall()
            out = []
            for row in rows:
                thread = self._thread(c, row[0])
                assert thread is not None
                out.append(ThreadSummary(thread, row[8], row[9], row[10]))
            return out

        return await self._read(run)

    async def user_thread_seqs(self, user_id: str) -> dict[str, int]:
        def run(c: Conn) -> dict[str, int]:
            rows = c.execute(
                "SELECT t.id, t.last_seq FROM participants p JOIN threads t ON t.id = p.thread_id "
                "WHERE p.user_id = ?",
                (user_id,),
            )
            return {r[0]: r[1] for r in rows}

        return await self._read(run)

    async def user_threads_brief(self, user_id: str) -> dict[str, ThreadBrief]:
        def run(c: Conn) -> dict[str, ThreadBrief]:
            rows = c.execute(
                "SELECT t.id, t.last_seq, t.stage, q.user_id, q.role FROM participants p "
                "JOIN threads t ON t.id = p.thread_id "
                "JOIN participants q ON q.thread_id = p.thread_id WHERE p.user_id = ?",
                (user_id,),
            )
            return _brief(rows)

        return await self._read(run)

    # --- messages
    async def append_batch(self, batch: Sequence[NewMessage]) -> list[BatchResult]:
        """Append a group-committed batch in one transaction on the writer thread.

        A retry is answered with the stored message: the batch's idempotency keys are looked
        up in one statement. The keys of its screened requests that are not stored are
        looked up in moderation's withheld table (a retry of a withheld send is answered with
        its record: see chat.store.base). Fast path: when the writer remembers the state of
        every thread of the batch (it wrote them last), it reads neither last_seq nor the log
        heads, and writes under a savepoint with every thread update conditional on the
        remembered state; it looks up only the keys it stored lately (``_recent_keys``, a
        retry soon after its send) or that are withheld, since the key's unique index fails
        the insert of any other stored key. A taken seq or key fails the insert, a thread
        changed by another connection fails a condition: the savepoint is rolled back and the
        batch takes the reading path, which looks every key up.
        """
        def run(c: Conn) -> list[BatchResult]:
            state = self._state
            if all(m.thread in state for m in batch):
                c.execute("SAVEPOINT fast")
                try:
                    results = self._append_known(c, batch, state, every_key=False)
                except (sqlite3.IntegrityError, _Stale):
                    c.execute("ROLLBACK TO fast")
                    c.execute("RELEASE fast")
                    for m in batch:
                        state.pop(m.thread, None)
                else:
                    c.execute("RELEASE fast")
                    self.fast_batches += 1
                    return results
            self.slow_batches += 1
            threads = sorted({m.thread for m in batch})
            known = {r[0]: (r[1], r[2], r[3]) for r in c.execute(
                "SELECT id, last_seq, log_seq, log_head FROM threads "
                f"WHERE id IN ({', '.join('?' * len(threads))})", threads)}
            if len(state) + len(known) > _STATE_MAX:
                state.clear()
            state.update(known)
            return self._append_known(c, batch, state, every_key=True)

        results = await self._write(run)
        recent = self._recent_keys  # committed: a retry of these looks its key up
        for r in results:
            if isinstance(r, Appended) and r.created and (cmid := r.message.client_msg_id):
                recent[(r.message.thread, r.message.sender, cmid)] = None
        while len(recent) > _RECENT_KEYS_MAX:
            recent.popitem(last=False)
        return results

    def _append_known(self, c: Conn, batch: Sequence[NewMessage],
                      state: dict[str, ThreadState], *, every_key: bool) -> list[BatchResult]:
        """Write ``batch`` given its threads' stored ``state`` (a thread missing from it does
        not exist). Every thread update (last_seq and log head, one statement) is
        conditional on that state: :class:`_Stale` if it no longer holds (only a remembered
        state can be stale; read under the write lock it holds). ``every_key``: look up
        every idempotency key of the batch, else only the recent and the withheld ones (an
        older stored key then fails the insert: see append_batch)."""
        keys = _batch_keys(batch)
        if not every_key:
            keys = [k for k in keys if k in self._recent_keys]
        existing = _stored_keys(c, keys)
        withheld = _withheld_keys(c, screened_keys(batch, existing))
        if withheld and not every_key:  # released since? then it is stored: that answers
            existing.update(_stored_keys(c, [k for k in withheld if k not in existing]))
        plan = plan_batch(batch, {m.thread: state[m.thread][0] for m in batch
                                  if m.thread in state}, existing, withheld)
        if plan.rows:
            c.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", plan.rows)
            entries, heads = evidence.append_rows_sync(
                c, [evidence.message_entry(r.message) for r in plan.results
                    if isinstance(r, Appended) and r.created],
                {t: (state[t][1], state[t][2] or GENESIS) for t in plan.last_seqs})
            # One UPDATE per thread for its last_seq and its log head, conditional on the
            # state the batch was planned with (stale: the batch takes the reading path).
            rows = []
            for t, s in plan.last_seqs.items():
                last, log_seq, log_head = state[t]
                new_seq, new_head = heads.get(t, (log_seq, log_head))
                rows.append((s, plan.touched_at[t], new_seq, new_head,
                             t, last, log_seq, log_head))
            cur = c.executemany(
                "UPDATE threads SET last_seq = ?, updated_at = ?, log_seq = ?, log_head = ? "
                "WHERE id = ? AND last_seq = ? AND log_seq = ? AND log_head = ?", rows)
            if cur.rowcount != len(rows):
                raise _Stale
            self._remember(plan.last_seqs, entries)
        return plan.results

    def _remember(self, last_seqs: dict[str, int], entries: Sequence[LogEntry]) -> None:
        state = self._state
        for t, s in last_seqs.items():
            st = state[t]
            state[t] = (s, st[1], st[2])
        for e in entries:
            st = state[e.thread]
            state[e.thread] = (st[0], e.seq, e.hash)

    async def history(
        self,
        thread_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[Message]:
        def run(c: Conn) -> list[Message]:
            hi = before_seq if before_seq is not None else 2**62
            if after_seq is not None:
                rows = c.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND seq > ? "
                    "AND seq < ? ORDER BY seq LIMIT ?",
                    (thread_id, after_seq, hi, limit),
                ).fetchall()
            else:
                rows = c.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND seq < ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (thread_id, hi, limit),
                ).fetchall()
                rows.reverse()
            return [message_from_row(r) for r in rows]

        return await self._read(run)

    @staticmethod
    def _message(c: Conn, thread_id: str, message_id: str) -> Message | None:
        row = c.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND thread_id = ?",
            (message_id, thread_id),
        ).fetchone()
        return None if row is None else message_from_row(row)

    def _live_message(self, c: Conn, thread_id: str, message_id: str) -> Message:
        msg = self._message(c, thread_id, message_id)
        if msg is None:
            raise NotFound(f"message {message_id!r} does not exist in this thread")
        return msg

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        return await self._read(lambda c: self._message(c, thread_id, message_id))

    @staticmethod
    def _keep_revision(c: Conn, msg: Message, action: str, actor: str, at: int) -> None:
        c.execute(
            "INSERT INTO message_revisions (message_id, rev, action, body, masked, moderation, "
            "actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (msg.id, msg.rev, action, msg.body, msg.masked, dumps(msg.moderation), actor, at),
        )

    async def edit_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        actor: str,
        body: str,
        masked: str | None,
        moderation: dict[str, Any] | None,
        at: int,
    ) -> Message:
        def run(c: Conn) -> Message:
            msg = self._live_message(c, thread_id, message_id)
            if msg.deleted_at is not None:
                raise Conflict("a deleted message cannot be edited")
            self._keep_revision(c, msg, "edit", actor, at)
            new = edited(msg, body=body, at=at, masked=masked, moderation=moderation)
            c.execute(
                "UPDATE messages SET body = ?, edited_at = ?, rev = ?, masked = ?, moderation = ? "
                "WHERE id = ?",
                (new.body, at, new.rev, masked, dumps(moderation), message_id),
            )
            self._log(c, [evidence.edit_entry(msg, new, actor, at)])
            return new

        return await self._write(run)

    async def delete_message(
        self, thread_id: str, message_id: str, *, actor: str, at: int
    ) -> Message:
        def run(c: Conn) -> Message:
            msg = self._live_message(c, thread_id, message_id)
            if msg.deleted_at is not None:
                return msg
            self._keep_revision(c, msg, "delete", actor, at)
            c.execute(
                "UPDATE messages SET deleted_at = ?, rev = rev + 1 WHERE id = ?", (at, message_id)
            )
            self._log(c, [evidence.delete_entry(msg, actor, at)])
            out = self._message(c, thread_id, message_id)
            assert out is not None
            return out

        return await self._write(run)

    async def revisions(self, message_id: str) -> list[dict[str, Any]]:
        def run(c: Conn) -> list[dict[str, Any]]:
            rows = c.execute(
                "SELECT rev, action, body, actor, at FROM message_revisions WHERE message_id = ? "
                "ORDER BY rev",
                (message_id,),
            )
            return [
                {"rev": r[0], "action": r[1], "body": r[2], "actor": r[3], "at": r[4]}
                for r in rows
            ]

        return await self._read(run)

    async def advance_read(self, thread_id: str, user_id: str, seq: int) -> tuple[int, bool]:
        def run(c: Conn) -> tuple[int, bool]:
            row = c.execute(
                "SELECT p.read_seq, t.last_seq FROM participants AS p JOIN threads AS t "
                "ON t.id = p.thread_id WHERE p.thread_id = ? AND p.user_id = ?",
                (thread_id, user_id)).fetchone()
            if row is None:
                raise NotFound(f"{user_id!r} does not take part in {thread_id!r}")
            old, target = int(row[0]), min(seq, int(row[1]))
            if target <= old:
                return old, False
            c.execute("UPDATE participants SET read_seq = ? WHERE thread_id = ? AND user_id = ?",
                      (target, thread_id, user_id))
            self._log(c, [evidence.read_entry(thread_id, user_id, target, now_us())])
            return target, True

        return await self._write(run)

    async def thank(
        self, thread_id: str, message_id: str, user_id: str, *, at: int
    ) -> tuple[Message, bool]:
        def run(c: Conn) -> tuple[Message, bool]:
            msg = self._live_message(c, thread_id, message_id)
            cur = c.execute(
                "INSERT INTO thanks (message_id, user_id, recipient, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (message_id, user_id, msg.sender, at),
            )
            if cur.rowcount == 0:
                return msg, False
            c.execute("UPDATE messages SET thanks = thanks + 1 WHERE id = ?", (message_id,))
            self._log(c, [evidence.thanks_entry(thread_id, message_id, user_id, at)])
            out = self._message(c, thread_id, message_id)
            assert out is not None
            return out, True

        return await self._write(run)

    async def thanks_summary(self, user_id: str) -> dict[str, int]:
        def run(c: Conn) -> dict[str, int]:
            received = c.execute(
                "SELECT count(*) FROM thanks WHERE recipient = ?", (user_id,)
            ).fetchone()[0]
            given = c.execute("SELECT count(*) FROM thanks WHERE user_id = ?", (user_id,)).fetchone()[0]
            return {"received": int(received), "given": int(given)}

        return await self._read(run)
