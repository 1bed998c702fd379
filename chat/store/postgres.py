"""PostgreSQL back end through an asyncpg pool: production, shared by many nodes.

A batch append locks its threads' rows in id order (``FOR UPDATE``), so two nodes appending
to the same thread serialise and never deadlock, and seqs stay gapless. Four round trips per
batch, whatever its size (lock, idempotency lookup, insert, last_seq update).
The fast path's one-statement append runs on a pool of its own, with a generic plan
(see _FAST_SETTINGS); every other statement is planned for its parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import orjson

from ..errors import Conflict, NotFound, Unavailable
from ..evidence import log as evidence
from ..evidence.chain import GENESIS, Head, LogEntry, Pending, extend
from ..evidence.log import LOG_TYPES
from ..evidence.schema import LOG, LOG_COLUMNS, PENDING
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
    BatchPlan,
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
from .db import PgDb, pg_errors
from .schema import (
    MESSAGE_COLUMNS,
    MIGRATIONS_DDL,
    MIGRATIONS_TABLE,
    THREAD_COLUMNS,
    all_migrations,
)

log = logging.getLogger("tsunagu.store")
MIGRATION_LOCK = 0x7473_756E  # advisory lock id: "tsun"
_MESSAGE_TYPES = ("text", "text", "bigint", "text", "text", "text", "bigint", "text", "text",
                  "bigint", "bigint", "integer", "integer", "text", "text")  # MESSAGE_COLUMNS


def _json_rows(param: int, types: Sequence[str]) -> str:
    """SELECT the rows of a JSON array of arrays (parameter ``param``) as typed columns.

    A batch's rows travel as one JSON text (orjson, in C) that the server parses, rather
    than as one array parameter per column, which asyncpg encodes element by element: on a
    machine where PostgreSQL has a core of its own and the node has one, this is cheaper.
    ``jsonb``, not ``json``: ``json``'s ``->>`` parses the row's text again for every column
    (15 columns x 70 rows: the statement took three times as long).
    """
    cols = ", ".join(f"(r->>{i})::{t}" for i, t in enumerate(types))
    return f"SELECT {cols} FROM jsonb_array_elements(${param}::jsonb) AS r"

# Each thread of a batch, as one jsonb row: its new last_seq, updated_at, log_seq and log
# head, then (fast path only) the last_seq, log_seq and log head it is expected to have.
_THREAD_ROWS = (
    "th AS (SELECT r->>0 AS id, (r->>1)::bigint AS s, (r->>2)::bigint AS u, "
    "(r->>3)::bigint AS ls, r->>4 AS lh, (r->>5)::bigint AS es, (r->>6)::bigint AS els, "
    "r->>7 AS elh FROM jsonb_array_elements($3::jsonb) AS r)"
)


# The batch's threads, as an index condition on ``threads.id``: whatever the plan joins
# ``threads`` with ``th`` by (even a plan made when the table was small), ``threads`` is read
# through its primary key for these ids only, never scanned whole (see _FAST_SETTINGS).
_TH_IDS = "threads.id = ANY (ARRAY(SELECT id FROM th))"


def _write_batch(guard: str = "") -> str:
    """The CTEs that write a batch: the messages ($1) and their thread log entries ($2,
    chat.evidence) as JSON rows, the evidence "pending" marks, and each thread's last_seq,
    updated_at and log head (from ``th``, $3; one UPDATE: two data-modifying CTEs must not
    touch the same row). ``guard``, when given, is a condition every part is made subject to.
    """
    where = f" WHERE {guard}" if guard else ""
    and_ = f" AND {guard}" if guard else ""
    return (
        f"inserted AS (INSERT INTO messages ({MESSAGE_COLUMNS}) "
        f"{_json_rows(1, _MESSAGE_TYPES)}{where}), "
        f"logged AS (INSERT INTO {LOG} ({LOG_COLUMNS}) {_json_rows(2, LOG_TYPES)}{where}), "
        f"marked AS (INSERT INTO {PENDING} (thread_id) SELECT th.id FROM th{where} "
        "ON CONFLICT DO NOTHING), "
        "updated AS (UPDATE threads SET last_seq = th.s, updated_at = th.u, log_seq = th.ls, "
        f"log_head = th.lh FROM th WHERE threads.id = th.id AND {_TH_IDS}{and_})"
    )


def _find_keys(param: int) -> str:
    """The stored messages whose (thread, sender, client_msg_id) is one of the jsonb rows of
    parameter ``param`` (see :func:`_keys_json`)."""
    # LATERAL with LIMIT (not flattened into a join): one probe of the idempotency index per
    # key, whatever the planner thinks of the table's size (as a join it may pick a hash join
    # over a seq scan of every message). The key is unique: LIMIT 1 drops nothing.
    return (f"SELECT m.* FROM jsonb_array_elements(${param}::jsonb) AS r "
            f"CROSS JOIN LATERAL (SELECT {MESSAGE_COLUMNS} FROM messages "
            "WHERE thread_id = r->>0 AND sender = r->>1 AND client_msg_id = r->>2 LIMIT 1) AS m")


def _keys_json(keyed: Sequence[NewMessage]) -> str:
    return orjson.dumps([[m.thread, m.sender, m.client_msg_id] for m in keyed]).decode()


def _find_withheld(param: int) -> str:
    """Moderation's withheld records whose key is one of the jsonb rows of parameter
    ``param``: the keys of a batch's screened requests (see chat.store.base). A statement
    names the table only when the batch has such keys: without moderation it may not exist."""
    return (f"SELECT w.* FROM jsonb_array_elements(${param}::jsonb) AS r "
            f"CROSS JOIN LATERAL (SELECT {WITHHELD_KEY_COLUMNS} FROM {WITHHELD_TABLE} "
            "WHERE thread_id = r->>0 AND sender = r->>1 AND client_msg_id = r->>2 LIMIT 1) AS w")


# The rows of the CTE ``held`` (see _find_withheld) as one jsonb array, NULL if none.
_HELD_JSON = f"(SELECT jsonb_agg(jsonb_build_array({WITHHELD_KEY_COLUMNS})) FROM held)"


def _held(value: str | None) -> dict[IdemKey, Withheld]:
    """The ``held`` column of the lookups below: key -> withheld record."""
    return {} if value is None else dict(withheld_from_row(r) for r in orjson.loads(value))


def _find_sql(held: bool) -> str:
    """The slow path's lookup, under the threads' locks: one row per stored message that has
    one of the keys of $1 (at least one row), each with ``held``: the withheld records of
    the screened keys of $2 (only when ``held``)."""
    ctes = f"found AS ({_find_keys(1)})" + (f", held AS ({_find_withheld(2)})" if held else "")
    return (f"WITH {ctes} SELECT {_HELD_JSON if held else 'NULL::text'} AS held, found.* "
            "FROM (SELECT 1) AS one LEFT JOIN found ON true")


# The whole write of a batch in ONE statement (one round trip), under locks already held.
# Three parameters, each one JSON text: asyncpg's cost per parameter, not its size, counts.
_APPEND_LOGGED_SQL = f"WITH {_THREAD_ROWS}, {_write_batch()} SELECT 1"

# The fast path (see PostgresStore.append_batch): the same write, made conditional on the
# threads being as this node last left them (the expected columns of $3) and on no
# idempotency key ($4: rows of thread, sender, client_msg_id) being stored yet - nor, with
# ``held``, withheld by moderation ($5: the keys of the screened requests) - in ONE
# statement run without BEGIN/COMMIT (an implicit transaction): one round trip per batch.
# ``locked`` takes the row locks in id order (as the slow path does: no deadlock) and keeps
# only threads whose last_seq and log head still match; under READ COMMITTED a row changed
# by a concurrent transaction is re-read in its committed form before the comparison (a
# send withheld meanwhile changed its thread's log head: the batch takes the slow path,
# whose lookups run after its locks are taken). The result: one row per stored message
# that has one of the keys (at least one row), each with ``current`` (every thread as
# expected), ``fresh`` (no key stored or withheld) and ``held`` (the withheld records):
# ``current`` and ``fresh`` true, and the batch was written.
def _append_if_current_sql(held: bool) -> str:
    return (
        f"WITH {_THREAD_ROWS}, "
        "locked AS (SELECT threads.id FROM threads JOIN th e ON threads.id = e.id "
        f"WHERE {_TH_IDS} AND threads.last_seq = e.es AND threads.log_seq = e.els "
        "AND threads.log_head IS NOT DISTINCT FROM e.elh ORDER BY threads.id "
        "FOR UPDATE OF threads), "
        f"found AS ({_find_keys(4)}), "
        + (f"held AS ({_find_withheld(5)}), " if held else "")
        + "ok AS (SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM th) AS current, "
        "NOT EXISTS (SELECT 1 FROM found)"
        + (f" AND NOT EXISTS (SELECT 1 FROM held) AS fresh, {_HELD_JSON} AS held), " if held
           else " AS fresh, NULL::text AS held), ")
        + f"{_write_batch('(SELECT current AND fresh FROM ok)')} "
        "SELECT ok.current, ok.fresh, ok.held, found.* FROM ok LEFT JOIN found ON true"
    )


_APPEND_IF_CURRENT_SQL = _append_if_current_sql(held=False)
_APPEND_IF_CURRENT_HELD_SQL = _append_if_current_sql(held=True)  # a batch with screened keys
_CACHE_MAX = 100_000  # threads whose state this node remembers (see append_batch)
_STORED_MAX = 10_000  # recently committed keyed messages kept for retries
ThreadState = tuple[int, int, str | None]  # last_seq, log_seq, log_head as stored


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's reset query (one round trip per release).

    asyncpg still rolls back an open transaction on release; the reset query would only undo
    session state (LISTEN, SET, session advisory locks, open cursors), which tsunagu never
    creates: it uses transaction-scoped locks and settings only. Code that needs session state
    must use a dedicated connection, not the pool.
    """


# Plan every execution for its parameters. asyncpg prepares each statement, and after five
# executions PostgreSQL may keep a generic plan chosen from the statistics of that moment: on
# a new database (tables empty, never analysed) that plan seq-scans `messages` to find a
# batch's idempotency keys and `threads` to lock its threads, and it kept doing so as the
# tables grew - each batch read every stored message (7.4 million rows read in 4 s at
# 2,000 msgs/s, PostgreSQL at 0.8 of a core; see BENCHMARKS.md). A custom plan sees the
# tables' current size and uses the indexes; planning costs ~0.3 ms per batch.
# (plan_cache_mode exists from PostgreSQL 12.)
_SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan"}

# The fast path's statements (_APPEND_IF_CURRENT_SQL, _APPEND_IF_CURRENT_HELD_SQL) run on
# connections of their own (a second pool) that run nothing else but the foreign-key checks
# of their inserts, with ONE generic plan per statement and connection, made at its first
# execution and again only when a table it reads is analysed or altered: planning it for
# every batch was more than a third of PostgreSQL's CPU per stored message
# (``python -m bench.pg_batch --server-cpu``: ~120 -> ~75 µs per message). A plan made for
# no particular parameters, perhaps while the tables are empty, must stay right as they grow
# (see _SESSION_SETTINGS), which the statements ensure by their form: each table is read
# through an index condition bounded by the batch (the threads by primary key: _TH_IDS; the
# keys by one LATERAL ... LIMIT 1 probe each), and with sequential scans disabled on these
# connections no plan reads a whole table instead. (Which index a key probe uses follows the
# statistics, as for a custom plan: while they say a thread has about one message, as on a
# new database, it may be the (thread_id, seq) one, which reads that thread's messages,
# until the next analyse of ``messages`` replaces the plan.)
_FAST_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


class PostgresStore(Store):
    concurrent_batches = True

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min = min_size
        self._max = max_size
        self._pool: asyncpg.Pool | None = None
        self._fast: asyncpg.Pool | None = None  # the fast path's (see _FAST_SETTINGS)
        self.db: PgDb = PgDb()
        # Each thread's state as this node's last append left it (the fast path's guess).
        self._state: dict[str, ThreadState] = {}
        # Messages with a client_msg_id this node committed lately: a retry that arrives
        # here is answered from memory instead of costing the fast path a second round trip
        # (and, under load, nearly every large batch has one). Only committed messages go
        # in; one changed through this node is taken out (see _live_message), one changed
        # through another node when its `update` event arrives (``forget_message``, called
        # by the service for every update event; all of them after a fan-out outage).
        self._stored: OrderedDict[IdemKey, Message] = OrderedDict()
        self.fast_batches = 0  # batches written by the one-statement fast path
        self.slow_batches = 0  # batches written under an explicit lock-read-write transaction

    async def _log(self, c: asyncpg.Connection, pending: Sequence[Pending]) -> None:
        """Append to the thread log in the transaction open on ``c`` (see chat.evidence.log).

        A remembered thread gets its new log head, so the next batch still takes the fast
        path after a receipt, an edit or a thank-you. Set before the commit: if the
        transaction fails, the fast path's check finds the difference and falls back.
        """
        for e in await evidence.append_pg(c, pending):
            st = self._state.get(e.thread)
            if st is not None:
                self._state[e.thread] = (st[0], e.seq, e.hash)

    @contextlib.asynccontextmanager
    async def _conn(self, *, tx: bool = False,
                    fast: bool = False) -> AsyncIterator[asyncpg.Connection]:
        pool = self._fast if fast else self._pool
        if pool is None:
            raise Unavailable("store is not open")
        with pg_errors():  # a unique-key violation is Conflict, the rest Unavailable
            async with pool.acquire() as conn:
                if tx:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self._min, max_size=self._max, command_timeout=30,
                reset=_keep_session,
                server_settings=_SESSION_SETTINGS,
            )
            self.db.pool = self._pool
            self._fast = await asyncpg.create_pool(
                self.dsn, min_size=min(1, self._min), max_size=self._max, command_timeout=30,
                reset=_keep_session,
                server_settings=_FAST_SETTINGS,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            await self.close()
            raise Unavailable(f"postgresql: cannot connect: {exc}") from exc

    async def close(self) -> None:
        if self._fast is not None:
            await _close_pool(self._fast)
            self._fast = None
        if self._pool is not None:
            await _close_pool(self._pool)
            self._pool = None
            self.db.pool = None

    async def ping(self) -> None:
        async with self._conn() as c:
            await c.fetchval("SELECT 1")

    async def migrate(self) -> list[str]:
        async with self._conn(tx=True) as c:
            await c.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await c.execute(MIGRATIONS_DDL)
            done = {(r[0], r[1]) for r in await c.fetch(
                f"SELECT component, version FROM {MIGRATIONS_TABLE}")}
            applied = []
            for m in all_migrations():
                if (m.component, m.version) in done:
                    continue
                for stmt in m.statements:
                    await c.execute(stmt)
                await c.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES "
                    "($1, $2, $3, (extract(epoch from now()) * 1000000)::bigint)",
                    m.component,
                    m.version,
                    m.name,
                )
                applied.append(f"{m.component}:{m.version}")
            return applied

    async def schema_version(self) -> int:
        async with self._conn() as c:
            exists = await c.fetchval("SELECT to_regclass($1)", MIGRATIONS_TABLE)
            if exists is None:
                return 0
            return int(await c.fetchval(
                f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE} "
                "WHERE component = 'chat'"))

    # --- threads
    @staticmethod
    async def _thread(c: asyncpg.Connection, thread_id: str) -> Thread | None:
        row = await c.fetchrow(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1", thread_id)
        if row is None:
            return None
        parts = await c.fetch(
            "SELECT user_id, role, joined_at, read_seq FROM participants WHERE thread_id = $1 "
            "ORDER BY joined_at, user_id",
            thread_id,
        )
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
        async with self._conn(tx=True) as c:
            try:
                await c.execute(
                    f"INSERT INTO threads ({THREAD_COLUMNS}) VALUES ($1,$2,$3,$4,$5,0,$6,$6)",
                    id, kind, title, stage, dumps(ref), at,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"thread {id!r} already exists") from None
            await c.executemany(
                "INSERT INTO participants (thread_id, user_id, role, joined_at) "
                "VALUES ($1,$2,$3,$4)",
                [(id, user, role, at) for user, role in participants],
            )
            await self._log(c, [evidence.thread_created_entry(
                id, kind=kind, title=title, stage=stage, ref=ref, participants=participants,
                at=at)])
            thread = await self._thread(c, id)
            assert thread is not None
            return thread

    async def get_thread(self, thread_id: str) -> Thread | None:
        async with self._conn() as c:
            return await self._thread(c, thread_id)

    async def update_thread(
        self, thread_id: str, *, stage: str | None = None, title: str | None = None, at: int
    ) -> Thread:
        async with self._conn(tx=True) as c:
            status = await c.execute(
                "UPDATE threads SET stage = coalesce($1, stage), title = coalesce($2, title), "
                "updated_at = $3 WHERE id = $4",
                stage, title, at, thread_id,
            )
            if status.endswith(" 0"):
                raise NotFound(f"thread {thread_id!r} does not exist")
            await self._log(c, [evidence.thread_updated_entry(thread_id, stage=stage, title=title,
                                                         at=at)])
            thread = await self._thread(c, thread_id)
            assert thread is not None
            return thread

    async def add_participant(
        self, thread_id: str, user_id: str, role: str, *, at: int
    ) -> tuple[Thread, bool]:
        async with self._conn(tx=True) as c:
            if await c.fetchval("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread_id) is None:
                raise NotFound(f"thread {thread_id!r} does not exist")
            existing = await c.fetchval(
                "SELECT role FROM participants WHERE thread_id = $1 AND user_id = $2",
                thread_id, user_id,
            )
            if existing is not None and existing != role:
                raise Conflict(f"{user_id!r} already takes part as {existing!r}")
            if existing is None:
                await c.execute(
                    "INSERT INTO participants (thread_id, user_id, role, joined_at) "
                    "VALUES ($1, $2, $3, $4)",
                    thread_id, user_id, role, at,
                )
                await self._log(c, [evidence.participant_entry(thread_id, user_id, role, at)])
            thread = await self._thread(c, thread_id)
            assert thread is not None
            return thread, existing is None

    async def user_threads(self, user_id: str, *, limit: int,
                           before: tuple[int, str] | None = None) -> list[ThreadSummary]:
        cols = ", ".join("t." + x.strip() for x in THREAD_COLUMNS.split(","))
        page = ""
        args: tuple[object, ...] = ()
        if before is not None:
            page = "AND (t.updated_at < $3 OR (t.updated_at = $3 AND t.id > $4)) "
            args = before
        async with self._conn() as c:
            rows = await c.fetch(
                f"SELECT {cols}, p.role, p.read_seq, (SELECT count(*) FROM messages m "
                "WHERE m.thread_id = t.id AND m.seq > p.read_seq AND m.sender <> p.user_id "
                "AND m.deleted_at IS NULL) FROM participants p JOIN threads t "
                f"ON t.id = p.thread_id WHERE p.user_id = $1 {page}"
                "ORDER BY t.updated_at DESC, t.id LIMIT $2",
                user_id, limit, *args,
            )
            out = []
            for row in rows:
                thread = await self._thread(c, row[0])
                assert thread is not None
                out.append(ThreadSummary(thread, row[8], row[9], row[10]))
            return out

    async def user_thread_seqs(self, user_id: str) -> dict[str, int]:
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT t.id, t.last_seq FROM participants p JOIN threads t ON t.id = p.thread_id "
                "WHERE p.user_id = $1",
                user_id,
            )
            return {r[0]: r[1] for r in rows}

    async def user_threads_brief(self, user_id: str) -> dict[str, ThreadBrief]:
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT t.id, t.last_seq, t.stage, q.user_id, q.role FROM participants p "
                "JOIN threads t ON t.id = p.thread_id "
                "JOIN participants q ON q.thread_id = p.thread_id WHERE p.user_id = $1",
                user_id,
            )
            return _brief(rows)

    # --- messages
    async def append_batch(self, batch: Sequence[NewMessage]) -> list[BatchResult]:
        """Store a group-committed batch.

        Fast path: when this node remembers the state of every thread of the batch (it wrote
        them last), the seqs and log entries are computed from that memory and written by one
        conditional statement (:data:`_APPEND_IF_CURRENT_SQL`): one round trip instead of
        five. If another node changed a thread meanwhile, that statement writes nothing and
        the batch takes the slow path: lock, read, look the keys up, write, in a
        transaction. Either way the writes are made under the threads' row locks, checked
        against the state read under those locks. A retry of a message this node committed
        lately is answered from memory (``_stored``). The keys of screened requests that are
        not stored are looked up in moderation's withheld table by the same statements (a
        retry of a withheld send is answered with its record: see chat.store.base).
        """
        threads = sorted({m.thread for m in batch})
        states = {t: st for t in threads if (st := self._state.get(t)) is not None}
        if len(states) == len(threads):
            done = await self._append_if_current(batch, states)
            if done is not None:
                return done
            for t in threads:  # stale: the locked path reads them again
                self._state.pop(t, None)
        return await self._append_locked(batch, threads)

    async def _append_if_current(
        self, batch: Sequence[NewMessage], states: dict[str, ThreadState]
    ) -> list[BatchResult] | None:
        """The fast path; None when the slow path must take the batch.

        A batch with retries of stored (or withheld) messages takes two round trips: the
        first finds them (and writes nothing), the second writes the rest with the retries
        answered.
        """
        existing = {key: self._stored[key] for m in batch if m.client_msg_id is not None
                    and (key := (m.thread, m.sender, m.client_msg_id)) in self._stored}
        withheld: dict[IdemKey, Withheld] = {}
        for _ in range(2):
            plan = plan_batch(batch, {t: st[0] for t, st in states.items()}, existing,
                              withheld)
            if not plan.rows:  # nothing new: every request repeats a stored (withheld) one
                return plan.results
            ids = list(plan.last_seqs)
            entries, heads = extend(
                {t: (states[t][1], states[t][2] or GENESIS) for t in ids},
                [evidence.message_entry(r.message) for r in plan.results
                 if isinstance(r, Appended) and r.created])
            keyed = [m for m in batch if m.client_msg_id is not None
                     and (m.thread, m.sender, m.client_msg_id) not in existing]
            screened = [k for k in screened_keys(batch, existing) if k not in withheld]
            args = [*self._write_args(plan, entries, heads, ids, expected=states),
                    _keys_json(keyed)]
            if screened:
                args.append(orjson.dumps(screened).decode())
            try:
                async with self._conn(fast=True) as c:
                    rows = await c.fetch(
                        _APPEND_IF_CURRENT_HELD_SQL if screened else _APPEND_IF_CURRENT_SQL,
                        *args)
            except Conflict:
                return None  # a key stored concurrently: the slow path answers it
            current, fresh = rows[0][0], rows[0][1]
            if not current:
                return None
            if fresh:
                self.fast_batches += 1
                self._remember(plan, heads, ids)
                self._keep(plan)
                return plan.results
            withheld.update(_held(rows[0][2]))
            for row in rows:
                if row[3] is None:  # no stored message (only withheld ones)
                    continue
                msg = message_from_row(tuple(row)[3:])
                assert msg.client_msg_id is not None
                existing[(msg.thread, msg.sender, msg.client_msg_id)] = msg
        return None

    @staticmethod
    def _write_args(plan: BatchPlan, entries: Sequence[LogEntry], heads: dict[str, Head],
                    ids: list[str], expected: dict[str, ThreadState] | None = None
                    ) -> list[Any]:
        """The parameters of :data:`_APPEND_LOGGED_SQL` (the first three of the fast
        path's, whose thread rows also carry the ``expected`` state)."""
        threads = [[t, plan.last_seqs[t], plan.touched_at[t], heads[t][0], heads[t][1],
                    *(expected[t] if expected is not None else ())] for t in ids]
        return [orjson.dumps(plan.rows).decode(),
                orjson.dumps([e.row() for e in entries]).decode(),
                orjson.dumps(threads).decode()]

    def _keep(self, plan: BatchPlan) -> None:
        """``plan`` is committed: keep its keyed messages for retries (see ``_stored``)."""
        for r in plan.results:
            if isinstance(r, Appended) and r.created and (cmid := r.message.client_msg_id):
                self._stored[(r.message.thread, r.message.sender, cmid)] = r.message
        while len(self._stored) > _STORED_MAX:
            self._stored.popitem(last=False)

    def _remember(self, plan: BatchPlan, heads: dict[str, Head], ids: list[str]) -> None:
        if len(self._state) > _CACHE_MAX:
            self._state.clear()
        for t in ids:
            self._state[t] = (plan.last_seqs[t], heads[t][0], heads[t][1])

    async def _append_locked(self, batch: Sequence[NewMessage],
                             threads: list[str]) -> list[BatchResult]:
        keyed = [m for m in batch if m.client_msg_id is not None]
        screened = screened_keys(batch, {})
        async with self._conn(tx=True) as c:
            rows = await c.fetch(
                "SELECT id, last_seq, log_seq, log_head FROM threads WHERE id = ANY($1::text[]) "
                "ORDER BY id FOR UPDATE",
                threads,
            )
            last = {r[0]: r[1] for r in rows}
            existing: dict[IdemKey, Message] = {}
            withheld: dict[IdemKey, Withheld] = {}
            if keyed:  # one statement for both lookups (the screened keys are keyed too)
                args = [_keys_json(keyed)]
                if screened:
                    args.append(orjson.dumps(screened).decode())
                found = await c.fetch(_find_sql(held=bool(screened)), *args)
                withheld = _held(found[0][0])
                for row in found:
                    if row[1] is None:  # no stored message (only withheld ones)
                        continue
                    msg = message_from_row(tuple(row)[1:])
                    assert msg.client_msg_id is not None
                    existing[(msg.thread, msg.sender, msg.client_msg_id)] = msg
            plan = plan_batch(batch, last, existing, withheld)
            ids = list(plan.last_seqs)
            heads: dict[str, Head] = {}
            if plan.rows:
                # One statement, one round trip; the last_seq update in the same statement
                # (a data-modifying CTE always runs to completion).
                entries, heads = extend(
                    evidence.pg_heads([(r[0], r[2], r[3]) for r in rows]),
                    [evidence.message_entry(r.message) for r in plan.results
                     if isinstance(r, Appended) and r.created])
                await c.execute(_APPEND_LOGGED_SQL, *self._write_args(plan, entries, heads, ids))
        self.slow_batches += 1
        self._keep(plan)
        # Committed: remember the threads for the fast path.
        for r in rows:
            self._state[r[0]] = (int(r[1]), int(r[2]), r[3])
        self._remember(plan, heads, ids)
        return plan.results

    async def history(
        self,
        thread_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[Message]:
        hi = before_seq if before_seq is not None else 2**62
        async with self._conn() as c:
            if after_seq is not None:
                rows = await c.fetch(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND seq > $2 "
                    "AND seq < $3 ORDER BY seq LIMIT $4",
                    thread_id, after_seq, hi, limit,
                )
                return [message_from_row(r) for r in rows]
            rows = await c.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND seq < $2 "
                "ORDER BY seq DESC LIMIT $3",
                thread_id, hi, limit,
            )
            return [message_from_row(r) for r in reversed(rows)]

    @staticmethod
    async def _message(
        c: asyncpg.Connection, thread_id: str, message_id: str, *, lock: bool = False
    ) -> Message | None:
        row = await c.fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND thread_id = $2"
            + (" FOR UPDATE" if lock else ""),
            message_id, thread_id,
        )
        return None if row is None else message_from_row(row)

    async def _live_message(self, c: asyncpg.Connection, thread_id: str, message_id: str) -> Message:
        msg = await self._message(c, thread_id, message_id, lock=True)
        if msg is None:
            raise NotFound(f"message {message_id!r} does not exist in this thread")
        self.forget_message(msg)  # about to change: a retry reads it from storage
        return msg

    def forget_message(self, message: Message | None) -> None:
        if message is None:
            self._stored.clear()
        elif message.client_msg_id is not None:
            self._stored.pop((message.thread, message.sender, message.client_msg_id), None)

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        async with self._conn() as c:
            return await self._message(c, thread_id, message_id)

    @staticmethod
    async def _keep_revision(
        c: asyncpg.Connection, msg: Message, action: str, actor: str, at: int
    ) -> None:
        await c.execute(
            "INSERT INTO message_revisions (message_id, rev, action, body, masked, moderation, "
            "actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            msg.id, msg.rev, action, msg.body, msg.masked, dumps(msg.moderation), actor, at,
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
        async with self._conn(tx=True) as c:
            msg = await self._live_message(c, thread_id, message_id)
            if msg.deleted_at is not None:
                raise Conflict("a deleted message cannot be edited")
            await self._keep_revision(c, msg, "edit", actor, at)
            new = edited(msg, body=body, at=at, masked=masked, moderation=moderation)
            await c.execute(
                "UPDATE messages SET body = $1, edited_at = $2, rev = $3, masked = $4, "
                "moderation = $5 WHERE id = $6",
                new.body, at, new.rev, masked, dumps(moderation), message_id,
            )
            await self._log(c, [evidence.edit_entry(msg, new, actor, at)])
            return new

    async def delete_message(
        self, thread_id: str, message_id: str, *, actor: str, at: int
    ) -> Message:
        async with self._conn(tx=True) as c:
            msg = await self._live_message(c, thread_id, message_id)
            if msg.deleted_at is not None:
                return msg
            await self._keep_revision(c, msg, "delete", actor, at)
            await c.execute(
                "UPDATE messages SET deleted_at = $1, rev = rev + 1 WHERE id = $2", at, message_id
            )
            await self._log(c, [evidence.delete_entry(msg, actor, at)])
            out = await self._message(c, thread_id, message_id)
            assert out is not None
            return out

    async def revisions(self, message_id: str) -> list[dict[str, Any]]:
        async with self._conn() as c:
            rows = await c.fetch(
                "SELECT rev, action, body, actor, at FROM message_revisions "
                "WHERE message_id = $1 ORDER BY rev",
                message_id,
            )
            return [
                {"rev": r[0], "action": r[1], "body": r[2], "actor": r[3], "at": r[4]}
                for r in rows
            ]

    async def advance_read(self, thread_id: str, user_id: str, seq: int) -> tuple[int, bool]:
        async with self._conn(tx=True) as c:
            row = await c.fetchrow(
                "SELECT p.read_seq, t.last_seq FROM participants AS p JOIN threads AS t "
                "ON t.id = p.thread_id WHERE p.thread_id = $1 AND p.user_id = $2 "
                "FOR UPDATE OF p", thread_id, user_id)
            if row is None:
                raise NotFound(f"{user_id!r} does not take part in {thread_id!r}")
            old, target = int(row[0]), min(seq, int(row[1]))
            if target <= old:
                return old, False
            await c.execute(
                "UPDATE participants SET read_seq = $1 WHERE thread_id = $2 AND user_id = $3",
                target, thread_id, user_id)
            await self._log(c, [evidence.read_entry(thread_id, user_id, target, now_us())])
            return target, True

    async def thank(
        self, thread_id: str, message_id: str, user_id: str, *, at: int
    ) -> tuple[Message, bool]:
        async with self._conn(tx=True) as c:
            msg = await self._live_message(c, thread_id, message_id)
            status = await c.execute(
                "INSERT INTO thanks (message_id, user_id, recipient, at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                message_id, user_id, msg.sender, at,
            )
            if status.endswith(" 0"):
                return msg, False
            await c.execute("UPDATE messages SET thanks = thanks + 1 WHERE id = $1", message_id)
            await self._log(c, [evidence.thanks_entry(thread_id, message_id, user_id, at)])
            out = await self._message(c, thread_id, message_id)
            assert out is not None
            return out, True

    async def thanks_summary(self, user_id: str) -> dict[str, int]:
        async with self._conn() as c:
            received = await c.fetchval("SELECT count(*) FROM thanks WHERE recipient = $1", user_id)
            given = await c.fetchval("SELECT count(*) FROM thanks WHERE user_id = $1", user_id)
            return {"received": int(received), "given": int(given)}


POOL_CLOSE_S = 5.0  # how long closing waits for connections still in use


async def _close_pool(pool: Any) -> None:
    """Close ``pool``: ``Pool.close`` waits for every connection to be released, which a
    connection held by a stuck task never is; past POOL_CLOSE_S the rest are terminated
    (a shutdown must end)."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_S)
    except TimeoutError:
        log.warning(
            "closing the PostgreSQL pool: connections still in use after %.1f s, terminated",
            POOL_CLOSE_S)
        pool.terminate()
