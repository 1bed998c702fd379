"""Shared fixtures: the two back ends, in-process servers, clients.

Back ends: ``embedded`` (SQLite file + in-process fan-out) and ``production`` (PostgreSQL +
Redis). Each production test gets a fresh PostgreSQL database and its own Redis prefix.
PostgreSQL and Redis tests fail, never skip, when ``CI`` is set and a server is missing;
without ``CI`` they skip with the reason, so a newcomer still gets a green run.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chat.config import Secret, Settings, load_settings
from chat.store import Store, open_store

PG_ADMIN_DSN = os.environ.get("TSUNAGU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TSUNAGU_TEST_REDIS", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-" + "x" * 40
IN_CI = bool(os.environ.get("CI"))


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_servers(*names: str) -> None:
    """Skip (or, in CI, fail) unless the named servers (postgres, redis) are reachable."""
    ports = {"postgres": 5432, "redis": 6379}
    missing = [n for n in names if not _port_open("127.0.0.1", ports[n])]
    if missing:
        why = f"{' and '.join(missing)} not reachable on 127.0.0.1 (needed by production tests)"
        if IN_CI:
            pytest.fail(f"CI is set: {why}")
        pytest.skip(why)


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str
    redis_prefix: str

    @property
    def production(self) -> bool:
        return self.name == "production"


async def create_pg_database() -> str:
    """Create an empty database; return its DSN."""
    import asyncpg

    name = f"tsunagu_t_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_pg_database(dsn: str) -> None:
    import asyncpg

    name = dsn.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["embedded", "production"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Both back ends: SQLite + in-process fan-out, and PostgreSQL + Redis."""
    if request.param == "embedded":
        yield Backend("embedded", f"sqlite:///{tmp_path / 'tsunagu.db'}", "", "tsunagu")
        return
    require_servers("postgres", "redis")
    dsn = await create_pg_database()
    try:
        yield Backend("production", dsn, REDIS_URL, f"tsunagu-test-{secrets.token_hex(4)}")
    finally:
        await drop_pg_database(dsn)


def make_settings(backend: Backend, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test server on ``backend`` (overrides by field name)."""
    settings = load_settings(
        env={},
        data_dir=str(tmp_path / "data"),
        database_url=backend.database_url,
        redis_url=backend.redis_url or None,
        redis_prefix=backend.redis_prefix,
        host="127.0.0.1",
        port=0,
    )
    # gc_freeze off: freezing the test process's heap at every node start would keep each
    # earlier test's garbage for good (tests/test_app_tuning.py covers it on its own).
    return replace(settings, jwt_secret=Secret(TEST_SECRET), **{"gc_freeze": False, **overrides})


@pytest.fixture
def settings_factory(backend: Backend, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> Settings:
        return make_settings(backend, tmp_path, **overrides)

    return make


@pytest.fixture
async def store(settings_factory: Any) -> AsyncIterator[Store]:
    """An open, migrated store on the test's back end (a module may extend it: a fixture
    named ``store`` that takes ``store``)."""
    s = open_store(settings_factory())
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()
