"""Dead letters over HTTP, both back ends: operators (service, admin) list the deliveries
that were dead-lettered (filters, pages) and re-queue one; a re-queue is idempotent, is
checked again before sending like any held copy, a dead chat alert is not re-queued once a
newer digest of its thread reached the user, and every input is validated."""

from __future__ import annotations

from typing import Any

from tests.notifications.conftest import NotifyNode, contract, deliver, register_all
from tests.support import Client

DEAD = "/v1/notifications/dead-letters"


async def kill_webpush(node: NotifyNode, peers: dict[str, Any], contracts: int) -> list[str]:
    """``contracts`` contracts for bob whose Web Push copies fail until dead-lettered (3
    attempts); the other channels deliver. The dead deliveries' ids."""
    await register_all(node, peers, "bob", "bob-browser")
    peers["push"].status["bob-browser"] = [503] * (3 * contracts)
    for _ in range(contracts):
        await contract(node)
    await deliver(node)
    for _ in range(3):
        node.clock.advance(3600)
        await node.n.delivery.run_until_idle()
    rows = await node.n.store.db.fetch(
        "SELECT id FROM notify_deliveries WHERE state = 'dead' ORDER BY id")
    assert len(rows) == contracts
    return [r[0] for r in rows]


async def test_operators_list_dead_letters_with_filters_and_pages(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    dead = await kill_webpush(pnode, peers, 3)
    admin, service = pnode.token("ops", "admin"), pnode.token("platform", "service")
    status, body = await pnode.http("GET", DEAD, admin)
    assert status == 200, body
    assert sorted(d["id"] for d in body["dead_letters"]) == dead and body["next"] is None
    first = body["dead_letters"][0]
    assert first["user"] == "bob" and first["channel"] == "webpush"
    assert first["kind"] == "contract_concluded_worker" and first["title"].startswith("契約成立")
    assert first["state"] == "dead" and first["attempts"] == 3 and "503" in first["error"]
    assert first["dead_at"] and first["thread"]
    assert first["target"] == "http://127.0.0.1/…"  # not the endpoint (a capability)
    # filters
    for query, n in (("user=bob", 3), ("user=alice", 0), ("channel=webpush", 3),
                     ("channel=email", 0), ("user=bob&channel=fcm", 0)):
        status, body = await pnode.http("GET", f"{DEAD}?{query}", service)
        assert status == 200 and len(body["dead_letters"]) == n, (query, body)
    # pages: newest first, each once
    seen = await pnode.pages(DEAD, "dead_letters", admin)
    assert sorted(seen) == dead and len(seen) == 3
    # an error text that quotes the target (a push service's answer, a driver's message)
    # is shown without it
    endpoint = "https://push.example.net/wpush/v2/" + "gAAAAABk" * 8
    await pnode.n.store.db.execute(
        "UPDATE notify_deliveries SET last_error = ? WHERE id = ?",
        f"410 from {endpoint} (token {'x' * 48}) for b.sato@example.jp", dead[0])
    status, body = await pnode.http("GET", DEAD, admin)
    [shown] = [d for d in body["dead_letters"] if d["id"] == dead[0]]
    assert shown["error"] == "410 from https://push.example.net/… (token …) for b…@example.jp"


async def test_dead_letters_are_for_operators_and_inputs_are_checked(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    [did] = await kill_webpush(pnode, peers, 1)
    await pnode.refuses_non_operators(DEAD, f"{DEAD}/{did}/requeue")
    await pnode.refuses_bad_input(
        DEAD, [("channel=sms", "channel"), ("channel=", "channel"), ("user=", "user"),
               ("user=" + "u" * 129, "user"), ("user=a%00b", "user")],
        DEAD + "/{}/requeue", unknown="d_nope")
    admin = pnode.token("ops", "admin")
    # a delivery that was sent, never dead-lettered: nothing to re-queue
    sent = await pnode.n.store.db.fetchval(
        "SELECT id FROM notify_deliveries WHERE state = 'sent' AND channel = 'fcm'")
    status, body = await pnode.http("POST", f"{DEAD}/{sent}/requeue", admin)
    assert status == 409 and body["error"]["code"] == "conflict"
    assert await pnode.n.store.db.fetchval(
        "SELECT state FROM notify_deliveries WHERE id = ?", sent) == "sent"
    # nothing that was refused changed anything
    assert await pnode.n.store.db.fetchval(
        "SELECT state FROM notify_deliveries WHERE id = ?", did) == "dead"
    assert await pnode.n.store.db.fetchval(
        "SELECT count(*) FROM notify_delivery_log WHERE state = 'requeued'") == 0


async def test_a_requeue_sends_once_and_a_repeat_does_nothing_new(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    [did] = await kill_webpush(pnode, peers, 1)
    push = peers["push"]
    before = len(push.received)
    service = pnode.token("platform", "service")
    status, body = await pnode.http("POST", f"{DEAD}/{did}/requeue", service)
    assert status == 200, body
    assert body["requeued"] is True
    assert body["delivery"]["state"] == "queued" and body["delivery"]["attempts"] == 0
    assert body["delivery"]["dead_at"] is None
    # a retry of the call (the answer was lost, a double click): nothing new
    status, again = await pnode.http("POST", f"{DEAD}/{did}/requeue", service)
    assert status == 200 and again["requeued"] is False
    assert again["delivery"]["state"] == "queued"
    db = pnode.n.store.db
    assert await db.fetchval("SELECT count(*) FROM notify_delivery_log WHERE "
                             "delivery_id = ? AND state = 'requeued'", did) == 1
    status, body = await pnode.http("GET", DEAD, service)
    assert status == 200 and body["dead_letters"] == []
    # the worker sends it (once), the delivery log tells the story
    assert await pnode.n.delivery.run_until_idle() == 1
    assert len(push.received) == before + 1
    assert push.received[-1]["payload"]["kind"] == "contract_concluded_worker"
    assert await db.fetchval("SELECT state FROM notify_deliveries WHERE id = ?", did) == "sent"
    status, again = await pnode.http("POST", f"{DEAD}/{did}/requeue", service)
    assert status == 200 and again["requeued"] is False and again["delivery"]["state"] == "sent"
    assert await pnode.n.delivery.run_until_idle() == 0
    assert len(push.received) == before + 1
    notice = await db.fetchval("SELECT notice_id FROM notify_deliveries WHERE id = ?", did)
    status, body = await pnode.http("GET", f"/v1/notifications/{notice}/deliveries",
                                    pnode.token("bob"))
    assert status == 200
    states = [e["state"] for e in body["log"] if e["delivery"] == did]
    assert states == ["queued", "retry", "retry", "dead", "requeued", "sent"]


async def test_a_requeued_copy_that_no_longer_applies_is_skipped(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """Re-queued after the deposit was paid: the "do not start yet" copy is checked again
    and skipped, not sent late."""
    [did] = await kill_webpush(pnode, peers, 1)
    thread = await pnode.n.store.db.fetchval("SELECT thread_id FROM notify_contracts")
    status, _ = await pnode.event("deposit.paid", thread)
    assert status == 200
    await deliver(pnode)
    before = len(peers["push"].received)
    status, body = await pnode.http("POST", f"{DEAD}/{did}/requeue",
                                    pnode.token("ops", "admin"))
    assert status == 200 and body["requeued"] is True
    await pnode.n.delivery.run_until_idle()
    assert len(peers["push"].received) == before
    row = await pnode.n.store.db.fetchrow(
        "SELECT state, last_error FROM notify_deliveries WHERE id = ?", did)
    assert row is not None and row[0] == "skipped" and "deposit is paid" in row[1]


async def dead_chat_alert(node: NotifyNode, peers: dict[str, Any]) -> tuple[str, str, Client]:
    """A contract thread in which alice's message alerts bob (away): the Web Push copy of
    that chat digest fails until dead-lettered, the other channels deliver it. The thread,
    the dead delivery's id, and alice's connection (the caller closes it)."""
    await register_all(node, peers, "bob", "bob-browser")
    thread = await contract(node, client_name="田中")
    await deliver(node)  # the contract notices
    alice = await Client(node.ws_url, node.token("alice", "client")).connect()
    peers["push"].status["bob-browser"] = [503] * 3
    await alice_says(node, alice, thread, "一通目")
    for _ in range(3):
        node.clock.advance(3600)
        await node.n.delivery.run_until_idle()
    [did] = [r[0] for r in await node.n.store.db.fetch(
        "SELECT d.id FROM notify_deliveries d JOIN notify_inbox n ON n.id = d.notice_id "
        "WHERE d.state = 'dead' AND n.kind = 'chat'")]
    return thread, did, alice


async def alice_says(node: NotifyNode, alice: Client, thread: str, text: str) -> None:
    """alice sends ``text``; bob's chat digest fires and its copies are sent."""
    await alice.send(thread, text)
    await node.n.watcher.flush()
    node.clock.advance(61)
    await deliver(node)


async def test_a_dead_chat_alert_is_not_requeued_once_a_newer_digest_was_delivered(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """bob's push of "new message from 田中" died; a later message's digest has since reached
    him (push, FCM, APNs). Re-queuing the old one would alert him again about messages that
    one covers: refused (409, naming the newer delivery), nothing written, nothing sent."""
    thread, did, alice = await dead_chat_alert(pnode, peers)
    try:
        await alice_says(pnode, alice, thread, "二通目")
    finally:
        await alice.close()
    db = pnode.n.store.db
    newer = {r[0] for r in await db.fetch(
        "SELECT d.id FROM notify_deliveries d JOIN notify_inbox n ON n.id = d.notice_id "
        "WHERE n.kind = 'chat' AND d.state = 'sent' AND n.id <> "
        "(SELECT notice_id FROM notify_deliveries WHERE id = ?)", did)}
    assert len(newer) == 3 and len([p for p in peers["push"].received
                                    if p["payload"]["kind"] == "chat"]) == 1
    before = (len(peers["push"].received), len(peers["fcm"].sent))
    status, body = await pnode.http("POST", f"{DEAD}/{did}/requeue",
                                    pnode.token("ops", "admin"))
    assert status == 409 and body["error"]["code"] == "conflict", body
    message = body["error"]["message"]
    assert "newer chat digest" in message and any(n in message for n in newer), message
    assert await db.fetchval("SELECT state FROM notify_deliveries WHERE id = ?", did) == "dead"
    assert await db.fetchval("SELECT count(*) FROM notify_delivery_log WHERE "
                             "state = 'requeued'") == 0
    assert await pnode.n.delivery.run_until_idle() == 0
    assert (len(peers["push"].received), len(peers["fcm"].sent)) == before
    status, body = await pnode.http("GET", DEAD, pnode.token("ops", "admin"))
    assert [d["id"] for d in body["dead_letters"]] == [did]


async def test_a_dead_chat_alert_is_requeued_while_no_newer_digest_was_delivered(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """A newer digest of another thread, or one of the same thread that was not delivered
    (it died too), does not stand in the way: the old alert is re-queued and sent."""
    thread, did, alice = await dead_chat_alert(pnode, peers)
    try:
        other = await contract(pnode, client_name="田中")
        await alice_says(pnode, alice, other, "別件です")
        peers["push"].status["bob-browser"] = [503] * 3
        await pnode.n.store.db.execute("DELETE FROM notify_devices WHERE user_id = 'bob'")
        await alice_says(pnode, alice, thread, "二通目")
    finally:
        await alice.close()
    for _ in range(3):
        pnode.clock.advance(3600)
        await pnode.n.delivery.run_until_idle()
    db = pnode.n.store.db
    assert await db.fetchval(
        "SELECT count(*) FROM notify_deliveries d JOIN notify_inbox n ON n.id = d.notice_id "
        "WHERE n.kind = 'chat' AND n.thread_id = ? AND d.state = 'sent'", thread) == 2
    before = len(peers["push"].received)
    status, body = await pnode.http("POST", f"{DEAD}/{did}/requeue",
                                    pnode.token("ops", "admin"))
    assert status == 200 and body["requeued"] is True, body
    await pnode.n.delivery.run_until_idle()
    assert len(peers["push"].received) == before + 1
    assert await db.fetchval("SELECT state FROM notify_deliveries WHERE id = ?", did) == "sent"


async def test_a_requeued_chat_alert_overtaken_before_it_is_sent_is_skipped(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    """The refusal above is checked when the operator asks; a newer digest of the thread
    can still reach the user between the re-queue and the send. The delivery worker checks
    again: the old alert is skipped, naming the newer delivery, and nothing is sent."""
    thread, did, alice = await dead_chat_alert(pnode, peers)
    db = pnode.n.store.db
    try:
        status, body = await pnode.http("POST", f"{DEAD}/{did}/requeue",
                                        pnode.token("ops", "admin"))
        assert status == 200 and body["requeued"] is True, body
        # Not claimed yet (as if the worker were busy): due in an hour.
        later = pnode.clock.now_us() + 3600 * 1_000_000
        await db.execute("UPDATE notify_deliveries SET next_at = ? WHERE id = ?", later, did)
        await alice_says(pnode, alice, thread, "二通目")  # its digest is delivered now
    finally:
        await alice.close()
    before = len(peers["push"].received)
    pnode.clock.advance(3601)
    await pnode.n.delivery.run_until_idle()
    state, why = await db.fetchrow(
        "SELECT state, last_error FROM notify_deliveries WHERE id = ?", did)
    assert state == "skipped" and "newer chat digest" in why, why
    assert len(peers["push"].received) == before
