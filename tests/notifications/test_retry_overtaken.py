"""Retried failed jobs, both back ends: a job an operator retries is checked when it fires
with the delivery worker's full rules (rules.still_applies), so a notice overtaken while it
lay failed is dropped with the reason; and on PostgreSQL the retry of a chat digest takes
the watcher's per-conversation lock before it looks for a newer pending digest."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from notifications import repo, scheduler
from tests.notifications.conftest import HOUR, T0, NotifyNode, contract, iso

FAILED = "/v1/notifications/failed-jobs"
H = HOUR * 1_000_000


def break_kind(monkeypatch: pytest.MonkeyPatch, broken: str) -> dict[str, bool]:
    """Notices of kind ``broken`` cannot be rendered while the switch's ``on`` is true."""
    real = scheduler.notice_text
    switch = {"on": True}

    def text(kind: str, params: dict[str, Any], **kw: Any) -> tuple[str, str]:
        if switch["on"] and kind == broken:
            raise RuntimeError("cannot word it")
        return real(kind, params, **kw)

    monkeypatch.setattr(scheduler, "notice_text", text)
    return switch


async def inbox(node: NotifyNode, user: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in await node.n.store.db.fetch(
        "SELECT kind, body FROM notify_inbox WHERE user_id = ? ORDER BY created_at, id", user)]


async def test_a_retried_do_not_start_yet_is_dropped_once_the_deposit_is_paid(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's "contract concluded, do not start yet" fails; the deposit is paid ("you
    can start" fires); the retried notice is dropped ("deposit is paid"), not sent after."""
    switch = break_kind(monkeypatch, "contract_concluded_worker")
    thread = await contract(node)
    await node.tick()
    jid = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE state = 'failed' AND kind = 'contract_concluded_worker'")
    assert jid
    switch["on"] = False
    status, _ = await node.event("deposit.paid", thread)
    assert status == 200
    await node.tick()
    assert [k for k, _ in await inbox(node, "bob")] == ["deposit_paid"]
    status, body = await node.http("POST", f"{FAILED}/{jid}/retry", node.token("ops", "admin"))
    assert status == 200 and body["retried"] is True
    assert await node.tick() == 1
    row = await node.n.store.db.fetchrow("SELECT state, outcome FROM notify_jobs WHERE id = ?",
                                         jid)
    assert tuple(row) == ("dropped", "deposit is paid")
    assert [k for k, _ in await inbox(node, "bob")] == ["deposit_paid"]
    assert await node.count("SELECT count(*) FROM notify_deliveries d JOIN notify_inbox n "
                            "ON n.id = d.notice_id WHERE n.job_id = ?", jid) == 0


async def test_a_retried_deadline_change_is_dropped_after_a_later_change(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "deadline changed" notice fails; the deadline changes again (that notice fires);
    the retried one (with the older deadline) is dropped, not shown after the newer one. A
    retried one that still tells the current deadline fires."""
    switch = break_kind(monkeypatch, "deadline_changed")
    thread = await contract(node)
    await node.tick()
    status, body = await node.event("deadline.changed", thread, "e1", deadline=iso(T0 + 200 * H))
    assert status == 200, body
    await node.tick()
    failed = {r[0]: r[1] for r in await node.n.store.db.fetch(
        "SELECT user_id, id FROM notify_jobs WHERE state = 'failed'")}
    assert set(failed) == {"alice", "bob"}
    switch["on"] = False
    status, body = await node.event("deadline.changed", thread, "e2", deadline=iso(T0 + 300 * H))
    assert status == 200, body
    await node.tick()
    admin = node.token("ops", "admin")
    status, body = await node.http("POST", f"{FAILED}/{failed['bob']}/retry", admin)
    assert status == 200 and body["retried"] is True
    assert await node.tick() == 1
    row = await node.n.store.db.fetchrow("SELECT state, outcome FROM notify_jobs WHERE id = ?",
                                         failed["bob"])
    assert tuple(row) == ("dropped", "the deadline changed again")
    assert [k for k, _ in await inbox(node, "bob")].count("deadline_changed") == 1
    # alice's failed one, once it is current again (the deadline is moved back), fires
    status, body = await node.event("deadline.changed", thread, "e3", deadline=iso(T0 + 200 * H))
    assert status == 200, body
    await node.tick()
    status, body = await node.http("POST", f"{FAILED}/{failed['alice']}/retry", admin)
    assert status == 200 and body["retried"] is True
    assert await node.tick() == 1
    assert await node.n.store.db.fetchval("SELECT state FROM notify_jobs WHERE id = ?",
                                          failed["alice"]) == "done"


async def test_a_chat_digest_retry_waits_for_the_watchers_lock(node: NotifyNode) -> None:
    """PostgreSQL: while a watcher transaction holds the conversation's advisory lock (and
    inserts a newer pending digest), the retry of the failed digest waits; once the watcher
    commits, the retry sees the newer digest and is refused (409), so the user is not
    alerted twice. (SQLite has a single writer: nothing to race.)"""
    db = node.n.store.db
    if db.dialect != "postgres":
        pytest.skip("the advisory lock is PostgreSQL's")
    thread = await contract(node)
    group = f"chat:{thread}:bob"
    async with db.transaction() as tx:
        await repo.add_chat_job(tx, group, thread, "bob", T0 + HOUR, {"count": 1}, T0)
    old = await db.fetchval("SELECT id FROM notify_jobs WHERE group_key = ?", group)
    await db.execute("UPDATE notify_jobs SET state = 'failed', fired_at = ?, outcome = 'boom' "
                     "WHERE id = ?", T0, old)
    locked = asyncio.Event()
    release = asyncio.Event()

    async def watcher() -> None:
        async with db.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", group)
            locked.set()
            await release.wait()
            await repo.add_chat_job(tx, group, thread, "bob", T0 + HOUR, {"count": 1}, T0)

    w = asyncio.create_task(watcher())
    try:
        await locked.wait()
        retry = asyncio.create_task(node.http("POST", f"{FAILED}/{old}/retry",
                                              node.token("platform", "service")))
        done, _ = await asyncio.wait({retry}, timeout=0.5)
        assert not done, "the retry did not wait for the conversation's lock"
        release.set()
        await w
    finally:  # never leave the watcher's transaction open (the teardown would wait on it)
        release.set()
        with contextlib.suppress(Exception):
            await w
    status, body = await retry
    assert status == 409 and "newer pending digest" in body["error"]["message"], body
    assert await db.fetchval("SELECT state FROM notify_jobs WHERE id = ?", old) == "failed"
