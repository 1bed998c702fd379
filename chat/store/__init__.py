"""Storage: one interface (:class:`~chat.store.base.Store`), two back ends.

:func:`open_store` picks the back end from the database URL: ``sqlite:///PATH`` (the embedded
default) or ``postgresql://...`` (production, through an asyncpg pool).
"""

from __future__ import annotations

from ..config import Settings
from .base import Store


def open_store(settings: Settings, url: str | None = None) -> Store:
    """Create (not yet open) the store for ``url`` (default: the configured database)."""
    url = url or settings.effective_database_url
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :], synchronous=settings.sqlite_synchronous,
                           checkpoint_interval=settings.sqlite_checkpoint_interval_ms / 1000)
    from .postgres import PostgresStore

    return PostgresStore(url, min_size=settings.pg_pool_min, max_size=settings.pg_pool_max)


__all__ = ["Store", "open_store"]
