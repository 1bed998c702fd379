"""The scheduler on a manual clock, both back ends: times, reschedule, cancel, catch-up,
quiet hours, digests, the in-app notice over a real WebSocket; two nodes on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat.fanout import LocalFanOut
from chat.store import open_store
from notifications import repo
from notifications.rules import JobSpec
from notifications.scheduler import ManualClock, Scheduler, SchedulerConfig
from tests.conftest import Backend, make_settings
from tests.notifications.conftest import HOUR, T0, NotifyNode, contract, iso
from tests.support import Client, migrate

H = HOUR * 1_000_000


async def inbox(node: NotifyNode, user: str, **q: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in q.items())
    status, body = await node.http("GET", f"/v1/notifications?{query}", node.token(user))
    assert status == 200, body
    return dict(body)


async def kinds(node: NotifyNode, user: str) -> list[str]:
    return [n["kind"] for n in (await inbox(node, user))["notifications"]]


async def test_reminders_reschedule_cancel_and_live_frames(node: NotifyNode) -> None:
    bob = await Client(node.ws_url, node.token("bob", "worker")).connect()
    thread = await contract(node, deadline_h=100)
    assert await node.tick() == 2  # the two "contract concluded" notices
    frame = await bob.push("notification")
    assert frame["notification"]["kind"] == "contract_concluded_worker"
    assert frame["unread"] == 1 and "仮払い" in frame["notification"]["body"]
    # deposit paid one hour later: the unpaid reminders are cancelled in the same transaction
    await node.at(T0 + 1 * H)
    status, _ = await node.event("deposit.paid", thread)
    assert status == 200
    await node.tick()
    assert (await bob.push("notification"))["notification"]["kind"] == "deposit_paid"
    await node.at(T0 + 24 * H)
    assert "deposit_unpaid" not in await kinds(node, "alice")
    assert "deposit_wait" not in await kinds(node, "bob")
    # the 72 h reminder: not a second early, then exactly at deadline - 72 h
    assert await node.at(T0 + 28 * H - 1) == 0
    assert await node.at(T0 + 28 * H) == 1
    first = (await bob.push("notification"))["notification"]
    assert first["kind"] == "deadline_reminder" and "72" in first["title"]
    # the deadline moves to T0 + 200 h: the old 24 h / 1 h / overdue never fire
    await node.at(T0 + 30 * H)
    status, body = await node.event("deadline.changed", thread,
                                    deadline=iso(T0 + 200 * H))
    assert status == 200 and body["cancelled"] == 4  # 24 h, 1 h, overdue x2
    await node.tick()
    await node.at(T0 + 100 * H)
    assert "overdue" not in await kinds(node, "alice")
    # new schedule: 72 h before the new deadline is T0 + 128 h
    assert await node.at(T0 + 128 * H) == 1
    got = (await bob.push("notification", where=lambda f: f["notification"]["kind"]
                          == "deadline_reminder"))["notification"]
    assert "6月9日 17:00" in got["body"]  # T0 + 200 h = 2026-06-09 08:00 UTC = 17:00 JST
    # cancellation drops everything pending for the thread
    status, body = await node.event("contract.cancelled", thread)
    assert status == 200 and body["cancelled"] == 4  # 24 h, 1 h, overdue x2
    await node.at(T0 + 1000 * H)
    assert await node.count("SELECT count(*) FROM notify_jobs WHERE state = 'pending'") == 0
    assert "overdue" not in await kinds(node, "bob")
    await bob.close()


async def test_catch_up_in_order_drops_stale_and_uses_user_zone(node: NotifyNode) -> None:
    status, _ = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"),
                                {"tz": "America/New_York", "locale": "en"})
    assert status == 200
    thread = await contract(node, deadline_h=80)
    await node.tick()
    status, _ = await node.event("deposit.paid", thread)
    assert status == 200
    await node.tick()
    bob = await Client(node.ws_url, node.token("bob", "worker")).connect()
    # the node is down from T0 until after the deadline, then catches up in due order
    assert await node.at(T0 + 90 * H) > 0
    got = [(await bob.push("notification"))["notification"] for _ in range(1)]
    # 72 h (T0+8h) fires late but before the deadline? No: at catch-up time the deadline has
    # passed, so every deadline reminder is stale and dropped; the overdue notice is sent.
    assert [g["kind"] for g in got] == ["overdue"]
    assert "(America/New_York)" in got[0]["body"] and "passed" in got[0]["title"].lower()
    dropped = await node.n.store.db.fetch(
        "SELECT kind, outcome FROM notify_jobs WHERE state = 'dropped' ORDER BY due_at")
    assert [d[0] for d in dropped].count("deadline_reminder") == 3
    assert all("stale" in d[1] for d in dropped if d[0] == "deadline_reminder")
    await bob.close()


async def test_catch_up_fires_in_due_order(node: NotifyNode) -> None:
    bob = await Client(node.ws_url, node.token("bob", "worker")).connect()
    threads = [await contract(node, deadline_h=200 + 10 * i) for i in range(3)]
    for t in threads:
        await node.event("deposit.paid", t)
    await node.tick()
    bob.drain_pushes()
    await asyncio.sleep(0.1)
    bob.drain_pushes()
    # down for a while: the three 72 h reminders are due at T0+128h, +138h, +148h
    await node.at(T0 + 150 * H)
    frames = [(await bob.push("notification"))["notification"] for _ in range(3)]
    assert [f["thread"] for f in frames] == threads
    await bob.close()


async def test_quiet_hours_defer_push_and_email_but_not_urgent(node: NotifyNode) -> None:
    status, _ = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"), {
        "email": "bob@example.com", "quiet_hours": {"start": "22:00", "end": "08:00"}})
    assert status == 200
    # 2026-06-01 14:00 UTC = 23:00 in Tokyo: quiet
    node.clock.set(T0 + 14 * H)
    thread = await contract(node, deadline_h=10)
    await node.tick()
    rows = await node.n.store.db.fetch(
        "SELECT n.kind, d.next_at FROM notify_deliveries d JOIN notify_inbox n "
        "ON n.id = d.notice_id WHERE d.user_id = 'bob'")
    assert rows == [("contract_concluded_worker", T0 + 23 * H)]  # 08:00 JST next day
    await node.event("deposit.paid", thread)
    await node.tick()
    # overdue at the deadline (T0 + 24 h = 09:00 JST: not quiet anyway); the 1 h reminder
    # at T0 + 23 h (08:00 JST) - make it quiet by moving the window
    status, _ = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"),
                                {"quiet_hours": {"start": "07:00", "end": "12:00"}})
    assert status == 200
    await node.at(T0 + 23 * H)
    rows = await node.n.store.db.fetch(
        "SELECT n.kind, d.next_at FROM notify_deliveries d JOIN notify_inbox n "
        "ON n.id = d.notice_id WHERE d.user_id = 'bob' AND n.kind = 'deadline_reminder'")
    assert rows == [("deadline_reminder", T0 + 23 * H)]  # urgent: 1 h before, not deferred
    rows = await node.n.store.db.fetch(
        "SELECT d.next_at FROM notify_deliveries d JOIN notify_inbox n ON n.id = d.notice_id "
        "WHERE d.user_id = 'bob' AND n.kind = 'deposit_paid'")
    assert rows == [(T0 + 23 * H,)]  # paid at 23:00 JST, deferred to 08:00 JST


async def test_chat_digest_one_notice_for_three_messages(node: NotifyNode) -> None:
    thread = await contract(node, client_name="田中")
    await node.tick()
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    for i in range(3):
        assert (await alice.send(thread, f"メッセージ {i}"))["type"] == "ok"
    await node.n.watcher.flush()
    assert await node.at(T0 + 30 * 1_000_000) == 0  # the digest window is 60 s
    assert await node.at(T0 + 61 * 1_000_000) == 1
    notes = (await inbox(node, "bob"))["notifications"]
    chat = [n for n in notes if n["kind"] == "chat"]
    assert len(chat) == 1 and chat[0]["title"] == "田中さんから3件の新しいメッセージ"
    assert chat[0]["data"]["count"] == 3
    # bob reads the thread in-app before the next digest fires: no duplicate notice
    await alice.send(thread, "もう一通")
    await node.n.watcher.flush()
    bob = await Client(node.ws_url, node.token("bob", "worker")).connect()
    ok = await bob.request({"type": "read", "thread": thread, "seq": 5})
    assert ok["type"] == "ok"
    await node.at(T0 + 200 * 1_000_000)
    notes = (await inbox(node, "bob"))["notifications"]
    assert [n["kind"] for n in notes].count("chat") == 1
    outcome = await node.n.store.db.fetchval(
        "SELECT outcome FROM notify_jobs WHERE kind = 'chat' AND state = 'dropped'")
    assert outcome == "read in-app"
    # online users get no chat alert at all
    await alice.send(thread, "online now")
    await node.n.watcher.flush()
    assert await node.count("SELECT count(*) FROM notify_jobs WHERE kind = 'chat' AND "
                            "state = 'pending'") == 0
    await alice.close()
    await bob.close()


async def test_chat_alerts_remember_participants_until_they_change(node: NotifyNode) -> None:
    """Under load the watcher would read every thread's participants again at every flush:
    it remembers them, and a participant added (or a title changed) is seen by the next
    flush through the change's fan-out event, so the newcomer's chat alert is not missed."""
    watcher = node.n.watcher
    reads: list[list[str]] = []
    read = watcher._read_members

    async def counted(threads: list[str]) -> Any:
        reads.append(threads)
        return await read(threads)

    watcher._read_members = counted  # type: ignore[method-assign]
    thread = await contract(node, client_name="田中")
    await node.tick()
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    try:
        await alice.send(thread, "最初のメッセージ")
        await watcher.flush()
        await alice.send(thread, "二通目")
        await watcher.flush()
        assert reads == [[thread]]  # the second flush used what the first one read
        status, _ = await node.http("POST", f"/v1/threads/{thread}/participants",
                                    node.token("platform", "service"),
                                    {"user_id": "carol", "role": "member"})
        assert status == 200
        await alice.send(thread, "キャロルさんも参加しました")
        await watcher.flush()
        assert reads == [[thread], [thread]]  # read again after the change
        jobs = await node.n.store.db.fetch(
            "SELECT user_id FROM notify_jobs WHERE kind = 'chat' AND state = 'pending' "
            "ORDER BY user_id")
        assert [r[0] for r in jobs] == ["bob", "carol"]  # the newcomer is alerted too
    finally:
        await alice.close()


async def test_inbox_read_unread_archive_and_counts(node: NotifyNode) -> None:
    await contract(node)
    await node.tick()
    box = await inbox(node, "bob")
    assert box["unread"] == 1 and box["unseen"] == 1
    nid = box["notifications"][0]["id"]
    tok = node.token("bob")
    status, body = await node.http("POST", "/v1/notifications/seen", tok)
    assert body == {"unread": 1, "unseen": 0}
    status, body = await node.http("POST", f"/v1/notifications/{nid}/read", tok)
    assert status == 200 and body["unread"] == 0 and body["notification"]["read"] is True
    status, body = await node.http("POST", f"/v1/notifications/{nid}/unread", tok)
    assert body["unread"] == 1
    status, body = await node.http("POST", f"/v1/notifications/{nid}/archive", tok)
    assert body["unread"] == 0 and (await inbox(node, "bob"))["notifications"] == []
    assert len((await inbox(node, "bob", state="archived"))["notifications"]) == 1
    status, _ = await node.http("POST", f"/v1/notifications/{nid}/read", node.token("alice"))
    assert status == 404  # not hers


async def test_two_schedulers_fire_each_job_exactly_once(backend: Backend, tmp_path: Any
                                                         ) -> None:
    if not backend.production:
        pytest.skip("two writers need PostgreSQL (SQLite has one writer by design)")
    settings = make_settings(backend, tmp_path)
    await migrate(settings)
    stores = [open_store(settings) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        clock = ManualClock(T0)
        specs = [JobSpec("chat", f"u{i % 50}", T0 - i, {"count": 1, "sender": "x",
                                                        "last_seq": 1, "title": "t"}, slot=str(i))
                 for i in range(600)]
        async with stores[0].db.transaction() as tx:
            await repo.insert_jobs(tx, "t_x", "bench", specs, T0 - 10**9)
        scheds = [Scheduler(s.db, LocalFanOut(), clock, SchedulerConfig(batch=25))
                  for s in stores]
        claimed = await asyncio.gather(*(s.run_until_idle() for s in scheds))
        assert sum(claimed) == 600
        assert all(s.fired > 0 for s in scheds)  # both took part
        db = stores[0].db
        assert await db.fetchval("SELECT count(*) FROM notify_inbox") == 600
        assert await db.fetchval("SELECT count(DISTINCT job_id) FROM notify_inbox") == 600
        assert await db.fetchval("SELECT count(*) FROM notify_jobs WHERE state = 'done'") == 600
    finally:
        for s in stores:
            await s.close()


async def test_a_job_that_cannot_be_rendered_does_not_stop_the_others(node: NotifyNode
                                                                      ) -> None:
    """Bad rows already in the schedule (a deadline no zone can show, a payload that does
    not parse) are marked failed with the reason; every other notice of the batch fires."""
    status, _ = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"),
                                {"tz": "America/New_York"})
    assert status == 200
    thread = await contract(node)
    await node.tick()
    year_one = -62135596800 * 10**6
    async with node.n.store.db.transaction() as tx:
        # (the contract's deadline too: a "deadline changed" to another deadline than the
        # contract's is superseded, and dropped before it is rendered)
        await tx.execute("UPDATE notify_contracts SET deadline = ? WHERE thread_id = ?",
                         year_one, thread)
        await repo.insert_jobs(tx, thread, "legacy", [
            JobSpec("deadline_changed", "bob", T0 - 3, {"deadline": year_one}),
            JobSpec("chat", "bob", T0 - 2, {"count": "many", "sender": "x", "last_seq": 99}),
            JobSpec("deposit_requested", "alice", T0 - 1, {}),
        ], T0 - 10)
    assert await node.tick() == 3
    rows = dict(await node.n.store.db.fetch(
        "SELECT kind, state FROM notify_jobs WHERE dedupe_key LIKE 'legacy:%'"))
    assert rows == {"deadline_changed": "done", "chat": "failed", "deposit_requested": "done"}
    outcome = await node.n.store.db.fetchval(
        "SELECT outcome FROM notify_jobs WHERE kind = 'chat' AND state = 'failed'")
    assert "ValueError" in outcome
    assert "deposit_requested" in await kinds(node, "alice")
    assert node.n.scheduler.failed == 1
    # later jobs are not held back either
    await node.event("deposit.paid", thread)
    assert await node.tick() == 1
    assert "deposit_paid" in await kinds(node, "bob")


async def test_a_batch_whose_write_fails_is_fired_job_by_job(node: NotifyNode,
                                                             monkeypatch: Any) -> None:
    """If the batch's transaction fails, its jobs are fired one per transaction: the job
    that cannot be written is retried, then marked failed; the others fire."""
    thread = await contract(node)
    await node.tick()
    async with node.n.store.db.transaction() as tx:
        await repo.insert_jobs(tx, thread, "w", [
            JobSpec("deposit_requested", "alice", T0 - 2, {"poison": True}),
            JobSpec("rating_request", "bob", T0 - 1, {}),
        ], T0 - 10)
    real = repo.insert_notices

    async def refuse_poison(tx: Any, rows: Any) -> None:
        if any("poison" in r[2] or r[2] == poison for r in rows):
            raise RuntimeError("the database refused the row")
        await real(tx, rows)

    poison = await node.n.store.db.fetchval(
        "SELECT id FROM notify_jobs WHERE dedupe_key LIKE 'w:deposit_requested%'")
    monkeypatch.setattr(repo, "insert_notices", refuse_poison)

    async def states() -> tuple[dict[str, str], str]:
        """The test's jobs' states by kind, and the poisoned job's outcome."""
        db = node.n.store.db
        state = dict(await db.fetch(
            "SELECT kind, state FROM notify_jobs WHERE dedupe_key LIKE 'w:%'"))
        return state, await db.fetchval("SELECT outcome FROM notify_jobs WHERE id = ?", poison)

    await node.tick()
    state, outcome = await states()
    assert state == {"deposit_requested": "pending", "rating_request": "done"}
    assert outcome.startswith("attempt 1 failed")  # a passing database error gets retries
    await node.tick()
    await node.tick()
    state, outcome = await states()
    assert state == {"deposit_requested": "failed", "rating_request": "done"}
    assert "refused" in outcome


async def test_catch_up_sends_one_reminder_worded_with_the_real_time_left(
        node: NotifyNode) -> None:
    """Down from T0 until 2 h before the deadline: not "72 h" and "24 h left" together, but
    one reminder saying 2 hours; the 1 h reminder then fires on time."""
    bob = await Client(node.ws_url, node.token("bob", "worker")).connect()
    thread = await contract(node, deadline_h=100)
    await node.event("deposit.paid", thread)
    await node.tick()
    await asyncio.sleep(0.1)
    bob.drain_pushes()
    await node.at(T0 + 98 * H)
    got = (await bob.push("notification", where=lambda f: f["notification"]["kind"]
                          == "deadline_reminder"))["notification"]
    assert got["title"].startswith("納期まであと2時間"), got
    assert got["data"]["hours"] == 2
    await asyncio.sleep(0.1)
    assert [k for k in await kinds(node, "bob")].count("deadline_reminder") == 1
    dropped = await node.n.store.db.fetch(
        "SELECT outcome FROM notify_jobs WHERE kind = 'deadline_reminder' AND state = 'dropped'")
    assert len(dropped) == 1 and "stale" in dropped[0][0] and "72" in dropped[0][0]
    assert await node.at(T0 + 99 * H) == 1
    last = (await bob.push("notification", where=lambda f: f["notification"]["kind"]
                           == "deadline_reminder"))["notification"]
    assert last["title"].startswith("納期まであと1時間")
    await bob.close()


async def test_a_first_fire_gets_the_full_check_and_drops_overtaken_notices(
        node: NotifyNode) -> None:
    """The scheduler was down while events overtook the notices they had scheduled: when it
    fires them for the first time (not a retry), each is checked with the same full rules as
    a retried job or a held copy (rules.still_applies), so "please pay" / "do not start yet"
    after the deposit was paid, a "deadline changed" superseded by a later change and a
    "please review" once a correction was asked for are dropped with the reason, never
    shown."""
    thread = await contract(node, deadline_h=100)
    for type_, eid, data in (
            ("deposit.requested", "e0", {}),
            ("deposit.paid", "e1", {}),
            ("deadline.changed", "e2", {"deadline": iso(T0 + 200 * H)}),
            ("deadline.changed", "e3", {"deadline": iso(T0 + 300 * H)}),
            ("delivery.submitted", "e4", {}),
            ("correction.requested", "e5", {})):
        status, body = await node.event(type_, thread, eid, **data)
        assert status == 200, body
    await node.tick()
    rows = await node.n.store.db.fetch(
        "SELECT kind, user_id, state, outcome, payload FROM notify_jobs "
        "WHERE state IN ('done', 'dropped')")
    got = sorted((r[0], r[1], r[2], r[3]) for r in rows if r[0] != "deadline_changed")
    assert got == [
        ("contract_concluded_client", "alice", "dropped", "deposit is paid"),
        ("contract_concluded_worker", "bob", "dropped", "deposit is paid"),
        ("correction_requested", "bob", "done", "fired"),
        ("deposit_paid", "bob", "done", "fired"),
        ("deposit_requested", "alice", "dropped", "deposit is paid"),
        ("review_request", "alice", "dropped", "contract is active"),
    ]
    changed = sorted((r[1], r[2], r[3], "T0 + 300" if str(T0 + 300 * H) in r[4] else "200")
                     for r in rows if r[0] == "deadline_changed")
    assert changed == [("alice", "done", "fired", "T0 + 300"),
                       ("alice", "dropped", "the deadline changed again", "200"),
                       ("bob", "done", "fired", "T0 + 300"),
                       ("bob", "dropped", "the deadline changed again", "200")]
    assert await kinds(node, "alice") == ["deadline_changed"]
    assert sorted(await kinds(node, "bob")) == ["correction_requested", "deadline_changed",
                                                "deposit_paid"]
    # nothing dropped was stored in-app (nor queued for push or e-mail)
    assert await node.count(
        "SELECT count(*) FROM notify_inbox WHERE kind IN ('contract_concluded_client', "
        "'contract_concluded_worker', 'deposit_requested', 'review_request')") == 0
