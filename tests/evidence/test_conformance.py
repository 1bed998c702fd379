"""One conformance suite for both back ends: the log records every write, exports verify,
tampering with stored rows is detected with the right reason, retention and legal holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chat.errors import BadRequest
from chat.evidence import bundle, tree
from chat.evidence.keys import Signer, load_public_key, public_pem
from chat.evidence.log import record
from chat.evidence.retention import DAY_US, candidates, purge
from chat.evidence.service import EvidenceService
from chat.models import NewMessage, now_us
from chat.store import Store

T = "t_ev1"


async def make_thread(store: Store, tid: str = T, *, at: int | None = None, n: int = 6) -> None:
    at = at or now_us()
    await store.create_thread(id=tid, kind="contract", title="ロゴ制作", stage="in_progress",
                              ref={"job": 1}, participants=[("alice", "client"),
                                                            ("bob", "worker")], at=at)
    batch = [NewMessage(thread=tid, sender="alice" if i % 2 else "bob", kind="user",
                        body=f"メッセージ {i}", client_msg_id=f"c{i}", created_at=at + i)
             for i in range(1, n + 1)]
    results = await store.append_batch(batch)
    assert all(not isinstance(r, Exception) for r in results)


async def export(ev: EvidenceService, tid: str = T) -> dict[str, bytes]:
    return await ev.bundle_files(tid, dispute=None, exported_by="staff1")


def key(ev: EvidenceService) -> Any:
    return load_public_key(public_pem(ev.signer.public).encode())


async def test_every_write_is_logged_in_order(store: Store, evidence: EvidenceService) -> None:
    await make_thread(store, n=2)
    [m1, m2] = await store.history(T)
    await store.edit_message(T, m1.id, actor="bob", body="直しました", masked=None,
                             moderation=None, at=now_us())
    await store.delete_message(T, m2.id, actor="alice", at=now_us())
    await store.set_read(T, "alice", 2)
    await store.set_read(T, "alice", 1)  # not an advance: not logged
    await store.thank(T, m1.id, "alice", at=now_us())
    await store.thank(T, m1.id, "alice", at=now_us())  # repeated: not logged
    await store.add_participant(T, "carol", "observer", at=now_us())
    await store.update_thread(T, stage="delivered", at=now_us())
    await record(store.db, T, "held", "moderation", {"body": "電話番号 090...", "score": 0.93},
                 now_us())
    async with store.db.transaction() as tx:
        await record(tx, T, "moderation_decision", "mod1", {"decision": "uphold"}, now_us())
    entries = await evidence.entries(T)
    assert [e.kind for e in entries] == [
        "thread_created", "message", "message", "edit", "delete", "read", "thanks",
        "participant_added", "thread_updated", "held", "moderation_decision"]
    assert [e.seq for e in entries] == list(range(1, 12))
    assert entries[3].payload == {"message": m1.id, "rev": 1, "body": "直しました",
                                  "previous": {"rev": 0, "body": "メッセージ 1"}}
    assert entries[4].payload is not None and entries[4].payload["previous"]["body"] == "メッセージ 2"
    assert entries[9].payload == {"body": "電話番号 090...", "score": 0.93}
    files = await export(evidence)
    rep = bundle.verify_bundle(files, key(evidence))
    assert rep.ok, rep.problems
    assert rep.entries == 11


async def test_log_rolls_back_with_the_write(store: Store, evidence: EvidenceService) -> None:
    await make_thread(store, n=1)
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as tx:
            await record(tx, T, "held", "moderation", {"x": 1}, now_us())
            raise RuntimeError("abort")
    assert [e.kind for e in await evidence.entries(T)] == ["thread_created", "message"]


async def test_checkpoints_commit_only_moved_heads(store: Store, evidence: EvidenceService
                                                   ) -> None:
    await make_thread(store, n=2)
    await make_thread(store, "t_other", n=1)
    cp1 = await evidence.checkpoint()
    assert cp1.size == 2
    assert (await evidence.checkpoint()).body == cp1.body  # nothing moved: unchanged
    await record(store.db, T, "read", "bob", {"seq": 2}, now_us())
    cp2 = await evidence.checkpoint()
    assert cp2.size == 3
    proofs = await tree.thread_proofs(store.db, T, cp2)
    assert [p["seq"] for p in proofs] == [3, 4]
    assert bundle.verify_bundle(await export(evidence), key(evidence)).ok


async def test_key_rotation_is_recorded_and_old_bundles_verify(
    store: Store, evidence: EvidenceService, tmp_path: Path
) -> None:
    await make_thread(store, n=2)
    old_files = await export(evidence)
    old_key = key(evidence)
    new = EvidenceService(evidence.settings, store, evidence.fanout,
                          Signer.load_or_create(tmp_path / "rotated.pem"))
    await new.start()
    keys = await tree.public_keys(store.db)
    assert [k["key_id"] for k in keys] == [evidence.signer.key_id, new.signer.key_id]
    assert keys[0]["retired_at"] is not None and keys[1]["retired_at"] is None
    await record(store.db, T, "read", "bob", {"seq": 2}, now_us())
    new_files = await export(new)
    assert bundle.verify_bundle(old_files, old_key).ok
    assert bundle.verify_bundle(new_files, key(new)).ok
    rep = bundle.verify_bundle(new_files, old_key)
    assert rep.kinds() == {"key"}
    # The node left with the retired key refuses to sign anything new.
    with pytest.raises(tree.KeyRetired):
        await evidence.checkpoint()
    with pytest.raises(tree.KeyRetired):
        await evidence.bundle_files(T, dispute=None, exported_by="staff1")


# --- tampering with the stored rows
async def tampered(store: Store, evidence: EvidenceService, *sql: tuple[str, tuple[Any, ...]]
                   ) -> bundle.Report:
    await make_thread(store)
    await evidence.checkpoint()
    assert bundle.verify_bundle(await export(evidence), key(evidence)).ok
    for stmt, args in sql:
        await store.db.execute(stmt, *args)
    return bundle.verify_bundle(await export(evidence), key(evidence))


def problems(rep: bundle.Report) -> list[tuple[str, int | None]]:
    return [(p.kind, p.seq) for p in rep.problems]


async def test_changed_body_is_detected(store: Store, evidence: EvidenceService) -> None:
    rep = await tampered(store, evidence, (
        "UPDATE thread_log SET payload = replace(payload, 'メッセージ 3', '支払い済み') "
        "WHERE thread_id = ? AND log_seq = 4", (T,)))
    assert problems(rep) == [("altered", 4)]


async def test_nulled_body_is_not_taken_for_a_purge(store: Store,
                                                    evidence: EvidenceService) -> None:
    rep = await tampered(store, evidence, (
        "UPDATE thread_log SET payload = NULL WHERE thread_id = ? AND log_seq = 4", (T,)))
    assert problems(rep) == [("altered", 4)]
    assert "no purge record" in rep.problems[0].detail


async def test_deleted_last_row_is_removed_not_head(store: Store,
                                                     evidence: EvidenceService) -> None:
    rep = await tampered(store, evidence,
                         ("DELETE FROM thread_log WHERE thread_id = ? AND log_seq = 7", (T,)))
    assert problems(rep) == [("removed", 7)]


async def test_appended_junk_row_is_inserted_not_altered(store: Store,
                                                         evidence: EvidenceService) -> None:
    rep = await tampered(
        store, evidence,
        ("INSERT INTO thread_log (thread_id, log_seq, kind, actor, at, payload, content_hash, "
         "prev_hash, hash) VALUES (?, 8, 'message', 'bob', 1, '{\"body\":\"納品済み\"}', ?, ?, ?)",
         (T, "0" * 64, "1" * 64, "2" * 64)),
        ("UPDATE threads SET log_seq = 8, log_head = ? WHERE id = ?", ("2" * 64, T)),
        ("INSERT INTO evidence_pending (thread_id) VALUES (?)", (T,)))
    assert problems(rep) == [("inserted", 8)]


async def test_read_log_sees_a_rehashed_forgery(store: Store, evidence: EvidenceService) -> None:
    """The per-thread chain of a consistently rehashed forgery is intact; its committed
    heads are not, and read_log says so."""
    await make_thread(store)
    d, _ = await evidence.open("staff1", T, "claim")
    assert (await evidence.read_log("staff1", d.id, "r"))["chain_ok"]
    await rebuild_history(store, evidence, wipe=False)
    out = await evidence.read_log("staff1", d.id, "r")
    assert not out["chain_ok"]
    assert {(p["kind"], p["seq"]) for p in out["problems"]} == {("head", 8)}


async def test_deleted_row_is_detected(store: Store, evidence: EvidenceService) -> None:
    rep = await tampered(store, evidence,
                         ("DELETE FROM thread_log WHERE thread_id = ? AND log_seq = 3", (T,)))
    assert problems(rep)[0] == ("removed", 3)


async def test_swapped_rows_are_detected(store: Store, evidence: EvidenceService) -> None:
    swap = "UPDATE thread_log SET log_seq = ? WHERE thread_id = ? AND log_seq = ?"
    rep = await tampered(store, evidence, (swap, (-1, T, 3)), (swap, (3, T, 5)),
                         (swap, (5, T, -1)))
    assert problems(rep) == [("reordered", 3)]
    assert "swapped" in rep.problems[0].detail


async def test_inserted_row_is_detected(store: Store, evidence: EvidenceService) -> None:
    rep = await tampered(
        store, evidence,
        ("UPDATE thread_log SET log_seq = -log_seq - 1 WHERE thread_id = ? AND log_seq >= 3", (T,)),
        ("UPDATE thread_log SET log_seq = -log_seq WHERE thread_id = ? AND log_seq < 0", (T,)),
        ("INSERT INTO thread_log (thread_id, log_seq, kind, actor, at, payload, content_hash, "
         "prev_hash, hash) VALUES (?, 3, 'message', 'bob', 1, '{\"body\":\"納品済み\"}', ?, ?, ?)",
         (T, "0" * 64, "1" * 64, "2" * 64)))
    assert problems(rep)[0] == ("inserted", 3)


async def test_rehashed_forgery_is_caught_by_the_checkpoint(store: Store,
                                                            evidence: EvidenceService) -> None:
    """An insider who rewrites the whole chain consistently still fails the signed head."""
    await make_thread(store)
    await evidence.checkpoint()
    rows = await evidence.entries(T)
    from chat.evidence.chain import Pending, extend

    forged, _ = extend({}, [Pending(T, e.kind, e.actor, {**(e.payload or {}), "body": "改ざん"},
                                    e.at) for e in rows])
    await store.db.execute("DELETE FROM thread_log WHERE thread_id = ?", T)
    await store.db.executemany(
        "INSERT INTO thread_log (thread_id, log_seq, kind, actor, at, payload, content_hash, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [e.row() for e in forged])
    rep = bundle.verify_bundle(await export(evidence), key(evidence))
    assert problems(rep) == [("head", len(rows))]


async def test_altered_bundle_files_are_named(store: Store, evidence: EvidenceService) -> None:
    await make_thread(store)
    files = await export(evidence)
    cp = files["checkpoint.json"].replace(b'"size"', b'"size" ', 1)
    rep = bundle.verify_bundle({**files, "checkpoint.json": cp.replace(b"1", b"2", 1)},
                               key(evidence))
    assert "signature" in rep.kinds() or "inclusion" in rep.kinds()
    assert "manifest" in rep.kinds()


# --- retention
async def test_purge_keeps_held_threads_and_purged_chains_verify(
    store: Store, evidence: EvidenceService
) -> None:
    long_ago = now_us() - 3000 * DAY_US
    for tid in ("t_old", "t_held", "t_open"):
        await make_thread(store, tid, at=long_ago, n=3)
    for tid in ("t_old", "t_held"):
        await store.update_thread(tid, stage="closed", at=long_ago + 10)
    await make_thread(store, "t_recent", n=2)
    await store.update_thread("t_recent", stage="closed", at=now_us())
    d, _ = await evidence.open("staff1", "t_held", "申し立て / claim #12")
    dry = await candidates(store.db, now=now_us(), retention_days=2557)
    assert [c.thread_id for c in dry] == ["t_old"]
    done = await purge(store.db, now=now_us(), retention_days=2557)
    assert [c.thread_id for c in done] == ["t_old"]
    assert await candidates(store.db, now=now_us(), retention_days=2557) == []
    assert dry[0].entries == 3 and len(dry[0].messages) == 3 and dry[0].revisions == 0
    # Purged: message content gone, title and participants kept, chain still verifies.
    old = await evidence.entries("t_old")
    assert [e.kind for e in old if e.payload is None] == ["message"] * 3
    assert old[0].payload is not None and old[0].payload["title"] == "ロゴ制作"
    assert old[-1].kind == "purged"
    assert [m.body for m in await store.history("t_old")] == ["", "", ""]
    assert bundle.verify_bundle(await export(evidence, "t_old"), key(evidence)).ok
    purges = await store.db.fetch("SELECT thread_id, entries, messages FROM evidence_purges")
    assert purges == [("t_old", 3, 3)]
    assert [(c.entries, c.messages, c.revisions) for c in done] == [
        (dry[0].entries, dry[0].messages, dry[0].revisions)]
    # Held: untouched; after the dispute closes it becomes purgeable.
    assert [m.body for m in await store.history("t_held")] == [
        "メッセージ 1", "メッセージ 2", "メッセージ 3"]
    await evidence.close("staff1", d.id, "resolved", "refund")
    # the dispute itself was activity, but the thread's last message is old
    assert [c.thread_id for c in await candidates(store.db, now=now_us(),
                                                  retention_days=2557)] == ["t_held"]


async def test_a_second_purge_keeps_the_first_purge_record(store: Store,
                                                           evidence: EvidenceService) -> None:
    """Earlier purge records, titles and participants survive later purges; the revisions
    counted by the dry run are the ones blanked."""
    long_ago = now_us() - 3000 * DAY_US
    await make_thread(store, "t_old", at=long_ago, n=2)
    [m1, _] = await store.history("t_old")
    await store.edit_message("t_old", m1.id, actor="bob", body="直し", masked=None,
                             moderation=None, at=long_ago + 5)
    await store.add_participant("t_old", "carol", "observer", at=long_ago + 6)
    await store.update_thread("t_old", stage="closed", at=long_ago + 10)
    dry = await candidates(store.db, now=now_us(), retention_days=2557)
    [first] = await purge(store.db, now=now_us(), retention_days=2557)
    assert (first.entries, first.messages, first.revisions) == (
        dry[0].entries, dry[0].messages, dry[0].revisions)
    assert first.revisions >= 1
    # New content after the purge (a late moderation finding), purged again.
    await record(store.db, "t_old", "moderation_finding", "moderation", {"x": "電話"},
                 now_us())
    await store.db.execute("UPDATE threads SET updated_at = ? WHERE id = ?", long_ago + 20,
                           "t_old")
    [second] = await purge(store.db, now=now_us(), retention_days=2557)
    assert second.entries == 1
    entries = await evidence.entries("t_old")
    kept = {e.kind for e in entries if e.payload is not None}
    assert {"thread_created", "participant_added", "thread_updated", "purged"} <= kept
    assert sum(e.kind == "purged" and e.payload is not None for e in entries) == 2
    assert bundle.verify_bundle(await export(evidence, "t_old"), key(evidence)).ok


async def test_staff_reads_need_a_reason_and_are_audited(store: Store,
                                                         evidence: EvidenceService) -> None:
    await make_thread(store, n=1)
    d, notice = await evidence.open("staff1", T, "claim #1")
    assert notice["checkpoint"]["size"] >= 1 and notice["proof"]["seq"] == 3
    with pytest.raises(BadRequest):
        await evidence.read_log("staff1", d.id, "")
    out = await evidence.read_log("staff2", d.id, "review")
    assert out["chain_ok"] and [e["kind"] for e in out["entries"]][-1] == "dispute_opened"
    await evidence.export("staff2", d.id, "for the arbitrator")
    rows = await evidence.access_log("staff1", d.id, "audit")
    assert [(r["staff"], r["action"], r["reason"]) for r in rows] == [
        ("staff1", "open", "claim #1"), ("staff2", "read_log", "review"),
        ("staff2", "export", "for the arbitrator"), ("staff1", "read_access_log", "audit")]


async def test_concurrent_appends_keep_one_gapless_chain(store: Store,
                                                         evidence: EvidenceService) -> None:
    import asyncio

    await make_thread(store, n=1)

    async def mod(i: int) -> None:
        async with store.db.transaction() as tx:
            await record(tx, T, "moderation_finding", "moderation", {"i": i}, now_us())

    async def send(i: int) -> None:
        await store.append_batch([NewMessage(thread=T, sender="alice", kind="user",
                                             body=f"並行 {i}")])

    await asyncio.gather(*(f(i) for i in range(15) for f in (mod, send)))
    entries = await evidence.entries(T)
    assert [e.seq for e in entries] == list(range(1, 33))
    assert bundle.verify_bundle(await export(evidence), key(evidence)).ok


async def test_record_on_a_missing_thread_is_refused(store: Store) -> None:
    from chat.errors import NotFound

    with pytest.raises(NotFound):
        await record(store.db, "t_missing", "held", "moderation", {}, now_us())


async def test_bundle_extends_the_checkpoint_the_parties_kept(store: Store,
                                                              evidence: EvidenceService) -> None:
    await make_thread(store)
    _, kept = await evidence.open("staff1", T, "claim")
    await make_thread(store, "t_later", n=3)
    await record(store.db, T, "moderation_decision", "mod1", {"decision": "keep"}, now_us())
    files = await export(evidence)
    assert b'"from": []' not in files["consistency.json"]
    rep = bundle.verify_bundle(files, key(evidence), kept)
    assert rep.ok, rep.problems


async def rebuild_history(store: Store, evidence: EvidenceService, *, wipe: bool) -> None:
    """An insider with database access rewrites the thread's chain and, with ``wipe``, the
    whole tree (leaves, checkpoints, receipts), so that the next commit re-commits it."""
    from chat.evidence.chain import Pending, extend

    rows = await evidence.entries(T)
    forged, heads = extend({}, [Pending(T, e.kind, e.actor, {**(e.payload or {}), "body": "改ざん"},
                                        e.at) for e in rows])
    db = store.db
    await db.execute("DELETE FROM thread_log WHERE thread_id = ?", T)
    await db.executemany(
        "INSERT INTO thread_log (thread_id, log_seq, kind, actor, at, payload, content_hash, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [e.row() for e in forged])
    await db.execute("UPDATE threads SET log_head = ? WHERE id = ?", heads[T][1], T)
    if not wipe:
        return
    for stmt in ("DELETE FROM evidence_leaves", "DELETE FROM evidence_checkpoints",
                 "DELETE FROM evidence_receipts", "UPDATE evidence_tree SET size = 0, frontier = '[]'",
                 "UPDATE threads SET log_committed = 0",
                 "INSERT INTO evidence_pending (thread_id) SELECT id FROM threads"):
        await db.execute(stmt)


async def test_service_refuses_to_sign_a_rebuilt_tree(store: Store,
                                                      evidence: EvidenceService) -> None:
    """Wiping the tree and checkpoints and re-committing a rewritten history: the node
    remembers what it signed (outside the database) and refuses; read_log reports it."""
    await make_thread(store)
    d, _ = await evidence.open("staff1", T, "claim")
    await rebuild_history(store, evidence, wipe=True)
    with pytest.raises(tree.TreeTampered, match=r"removed|rewritten"):
        await evidence.export("staff1", d.id, "for the arbitrator")
    assert await store.db.fetchval("SELECT count(*) FROM evidence_checkpoints") == 0
    out = await evidence.read_log("staff1", d.id, "review")
    assert not out["chain_ok"]
    assert "consistency" in {p["kind"] for p in out["problems"]}
    # A restarted node (same key file) still has its last signed checkpoint.
    again = EvidenceService(evidence.settings, store, evidence.fanout)
    with pytest.raises(tree.TreeTampered):
        await again.checkpoint()


async def test_service_refuses_to_sign_rewritten_leaves(store: Store,
                                                        evidence: EvidenceService) -> None:
    """Rewriting the committed leaves (and the frontier) in place, keeping the stored
    checkpoints: the latest stored checkpoint's root no longer follows; nothing is signed."""
    from chat.evidence import merkle

    await make_thread(store)
    await make_thread(store, "t_other", n=2)
    cp = await evidence.checkpoint()
    await rebuild_history(store, evidence, wipe=False)
    head = (await evidence.entries(T))[-1]
    db = store.db
    lh = merkle.leaf_hash(tree.leaf_data(T, head.seq, head.hash)).hex()
    await db.execute("UPDATE evidence_leaves SET head = ?, leaf_hash = ? WHERE thread_id = ?",
                     head.hash, lh, T)
    frontier: merkle.Frontier = []
    for (h,) in await db.fetch("SELECT leaf_hash FROM evidence_leaves ORDER BY idx"):
        frontier = merkle.frontier_append(frontier, bytes.fromhex(h))
    await db.execute("UPDATE evidence_tree SET frontier = ?",
                     "[" + ",".join(f'[{h},"{x.hex()}"]' for h, x in frontier) + "]")
    await db.execute("INSERT INTO evidence_pending (thread_id) VALUES (?)", "t_other")
    await db.execute("UPDATE threads SET log_committed = 0 WHERE id = ?", "t_other")
    fresh = EvidenceService(evidence.settings, store, evidence.fanout, evidence.signer)
    with pytest.raises(tree.TreeTampered, match="rewritten"):
        await fresh.checkpoint()  # no memory of its own: the stored checkpoint suffices
    assert (await tree.latest(db)) == cp


async def test_service_refuses_to_commit_a_head_over_a_rewritten_chain(
        store: Store, evidence: EvidenceService) -> None:
    """The rewritten chain made longer and marked for commit: its last committed head is no
    longer the stored entry, so the new head does not extend it; nothing is signed."""
    await make_thread(store)
    cp = await evidence.checkpoint()
    await rebuild_history(store, evidence, wipe=False)
    await record(store.db, T, "moderation_decision", "mod1", {"decision": "keep"}, now_us())
    fresh = EvidenceService(evidence.settings, store, evidence.fanout, evidence.signer)
    with pytest.raises(tree.TreeTampered, match=r"log_seq 7 was changed"):
        await fresh.checkpoint()
    assert await tree.latest(store.db) == cp


async def test_insider_with_the_key_rebuilding_history_is_caught_by_the_kept_checkpoint(
    store: Store, evidence: EvidenceService
) -> None:
    """Only an insider who also holds the signing key (and not the node's memory of what it
    signed) gets a rebuilt history signed; the checkpoint a party kept exposes it."""
    await make_thread(store)
    _, kept = await evidence.open("staff1", T, "claim")
    await rebuild_history(store, evidence, wipe=True)
    insider = EvidenceService(evidence.settings, store, evidence.fanout, evidence.signer)
    files = await export(insider)
    rep = bundle.verify_bundle(files, key(evidence), kept)  # not with what bob kept
    assert "consistency" in rep.kinds()


async def test_record_sync_on_the_sqlite_writer_thread(store: Store,
                                                       evidence: EvidenceService) -> None:
    from chat.evidence.log import record_sync
    from chat.store.db import SqliteDb

    if not isinstance(store.db, SqliteDb):
        pytest.skip("the sync variant is for the SQLite writer thread")
    await make_thread(store, n=1)
    at = now_us()
    entry = await store.db.run_write(
        lambda c: record_sync(c, T, "blocked", "moderation", {"body": "口座番号", "rule": "bank"},
                              at))
    assert entry.seq == 3 and entry.kind == "blocked"
    assert [e.hash for e in await evidence.entries(T)][-1] == entry.hash
    assert bundle.verify_bundle(await export(evidence), key(evidence)).ok
