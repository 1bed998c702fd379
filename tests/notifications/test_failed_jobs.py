"""Failed scheduler jobs over HTTP, both back ends: operators (service, admin) list the jobs
the scheduler marked ``failed`` (filters, pages, never a payload or a secret) and retry one;
a retry is idempotent, goes through the scheduler's usual checks, every input is validated
and a refused call changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from notifications import repo, scheduler
from notifications.rules import JobSpec
from tests.notifications.conftest import HOUR, T0, NotifyNode, contract

FAILED = "/v1/notifications/failed-jobs"
H = HOUR * 1_000_000
# what a failing job's error quotes: a push endpoint, an address, a device token
SECRET_URL = "https://push.example/wp/SUBSCRIPTION-SECRET-123"
SECRET_TOKEN = "ab" * 32
LEAKY = f"cannot word it for {SECRET_URL} bob@example.com {SECRET_TOKEN}"


def break_rendering(monkeypatch: pytest.MonkeyPatch,
                    broken: Callable[[str, dict[str, Any]], bool]) -> dict[str, bool]:
    """Jobs for which ``broken(kind, params)`` cannot be rendered (their notice text raises,
    quoting secrets) while the returned switch's ``on`` is true."""
    real = scheduler.notice_text
    switch = {"on": True}

    def text(kind: str, params: dict[str, Any], **kw: Any) -> tuple[str, str]:
        if switch["on"] and broken(kind, params):
            raise RuntimeError(LEAKY)
        return real(kind, params, **kw)

    monkeypatch.setattr(scheduler, "notice_text", text)
    return switch


async def jobs_table(node: NotifyNode) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await node.n.store.db.fetch(
        "SELECT id, state, due_at, attempts, outcome, fired_at, retried_at FROM notify_jobs "
        "ORDER BY id")]


async def notices(node: NotifyNode, kind: str) -> int:
    return await node.count("SELECT count(*) FROM notify_inbox WHERE kind = ?", kind)


async def test_operators_list_failed_jobs_with_filters_and_pages(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three jobs that could not be rendered on two threads are listed, most recently
    failed first, with id, kind, thread, user, due time, attempts and the last error - the
    error without the endpoint, address or token it quoted, and no payload; done jobs are
    not listed; kind and thread filter; pages of 2 give each job once."""
    break_rendering(monkeypatch, lambda kind, _: kind == "contract_concluded_worker")
    one = await contract(node)
    assert await node.tick() == 2  # the client's notice fires, the worker's fails
    node.clock.advance(60)
    two = await contract(node)
    three = await contract(node)
    await node.tick()
    rows = await node.n.store.db.fetch(
        "SELECT id, thread_id FROM notify_jobs WHERE state = 'failed' ORDER BY fired_at, id")
    assert {r[1] for r in rows} == {one, two, three}
    admin, service = node.token("ops", "admin"), node.token("platform", "service")
    status, body = await node.http("GET", FAILED, admin)
    assert status == 200, body
    got = body["failed_jobs"]
    assert {j["id"] for j in got} == {r[0] for r in rows} and body["next"] is None
    assert got[-1]["thread"] == one  # failed first, listed last
    first = got[0]
    assert set(first) == {"id", "kind", "thread", "user", "due_at", "state", "attempts",
                          "error", "outcome", "failed_at", "created_at", "retried_at"}
    assert first["kind"] == "contract_concluded_worker" and first["user"] == "bob"
    assert first["state"] == "failed" and first["attempts"] == 1
    assert first["due_at"] and first["failed_at"] and first["retried_at"] is None
    assert "RuntimeError" in first["error"] and "https://push.example/…" in first["error"]
    assert "b…@example.com" in first["error"]
    text = str(body)
    assert "SUBSCRIPTION-SECRET" not in text and SECRET_TOKEN not in text
    assert "bob@example.com" not in text and "payload" not in text
    # filters
    for query, n in (("kind=contract_concluded_worker", 3), ("kind=chat", 0),
                     (f"thread={one}", 1), (f"thread={two}&kind=contract_concluded_worker", 1),
                     (f"thread={three}&kind=overdue", 0), ("thread=t_nope", 0)):
        status, body = await node.http("GET", f"{FAILED}?{query}", service)
        assert status == 200 and len(body["failed_jobs"]) == n, (query, body)
    # pages: most recently failed first, each once
    assert await node.pages(FAILED, "failed_jobs", admin) == [j["id"] for j in got]


async def test_failed_jobs_are_for_operators_and_refused_calls_change_nothing(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token: 401; a user or a moderator: 403 (both routes); bad query parameters and
    bad ids: 400; an unknown id: 404; a job that is done or pending and never failed: 409.
    Afterwards every job is exactly as it was and nothing was fired."""
    break_rendering(monkeypatch, lambda kind, _: kind == "contract_concluded_worker")
    thread = await contract(node)
    await node.tick()
    failed = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE state = 'failed'")
    done = await node.n.store.db.fetchval("SELECT id FROM notify_jobs WHERE state = 'done'")
    pending = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE state = 'pending' ORDER BY due_at LIMIT 1")
    assert failed and done and pending
    before = await jobs_table(node)
    await node.refuses_non_operators(FAILED, f"{FAILED}/{failed}/retry")
    await node.refuses_bad_input(
        FAILED, [("kind=", "kind"), ("kind=Chat", "kind"), ("kind=a%00b", "kind"),
                 ("kind=" + "k" * 65, "kind"), ("thread=", "thread"),
                 ("thread=" + "t" * 129, "thread"), ("thread=a%00b", "thread")],
        FAILED + "/{}/retry", unknown="j_nope")
    admin = node.token("ops", "admin")
    for jid, state in ((done, "done"), (pending, "pending")):
        status, body = await node.http("POST", f"{FAILED}/{jid}/retry", admin)
        assert status == 409 and body["error"]["code"] == "conflict", body
        assert state in body["error"]["message"]
    assert await jobs_table(node) == before
    assert await notices(node, "contract_concluded_worker") == 0
    assert thread


async def test_a_retry_fires_once_and_a_repeat_does_nothing_new(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A job whose write failed 3 times (attempts 3) is retried: pending, due now, attempts
    0, logged with the operator; a repeat while it is pending changes nothing and answers
    ``retried: false``; the scheduler then fires it once; a repeat after that still changes
    nothing, fires nothing, and the job no longer shows as failed."""
    thread = await contract(node)
    await node.tick()
    async with node.n.store.db.transaction() as tx:
        await repo.insert_jobs(tx, thread, "w", [JobSpec("rating_request", "bob", T0 - 1, {})],
                               T0 - 10)
    jid = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE dedupe_key LIKE 'w:%'")
    real = repo.insert_notices
    refuse = {"on": True}

    async def refusing(tx: Any, rows: Any) -> None:
        if refuse["on"] and any(r[2] == jid for r in rows):
            raise RuntimeError("the database refused the row")
        await real(tx, rows)

    monkeypatch.setattr(repo, "insert_notices", refusing)
    for _ in range(3):
        await node.tick()
    service = node.token("platform", "service")
    status, body = await node.http("GET", FAILED, service)
    assert status == 200 and [j["id"] for j in body["failed_jobs"]] == [jid]
    assert body["failed_jobs"][0]["attempts"] == 3
    assert "refused" in body["failed_jobs"][0]["error"]
    refuse["on"] = False  # the database takes it again
    node.clock.advance(600)
    caplog.set_level(logging.INFO, logger="tsunagu.notify.http")
    status, body = await node.http("POST", f"{FAILED}/{jid}/retry", service)
    assert status == 200, body
    assert body["retried"] is True
    job = body["job"]
    assert job["state"] == "pending" and job["attempts"] == 0 and job["failed_at"] is None
    assert job["retried_at"] and job["due_at"] == job["retried_at"]  # due now
    assert "refused" in job["error"]  # the last error, until it fires
    assert any(jid in r.getMessage() and "platform" in r.getMessage()
               for r in caplog.records), caplog.records
    row = await node.n.store.db.fetchrow(
        "SELECT state, due_at, attempts FROM notify_jobs WHERE id = ?", jid)
    assert tuple(row) == ("pending", node.clock.now_us(), 0)
    # a retry of the call (the answer was lost, a double click): nothing new
    table = await jobs_table(node)
    node.clock.advance(5)
    status, again = await node.http("POST", f"{FAILED}/{jid}/retry", service)
    assert status == 200 and again["retried"] is False and again["job"] == job
    assert await jobs_table(node) == table
    status, body = await node.http("GET", FAILED, service)
    assert status == 200 and body["failed_jobs"] == []
    # the scheduler fires it, once
    assert await node.tick() == 1
    assert await notices(node, "rating_request") == 1
    status, again = await node.http("POST", f"{FAILED}/{jid}/retry", node.token("ops", "admin"))
    assert status == 200 and again["retried"] is False
    assert again["job"]["state"] == "done" and again["job"]["outcome"] == "fired"
    assert again["job"]["error"] is None
    assert await node.tick() == 0
    assert await notices(node, "rating_request") == 1


async def test_a_retried_job_still_goes_through_the_schedulers_checks(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 72 h deadline reminder that failed, retried once the 24 h one is due, is dropped as
    stale (the 24 h one fires); a "contract concluded" that failed, retried after the
    contract was cancelled, is dropped: neither writes a notice."""
    switch = break_rendering(
        monkeypatch, lambda kind, p: (kind == "deadline_reminder" and p.get("hours") in (72, "72"))
        or kind == "contract_concluded_worker")
    thread = await contract(node, deadline_h=100)
    await node.tick()
    status, _ = await node.event("deposit.paid", thread)
    assert status == 200
    await node.tick()
    assert await node.at(T0 + 28 * H) == 1  # the 72 h reminder: fails
    reminder = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE kind = 'deadline_reminder' AND state = 'failed'")
    assert reminder
    switch["on"] = False
    await node.at(T0 + 90 * H)  # the 24 h reminder fires
    admin = node.token("ops", "admin")
    status, body = await node.http("POST", f"{FAILED}/{reminder}/retry", admin)
    assert status == 200 and body["retried"] is True
    assert await node.tick() == 1
    row = await node.n.store.db.fetchrow("SELECT state, outcome FROM notify_jobs WHERE id = ?",
                                         reminder)
    assert row[0] == "dropped" and "stale" in row[1] and "72" in row[1]
    assert await node.count("SELECT count(*) FROM notify_inbox WHERE job_id = ?",
                            reminder) == 0
    assert await notices(node, "deadline_reminder") == 1  # the 24 h one only
    # a cancelled contract's job does nothing
    switch["on"] = True
    other = await contract(node, deadline_h=200)
    await node.tick()
    concluded = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE thread_id = ? AND state = 'failed'", other)
    assert concluded
    switch["on"] = False
    status, _ = await node.event("contract.cancelled", other)
    assert status == 200
    await node.tick()
    status, body = await node.http("POST", f"{FAILED}/{concluded}/retry", admin)
    assert status == 200 and body["retried"] is True
    assert await node.tick() == 1
    row = await node.n.store.db.fetchrow("SELECT state, outcome FROM notify_jobs WHERE id = ?",
                                         concluded)
    assert tuple(row) == ("dropped", "contract is cancelled")
    assert await notices(node, "contract_concluded_worker") == 0
    status, body = await node.http("POST", f"{FAILED}/{concluded}/retry", admin)
    assert status == 200 and body["retried"] is False
    assert body["job"]["outcome"] == "contract is cancelled"


async def test_a_failed_chat_digest_is_not_retried_beside_a_newer_one(node: NotifyNode) -> None:
    """A conversation has one pending chat digest at a time (the watcher adds to it): a
    failed digest whose conversation has a newer pending one is refused (409; the newer one
    alerts the user), so the user is not alerted twice; once none is pending, it may be."""
    thread = await contract(node)
    group = f"chat:{thread}:bob"
    async with node.n.store.db.transaction() as tx:
        await repo.add_chat_job(tx, group, thread, "bob", T0 + HOUR, {"messages": []}, T0)
    [old] = await node.n.store.db.fetch("SELECT id FROM notify_jobs WHERE group_key = ?", group)
    await node.n.store.db.execute(
        "UPDATE notify_jobs SET state = 'failed', fired_at = ?, outcome = 'boom' WHERE id = ?",
        T0, old[0])
    async with node.n.store.db.transaction() as tx:
        await repo.add_chat_job(tx, group, thread, "bob", T0 + HOUR, {"messages": []}, T0)
    service = node.token("platform", "service")
    before = await jobs_table(node)
    status, body = await node.http("POST", f"{FAILED}/{old[0]}/retry", service)
    assert status == 409 and body["error"]["code"] == "conflict", body
    assert "newer pending digest" in body["error"]["message"]
    assert await jobs_table(node) == before
    await node.n.store.db.execute(
        "UPDATE notify_jobs SET state = 'done' WHERE group_key = ? AND state = 'pending'", group)
    status, body = await node.http("POST", f"{FAILED}/{old[0]}/retry", service)
    assert status == 200 and body["retried"] is True, body
