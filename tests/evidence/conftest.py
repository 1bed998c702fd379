"""Fixtures: a migrated store on each back end, and an evidence service over it."""

from __future__ import annotations

from typing import Any

import pytest

from chat.evidence.service import EvidenceService
from chat.fanout import LocalFanOut
from chat.store import Store


@pytest.fixture
async def evidence(settings_factory: Any, store: Store) -> EvidenceService:
    svc = EvidenceService(settings_factory(), store, LocalFanOut())
    await svc.start()
    return svc
