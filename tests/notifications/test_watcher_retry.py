"""A retried send (a duplicate: answered with the stored message, published again to repair
a lost publish) is not a new message for chat alerts: the offline recipient's digest counts
it once, on one node or across two (the retry answered by another node)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from notifications.scheduler import ManualClock
from tests.conftest import Backend, make_settings
from tests.notifications.conftest import EVENT_SECRET, T0, NotifyNode, contract
from tests.support import Client

S = 1_000_000


async def chat_jobs(node: NotifyNode) -> list[tuple[str, dict[str, Any]]]:
    rows = await node.n.store.db.fetch(
        "SELECT user_id, payload FROM notify_jobs WHERE kind = 'chat' ORDER BY user_id")
    return [(r[0], orjson.loads(r[1])) for r in rows]


async def chat_notices(node: NotifyNode, user: str) -> list[dict[str, Any]]:
    status, body = await node.http("GET", "/v1/notifications", node.token(user))
    assert status == 200, body
    return [n for n in body["notifications"] if n["kind"] == "chat"]


async def test_a_retried_send_is_not_counted_twice(node: NotifyNode) -> None:
    thread = await contract(node, client_name="田中")
    await node.tick()
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    try:
        first = await alice.send(thread, "納品しました", cmid="c-1")
        assert first["duplicate"] is False
        await node.n.watcher.flush()  # the first attempt's alert is buffered and written
        retry = await alice.send(thread, "納品しました", cmid="c-1")
        assert retry["duplicate"] is True and retry["message"]["id"] == first["message"]["id"]
        await node.n.watcher.flush()
        [(user, payload)] = await chat_jobs(node)
        assert user == "bob" and payload["count"] == 1, payload
        assert await node.at(T0 + 61 * S) == 1
        [notice] = await chat_notices(node, "bob")
        assert notice["data"]["count"] == 1
        # once the digest was sent, a late retry does not make a second alert either
        late = await alice.send(thread, "納品しました", cmid="c-1")
        assert late["duplicate"] is True
        await node.n.watcher.flush()
        assert await node.at(T0 + 200 * S) == 0
        assert len(await chat_notices(node, "bob")) == 1
    finally:
        await alice.close()


async def test_a_retry_answered_by_another_node_is_not_counted_again(
        backend: Backend, tmp_path: Any) -> None:
    if not backend.production:
        pytest.skip("two nodes share a database on PostgreSQL")
    settings = make_settings(backend, tmp_path, notify_event_secret=EVENT_SECRET)
    a = await NotifyNode(settings, ManualClock(T0)).start()
    b = await NotifyNode(settings, ManualClock(T0)).start()
    alice_a = alice_b = None
    try:
        thread = await contract(a, client_name="田中")
        await a.tick()
        alice_a = await Client(a.ws_url, a.token("alice", "client")).connect()
        alice_b = await Client(b.ws_url, b.token("alice", "client")).connect()
        first = await alice_a.send(thread, "納品しました", cmid="c-1")
        await a.n.watcher.flush()
        # the connection to a dropped; the retry reaches b
        retry = await alice_b.send(thread, "納品しました", cmid="c-1")
        assert retry["duplicate"] is True and retry["message"]["id"] == first["message"]["id"]
        await b.n.watcher.flush()
        await a.n.watcher.flush()
        [(user, payload)] = await chat_jobs(a)
        assert user == "bob" and payload["count"] == 1, payload
    finally:
        for c in (alice_a, alice_b):
            if c is not None:
                await c.close()
        await b.stop()
        await a.stop()


async def test_a_digest_that_fires_while_a_message_is_added_does_not_lose_it(
        node: NotifyNode, monkeypatch: Any) -> None:
    """The watcher read the pending digest job; the scheduler fired it before the watcher
    added the new message to it: the message gets a new job instead of being lost."""
    from notifications import repo

    thread = await contract(node, client_name="田中")
    await node.tick()
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    try:
        await alice.send(thread, "一通目")
        await node.n.watcher.flush()
        real = repo.chat_job

        async def fired_meanwhile(tx: Any, group: str, *args: Any) -> Any:
            got = await real(tx, group, *args)
            if got is not None:  # the scheduler's commit lands between read and update
                await tx.execute("UPDATE notify_jobs SET state = 'done' WHERE id = ?", got[0])
            return got

        monkeypatch.setattr(repo, "chat_job", fired_meanwhile)
        second = await alice.send(thread, "二通目")
        await node.n.watcher.flush()
    finally:
        await alice.close()
    rows = await node.n.store.db.fetch(
        "SELECT payload FROM notify_jobs WHERE kind = 'chat' AND state = 'pending'")
    assert len(rows) == 1
    payload = orjson.loads(rows[0][0])
    assert payload["count"] == 1 and payload["last_seq"] == second["message"]["seq"]
