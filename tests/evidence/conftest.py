"""Fixtures: a migrated store on each back end, and an evidence service over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat.evidence.service import EvidenceService
from chat.fanout import LocalFanOut
from chat.store import Store, open_store


@pytest.fixture
async def store(settings_factory: Any) -> AsyncIterator[Store]:
    s = open_store(settings_factory())
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def evidence(settings_factory: Any, store: Store) -> EvidenceService:
    svc = EvidenceService(settings_factory(), store, LocalFanOut())
    await svc.start()
    return svc
