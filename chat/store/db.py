"""Portable SQL for the other components (moderation, notifications, evidence).

Components write their SQL once, with ``?`` placeholders and portable types (TEXT, BIGINT,
INTEGER; JSON as TEXT), and run it through :class:`Db`, which both stores expose as
``store.db``. ``db.dialect`` says ``"sqlite"`` or ``"postgres"`` where a statement must
differ (``FOR UPDATE SKIP LOCKED`` exists only on PostgreSQL; SQLite has one writer).

    async with store.db.transaction() as tx:
        row = await tx.fetchrow("SELECT ... WHERE id = ?", some_id)
        await tx.execute("UPDATE ... SET x = ? WHERE id = ?", x, some_id)

Errors are translated into :mod:`chat.errors`: a unique-key violation is
:class:`~chat.errors.Conflict`, everything else :class:`~chat.errors.Unavailable`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import Conflict, Unavailable

T = TypeVar("T")
Row = tuple[Any, ...]


class Executor(abc.ABC):
    """What can run SQL: the database itself (autocommit) or an open transaction."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class Db(Executor):
    dialect: str

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]: ...


# --- SQLite
class SqliteDb(Db):
    """Runs on the store's writer thread (and lock) for writes, its reader thread for reads."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-w")
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-r")
        self.wconn: sqlite3.Connection | None = None
        self.rconn: sqlite3.Connection | None = None

    async def call(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise Conflict(f"already exists ({exc})") from exc
            raise Unavailable(f"sqlite: {exc}") from exc
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite: {exc}") from exc

    def _w(self) -> sqlite3.Connection:
        if self.wconn is None:
            raise Unavailable("store is not open")
        return self.wconn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self.rconn is None:
            raise Unavailable("store is not open")
        conn = self.rconn
        return await self.call(self.reader, lambda: conn.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self.lock:
            conn = self._w()
            await self.call(self.writer, lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteTx(self, conn)
            except BaseException:
                await self.call(self.writer, lambda: conn.execute("ROLLBACK"))
                raise
            await self.call(self.writer, lambda: conn.execute("COMMIT"))

    async def run_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the writer thread (the store's hot path)."""
        async with self.lock:
            conn = self._w()

            def run() -> T:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

            return await self.call(self.writer, run)

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.rconn is None:
            raise Unavailable("store is not open")
        conn = self.rconn
        return await self.call(self.reader, lambda: fn(conn))


class _SqliteTx(Executor):
    def __init__(self, db: SqliteDb, conn: sqlite3.Connection) -> None:
        self.db = db
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self.db.call(self.db.writer, lambda: self.conn.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> int:
        return await self.db.call(self.db.writer, lambda: self.conn.execute(sql, args).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.db.call(self.db.writer, lambda: self.conn.executemany(sql, rows))


# --- PostgreSQL
@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """``?`` placeholders to ``$1, $2, ...`` (no ``?`` may appear inside string literals)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], 1):
        out.append(f"${i}{part}")
    return "".join(out)


def _pg_rows(records: Sequence[Any]) -> list[Row]:
    return [tuple(r) for r in records]


class _PgExec(Executor):
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        with pg_errors():
            return _pg_rows(await self.conn.fetch(pg_sql(sql), *args))

    async def execute(self, sql: str, *args: Any) -> int:
        with pg_errors():
            status: str = await self.conn.execute(pg_sql(sql), *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with pg_errors():
            await self.conn.executemany(pg_sql(sql), rows)


@contextlib.contextmanager
def pg_errors() -> Any:
    import asyncpg

    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"already exists ({exc})") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise Unavailable(f"postgresql: {exc.__class__.__name__}: {exc}") from exc


class PgDb(Db):
    dialect = "postgres"

    def __init__(self) -> None:
        self.pool: Any = None

    def _pool(self) -> Any:
        if self.pool is None:
            raise Unavailable("store is not open")
        return self.pool

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        with pg_errors():
            async with self._pool().acquire() as conn:
                return await _PgExec(conn).fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        with pg_errors():
            async with self._pool().acquire() as conn:
                return await _PgExec(conn).execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with pg_errors():
            async with self._pool().acquire() as conn:
                await _PgExec(conn).executemany(sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        with pg_errors():
            async with self._pool().acquire() as conn, conn.transaction():
                yield _PgExec(conn)
