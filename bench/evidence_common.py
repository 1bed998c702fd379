"""Shared set-up for the evidence benchmarks: a fresh store on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from chat.config import load_settings
from chat.store import Store, open_store

PG_ADMIN = os.environ.get("TSUNAGU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def fresh_store(backend: str, *, synchronous: str = "FULL") -> AsyncIterator[Store]:
    import asyncpg

    with tempfile.TemporaryDirectory() as tmp:
        name = ""
        if backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            name = f"tsunagu_b_{secrets.token_hex(6)}"
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
        settings = load_settings(env={}, data_dir=tmp, database_url=url,
                                 sqlite_synchronous=synchronous)
        store = open_store(settings)
        await store.open()
        await store.migrate()
        try:
            yield store
        finally:
            await store.close()
            if name:
                conn = await asyncpg.connect(PG_ADMIN)
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()
