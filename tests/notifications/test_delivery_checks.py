"""What the delivery worker checks before it sends a push or e-mail copy: the notice still
applies (copies held for quiet hours or retries can be overtaken), the target still belongs
to the user, the lease is still this node's; held chat alerts coalesce into one digest."""

from __future__ import annotations

import asyncio
from typing import Any

from notifications.channels import SENT, Outgoing, Result
from notifications.delivery import DeliveryConfig, DeliveryWorker
from tests.notifications.conftest import (
    HOUR,
    T0,
    NotifyNode,
    contract,
    deliver,
    iso,
    register_all,
)
from tests.support import Client

H = HOUR * 1_000_000
S = 1_000_000
NIGHT = T0 + 14 * H  # 23:00 in Tokyo: inside the default quiet hours (22:00-08:00)
MORNING = T0 + 23 * H  # 08:00 in Tokyo: the held copies are released


async def quiet_bob(node: NotifyNode, peers: dict[str, Any]) -> None:
    await register_all(node, peers, "bob", "bob-browser")
    status, _ = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"),
                                {"quiet_hours": {"start": "22:00", "end": "08:00"}})
    assert status == 200


async def chat_at_night(node: NotifyNode, messages: int) -> str:
    """A contract thread; at NIGHT alice sends ``messages`` messages two minutes apart,
    each firing one chat digest for bob (held: quiet hours). The thread."""
    node.clock.set(NIGHT)
    thread = await contract(node, client_name="田中")
    await node.tick()
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    try:
        for i in range(messages):
            await alice.send(thread, f"メッセージ {i}")
            await node.n.watcher.flush()
            assert await node.at(NIGHT + (i + 1) * 120 * S) == 1
    finally:
        await alice.close()
    return thread


async def log_of(node: NotifyNode, kind: str, user: str = "bob") -> list[tuple[str, str]]:
    rows = await node.n.store.db.fetch(
        "SELECT l.state, l.detail FROM notify_delivery_log l JOIN notify_inbox n "
        "ON n.id = l.notice_id WHERE n.kind = ? AND n.user_id = ? ORDER BY l.at, l.id",
        kind, user)
    return [(r[0], r[1] or "") for r in rows]


async def test_held_copies_overtaken_by_later_events_are_skipped(pnode: NotifyNode,
                                                                 peers: dict[str, Any]) -> None:
    """At 23:00 the contract is concluded ("do not start yet", held to 08:00), then the
    deposit is paid ("you can start", held too) and the deadline moves after its 72 h
    reminder fired: at 08:00 only what still applies goes out."""
    await quiet_bob(pnode, peers)
    pnode.clock.set(NIGHT)
    thread = await contract(pnode, deadline_h=72.5)  # the 72 h reminder fires at 23:30
    await pnode.tick()
    await pnode.at(NIGHT + H // 2)
    status, _ = await pnode.event("deposit.paid", thread)
    assert status == 200
    status, _ = await pnode.event("deadline.changed", thread, deadline=iso(T0 + 200 * H))
    assert status == 200
    await pnode.tick()
    assert await pnode.n.delivery.run_until_idle() == 0  # all held
    pnode.clock.set(MORNING)
    await deliver(pnode)
    sent = sorted(m["data"]["kind"] for m in peers["fcm"].sent)
    assert sent == ["deadline_changed", "deposit_paid"]
    assert sorted(p["payload"]["kind"] for p in peers["push"].received) == sent
    for kind, why in (("contract_concluded_worker", "deposit is paid"),
                      ("deadline_reminder", "deadline changed")):
        states = await log_of(pnode, kind)
        skipped = [d for s, d in states if s == "skipped"]
        assert len(skipped) == 4 and all(why in d for d in skipped), states
        assert "sent" not in {s for s, _ in states}


async def test_a_held_chat_alert_is_skipped_once_the_thread_is_read(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    await quiet_bob(pnode, peers)
    pnode.clock.set(NIGHT)
    thread = await contract(pnode, client_name="田中")
    await pnode.tick()
    alice = await Client(pnode.ws_url, pnode.token("alice", "client")).connect()
    try:
        sent = await alice.send(thread, "夜分にすみません")
        await pnode.n.watcher.flush()
        assert await pnode.at(NIGHT + 61 * S) == 1  # the digest fires; its copies are held
        bob = await Client(pnode.ws_url, pnode.token("bob", "worker")).connect()
        ok = await bob.request({"type": "read", "thread": thread,
                                "seq": sent["message"]["seq"]})
        assert ok["type"] == "ok"
        await bob.close()
    finally:
        await alice.close()
    pnode.clock.set(MORNING)
    await deliver(pnode)
    assert [m for m in peers["fcm"].sent if m["data"]["kind"] == "chat"] == []
    states = await log_of(pnode, "chat")
    assert {s for s, _ in states} == {"queued", "skipped"}
    assert all("read in-app" in d for s, d in states if s == "skipped")


async def test_held_chat_alerts_coalesce_into_one_digest(pnode: NotifyNode,
                                                         peers: dict[str, Any]) -> None:
    """Three messages a few minutes apart at night: three digests fire (each after the
    previous one), their held copies go out at 08:00 as ONE "3 new messages"."""
    await quiet_bob(pnode, peers)
    await chat_at_night(pnode, 3)
    pnode.clock.set(MORNING)
    await deliver(pnode)
    chats = [m for m in peers["fcm"].sent if m["data"]["kind"] == "chat"]
    assert len(chats) == 1, chats
    assert chats[0]["notification"]["title"] == "田中さんから3件の新しいメッセージ"
    pushes = [p for p in peers["push"].received if p["payload"]["kind"] == "chat"]
    assert [p["payload"]["title"] for p in pushes] == ["田中さんから3件の新しいメッセージ"]
    apns = [p for p in peers["apns"].received if p["payload"]["kind"] == "chat"]
    assert len(apns) == 1
    states = await log_of(pnode, "chat")
    assert sum(1 for s, d in states if s == "skipped" and "coalesced" in d) == 6  # 2 x 3
    assert sum(1 for s, _ in states if s == "sent") == 3  # webpush, fcm, apns


async def test_a_target_registered_by_another_user_gets_no_held_copy(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """Bob's phone and browser are handed to Carol (she registers the same token and
    endpoint): bob's copies still queued are not sent to her devices."""
    await quiet_bob(pnode, peers)
    pnode.clock.set(NIGHT)
    await contract(pnode)
    await pnode.tick()
    sub = peers["push"].subscribe("bob-browser")  # the same endpoint, new keys
    tok = pnode.token("carol")
    status, _ = await pnode.http("POST", "/v1/notifications/webpush", tok, sub)
    assert status == 201
    for platform, token in (("fcm", "fcm-bob"), ("apns", "ab" * 32)):
        status, _ = await pnode.http("POST", "/v1/notifications/devices", tok,
                                     {"platform": platform, "token": token})
        assert status == 201
    pnode.clock.set(MORNING)
    await deliver(pnode)
    assert peers["fcm"].sent == [] and peers["apns"].received == []
    assert peers["push"].received == []
    db = pnode.n.store.db
    assert await db.fetchval("SELECT count(*) FROM notify_devices WHERE user_id = 'carol'") == 2
    assert await db.fetchval("SELECT count(*) FROM notify_webpush WHERE user_id = 'carol'") == 1
    rows = await db.fetch("SELECT channel, state, last_error FROM notify_deliveries "
                          "WHERE user_id = 'bob' AND channel <> 'email'")
    assert {r[1] for r in rows} == {"skipped"}
    assert all("another user" in r[2] for r in rows)


class FakeSender:
    """Answers ``result``; the first send runs ``hook`` first (another node acting)."""

    def __init__(self, result: Result, hook: Any = None) -> None:
        self.result = result
        self.hook = hook
        self.sent: list[str] = []

    async def send(self, out: Outgoing) -> Result:
        if self.hook is not None:
            hook, self.hook = self.hook, None
            await hook()
        self.sent.append(out.delivery_id)
        return self.result

    async def close(self) -> None:
        pass


async def six_deliveries(node: NotifyNode) -> None:
    for i in range(6):
        status, _ = await node.http("POST", "/v1/notifications/devices", node.token("bob"),
                                    {"platform": "fcm", "token": f"tok-{i}"})
        assert status == 201
    await contract(node)
    await node.tick()
    assert await node.count("SELECT count(*) FROM notify_deliveries") == 6


def worker(node: NotifyNode, sender: FakeSender) -> DeliveryWorker:
    return DeliveryWorker(node.n.store.db, {"fcm": sender}, node.clock, DeliveryConfig(
        batch=500, lease_s=60, concurrency=2, send_timeout_s=10))


async def test_an_outcome_is_recorded_only_by_the_node_that_holds_the_lease(
        node: NotifyNode) -> None:
    """A node whose lease ran out (it hung) must not overwrite what the node that took the
    rows over recorded."""
    await six_deliveries(node)
    other = FakeSender(SENT)
    b = worker(node, other)

    async def hang() -> None:
        node.clock.advance(3600)  # far beyond any lease
        assert await b.tick() == 6

    first = FakeSender(Result(False, "http 503", retry=True), hang)
    a = worker(node, first)
    await a.tick()
    assert len(other.sent) == 6
    states = await node.n.store.db.fetch("SELECT state, count(*) FROM notify_deliveries "
                                         "GROUP BY state")
    assert states == [("sent", 6)]
    log_states = {r[0] for r in await node.n.store.db.fetch(
        "SELECT state FROM notify_delivery_log")}
    assert log_states == {"queued", "sent"}
    assert a.lost_leases == 6


async def _mails_to(peers: dict[str, Any], rcpt: str) -> list[tuple[str, str]]:
    """(subject, text body) of the mails ``rcpt`` got so far (the SMTP server is async)."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    for _ in range(50):
        if any(rcpt in m.rcpt_tos for m in peers["mails"]):
            break
        await asyncio.sleep(0.05)
    out = []
    for m in peers["mails"]:
        if rcpt in m.rcpt_tos:
            msg = message_from_bytes(m.content)
            part = msg.get_body(("plain",)) if msg.is_multipart() else msg
            assert part is not None
            out.append((str(make_header(decode_header(msg["Subject"]))),
                        part.get_payload(decode=True).decode("utf-8")))
    return out


async def test_a_held_deadline_reminder_says_the_time_left_when_it_is_sent(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The 72 h reminder fires at 23:30 in Tokyo (quiet hours): its push and e-mail copies
    are held until 08:00, when 63.5 hours are left. They say "63", not "72", in the user's
    language, with the deadline in the user's zone; the in-app copy (stored at 23:30, when
    72 h were left) keeps its words."""
    await quiet_bob(pnode, peers)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("carol"), {
        "locale": "en", "email": "carol@example.com",
        "quiet_hours": {"start": "22:00", "end": "08:00"}})
    assert status == 200
    pnode.clock.set(NIGHT)
    await contract(pnode, deadline_h=72.5)  # deadline 2026-06-04 23:30 JST
    await contract(pnode, deadline_h=72.5, worker="carol")
    await pnode.tick()
    await pnode.at(NIGHT + H // 2)  # the 72 h reminders fire
    assert await pnode.n.delivery.run_until_idle() == 0  # all held until 08:00
    status, body = await pnode.http("GET", "/v1/notifications", pnode.token("bob"))
    [stored] = [n for n in body["notifications"] if n["kind"] == "deadline_reminder"]
    assert stored["title"] == "納期まであと72時間: ロゴ制作" and stored["data"]["hours"] == 72

    pnode.clock.set(MORNING)
    await deliver(pnode)
    [fcm] = [m for m in peers["fcm"].sent if m["data"]["kind"] == "deadline_reminder"]
    assert fcm["notification"]["title"] == "納期まであと63時間: ロゴ制作", fcm
    assert "6月4日 23:30" in fcm["notification"]["body"]
    [push] = [p["payload"] for p in peers["push"].received
              if p["payload"]["kind"] == "deadline_reminder"]
    assert push["title"] == "納期まであと63時間: ロゴ制作"
    [apns] = [a for a in peers["apns"].received if a["payload"]["kind"] == "deadline_reminder"]
    assert apns["payload"]["aps"]["alert"]["title"] == "納期まであと63時間: ロゴ制作"
    mails = [m for m in await _mails_to(peers, "bob@example.com") if "納期" in m[0]]
    assert [s for s, _ in mails] == ["納期まであと63時間: ロゴ制作"]
    [(subject, text)] = [m for m in await _mails_to(peers, "carol@example.com")
                         if "deadline" in m[0]]
    assert subject == "63 h to the deadline: ロゴ制作"
    assert "2026-06-04 23:30 (Asia/Tokyo)" in text
    assert "72" not in subject + text


async def test_a_held_deadline_reminder_that_the_next_one_overtook_is_dropped(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """Quiet hours of 23.5 h (22:00-21:30): the 24 h reminder fires at 22:00 and is held
    until 21:30 next day, 30 min before the deadline, when the 1 h reminder (urgent, not
    held) has been sent: the held copy is stale and skipped, not sent as "24 h" or as a
    second reminder."""
    await register_all(pnode, peers, "bob", "bob-browser")
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"quiet_hours": {"start": "22:00", "end": "21:30"}})
    assert status == 200
    await contract(pnode, deadline_h=37)  # T0 = 09:00 JST; deadline 22:00 JST next day
    await pnode.tick()
    await pnode.at(T0 + 13 * H)  # 22:00 JST: the 24 h reminder fires, its copies held
    await pnode.n.delivery.run_until_idle()  # (the contract notices, held since 09:00)
    assert [m for m in peers["fcm"].sent if m["data"]["kind"] == "deadline_reminder"] == []
    await pnode.at(T0 + 36 * H)  # 21:00 JST next day: the 1 h reminder, urgent, sent
    await pnode.n.delivery.run_until_idle()
    pnode.clock.set(T0 + 36 * H + 30 * 60 * S)  # 21:30: quiet hours end
    await deliver(pnode)
    titles = [m["notification"]["title"] for m in peers["fcm"].sent
              if m["data"]["kind"] == "deadline_reminder"]
    assert titles == ["納期まであと1時間: ロゴ制作"]
    states = await log_of(pnode, "deadline_reminder")
    skipped = [d for s, d in states if s == "skipped"]
    assert len(skipped) == 4 and all("stale" in d and "1 h one is due" in d
                                     for d in skipped), states


async def test_a_deadline_reminder_held_briefly_says_the_time_left_when_it_is_sent(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """A short hold: the 24 h reminder fires at 07:30 in Tokyo and its push and e-mail
    copies are held for 30 min, until 08:00 - less than the lateness a reminder may have and
    still say its lead time. At 08:00, 23.5 hours are left: they say 23 (whole hours, as a
    late reminder does), not 24, in Japanese and English, and so does the Web Push copy,
    refused once at 08:00 and retried a few seconds later; the in-app copy keeps "24"."""
    await quiet_bob(pnode, peers)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("carol"), {
        "locale": "en", "email": "carol@example.com",
        "quiet_hours": {"start": "22:00", "end": "08:00"}})
    assert status == 200
    await contract(pnode, deadline_h=46.5)  # deadline 2026-06-03 07:30 JST
    await contract(pnode, deadline_h=46.5, worker="carol")
    await deliver(pnode)  # the contract notices (09:00: not held)
    await pnode.at(MORNING - H // 2)  # 07:30 JST: the 24 h reminders fire, copies held
    assert await pnode.n.delivery.run_until_idle() == 0
    status, body = await pnode.http("GET", "/v1/notifications", pnode.token("bob"))
    [stored] = [n for n in body["notifications"] if n["kind"] == "deadline_reminder"]
    assert stored["title"] == "納期まであと24時間: ロゴ制作" and stored["data"]["hours"] == 24

    pnode.clock.set(MORNING)
    peers["push"].status["bob-browser"] = [503]
    await deliver(pnode)
    assert [p for p in peers["push"].received
            if p["payload"]["kind"] == "deadline_reminder"] == []
    pnode.clock.advance(30)  # the retry (backoff: at most 10 s)
    assert await pnode.n.delivery.run_until_idle() == 1
    titles = [m["notification"]["title"] for m in peers["fcm"].sent
              if m["data"]["kind"] == "deadline_reminder"]
    assert titles == ["納期まであと23時間: ロゴ制作"], titles
    [push] = [p["payload"] for p in peers["push"].received
              if p["payload"]["kind"] == "deadline_reminder"]
    assert push["title"] == "納期まであと23時間: ロゴ制作"
    [apns] = [a for a in peers["apns"].received if a["payload"]["kind"] == "deadline_reminder"]
    assert apns["payload"]["aps"]["alert"]["title"] == "納期まであと23時間: ロゴ制作"
    mails = [m for m in await _mails_to(peers, "bob@example.com") if "納期まで" in m[0]]
    assert [s for s, _ in mails] == ["納期まであと23時間: ロゴ制作"]
    assert "6月3日 07:30" in mails[0][1]
    [(subject, text)] = [m for m in await _mails_to(peers, "carol@example.com")
                         if "deadline" in m[0]]
    assert subject == "23 h to the deadline: ロゴ制作"
    assert "2026-06-03 07:30 (Asia/Tokyo)" in text and "24" not in subject


async def test_a_deadline_reminder_sent_at_once_keeps_its_lead_time(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """Not held (outside quiet hours): the copies go out a moment after the reminder fired
    and say its own lead time, like the in-app copy - "24", not "23"."""
    await register_all(pnode, peers, "bob", "bob-browser")
    await contract(pnode, deadline_h=30)  # the 24 h reminder at 15:00 JST
    await deliver(pnode)
    await pnode.at(T0 + 6 * H)
    pnode.clock.advance(2)
    await pnode.n.delivery.run_until_idle()
    titles = [m["notification"]["title"] for m in peers["fcm"].sent
              if m["data"]["kind"] == "deadline_reminder"]
    assert titles == ["納期まであと24時間: ロゴ制作"]


async def test_a_held_deposit_reminder_says_the_hours_really_passed(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The "deposit still unpaid" reminder fires 24 h after the contract, at 23:30 in Tokyo:
    held until 08:00, its copies say the 32 hours that have passed by then, not 24; the
    in-app copy stored at 23:30 keeps its words."""
    await register_all(pnode, peers, "alice", "alice-browser")
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("alice"),
                                 {"quiet_hours": {"start": "22:00", "end": "08:00"}})
    assert status == 200
    concluded = NIGHT + H // 2 - 24 * H  # 23:30 the day before
    pnode.clock.set(concluded)
    await contract(pnode, deadline_h=200)
    await pnode.tick()
    await pnode.at(concluded + 24 * H)  # the reminder fires (23:30: held)
    await pnode.n.delivery.run_until_idle()
    status, body = await pnode.http("GET", "/v1/notifications", pnode.token("alice"))
    [stored] = [n for n in body["notifications"] if n["kind"] == "deposit_unpaid"]
    assert "契約から24時間" in stored["body"]
    pnode.clock.set(MORNING)
    await deliver(pnode)
    [fcm] = [m for m in peers["fcm"].sent if m["data"]["kind"] == "deposit_unpaid"]
    assert "契約から32時間" in fcm["notification"]["body"], fcm
    [push] = [p["payload"] for p in peers["push"].received
              if p["payload"]["kind"] == "deposit_unpaid"]
    assert "契約から32時間" in push["body"]
