"""Refusing to sign must not be lost, brick the service or raise false alarms: the
last-checkpoint file in the data dir, key rotation races and clock skew, an audited
acceptance of a database restore, read_log in one snapshot, incremental verification."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chat.evidence import tree
from chat.evidence.cli import accept_restore
from chat.evidence.keys import Signer
from chat.evidence.service import EvidenceService, witness_path
from chat.fanout import LocalFanOut
from chat.models import now_us
from chat.store import Store

MINUTE = 60_000_000


async def thread(store: Store, tid: str, at: int = 1) -> None:
    await store.create_thread(id=tid, kind="contract", title="t", stage="in_progress",
                              ref={}, participants=[("a", "client")], at=at)


async def test_last_checkpoint_lives_in_the_data_dir_not_beside_the_key(
        settings_factory: Any, store: Store, tmp_path: Path) -> None:
    """The reference deployment's key directory (/etc/tsunagu) is read-only: the node's
    last signed checkpoint is kept in <data_dir>, and a restart finds it there."""
    key_dir = tmp_path / "etc"
    settings = settings_factory(evidence_key_file=str(key_dir / "evidence.pem"))
    os.makedirs(settings.data_dir, exist_ok=True)
    svc = EvidenceService(settings, store, LocalFanOut())
    await svc.start()
    await thread(store, "t1")
    cp = await svc.checkpoint()
    path = Path(settings.data_dir) / "evidence-last-checkpoint.json"
    assert witness_path(settings) == path and svc.tree_state.path == path
    assert path.exists() and sorted(p.name for p in key_dir.iterdir()) == ["evidence.pem"]
    again = EvidenceService(settings, store, LocalFanOut())
    assert again.tree_state.witness == cp and again.tree_state.base is not None


async def test_a_file_kept_beside_the_key_by_an_earlier_version_is_still_read(
        settings_factory: Any, store: Store, tmp_path: Path) -> None:
    settings = settings_factory(evidence_key_file=str(tmp_path / "k" / "evidence.pem"))
    os.makedirs(settings.data_dir, exist_ok=True)
    svc = EvidenceService(settings, store, LocalFanOut())
    await svc.start()
    await thread(store, "t1")
    cp = await svc.checkpoint()
    witness_path(settings).rename(tmp_path / "k" / "evidence.pem.last-checkpoint.json")
    assert EvidenceService(settings, store, LocalFanOut()).tree_state.witness == cp


async def test_registering_a_key_waits_for_a_commit_signing_with_the_old_one(
        settings_factory: Any, store: Store, evidence: EvidenceService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Node B is committing (its key row locked) when node A registers a new key: the
    retirement comes after B's checkpoint, so the next commits still verify."""
    await thread(store, "t1")
    inside, release = asyncio.Event(), asyncio.Event()
    real = tree.verify_stored

    async def paused(*a: Any, **k: Any) -> Any:
        inside.set()
        await release.wait()
        return await real(*a, **k)

    monkeypatch.setattr(tree, "verify_stored", paused)
    b = asyncio.create_task(evidence.checkpoint())
    await asyncio.wait_for(inside.wait(), 10)
    a = EvidenceService(evidence.settings, store, LocalFanOut(),
                        Signer(Ed25519PrivateKey.generate()))
    reg = asyncio.create_task(a.start())
    try:
        await asyncio.sleep(0.3)
        # blocked on B's key row lock (PostgreSQL) or the single writer (SQLite)
        assert not reg.done()
    finally:
        release.set()
        cp = await b
        await reg
    monkeypatch.setattr(tree, "verify_stored", real)
    keys = {k["key_id"]: k for k in await tree.public_keys(store.db)}
    assert keys[evidence.signer.key_id]["retired_at"] >= cp.body["at"]
    await thread(store, "t2")
    assert (await a.checkpoint()).size == 2


@pytest.mark.parametrize("late_s", [10, 3600])
async def test_a_checkpoint_signed_after_its_key_retired_does_not_brick_signing(
        store: Store, evidence: EvidenceService, caplog: pytest.LogCaptureFixture,
        late_s: int) -> None:
    """Node B's clock is ahead: its checkpoint's ``at`` is after the old key's retirement.
    Within the grace it is fine; beyond, it is reported but every node still signs."""
    await thread(store, "t1")
    d, _ = await evidence.open("staff1", "t1", "claim")
    await thread(store, "t2")
    retired_at = now_us()
    await tree.commit(store.db, evidence.signer, retired_at + late_s * 1_000_000,
                      evidence.tree_state)
    a = EvidenceService(evidence.settings, store, LocalFanOut(),
                        Signer(Ed25519PrivateKey.generate()))
    assert await tree.register_key(store.db, a.signer, retired_at)
    late = late_s * 1_000_000 > tree.RETIRED_GRACE_US
    out = await a.read_log("staff1", d.id, "review")
    assert out["chain_ok"], out["problems"]
    assert any("after its key" in w["detail"] for w in out["warnings"]) == late
    await thread(store, "t3")
    with caplog.at_level(logging.ERROR, "tsunagu.evidence"):
        cp = await a.checkpoint()
    assert cp.size == 3
    assert ("after its key" in caplog.text) == late


async def restored(store: Store, evidence: EvidenceService) -> tuple[tree.Checkpoint, Any]:
    """Sign size 1, then size 2; put the database back to size 1 (a point-in-time
    restore). Returns the size-1 checkpoint and the refusal."""
    await thread(store, "t1")
    cp1 = await evidence.checkpoint()
    tree_row = await store.db.fetchrow("SELECT size, frontier FROM evidence_tree")
    await thread(store, "t2")
    await evidence.checkpoint()
    db = store.db
    await db.execute("DELETE FROM evidence_leaves WHERE idx >= 1")
    await db.execute("DELETE FROM evidence_checkpoints WHERE size > 1")
    await db.execute("UPDATE evidence_tree SET size = ?, frontier = ?", *tree_row)
    await db.execute("INSERT INTO evidence_pending (thread_id) VALUES ('t2')")
    await db.execute("UPDATE threads SET log_committed = 0 WHERE id = 't2'")
    again = EvidenceService(evidence.settings, store, LocalFanOut())
    with pytest.raises(tree.TreeTampered, match="removed") as exc:
        await again.checkpoint()
    return cp1, exc.value


async def test_accept_restore_is_audited_and_lets_the_node_sign_again(
        store: Store, evidence: EvidenceService) -> None:
    await restored(store, evidence)
    path = witness_path(evidence.settings)
    at = now_us()
    code, text = await accept_restore(store.db, path, staff="ops1", reason="PITR ticket 42",
                                      at=at)
    assert code == 0 and "size 2" in text and "size 1" in text, text
    assert not path.exists() and path.with_name(f"{path.name}.superseded-{at}").exists()
    [row] = await store.db.fetch(
        "SELECT staff, action, thread_id, reason FROM evidence_access "
        "WHERE action = 'accept_restore'")
    assert row[0] == "ops1" and row[2] == "*" and "PITR ticket 42" in row[3]
    restarted = EvidenceService(evidence.settings, store, LocalFanOut())
    await restarted.start()
    assert (await restarted.checkpoint()).size == 2
    # Nothing left to accept now.
    code, text = await accept_restore(store.db, path, staff="ops1", reason="again", at=at + 1)
    assert code == 0 and "nothing to accept" in text


async def test_accept_restore_refuses_an_inconsistent_database(
        store: Store, evidence: EvidenceService) -> None:
    await restored(store, evidence)
    await store.db.execute("UPDATE evidence_leaves SET leaf_hash = ? WHERE idx = 0", "00" * 32)
    path = witness_path(evidence.settings)
    code, text = await accept_restore(store.db, path, staff="ops1", reason="r", at=now_us())
    assert code == 1 and "does not verify on its own" in text and path.exists()
    assert await store.db.fetchval(
        "SELECT count(*) FROM evidence_access WHERE action = 'accept_restore'") == 0


async def test_read_log_is_no_false_alarm_under_a_concurrent_commit(
        store: Store, evidence: EvidenceService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread appended and committed while read_log reads: no problem reported."""
    await thread(store, "t1")
    d, _ = await evidence.open("staff1", "t1", "claim")
    real = tree.latest
    tasks: list[asyncio.Task[Any]] = []

    async def concurrent() -> None:
        await thread(store, "t9")
        await evidence.checkpoint()

    async def racy(db: Any) -> Any:
        if not tasks:  # read_log's first look at the checkpoints: a commit runs now
            tasks.append(asyncio.create_task(concurrent()))
            try:
                await asyncio.wait_for(asyncio.shield(tasks[0]), 0.5)
            except TimeoutError:
                pass  # SQLite: the single writer waits for read_log's snapshot
        return await real(db)

    monkeypatch.setattr(tree, "latest", racy)
    out = await evidence.read_log("staff1", d.id, "review")
    await tasks[0]
    assert out["chain_ok"], out["problems"]


async def test_verification_after_a_restart_starts_at_the_saved_checkpoint(
        store: Store, evidence: EvidenceService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The saved frontier lets a restarted node verify only the leaves added since its last
    signed checkpoint, a chunk at a time; a rewrite among them is still refused."""
    for i in range(5):
        await thread(store, f"t{i}")
    await evidence.checkpoint()
    path = witness_path(evidence.settings)
    saved = path.read_bytes()  # this node signed size 5; another node then signs size 7
    await thread(store, "t5")
    await thread(store, "t6")
    await evidence.checkpoint()
    path.write_bytes(saved)
    monkeypatch.setattr(tree, "VERIFY_CHUNK", 1)
    reads: list[tuple[Any, ...]] = []
    real = tree.verify_stored

    async def spy(db: Any, *a: Any, **k: Any) -> Any:
        class Spy:
            def __getattr__(self, name: str) -> Any:
                return getattr(db, name)

            async def fetch(self, sql: str, *args: Any) -> Any:
                rows = await db.fetch(sql, *args)
                if "FROM evidence_leaves WHERE idx >=" in sql:
                    reads.append((args[0], len(rows)))
                return rows

            async def fetchrow(self, sql: str, *args: Any) -> Any:
                rows = await self.fetch(sql, *args)
                return rows[0] if rows else None

        return await real(Spy(), *a, **k)

    monkeypatch.setattr(tree, "verify_stored", spy)
    restarted = EvidenceService(evidence.settings, store, LocalFanOut())
    assert restarted.tree_state.witness is not None
    assert restarted.tree_state.witness.size == 5
    await thread(store, "t7")
    assert (await restarted.checkpoint()).size == 8
    assert [r[0] for r in reads] == [5, 6] and all(n == 1 for _, n in reads)
    # A leaf after the saved checkpoint rewritten: still refused after a restart.
    path.write_bytes(saved)
    await thread(store, "t8")
    await store.db.execute("UPDATE evidence_leaves SET leaf_hash = ? WHERE idx = 6", "00" * 32)
    again = EvidenceService(evidence.settings, store, LocalFanOut())
    with pytest.raises(tree.TreeTampered):
        await again.checkpoint()
