"""A staff read of a thread's log (read_log, export) reads one consistent snapshot and holds
no writer while it reads: chat writes commit meanwhile (both back ends; the defect was
SQLite's, where the snapshot was the single writer's transaction)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chat.evidence import bundle, tree
from chat.evidence.schema import ACCESS
from chat.evidence.service import EvidenceService
from chat.models import NewMessage, now_us
from chat.store import Store

from .test_conformance import T, key, make_thread


def pause_inside(monkeypatch: pytest.MonkeyPatch, name: str
                 ) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the next call of ``tree.<name>`` (called inside the snapshot) stop until
    released (later calls, e.g. a checkpoint's, run through): returns (reached, release)."""
    reached, release = asyncio.Event(), asyncio.Event()
    real: Callable[..., Awaitable[Any]] = getattr(tree, name)

    async def paused(*args: Any, **kwargs: Any) -> Any:
        if not reached.is_set():
            reached.set()
            await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(tree, name, paused)
    return reached, release


async def send(store: Store, body: str) -> None:
    [r] = await store.append_batch([NewMessage(thread=T, sender="bob", kind="user", body=body,
                                               client_msg_id=f"c-{body}",
                                               created_at=now_us())])
    assert not isinstance(r, Exception), r


@pytest.fixture
async def reading(store: Store, evidence: EvidenceService) -> AsyncIterator[str]:
    """A thread with a large log and an open dispute on it; its id."""
    await make_thread(store, n=400)
    d, _ = await evidence.open("staff1", T, "支払いの争い")
    yield d.id


async def test_a_send_commits_while_read_log_reads(
    store: Store, evidence: EvidenceService, reading: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(await evidence.entries(T))
    # entries are read, then the read stops before the tree and the leaves
    reached, release = pause_inside(monkeypatch, "verify_stored")
    task = asyncio.create_task(evidence.read_log("staff1", reading, "証拠の確認"))
    await asyncio.wait_for(reached.wait(), 10)
    # chat writes go on meanwhile (before the fix: blocked on the writer until the read ends)
    await asyncio.wait_for(send(store, "読み取り中の送信"), 5)
    # and a checkpoint commits the new head into the tree: outside a snapshot the leaves
    # would name an entry the read did not see (a false "head" problem)
    await asyncio.wait_for(evidence.checkpoint(), 5)
    assert not task.done()
    release.set()
    out = await asyncio.wait_for(task, 10)
    assert out["chain_ok"], out["problems"]
    assert len(out["entries"]) == before  # the snapshot: not the message sent meanwhile
    assert len(await evidence.entries(T)) == before + 1  # which did commit
    # the access audit record of the read is written
    rows = await store.db.fetch(f"SELECT staff, action, dispute_id, reason FROM {ACCESS} "
                                "WHERE thread_id = ? AND action = 'read_log'", T)
    assert rows == [("staff1", "read_log", reading, "証拠の確認")]
    # a later read sees the new message and a consistent chain
    again = await evidence.read_log("staff1", reading, "再確認")
    assert again["chain_ok"], again["problems"]
    assert len(again["entries"]) == before + 1


async def test_a_send_commits_while_an_export_reads(
    store: Store, evidence: EvidenceService, reading: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached, release = pause_inside(monkeypatch, "consistency")
    task = asyncio.create_task(evidence.export("staff1", reading, "証拠の書き出し"))
    await asyncio.wait_for(reached.wait(), 10)
    await asyncio.wait_for(send(store, "書き出し中の送信"), 5)
    await asyncio.wait_for(evidence.checkpoint(), 5)  # a newer checkpoint, meanwhile
    release.set()
    data = await asyncio.wait_for(task, 10)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    rep = bundle.verify_bundle(files, key(evidence))
    assert rep.ok, rep.problems
    rows = await store.db.fetch(f"SELECT action FROM {ACCESS} WHERE thread_id = ? "
                                "AND action = 'export'", T)
    assert rows == [("export",)]


async def test_the_snapshot_does_not_hold_back_other_reads(store: Store, reading: str) -> None:
    """Reads outside the snapshot (chat history) see what committed after it began."""
    async with tree.read_snapshot(store.db) as snap:
        n = await snap.fetchval("SELECT count(*) FROM thread_log WHERE thread_id = ?", T)
        await asyncio.wait_for(send(store, "スナップショット中"), 5)
        assert await snap.fetchval(
            "SELECT count(*) FROM thread_log WHERE thread_id = ?", T) == n
        assert [m.body for m in await store.history(T)][-1] == "スナップショット中"
        assert await store.db.fetchval(
            "SELECT count(*) FROM thread_log WHERE thread_id = ?", T) == n + 1
