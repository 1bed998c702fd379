"""POST /v1/events on both back ends: system message, stage, idempotency, bad input."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.notifications.conftest import EVENT_SECRET, NotifyNode, contract, dumps, iso


async def _messages(node: NotifyNode, thread: str) -> list[dict]:  # type: ignore[type-arg]
    status, body = await node.http("GET", f"/v1/threads/{thread}/messages",
                                   node.token("platform", "service"))
    assert status == 200
    return list(body["messages"])


async def test_event_posts_system_message_and_sets_stage(node: NotifyNode) -> None:
    thread = await contract(node)
    msgs = await _messages(node, thread)
    assert len(msgs) == 1 and msgs[0]["kind"] == "system"
    assert msgs[0]["data"]["event"] == "contract.concluded"
    assert "仮払い" in msgs[0]["data"]["ja"] and "deposit" in msgs[0]["data"]["en"]
    status, body = await node.event("deposit.paid", thread, "e-paid")
    assert status == 200 and body["stage"] == "in_progress" and body["cancelled"] == 2
    status, t = await node.http("GET", f"/v1/threads/{thread}", node.token("platform", "service"))
    assert t["thread"]["stage"] == "in_progress"
    # the retry: same result, nothing new (no second system message, no new jobs)
    jobs = await node.count("SELECT count(*) FROM notify_jobs")
    status, again = await node.event("deposit.paid", thread, "e-paid")
    assert status == 200 and again["duplicate"] is True
    assert {k: v for k, v in again.items() if k != "duplicate"} == \
        {k: v for k, v in body.items() if k != "duplicate"}
    assert await node.count("SELECT count(*) FROM notify_jobs") == jobs
    assert len(await _messages(node, thread)) == 2
    # the same id for another event is a conflict
    status, err = await node.event("contract.cancelled", thread, "e-paid")
    assert status == 409, err


async def test_bad_input_is_4xx_and_nothing_half_applied(node: NotifyNode) -> None:
    thread = await contract(node)
    before = [await node.count(f"SELECT count(*) FROM {t}") for t in
              ("notify_events", "notify_jobs", "messages")]
    cases = [
        ({"id": "x1", "type": "contract.exploded", "thread": thread}, 400),
        ({"id": "x2", "type": "deadline.changed", "thread": thread, "data": {}}, 400),
        ({"id": "x3", "type": "deadline.changed", "thread": thread,
          "data": {"deadline": "tomorrow"}}, 400),
        ({"type": "deposit.paid", "thread": thread}, 400),
        ({"id": "x4", "type": "deposit.paid", "thread": "t_nope"}, 404),
        ({"id": "x5", "type": "contract.accepted", "thread": thread}, 409),  # not delivered
        ({"id": "x6", "type": "contract.concluded", "thread": thread,
          "data": {"client": "a", "worker": "b", "amount": 1,
                   "deadline": iso(node.clock.now_us() + 10**12)}}, 409),
    ]
    for doc, want in cases:
        status, body = await node.http("POST", "/v1/events", node.token("platform", "service"),
                                       doc)
        assert status == want, (doc, body)
        assert body["error"]["message"]
    # a client token may not post events
    status, _ = await node.http("POST", "/v1/events", node.token("alice", "client"),
                                {"id": "x7", "type": "deposit.paid", "thread": thread})
    assert status == 403
    after = [await node.count(f"SELECT count(*) FROM {t}") for t in
             ("notify_events", "notify_jobs", "messages")]
    assert after == before
    state = await node.n.store.db.fetchval(
        "SELECT deposit FROM notify_contracts WHERE thread_id = ?", thread)
    assert state == "requested"


async def test_signed_events_bad_signature_and_replay(node: NotifyNode) -> None:
    thread = await contract(node)
    body = dumps({"id": "s1", "type": "deposit.paid", "thread": thread})
    status, err = await node.signed_event(body, secret="wrong-" + "z" * 40)
    assert status == 401 and "signature" in err["error"]["message"]
    # a captured request replayed after the window is refused
    status, err = await node.signed_event(body, ts=int(time.time()) - 3600)
    assert status == 401 and "replay" in err["error"]["message"]
    # a tampered body with the original signature is refused
    ts = int(time.time())
    from notifications.events import sign

    status, err = await node.raw("/v1/events", body.replace(b"s1", b"s2"),
                                 {"X-Tsunagu-Timestamp": str(ts),
                                  "X-Tsunagu-Signature": sign(EVENT_SECRET, ts, body)})
    assert status == 401
    assert await node.count("SELECT count(*) FROM notify_events WHERE id IN ('s1', 's2')") == 0
    status, ok = await node.signed_event(body)
    assert status == 200 and ok["stage"] == "in_progress" and ok["duplicate"] is False
    status, again = await node.signed_event(body)
    assert status == 200 and again["duplicate"] is True


async def test_out_of_range_deadlines_are_refused_naming_the_field(node: NotifyNode) -> None:
    """A date no zone can show (year 1, year 9999) once stopped every notice for everyone:
    it is refused at intake, 400 naming the field, nothing written."""
    thread = await contract(node)
    before = await node.count("SELECT count(*) FROM notify_events")
    for i, value in enumerate(["0001-01-01T00:00:00Z", "9999-12-31T12:00Z",
                               "1999-12-31T23:59:59Z", "2201-01-02T00:00:00+09:00",
                               "0001-01-01T00:00:00+14:00"]):
        status, body = await node.event("deadline.changed", thread, f"bad-{i}", deadline=value)
        assert status == 400, (value, body)
        assert body["error"]["code"] == "bad_request"
        assert "data.deadline" in body["error"]["message"], body
        assert body["error"]["field"] == "data.deadline"
    other = await node.create_thread(("carol", "client"), ("dave", "worker"))
    status, body = await node.event("contract.concluded", other["id"], "bad-c", client="carol",
                                    worker="dave", amount=1, deadline="0001-01-01T00:00:00Z")
    assert status == 400 and body["error"]["field"] == "data.deadline"
    assert await node.count("SELECT count(*) FROM notify_events") == before
    status, _ = await node.event("deadline.changed", thread, "ok-1",
                                 deadline="2200-12-31T00:00:00Z")
    assert status == 200


async def _stage(node: NotifyNode, thread: str) -> str:
    status, t = await node.http("GET", f"/v1/threads/{thread}", node.token("platform", "service"))
    assert status == 200
    return str(t["thread"]["stage"])


async def test_a_retry_sets_the_stage_its_first_attempt_did_not(node: NotifyNode,
                                                                monkeypatch: Any) -> None:
    """The first attempt committed, then died before the stage was set: the retry (a
    duplicate) sets it."""
    from chat.errors import Unavailable

    thread = await contract(node)
    service = node.n.intake.service
    real = service.update_thread
    calls: list[str | None] = []

    async def fail_once(thread_id: str, **kw: Any) -> Any:
        calls.append(kw.get("stage"))
        if len(calls) == 1:
            raise Unavailable("the node went away")
        return await real(thread_id, **kw)

    monkeypatch.setattr(service, "update_thread", fail_once)
    status, _ = await node.event("deposit.paid", thread, "e-paid")
    assert status == 503
    assert await _stage(node, thread) == "deposit_pending"
    status, body = await node.event("deposit.paid", thread, "e-paid")
    assert status == 200 and body["duplicate"] is True
    assert await _stage(node, thread) == "in_progress"


async def test_events_finishing_out_of_order_leave_the_latest_stage(node: NotifyNode,
                                                                    monkeypatch: Any) -> None:
    """deposit.paid commits, but its stage is written after delivery.submitted finished:
    the thread ends at the contract's current stage (delivered), not the older one."""
    thread = await contract(node)
    service = node.n.intake.service
    real = service.update_thread
    release = asyncio.Event()
    blocked = asyncio.Event()

    async def slow_first(thread_id: str, **kw: Any) -> Any:
        if kw.get("stage") == "in_progress" and not release.is_set():
            blocked.set()
            await release.wait()
        return await real(thread_id, **kw)

    monkeypatch.setattr(service, "update_thread", slow_first)
    paid = asyncio.create_task(node.event("deposit.paid", thread, "e-paid"))
    await asyncio.wait_for(blocked.wait(), 10)
    status, body = await node.event("delivery.submitted", thread, "e-delivered")
    assert status == 200 and body["stage"] == "delivered"
    assert await _stage(node, thread) == "delivered"
    release.set()
    status, _ = await paid
    assert status == 200
    assert await _stage(node, thread) == "delivered"


async def test_two_concurrent_contracts_for_one_thread_schedule_once(node: NotifyNode
                                                                     ) -> None:
    """Two contract.concluded events with different ids at the same moment: one wins, the
    other is 409, and the notices are scheduled once."""
    thread = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    data = {"client": "alice", "worker": "bob", "amount": 1,
            "deadline": iso(node.clock.now_us() + 10**11)}
    results = await asyncio.gather(*(node.event("contract.concluded", thread, f"race-{i}",
                                                **data) for i in range(4)))
    assert sorted(s for s, _ in results) == [200, 409, 409, 409], results
    assert await node.count("SELECT count(*) FROM notify_events") == 1
    won = next(b for s, b in results if s == 200)
    assert await node.count("SELECT count(*) FROM notify_jobs") == won["scheduled"]


async def test_bad_values_are_400_not_5xx(node: NotifyNode) -> None:
    """NUL characters (PostgreSQL cannot store them), an amount past BIGINT, a time past
    the year 9999: each a 400 naming the field, nothing written."""
    thread = await contract(node)
    other = (await node.create_thread(("carol", "client"), ("dave", "worker")))["id"]
    good = {"client": "carol", "worker": "dave", "amount": 1,
            "deadline": iso(node.clock.now_us() + 10**11)}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": "n\x00ul", "type": "deposit.paid", "thread": thread}, "id"),
        ({"id": "nul-1", "type": "deposit.paid", "thread": thread + "\x00"}, "thread"),
        ({"id": "nul-2", "type": "contract.concluded", "thread": other,
          "data": {**good, "client": "car\x00ol"}}, "data.client"),
        ({"id": "nul-3", "type": "contract.concluded", "thread": other,
          "data": {**good, "worker": "da\x00ve"}}, "data.worker"),
        ({"id": "nul-4", "type": "contract.concluded", "thread": other,
          "data": {**good, "title": "ロゴ\x00制作"}}, "data.title"),
        ({"id": "big-1", "type": "contract.concluded", "thread": other,
          "data": {**good, "amount": 2**63}}, "data.amount"),
        ({"id": "big-2", "type": "contract.concluded", "thread": other,
          "data": {**good, "amount": 10**30}}, "data.amount"),
        ({"id": "y-1", "type": "deadline.changed", "thread": thread,
          "data": {"deadline": "9999-12-31T23:59:59-14:00"}}, "data.deadline"),
        ({"id": "y-2", "type": "deadline.changed", "thread": thread,
          "data": {"deadline": "+10000-01-01T00:00:00Z"}}, "data.deadline"),
    ]
    before = [await node.count(f"SELECT count(*) FROM {t}") for t in
              ("notify_events", "notify_jobs", "notify_contracts", "messages")]
    for doc, field in cases:
        status, body = await node.http("POST", "/v1/events", node.token("platform", "service"),
                                       doc)
        assert status == 400, (doc, body)
        assert body["error"]["field"] == field, (doc, body)
    after = [await node.count(f"SELECT count(*) FROM {t}") for t in
             ("notify_events", "notify_jobs", "notify_contracts", "messages")]
    assert after == before


async def test_non_ascii_signatures_and_quiet_hours_are_4xx(node: NotifyNode) -> None:
    thread = await contract(node)
    body = dumps({"id": "s1", "type": "deposit.paid", "thread": thread})
    ts = int(time.time())
    for signature in ("sha256=ｆｆ", "sha256=" + "é" * 64, "署名"):
        status, err = await node.raw("/v1/events", body, {
            "X-Tsunagu-Timestamp": str(ts),
            "X-Tsunagu-Signature": signature.encode().decode("latin-1")})
        assert status == 401, (signature, err)
        assert "signature" in err["error"]["message"]
    for start in ("²:00", "２２:００", "22:0\x00", "١٢:00", "24:00", "22:60", "2200"):
        status, err = await node.http("PUT", "/v1/notifications/preferences",
                                      node.token("bob"),
                                      {"quiet_hours": {"start": start, "end": "08:00"}})
        assert status == 400, (start, err)
        assert "HH:MM" in err["error"]["message"]
    status, prefs = await node.http("GET", "/v1/notifications/preferences", node.token("bob"))
    assert prefs["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    # an unsubscribe link whose signature is not ASCII: 403, not 500
    for s in ("%C3%A9" * 16, "%E7%BD%B2%E5%90%8D"):
        url = f"/v1/notifications/unsubscribe?u=bob&c=contract&s={s}"
        status, err = await node.raw(url, b"List-Unsubscribe=One-Click",
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403, err
        assert err["error"]["code"] == "forbidden"
