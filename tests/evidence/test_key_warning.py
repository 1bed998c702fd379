"""A PostgreSQL node without ``TSUNAGU_EVIDENCE_KEY_FILE`` warns at start-up: with several
nodes, each would sign with its own generated key and retire the others' (docs/disputes.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from chat.config import Settings
from chat.evidence import tree
from chat.evidence.keys import Signer
from chat.evidence.service import EvidenceService, key_path, warn_node_local_key
from chat.fanout import LocalFanOut

PG = "postgresql://tsunagu@db.invalid/tsunagu"


class _Store:
    db: Any = None


async def _start(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                 signer: Signer | None = None) -> EvidenceService:
    registered: list[str] = []

    async def register_key(db: Any, signer: Signer, at: int | None = None) -> bool:
        registered.append(signer.key_id)
        return True

    monkeypatch.setattr(tree, "register_key", register_key)
    svc = EvidenceService(settings, _Store(), LocalFanOut(), signer)  # type: ignore[arg-type]
    await svc.start()
    assert registered == [svc.signer.key_id]
    return svc


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "tsunagu.evidence" and r.levelno == logging.WARNING]


async def test_postgres_with_a_generated_key_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=str(tmp_path), database_url=PG)
    with caplog.at_level(logging.WARNING, logger="tsunagu.evidence"):
        await _start(settings, monkeypatch)
    [text] = _warnings(caplog)
    assert "TSUNAGU_EVIDENCE_KEY_FILE" in text
    assert str(key_path(settings)) in text and "generated now" in text
    assert key_path(settings).exists()  # still starts, with the generated key
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tsunagu.evidence"):
        await _start(settings, monkeypatch)  # the next start: the node-local key exists
    [text] = _warnings(caplog)
    assert "TSUNAGU_EVIDENCE_KEY_FILE" in text and "existing" in text


@pytest.mark.parametrize("case", ["key_file", "sqlite"])
async def test_no_warning_with_a_key_file_or_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    if case == "key_file":
        settings = Settings(data_dir=str(tmp_path), database_url=PG,
                            evidence_key_file=str(tmp_path / "shared.pem"))
    else:
        settings = Settings(data_dir=str(tmp_path))
    assert warn_node_local_key(settings) is False
    with caplog.at_level(logging.WARNING, logger="tsunagu.evidence"):
        await _start(settings, monkeypatch)
    assert _warnings(caplog) == []


async def test_last_signed_checkpoint_survives_an_unwritable_key_dir(
        store: Any, evidence: Any, tmp_path: Any, caplog: Any) -> None:
    """The node's record of what it signed is kept beside the key; where it cannot be
    written, signing goes on (memory only) and an error says so."""
    from chat.evidence.tree import TreeState

    await store.create_thread(id="t1", kind="contract", title="t", stage="in_progress",
                              ref={}, participants=[("a", "client")], at=1)
    cp = await evidence.checkpoint()
    assert evidence.tree_state.path is not None and evidence.tree_state.path.exists()
    assert TreeState.load(evidence.tree_state.path).witness == cp
    evidence.tree_state.path = tmp_path / "missing-dir" / "x.json"
    await store.create_thread(id="t2", kind="contract", title="t", stage="in_progress",
                              ref={}, participants=[("a", "client")], at=2)
    with caplog.at_level(logging.ERROR, "tsunagu.evidence"):
        cp2 = await evidence.checkpoint()
    assert cp2.size == 2 and evidence.tree_state.witness == cp2
    assert evidence.tree_state.path is None and "memory only" in caplog.text
