"""What the delivery worker checks about the user before it sends a queued (held, retried or
re-queued) copy: the category is still on for the copy's channel (preferences, one-click
unsubscribe), and an e-mail copy's address is still the user's. And how a late deadline
reminder is worded: minutes under an hour, the deadline's zone named in Japanese too."""

from __future__ import annotations

from typing import Any

import aiohttp

from notifications.channels import link_key, unsubscribe_sig
from notifications.texts import fmt_time, notice_text
from tests.notifications.conftest import (
    HOUR,
    T0,
    NotifyNode,
    contract,
    deliver,
    register_all,
)
from tests.notifications.test_delivery_checks import (
    MORNING,
    NIGHT,
    S,
    _mails_to,
    chat_at_night,
    quiet_bob,
)

H = HOUR * 1_000_000
DEAD = "/v1/notifications/dead-letters"


async def _states(node: NotifyNode, did: str) -> tuple[str, str, list[tuple[str, str]]]:
    db = node.n.store.db
    row = await db.fetchrow("SELECT state, last_error FROM notify_deliveries WHERE id = ?", did)
    log = await db.fetch("SELECT state, detail FROM notify_delivery_log WHERE delivery_id = ? "
                         "ORDER BY at, id", did)
    return row[0], row[1] or "", [(r[0], r[1] or "") for r in log]


async def _dead_email(node: NotifyNode, peers: dict[str, Any]) -> str:
    """bob's e-mail copy of the contract notice, sent, then marked dead (as after a 451)."""
    await register_all(node, peers, "bob", "bob-browser")
    await contract(node)
    await deliver(node)
    db = node.n.store.db
    did = str(await db.fetchval("SELECT id FROM notify_deliveries WHERE channel = 'email' "
                                "AND user_id = 'bob'"))
    await db.execute("UPDATE notify_deliveries SET state = 'dead', last_error = 'smtp 451' "
                     "WHERE id = ?", did)
    return did


async def _requeue(node: NotifyNode, did: str) -> None:
    status, body = await node.http("POST", f"{DEAD}/{did}/requeue", node.token("ops", "admin"))
    assert status == 200 and body["requeued"], body
    await node.n.delivery.run_until_idle()


async def test_a_requeued_email_is_not_sent_to_an_address_the_user_changed(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    did = await _dead_email(pnode, peers)
    status, body = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                    {"email": "bob-new@example.com"})
    assert status == 200, body
    before = len(peers["mails"])
    await _requeue(pnode, did)
    assert peers["mails"][before:] == []
    state, error, log = await _states(pnode, did)
    assert state == "skipped" and "e-mail address changed" in error, (state, error)
    assert log[-1] == ("skipped", error)


async def test_a_requeued_email_is_not_sent_once_the_user_removed_the_address(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    did = await _dead_email(pnode, peers)
    await pnode.n.store.db.execute("UPDATE notify_users SET email = NULL WHERE user_id = 'bob'")
    before = len(peers["mails"])
    await _requeue(pnode, did)
    assert peers["mails"][before:] == []
    state, error, _ = await _states(pnode, did)
    assert state == "skipped" and "no longer has an e-mail address" in error, (state, error)


async def test_a_requeued_email_to_the_same_address_is_sent(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The address saved again with its domain in capitals is the same address."""
    did = await _dead_email(pnode, peers)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"email": "bob@EXAMPLE.com"})
    assert status == 200
    before = len(peers["mails"])
    await _requeue(pnode, did)
    assert [m.rcpt_tos for m in peers["mails"][before:]] == [["bob@example.com"]]
    assert (await _states(pnode, did))[0] == "sent"


async def test_a_requeued_email_follows_an_opt_out_made_since(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    did = await _dead_email(pnode, peers)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"contract": {"email": False}}})
    assert status == 200
    before = len(peers["mails"])
    await _requeue(pnode, did)
    assert peers["mails"][before:] == []
    state, error, _ = await _states(pnode, did)
    assert state == "skipped" and "turned contract notifications off for email" in error, error


async def test_held_copies_follow_an_opt_out_made_after_they_were_queued(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """At 23:00 the contract notice is stored and its push and e-mail copies are held until
    08:00. In the night bob turns contract notices off by Web Push and on his phone, and
    unsubscribes from contract e-mails with the mail's one-click link (RFC 8058): at 08:00
    none of the copies goes out, each skipped with the reason; the in-app notice stays."""
    await quiet_bob(pnode, peers)
    pnode.clock.set(NIGHT)
    await contract(pnode)
    await pnode.tick()
    assert await pnode.n.delivery.run_until_idle() == 0  # all held
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"contract": {"webpush": False, "mobile": False}}})
    assert status == 200
    key = link_key(pnode.settings)
    assert key is not None
    sig = unsubscribe_sig(key, "bob", "contract")
    async with aiohttp.ClientSession() as s, s.post(
            f"{pnode.url}/v1/notifications/unsubscribe?u=bob&c=contract&s={sig}",
            data={"List-Unsubscribe": "One-Click"}) as r:
        assert r.status == 200 and (await r.json())["email"] is False
    pnode.clock.set(MORNING)
    await deliver(pnode)
    assert peers["fcm"].sent == [] and peers["push"].received == []
    assert peers["apns"].received == [] and peers["mails"] == []
    rows = await pnode.n.store.db.fetch(
        "SELECT channel, state, last_error FROM notify_deliveries WHERE user_id = 'bob'")
    assert sorted(r[0] for r in rows) == ["apns", "email", "fcm", "webpush"]
    want = {"webpush": "off for webpush", "fcm": "off for mobile", "apns": "off for mobile",
            "email": "off for email"}
    for channel, state, error in rows:
        assert state == "skipped" and "turned contract notifications" in error, (channel, error)
        assert want[channel] in error
    status, body = await pnode.http("GET", "/v1/notifications", pnode.token("bob"))
    assert [n["kind"] for n in body["notifications"]] == ["contract_concluded_worker"]


async def test_held_chat_alerts_follow_an_opt_out_and_form_no_digest(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """Chat alerts held through the night (bob had turned chat e-mails on, they are off by
    default): bob then turns chat alerts off by Web Push and e-mail; at 08:00 only the
    phone copies go out, as one digest; the others are skipped for the opt-out, not
    merged into a digest."""
    await quiet_bob(pnode, peers)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"chat": {"email": True}}})
    assert status == 200
    await chat_at_night(pnode, 2)
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"chat": {"email": False, "webpush": False}}})
    assert status == 200
    before = len(peers["mails"])
    pnode.clock.set(MORNING)
    await deliver(pnode)
    assert [p for p in peers["push"].received if p["payload"]["kind"] == "chat"] == []
    assert [m for m in peers["mails"][before:] if "メッセージ" in m.content.decode()] == []
    chats = [m for m in peers["fcm"].sent if m["data"]["kind"] == "chat"]
    assert len(chats) == 1 and chats[0]["notification"]["title"] == "田中さんから2件の新しいメッセージ"
    rows = await pnode.n.store.db.fetch(
        "SELECT d.channel, d.state, d.last_error FROM notify_deliveries d JOIN notify_inbox n "
        "ON n.id = d.notice_id WHERE n.kind = 'chat' AND d.user_id = 'bob'")
    off = [(c, s, e) for c, s, e in rows if c in ("webpush", "email")]
    assert len(off) == 4, rows
    assert all(s == "skipped" and "turned chat notifications" in e for _, s, e in off), off


async def test_a_late_last_reminder_says_minutes_and_names_the_zone(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The 1 h reminder (urgent) is sent 24 minutes late: "36 min" / "36分", not "0.6 h";
    bob (ja) lives in New York, so his Japanese text names the zone, as carol's (en) does."""
    await register_all(pnode, peers, "bob", "bob-browser")
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"tz": "America/New_York"})
    assert status == 200
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("carol"),
                                 {"locale": "en", "tz": "America/New_York",
                                  "email": "carol@example.com"})
    assert status == 200
    await contract(pnode, deadline_h=10)  # 2026-06-01 10:00 UTC = 06:00 in New York
    await contract(pnode, deadline_h=10, worker="carol")
    await deliver(pnode)
    await pnode.at(T0 + 9 * H)  # the 1 h reminders fire...
    pnode.clock.set(T0 + 9 * H + 24 * 60 * S)  # ...and are sent 24 minutes late
    await pnode.n.delivery.run_until_idle()
    [fcm] = [m for m in peers["fcm"].sent if m["data"]["kind"] == "deadline_reminder"]
    assert fcm["notification"]["title"] == "納期まであと36分: ロゴ制作", fcm
    assert "6月1日 06:00 (America/New_York)" in fcm["notification"]["body"]
    [(subject, text)] = [m for m in await _mails_to(peers, "carol@example.com")
                         if "deadline" in m[0]]
    assert subject == "36 min to the deadline: ロゴ制作"
    assert "2026-06-01 06:00 (America/New_York)" in text
    assert "0.6" not in subject + text


async def test_a_reminder_the_scheduler_fires_late_says_the_exact_minutes(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The node was down when the 1 h reminder was due; it fires 23 minutes late, when 37
    minutes are left: the inbox and the phone say 37, not 36 (a tenth of an hour)."""
    await register_all(pnode, peers, "bob", "bob-browser")
    await contract(pnode, deadline_h=10)
    await deliver(pnode)
    await pnode.at(T0 + 9 * H + 23 * 60 * S)  # the scheduler catches up after downtime
    await pnode.n.delivery.run_until_idle()
    status, body = await pnode.http("GET", "/v1/notifications", pnode.token("bob"))
    assert status == 200, body
    [notice] = [n for n in body["notifications"] if n["kind"] == "deadline_reminder"]
    assert notice["title"] == "納期まであと37分: ロゴ制作", notice
    [fcm] = [m for m in peers["fcm"].sent if m["data"]["kind"] == "deadline_reminder"]
    assert fcm["notification"]["title"] == "納期まであと37分: ロゴ制作", fcm


def test_reminder_wording_under_an_hour_and_the_zone_in_japanese() -> None:
    deadline = T0 + 10 * H  # 2026-06-01 10:00 UTC = 19:00 in Tokyo, 06:00 in New York
    p = {"title": "Logo", "deadline": deadline}
    tokyo, ny = "Asia/Tokyo", "America/New_York"
    assert notice_text("deadline_reminder", {**p, "hours": 0.6}, locale="en", tz=tokyo)[0] \
        == "36 min to the deadline: Logo"
    assert notice_text("deadline_reminder", {**p, "hours": 0.6}, locale="ja", tz=tokyo)[0] \
        == "納期まであと36分: Logo"
    assert notice_text("deadline_reminder", {**p, "hours": 0.6, "minutes": 34}, locale="ja",
                       tz=tokyo)[0] == "納期まであと34分: Logo"
    assert notice_text("deadline_reminder", {**p, "hours": 0.01}, locale="en", tz=tokyo)[0] \
        == "1 min to the deadline: Logo"
    for hours, en, ja in ((1, "1 h", "1時間"), (63, "63 h", "63時間")):
        assert notice_text("deadline_reminder", {**p, "hours": hours}, locale="en",
                           tz=tokyo)[0] == f"{en} to the deadline: Logo"
        assert notice_text("deadline_reminder", {**p, "hours": hours}, locale="ja",
                           tz=tokyo)[0] == f"納期まであと{ja}: Logo"
    # Japanese: the zone is named unless it is Japan's
    assert fmt_time(deadline, tokyo, "ja") == "6月1日 19:00"
    assert fmt_time(deadline, ny, "ja") == "6月1日 06:00 (America/New_York)"
    assert fmt_time(deadline, ny, "en") == "2026-06-01 06:00 (America/New_York)"
    body = notice_text("deadline_reminder", {**p, "hours": 1}, locale="ja", tz=ny)[1]
    assert body.startswith("納期は 6月1日 06:00 (America/New_York) です。")
    assert notice_text("overdue", p, locale="ja", tz=tokyo)[1].startswith("納期（6月1日 19:00）")
