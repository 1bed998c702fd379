"""One conformance suite for the storage interface, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chat.commit import GroupCommitter
from chat.config import load_settings
from chat.errors import Conflict, NotFound
from chat.models import Appended, NewMessage, Thread
from chat.store import Store, open_store
from chat.store import postgres as postgres_store
from chat.store.schema import all_migrations
from chat.store.sqlite import WRITER_AUTOCHECKPOINT, SQLiteStore
from tests.conftest import Backend, create_pg_database, drop_pg_database, require_servers

T0 = 1_700_000_000_000_000  # a fixed time, in microseconds


async def make_thread(store: Store, tid: str = "t1", *, at: int = T0,
                      members: tuple[tuple[str, str], ...] = (("alice", "client"),
                                                              ("bob", "worker"))) -> Thread:
    return await store.create_thread(id=tid, kind="contract", title="ロゴ", stage="inquiry",
                                     ref={"job_id": "j1"}, participants=members, at=at)


def msg(thread: str = "t1", sender: str = "alice", body: str = "hi", cmid: str | None = None,
        at: int | None = None, **kw: Any) -> NewMessage:
    extra: dict[str, Any] = {"created_at": at} if at is not None else {}
    return NewMessage(thread=thread, sender=sender, kind="user", body=body, client_msg_id=cmid,
                      **extra, **kw)


async def thread_log(store: Store, thread: str) -> list[Any]:
    """The thread's log entries as stored, in order (chat.evidence.chain.LogEntry)."""
    from chat.evidence.chain import LogEntry
    from chat.evidence.schema import LOG, LOG_COLUMNS

    rows = await store.db.fetch(f"SELECT {LOG_COLUMNS} FROM {LOG} WHERE thread_id = ? "
                                "ORDER BY log_seq", thread)
    return [LogEntry.from_row(r) for r in rows]


async def append(store: Store, *reqs: NewMessage) -> list[Appended]:
    out = await store.append_batch(list(reqs))
    assert all(isinstance(r, Appended) for r in out), out
    return out  # type: ignore[return-value]


# --- schema
async def test_migrate_is_idempotent_and_versioned(settings_factory: Any) -> None:
    s = open_store(settings_factory())
    await s.open()
    try:
        assert await s.schema_version() == 0
        applied = await s.migrate()
        assert "chat:1" in applied
        assert applied == [f"{m.component}:{m.version}" for m in all_migrations()]
        assert await s.schema_version() == max(
            m.version for m in all_migrations() if m.component == "chat")
        assert await s.migrate() == []
        await s.ping()
    finally:
        await s.close()


@pytest.fixture
async def pg_dsn() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, for what only PostgreSQL has: several nodes on one db."""
    require_servers("postgres")
    dsn = await create_pg_database()
    try:
        yield dsn
    finally:
        await drop_pg_database(dsn)


def pg_store(dsn: str) -> Store:
    return open_store(load_settings(env={}, database_url=dsn))


async def test_concurrent_migrate_applies_once(pg_dsn: str) -> None:
    stores = [pg_store(pg_dsn) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(len(r) for r in results) == [0, 0, len(all_migrations())]
    finally:
        for s in stores:
            await s.close()


# --- threads and participants
async def test_create_get_update_thread(store: Store) -> None:
    t = await make_thread(store)
    assert (t.id, t.kind, t.title, t.stage, t.ref, t.last_seq) == (
        "t1", "contract", "ロゴ", "inquiry", {"job_id": "j1"}, 0)
    assert (t.created_at, t.updated_at) == (T0, T0)
    assert [(p.user_id, p.role, p.read_seq) for p in t.participants] == [
        ("alice", "client", 0), ("bob", "worker", 0)]
    assert t.role_of("bob") == "worker" and t.role_of("eve") is None
    assert await store.get_thread("t1") == t
    assert await store.get_thread("nope") is None
    with pytest.raises(Conflict):
        await make_thread(store)
    u = await store.update_thread("t1", stage="in_progress", at=T0 + 5)
    assert (u.stage, u.title, u.updated_at) == ("in_progress", "ロゴ", T0 + 5)
    u = await store.update_thread("t1", title="新しい", at=T0 + 6)
    assert (u.stage, u.title) == ("in_progress", "新しい")
    assert await store.get_thread("t1") == u
    with pytest.raises(NotFound):
        await store.update_thread("nope", stage="closed", at=T0)


async def test_participants(store: Store) -> None:
    await make_thread(store)
    t, added = await store.add_participant("t1", "carol", "observer", at=T0 + 1)
    assert added and t.role_of("carol") == "observer"
    t2, added = await store.add_participant("t1", "carol", "observer", at=T0 + 2)
    assert not added and t2 == t
    with pytest.raises(Conflict):
        await store.add_participant("t1", "carol", "worker", at=T0 + 3)
    with pytest.raises(NotFound):
        await store.add_participant("nope", "carol", "worker", at=T0)
    thread = await store.get_thread("t1")
    assert thread is not None and [p.user_id for p in thread.participants] == [
        "alice", "bob", "carol"]


# --- appends
async def test_append_gives_gapless_seqs(store: Store) -> None:
    await make_thread(store)
    await make_thread(store, "t2")
    out = await append(store, *(msg(body=f"m{i}", cmid=f"c{i}") for i in range(5)))
    assert [r.message.seq for r in out] == [1, 2, 3, 4, 5]
    assert all(r.created for r in out)
    out = await append(store, msg("t2", cmid="x"), msg("t1", cmid="c5"), msg("t2"))
    assert [(r.message.thread, r.message.seq) for r in out] == [("t2", 1), ("t1", 6), ("t2", 2)]
    t1, t2 = await store.get_thread("t1"), await store.get_thread("t2")
    assert t1 is not None and t2 is not None and (t1.last_seq, t2.last_seq) == (6, 2)
    stored = await store.history("t1")
    assert [m.seq for m in stored] == [1, 2, 3, 4, 5, 6]
    first = stored[0]
    assert (first.body, first.sender, first.kind, first.client_msg_id, first.rev) == (
        "m0", "alice", "user", "c0", 0)


async def test_stored_message_equals_returned_message(store: Store) -> None:
    await make_thread(store)
    [r] = await append(store, msg(cmid="c1", at=T0 + 7, data={"k": [1, "二"]},
                                  masked="h*", moderation={"action": "mask"}))
    got = await store.get_message("t1", r.message.id)
    assert got == r.message
    assert got is not None and got.data == {"k": [1, "二"]} and got.created_at == T0 + 7
    assert await store.get_message("t1", "m_nope") is None
    assert await store.get_message("other", r.message.id) is None


async def test_retry_returns_the_same_message(store: Store) -> None:
    await make_thread(store)
    [first] = await append(store, msg(cmid="c1", body="one"))
    [again] = await append(store, msg(cmid="c1", body="one (retry)"))
    assert again.message == first.message and not again.created
    # same key from another sender is a different message
    [bobs] = await append(store, msg(sender="bob", cmid="c1"))
    assert bobs.created and bobs.message.seq == 2
    # within one batch: the repeat is answered with the first of the batch
    out = await append(store, msg(cmid="c2"), msg(cmid="c2"), msg(cmid="c1"), msg())
    assert [r.created for r in out] == [True, False, False, True]
    assert out[1].message == out[0].message and out[0].message.seq == 3
    assert out[2].message == first.message
    assert out[3].message.seq == 4
    assert [m.seq for m in await store.history("t1")] == [1, 2, 3, 4]


async def test_unknown_thread_does_not_spoil_the_batch(store: Store) -> None:
    await make_thread(store)
    out = await store.append_batch([msg(cmid="a"), msg("nope", cmid="b"), msg(cmid="c")])
    assert isinstance(out[1], NotFound)
    assert isinstance(out[0], Appended) and isinstance(out[2], Appended)
    assert (out[0].message.seq, out[2].message.seq) == (1, 2)
    assert [m.client_msg_id for m in await store.history("t1")] == ["a", "c"]
    [only] = await store.append_batch([msg("nope")])
    assert isinstance(only, NotFound) and only.code == "not_found"


async def test_concurrent_group_commits_are_gapless(store: Store) -> None:
    for t in ("t1", "t2", "t3"):
        await make_thread(store, t)
    committer = GroupCommitter(store, max_batch=16)
    reqs = [msg(f"t{1 + i % 3}", sender=("alice", "bob")[i % 2], cmid=f"c{i}") for i in range(150)]
    out = await asyncio.gather(*(committer.append(r) for r in reqs))
    for t in ("t1", "t2", "t3"):
        seqs = sorted(r.message.seq for r in out if r.message.thread == t)
        assert seqs == list(range(1, 51))
        assert [m.seq for m in await store.history(t, limit=100)] == list(range(1, 51))
    assert len({r.message.id for r in out}) == 150


async def test_concurrent_append_batches_are_gapless(store: Store) -> None:
    """Many transactions at once (on PostgreSQL: many pool connections)."""
    await make_thread(store)
    batches = [[msg(cmid=f"b{b}-{i}") for i in range(5)] for b in range(20)]
    results = await asyncio.gather(*(store.append_batch(b) for b in batches))
    seqs = [r.message.seq for rs in results for r in rs if isinstance(r, Appended)]
    assert sorted(seqs) == list(range(1, 101))
    for rs in results:  # each batch's seqs are consecutive: one transaction
        s = [r.message.seq for r in rs if isinstance(r, Appended)]
        assert s == list(range(s[0], s[0] + 5))


async def test_concurrent_identical_client_msg_id_stores_one(store: Store,
                                                             settings_factory: Any) -> None:
    await make_thread(store)
    committer = GroupCommitter(store, max_batch=4)
    out = await asyncio.gather(*(committer.append(msg(cmid="same")) for _ in range(20)),
                               *(store.append_batch([msg(cmid="same")]) for _ in range(10)))
    messages = [r.message if isinstance(r, Appended) else r[0].message for r in out]
    assert len({(m.id, m.seq) for m in messages}) == 1
    created = [r.created if isinstance(r, Appended) else r[0].created for r in out]
    assert created.count(True) == 1
    assert len(await store.history("t1")) == 1


async def test_two_nodes_append_to_one_thread(pg_dsn: str) -> None:
    """Two stores with their own pools (two nodes) append to the same thread at once; the
    thread's log chain stays whole."""
    from chat.evidence.chain import verify_chain

    store, other = pg_store(pg_dsn), pg_store(pg_dsn)
    await store.open()
    await other.open()
    try:
        await store.migrate()
        await make_thread(store)
        a, b = GroupCommitter(store, max_batch=8), GroupCommitter(other, max_batch=8)
        reqs = [(a if i % 2 else b, msg(sender=("alice", "bob")[i % 2], cmid=f"c{i}"))
                for i in range(200)]
        dup = [(c, msg(sender="alice", cmid="dup")) for c in (a, b) for _ in range(10)]
        out = await asyncio.gather(*(c.append(r) for c, r in reqs + dup))
        assert sorted({r.message.seq for r in out}) == list(range(1, 202))
        assert len({r.message.id for r in out[200:]}) == 1
        assert [r.created for r in out[200:]].count(True) == 1
        stored = await other.history("t1", limit=500)
        assert [m.seq for m in stored] == list(range(1, 202))
        assert len({m.id for m in stored}) == 201
        assert (await store.get_thread("t1")).last_seq == 201  # type: ignore[union-attr]
        entries = await thread_log(store, "t1")
        assert [e.kind for e in entries].count("message") == 201
        assert verify_chain(entries, thread="t1") == []
    finally:
        await other.close()
        await store.close()


async def test_fast_path_falls_back_whenever_the_thread_changed_elsewhere(pg_dsn: str) -> None:
    """PostgreSQL writes a batch in one conditional statement when the node remembers the
    thread's state (its own edits and receipts keep that memory current); whenever the memory
    is stale (another node wrote) the statement writes nothing and the locked path takes
    over; a stored key makes it write
    nothing and return the stored message. Seqs stay gapless, retries find their message,
    and the thread's log chain verifies."""
    from chat.evidence.chain import verify_chain
    from chat.store.postgres import PostgresStore

    a, b = pg_store(pg_dsn), pg_store(pg_dsn)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    await a.open()
    await b.open()
    try:
        await a.migrate()
        await make_thread(a)
        await append(a, msg(cmid="m1"))  # first sight of t1: locked path
        assert (a.fast_batches, a.slow_batches) == (0, 1)
        await append(a, msg(cmid="m2"), msg(sender="bob", cmid="m3"))  # remembered: fast
        assert (a.fast_batches, a.slow_batches) == (1, 1)
        await append(b, msg(sender="bob", cmid="m4"))  # another node writes t1
        [r5] = await append(a, msg(cmid="m5"))  # a's memory is stale: falls back
        assert r5.message.seq == 5 and (a.fast_batches, a.slow_batches) == (1, 2)
        # a retry of what a stored itself: answered from memory, nothing written
        [again] = await append(a, msg(cmid="m2"))
        assert (again.created, again.message.seq) == (False, 2)
        assert (a.fast_batches, a.slow_batches) == (1, 2)
        # a retry of what b stored, beside a new message: the first statement finds it and
        # writes nothing, the second writes the new one
        retried, r6 = await append(a, msg(sender="bob", cmid="m4"), msg(cmid="m6"))
        assert (retried.created, retried.message.seq, r6.created, r6.message.seq) == (
            False, 4, True, 6)
        assert (a.fast_batches, a.slow_batches) == (2, 2)
        # log entries written outside append_batch by this node keep its memory current
        await a.edit_message("t1", r5.message.id, actor="alice", body="fixed", masked=None,
                             moderation=None, at=T0)
        [edited] = await append(a, msg(cmid="m5"))  # a retry after an edit: the stored one
        assert (edited.created, edited.message.seq, edited.message.body) == (False, 5, "fixed")
        await a.set_read("t1", "bob", 6)
        [r7] = await append(a, msg(cmid="m7"))
        assert r7.message.seq == 7 and (a.fast_batches, a.slow_batches) == (3, 2)
        # ... but not those of another node: b's receipt sends a back to the locked path
        await b.set_read("t1", "alice", 7)
        [r8] = await append(a, msg(cmid="m8"))
        assert r8.message.seq == 8 and (a.fast_batches, a.slow_batches) == (3, 3)
        assert [m.seq for m in await b.history("t1")] == list(range(1, 9))
        entries = await thread_log(a, "t1")
        assert [e.kind for e in entries].count("message") == 8
        assert verify_chain(entries, thread="t1") == []
    finally:
        await b.close()
        await a.close()


async def test_sqlite_fast_path_falls_back_whenever_the_thread_changed_elsewhere(
        tmp_path: Any) -> None:
    """SQLite's writer writes a batch without reading when it remembers the thread's state
    (its own edits and receipts keep that memory current); a retry of a stored message is
    answered on that path too. A thread written through another connection (a second
    process on the same file) or a log entry appended by another component: the savepoint
    rolls back and the reading path takes over.
    Seqs stay gapless, retries find their message, and the thread's log chain verifies."""
    from chat.evidence.chain import verify_chain

    path = str(tmp_path / "fast.db")
    a, b = SQLiteStore(path), SQLiteStore(path)
    await a.open()
    await a.migrate()
    await b.open()
    try:
        await make_thread(a)
        await append(a, msg(cmid="m1"))  # first sight of t1: reads
        assert (a.fast_batches, a.slow_batches) == (0, 1)
        await append(a, msg(cmid="m2"), msg(sender="bob", cmid="m3"))  # remembered: fast
        assert (a.fast_batches, a.slow_batches) == (1, 1)
        await append(b, msg(sender="bob", cmid="m4"))  # another connection writes t1
        [r5] = await append(a, msg(cmid="m5"))  # a's memory is stale: falls back
        assert r5.message.seq == 5 and (a.fast_batches, a.slow_batches) == (1, 2)
        # a retry beside a new message: the key lookup answers the retry, the fast path
        # writes the new one
        again, r6 = await append(a, msg(cmid="m2"), msg(cmid="m6"))
        assert (again.created, again.message.seq, r6.created, r6.message.seq) == (
            False, 2, True, 6)
        assert (a.fast_batches, a.slow_batches) == (2, 2)
        # log entries a writes outside append_batch keep its memory current
        await a.edit_message("t1", r5.message.id, actor="alice", body="fixed", masked=None,
                             moderation=None, at=T0)
        await a.set_read("t1", "bob", 6)
        [r7] = await append(a, msg(cmid="m7"))
        assert r7.message.seq == 7 and (a.fast_batches, a.slow_batches) == (3, 2)
        # ... but an entry another component appends on the same connection (moderation
        # records a decision through store.db) moves the head behind its back: the head
        # condition catches it
        from chat.evidence.log import record

        await record(a.db, "t1", "moderation_decision", "mod", {"decision": "ok"}, T0)
        [r8] = await append(a, msg(cmid="m8"))
        assert r8.message.seq == 8 and (a.fast_batches, a.slow_batches) == (3, 3)
        await append(a, msg(cmid="m8b"))  # remembered again
        assert (a.fast_batches, a.slow_batches) == (4, 3)
        await b.set_read("t1", "alice", 9)  # b appends a log entry: a's head is stale
        [r9] = await append(a, msg(cmid="m9"))
        assert r9.message.seq == 10 and (a.fast_batches, a.slow_batches) == (4, 4)
        # the fast path looks up only the keys a stored lately: a retry of a message a did
        # not store (b did; or a before a restart) fails the insert on the key's unique
        # index, the savepoint rolls back and the reading path answers it from storage
        await append(a, msg(cmid="m10"))
        assert (a.fast_batches, a.slow_batches) == (5, 4)
        old, r11 = await append(a, msg(sender="bob", cmid="m4"), msg(cmid="m11"))
        assert (old.created, old.message.seq, r11.created, r11.message.seq) == (
            False, 4, True, 12)
        assert (a.fast_batches, a.slow_batches) == (5, 5)
        [again] = await append(a, msg(cmid="m11"))  # stored lately: found on the fast path
        assert (again.created, again.message.seq) == (False, 12)
        assert (a.fast_batches, a.slow_batches) == (6, 5)
        assert [m.seq for m in await b.history("t1")] == list(range(1, 13))
        entries = await thread_log(a, "t1")
        assert [e.kind for e in entries].count("message") == 12
        assert verify_chain(entries, thread="t1") == []
    finally:
        await b.close()
        await a.close()


# --- history
async def test_history_windows(store: Store) -> None:
    await make_thread(store)
    await append(store, *(msg(body=str(i)) for i in range(1, 11)))

    async def seqs(**kw: Any) -> list[int]:
        return [m.seq for m in await store.history("t1", **kw)]

    assert await seqs() == list(range(1, 11))
    assert await seqs(limit=3) == [8, 9, 10]  # the latest
    assert await seqs(after_seq=0, limit=3) == [1, 2, 3]  # the first after
    assert await seqs(after_seq=4, limit=3) == [5, 6, 7]
    assert await seqs(after_seq=8) == [9, 10]
    assert await seqs(after_seq=10) == []
    assert await seqs(before_seq=5, limit=2) == [3, 4]  # the last before
    assert await seqs(before_seq=5) == [1, 2, 3, 4]
    assert await seqs(before_seq=1) == []
    assert await seqs(after_seq=2, before_seq=6) == [3, 4, 5]
    assert await seqs(after_seq=2, before_seq=6, limit=2) == [3, 4]
    assert await store.history("nope") == []


# --- edit, delete, thanks
async def test_edit_keeps_a_revision(store: Store) -> None:
    await make_thread(store)
    [r] = await append(store, msg(body="v0", cmid="c1"))
    m1 = await store.edit_message("t1", r.message.id, actor="alice", body="v1", masked=None,
                                  moderation=None, at=T0 + 10)
    assert (m1.body, m1.rev, m1.edited_at, m1.seq) == ("v1", 1, T0 + 10, 1)
    m2 = await store.edit_message("t1", r.message.id, actor="alice", body="v2", masked="v*",
                                  moderation={"action": "mask"}, at=T0 + 20)
    assert (m2.body, m2.rev, m2.masked, m2.moderation) == ("v2", 2, "v*", {"action": "mask"})
    assert await store.get_message("t1", r.message.id) == m2
    revs = await store.revisions(r.message.id)
    assert [(x["rev"], x["action"], x["body"], x["actor"], x["at"]) for x in revs] == [
        (0, "edit", "v0", "alice", T0 + 10), (1, "edit", "v1", "alice", T0 + 20)]
    with pytest.raises(NotFound):
        await store.edit_message("t1", "m_nope", actor="alice", body="x", masked=None,
                                 moderation=None, at=T0)
    with pytest.raises(NotFound):
        await store.edit_message("t2", r.message.id, actor="alice", body="x", masked=None,
                                 moderation=None, at=T0)


async def test_delete_is_idempotent_and_keeps_a_revision(store: Store) -> None:
    await make_thread(store)
    [r] = await append(store, msg(body="secret plan", cmid="c1"))
    d = await store.delete_message("t1", r.message.id, actor="alice", at=T0 + 30)
    assert d.deleted_at == T0 + 30 and d.rev == 1 and d.body == "secret plan"
    again = await store.delete_message("t1", r.message.id, actor="alice", at=T0 + 40)
    assert again == d
    revs = await store.revisions(r.message.id)
    assert [(x["rev"], x["action"], x["body"]) for x in revs] == [(0, "delete", "secret plan")]
    with pytest.raises(Conflict):
        await store.edit_message("t1", r.message.id, actor="alice", body="x", masked=None,
                                 moderation=None, at=T0 + 50)
    with pytest.raises(NotFound):
        await store.delete_message("t1", "m_nope", actor="alice", at=T0)
    # a retry of the deleted message's send still answers with it (not a new message)
    [retry] = await append(store, msg(cmid="c1"))
    assert not retry.created and retry.message.id == r.message.id


async def test_thanks_once_per_user(store: Store) -> None:
    await make_thread(store, members=(("alice", "client"), ("bob", "worker"),
                                      ("carol", "member")))
    [r] = await append(store, msg(sender="bob", body="納品しました"))
    m, new = await store.thank("t1", r.message.id, "alice", at=T0)
    assert new and m.thanks == 1
    m, new = await store.thank("t1", r.message.id, "alice", at=T0 + 1)
    assert not new and m.thanks == 1
    m, new = await store.thank("t1", r.message.id, "carol", at=T0 + 2)
    assert new and m.thanks == 2
    assert (await store.get_message("t1", r.message.id)).thanks == 2  # type: ignore[union-attr]
    assert await store.thanks_summary("bob") == {"received": 2, "given": 0}
    assert await store.thanks_summary("alice") == {"received": 0, "given": 1}
    assert await store.thanks_summary("nobody") == {"received": 0, "given": 0}
    with pytest.raises(NotFound):
        await store.thank("t1", "m_nope", "alice", at=T0)


# --- read positions and thread lists
async def test_set_read_is_monotonic_and_clamped(store: Store) -> None:
    await make_thread(store)
    await append(store, *(msg(sender="bob") for _ in range(5)))
    assert await store.set_read("t1", "alice", 3) == 3
    assert await store.set_read("t1", "alice", 2) == 3  # never backwards
    assert await store.set_read("t1", "alice", 99) == 5  # clamped to last_seq
    assert await store.set_read("t1", "alice", 0) == 5
    t = await store.get_thread("t1")
    assert t is not None and [p.read_seq for p in t.participants if p.user_id == "alice"] == [5]
    with pytest.raises(NotFound):
        await store.set_read("t1", "eve", 1)
    with pytest.raises(NotFound):
        await store.set_read("nope", "alice", 1)
    # Whether it moved: only then does the service tell the thread.
    assert await store.advance_read("t1", "bob", 2) == (2, True)
    assert await store.advance_read("t1", "bob", 2) == (2, False)
    assert await store.advance_read("t1", "bob", 1) == (2, False)
    assert await store.advance_read("t1", "bob", 9) == (5, True)
    assert await store.advance_read("t1", "bob", 9) == (5, False)
    with pytest.raises(NotFound):
        await store.advance_read("t1", "eve", 1)


async def test_user_threads_unread_and_order(store: Store) -> None:
    await make_thread(store, "t1", at=T0)
    await make_thread(store, "t2", at=T0 + 100)
    await make_thread(store, "t3", at=T0 + 200, members=(("bob", "client"), ("carol", "worker")))
    # t1: bob writes 3, alice 1; one of bob's is deleted; alice read up to 1
    out = await append(store, msg("t1", "bob", at=T0 + 300), msg("t1", "bob", at=T0 + 301),
                       msg("t1", "alice", at=T0 + 302), msg("t1", "bob", at=T0 + 303))
    await store.delete_message("t1", out[3].message.id, actor="bob", at=T0 + 304)
    await store.set_read("t1", "alice", 1)
    # t2: untouched since creation (older activity than t1)
    rows = await store.user_threads("alice", limit=10)
    assert [r.thread.id for r in rows] == ["t1", "t2"]  # most recently active first
    t1 = rows[0]
    assert (t1.role, t1.read_seq, t1.unread, t1.thread.last_seq) == ("client", 1, 1, 4)
    assert len(t1.thread.participants) == 2
    assert (rows[1].unread, rows[1].read_seq) == (0, 0)
    bob = {r.thread.id: r.unread for r in await store.user_threads("bob", limit=10)}
    assert bob == {"t1": 1, "t2": 0, "t3": 0}  # alice's one message, not his own
    assert [r.thread.id for r in await store.user_threads("bob", limit=1)] == ["t1"]
    await append(store, msg("t2", "bob", at=T0 + 400))
    assert [r.thread.id for r in await store.user_threads("alice", limit=10)] == ["t2", "t1"]
    assert await store.user_threads("nobody", limit=10) == []
    assert await store.user_thread_seqs("alice") == {"t1": 4, "t2": 1}


async def test_user_threads_brief(store: Store) -> None:
    await make_thread(store, "t1")
    await make_thread(store, "t2", members=(("alice", "worker"), ("carol", "client"),
                                            ("dave", "observer")))
    await make_thread(store, "t3", members=(("bob", "client"),))
    await append(store, msg("t2", "carol"), msg("t2", "alice"))
    await store.update_thread("t2", stage="in_progress", at=T0 + 1)
    brief = await store.user_threads_brief("alice")
    assert set(brief) == {"t1", "t2"}
    assert (brief["t1"].last_seq, brief["t1"].stage, brief["t1"].members) == (
        0, "inquiry", {"alice": "client", "bob": "worker"})
    assert (brief["t2"].last_seq, brief["t2"].stage, brief["t2"].members) == (
        2, "in_progress", {"alice": "worker", "carol": "client", "dave": "observer"})
    assert await store.user_threads_brief("nobody") == {}


# --- portable SQL for the other components
async def test_portable_sql(store: Store, backend: Backend) -> None:
    db = store.db
    assert db.dialect == ("postgres" if backend.production else "sqlite")
    await db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)")
    assert await db.execute("INSERT INTO kv VALUES (?, ?, ?)", "a", 1, "一") == 1
    await db.executemany("INSERT INTO kv VALUES (?, ?, ?)", [("b", 2, None), ("c", 3, "x")])
    assert await db.fetch("SELECT k, v, note FROM kv ORDER BY k") == [
        ("a", 1, "一"), ("b", 2, None), ("c", 3, "x")]
    assert await db.fetchrow("SELECT v FROM kv WHERE k = ?", "b") == (2,)
    assert await db.fetchrow("SELECT v FROM kv WHERE k = ?", "zz") is None
    assert await db.fetchval("SELECT count(*) FROM kv WHERE v >= ?", 2) == 2
    assert await db.execute("UPDATE kv SET v = v + ? WHERE v >= ?", 10, 2) == 2
    with pytest.raises(Conflict):
        await db.execute("INSERT INTO kv VALUES (?, ?, ?)", "a", 9, None)

    async with db.transaction() as tx:
        await tx.execute("INSERT INTO kv VALUES (?, ?, ?)", "d", 4, None)
        assert await tx.fetchval("SELECT v FROM kv WHERE k = ?", "d") == 4
    assert await db.fetchval("SELECT v FROM kv WHERE k = ?", "d") == 4

    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO kv VALUES (?, ?, ?)", "e", 5, None)
            await tx.execute("UPDATE kv SET v = 0 WHERE k = ?", "a")
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT count(*) FROM kv WHERE k = ?", "e") == 0
    assert await db.fetchval("SELECT v FROM kv WHERE k = ?", "a") == 1

    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO kv VALUES (?, ?, ?)", "f", 6, None)
            await tx.execute("INSERT INTO kv VALUES (?, ?, ?)", "a", 6, None)
    assert await db.fetchval("SELECT count(*) FROM kv WHERE k = ?", "f") == 0
    # the store still works after a rolled-back transaction
    await make_thread(store)
    [r] = await append(store, msg())
    assert r.message.seq == 1
    rows = await db.fetch("SELECT id, seq FROM messages WHERE thread_id = ?", "t1")
    assert rows == [(r.message.id, 1)]


async def test_pg_batch_key_lookup_probes_the_index_on_a_new_database(pg_dsn: str) -> None:
    """On a new database (tables empty, never analysed) the planner once chose a seq scan of
    every stored message for a batch's idempotency keys and kept that plan as the table grew.
    The lookup is now one index probe per key by construction, and every pooled connection
    plans each execution for its parameters."""
    store = pg_store(pg_dsn)
    await store.open()
    try:
        await store.migrate()
        assert await store.db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("SET plan_cache_mode = force_generic_plan")  # the worst case
            keys = '[["t1", "alice", "c1"], ["t2", "bob", "c2"]]'
            plan = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN " + postgres_store._find_keys(1), keys))
        finally:
            await conn.close()
        assert "Seq Scan on messages" not in plan, plan
        assert "Index Scan using messages_idempotency" in plan, plan
    finally:
        await store.close()


async def test_pg_fast_path_generic_plan_reads_only_through_indexes(pg_dsn: str) -> None:
    """The fast path's statements run on connections of their own with one generic plan
    each (planning them for every batch cost a third of PostgreSQL's CPU per message). That
    plan is made once, perhaps while the tables are empty or small, and kept as they grow:
    whatever the statistics, it must read no table whole - every table through an index."""
    store = pg_store(pg_dsn)
    await store.open()
    try:
        await store.migrate()
        assert isinstance(store, postgres_store.PostgresStore)
        async with store._conn(fast=True) as c:
            assert await c.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
            assert await c.fetchval("SHOW enable_seqscan") == "off"
        async with store._conn() as c:  # every other statement: planned for its parameters
            assert await c.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            assert await c.fetchval("SHOW enable_seqscan") == "on"
        statements = {"plain": (postgres_store._APPEND_IF_CURRENT_SQL, 4),
                      "held": (postgres_store._APPEND_IF_CURRENT_HELD_SQL, 5)}
        for state in ("new", "analysed"):  # never analysed; then small and analysed
            if state == "analysed":
                await make_thread(store)
                await make_thread(store, "t2")
                await append(store, msg(cmid="c1"), msg("t2", cmid="c2"))
                await store.db.execute("ANALYZE")
            conn = await asyncpg.connect(pg_dsn, server_settings=postgres_store._FAST_SETTINGS)
            try:
                for name, (sql, params) in statements.items():
                    await conn.execute(f"PREPARE {name} AS {sql}")
                    plan = "\n".join(r[0] for r in await conn.fetch(
                        f"EXPLAIN EXECUTE {name} (" + ", ".join(["'[]'"] * params) + ")"))
                    assert "Seq Scan" not in plan, (state, name, plan)
                    assert "Index Cond: (id = ANY" in plan, (state, name, plan)  # threads
                    assert "messages_thread_id_fkey" not in plan  # (the check is a trigger)
            finally:
                await conn.close()
        # and the fast path still writes, on its own connections
        before = store.fast_batches
        [r] = await append(store, msg(cmid="c3"))
        assert isinstance(r, Appended) and r.created and r.message.seq == 2
        assert store.fast_batches == before + 1
    finally:
        await store.close()


async def test_sqlite_checkpoints_run_off_the_commit_path(tmp_path: Path) -> None:
    """With the background checkpointer on, the writer's own checkpoints start only at
    WRITER_AUTOCHECKPOINT pages, and a connection of its own copies the WAL into the
    database file meanwhile; off, SQLite checkpoints inside the commit (1,000 pages)."""
    path = str(tmp_path / "c.db")
    store = SQLiteStore(path, checkpoint_interval=0.02)
    await store.open()
    try:
        await store.migrate()
        assert store.db.wconn is not None
        assert store.db.wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] \
            == WRITER_AUTOCHECKPOINT
        await make_thread(store)
        for i in range(20):
            await store.append_batch([msg(cmid=f"c{i}")])
        for _ in range(100):  # the checkpointer copies what was written
            if store.checkpoints:
                break
            await asyncio.sleep(0.02)
        assert store.checkpoints >= 1
        probe = sqlite3.connect(path)
        try:
            # The store's checkpointer runs every 20 ms: a probe that meets it at work is
            # told busy (1) and tries again.
            for _ in range(50):
                busy, wal, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if busy == 0:
                    break
                await asyncio.sleep(0.01)
        finally:
            probe.close()
        assert busy == 0 and wal == copied  # nothing left for a checkpoint to copy
        task = store._checkpointer
        assert task is not None
    finally:
        await store.close()
    assert task.done() and store._checkpointer is None  # closing stops it
    plain = SQLiteStore(str(tmp_path / "p.db"))
    await plain.open()
    try:
        assert plain.db.wconn is not None
        assert plain.db.wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert plain._checkpointer is None
    finally:
        await plain.close()
