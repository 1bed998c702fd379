"""Delivery end to end against real protocol peers: Web Push (decrypted, VAPID checked),
SMTP (aiosmtpd), FCM HTTP v1 and APNs over HTTP/2 + TLS; retries, dead letters, gone
subscriptions, the delivery log, no duplicate of what was read in-app."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import aiohttp
import pytest

from chat.config import Settings
from notifications.channels import link_key, push_endpoint_error, unsubscribe_sig
from tests.notifications.conftest import T0, NotifyNode, contract, deliver, register_all


async def test_every_channel_delivers_the_real_wire_format(pnode: NotifyNode,
                                                           peers: dict[str, Any]) -> None:
    status, key = await pnode.http("GET", "/v1/notifications/webpush/key")
    assert status == 200 and key["key"] == peers["push"].vapid_public_key
    await register_all(pnode, peers, "bob", "bob-browser")
    await contract(pnode)
    assert await deliver(pnode) == 4
    # Web Push: decrypted with the subscription's keys, VAPID JWT checked by the receiver
    [push] = peers["push"].received
    assert push["payload"]["kind"] == "contract_concluded_worker"
    assert push["payload"]["title"] == "契約成立: ロゴ制作"
    assert push["topic"] and len(push["topic"]) <= 32 and push["urgency"] == "normal"
    # FCM HTTP v1
    [fcm] = peers["fcm"].sent
    assert fcm["token"] == "fcm-bob" and fcm["notification"]["title"] == "契約成立: ロゴ制作"
    assert fcm["android"]["collapse_key"] == push["topic"] and fcm["project"] == "tsunagu-test"
    # APNs over HTTP/2 + TLS
    [apns] = peers["apns"].received
    assert apns["token"] == "ab" * 32 and apns["payload"]["aps"]["alert"]["body"].startswith(
        "仮払いが完了するまで")
    assert apns["headers"]["apns-push-type"] == "alert" and apns["headers"]["apns-collapse-id"]
    # e-mail with List-Unsubscribe, and the link works
    for _ in range(50):
        if peers["mails"]:
            break
        await asyncio.sleep(0.05)
    [mail] = peers["mails"]
    assert mail.rcpt_tos == ["bob@example.com"]
    msg = message_from_bytes(mail.content)
    assert str(make_header(decode_header(msg["Subject"]))) == "契約成立: ロゴ制作"
    unsub = msg["List-Unsubscribe"].strip("<>")
    assert unsub.startswith("https://tsunagu.example/v1/notifications/unsubscribe?")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = unsub.replace("https://tsunagu.example", "")
    # GET (what a mail scanner or link preview does) only shows a ja/en confirmation page
    async with aiohttp.ClientSession() as s, s.get(pnode.url + path) as r:
        page = await r.text()
        assert r.status == 200 and r.content_type == "text/html"
        assert "配信停止" in page and "Unsubscribe" in page and "method=post" in page
    prefs = await pnode.http("GET", "/v1/notifications/preferences", pnode.token("bob"))
    assert prefs[1]["channels"]["contract"]["email"] is True  # nothing changed yet
    # the page's button posts the form and gets a page back
    async with aiohttp.ClientSession() as s, s.post(pnode.url + path,
                                                    data={"confirm": "1"}) as r:
        assert r.status == 200 and "停止しました" in await r.text()
    prefs = await pnode.http("GET", "/v1/notifications/preferences", pnode.token("bob"))
    assert prefs[1]["channels"]["contract"]["email"] is False
    # RFC 8058 one-click POST from the mail client
    async with aiohttp.ClientSession() as s, s.post(
            pnode.url + path, data={"List-Unsubscribe": "One-Click"}) as r:
        assert r.status == 200 and (await r.json())["email"] is False
    status, _ = await pnode.http("POST", unsub.replace("https://tsunagu.example", "")
                                    .replace("c=contract", "c=deadline"))
    assert status == 403
    # the same tampered link opened in a browser: a ja/en page, not English JSON
    async with aiohttp.ClientSession() as s, s.get(
            pnode.url + path.replace("c=contract", "c=deadline")) as r:
        assert r.status == 403 and r.content_type == "text/html"
        page = await r.text()
        assert "無効です" in page and "not valid" in page and "配信停止 / Unsubscribe" in page
    # the delivery log tells what happened per channel
    box = await pnode.http("GET", "/v1/notifications", pnode.token("bob"))
    nid = box[1]["notifications"][0]["id"]
    status, log = await pnode.http("GET", f"/v1/notifications/{nid}/deliveries",
                                   pnode.token("bob"))
    states = sorted((e["channel"], e["state"]) for e in log["log"])
    assert states == sorted([(c, s) for c in ("webpush", "fcm", "apns", "email")
                             for s in ("queued", "sent")])


async def test_an_invalid_unsubscribe_link_answers_a_bilingual_page(node: NotifyNode) -> None:
    """A link cut short by a mail program, or tampered with, opened in a browser: the same
    kind of ja/en page as a valid link, with a 4xx status; JSON for one-click and API
    clients."""
    key = link_key(node.settings)
    assert key is not None
    sig = unsubscribe_sig(key, "bob", "contract")
    valid = f"{node.url}/v1/notifications/unsubscribe?u=bob&c=contract&s={sig}"
    bad = [valid.replace(f"s={sig}", f"s={sig[:-4]}"),  # cut short
           valid.replace("u=bob", "u=carol"),  # another user's link
           valid.replace("c=contract", "c=nonsense"),  # not a category
           f"{node.url}/v1/notifications/unsubscribe"]  # no parameters at all
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    async with aiohttp.ClientSession() as s:
        async with s.get(valid, headers=browser) as r:
            assert r.status == 200
            valid_page = await r.text()
        for url in bad:
            # opened from the e-mail, and the confirmation page's button on a bad link
            for method, data in (("GET", None), ("POST", {"confirm": "1"})):
                async with s.request(method, url, data=data, headers=browser) as r:
                    assert r.status == 403, (method, url)
                    assert r.content_type == "text/html" and r.charset == "utf-8"
                    page = await r.text()
                assert "この配信停止リンクは無効です" in page, page
                assert "This unsubscribe link is not valid" in page, page
                assert "<p lang=ja>" in page and "<p lang=en>" in page
                assert "<title>配信停止 / Unsubscribe</title>" in page
                assert page.split("<main>")[0] == valid_page.split("<main>")[0]
                assert '"error"' not in page and "method=post" not in page
            # the RFC 8058 one-click POST, and an API client, still get the JSON error
            async with s.post(url, data={"List-Unsubscribe": "One-Click"}) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "forbidden"
            async with s.get(url, headers={"Accept": "application/json"}) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "forbidden"
    status, prefs = await node.http("GET", "/v1/notifications/preferences", node.token("bob"))
    assert status == 200 and prefs["channels"]["contract"]["email"] is True


async def test_retry_with_backoff_then_dead_letter_and_gone(pnode: NotifyNode,
                                                            peers: dict[str, Any]) -> None:
    push, fcm, apns = peers["push"], peers["fcm"], peers["apns"]
    await register_all(pnode, peers, "bob", "flaky")
    push.status["flaky"] = [500, 201]  # one failure, then accepted
    fcm.gone.add("fcm-bob")  # FCM says UNREGISTERED
    apns.gone.add("ab" * 32)  # APNs answers 410
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"contract": {"email": False}}})
    assert status == 200
    await contract(pnode)
    await deliver(pnode)
    db = pnode.n.store.db
    rows = dict(await db.fetch("SELECT channel, state FROM notify_deliveries"))
    assert rows == {"webpush": "retry", "fcm": "dead", "apns": "dead"}
    assert await db.fetchval("SELECT count(*) FROM notify_devices") == 0  # gone tokens removed
    next_at = await db.fetchval("SELECT next_at FROM notify_deliveries WHERE channel = 'webpush'")
    assert T0 <= next_at <= T0 + 10_000_000  # base 10 s, full jitter in [0, 10]
    assert await pnode.n.delivery.run_until_idle() == 0  # not due yet
    pnode.clock.set(next_at)
    assert await pnode.n.delivery.run_until_idle() == 1
    assert len(push.received) == 1
    assert await db.fetchval("SELECT state FROM notify_deliveries WHERE channel = 'webpush'") \
        == "sent"
    # a push service that keeps failing: dead letter after notify_max_attempts (3)
    push.status["flaky"] = [503, 503, 503]
    pnode.clock.advance(3600)
    await pnode.event("deposit.paid", (await db.fetchval(
        "SELECT thread_id FROM notify_contracts")))
    await deliver(pnode)
    for _ in range(3):
        pnode.clock.advance(3600)
        await pnode.n.delivery.run_until_idle()
    row = await db.fetchrow("SELECT state, attempts, last_error FROM notify_deliveries "
                            "WHERE channel = 'webpush' AND state <> 'sent'")
    assert row is not None and row[0] == "dead" and row[1] == 3 and "503" in row[2]
    # 410 from the push service removes the subscription
    push.status["flaky"] = [410]
    pnode.clock.advance(3600)
    await pnode.event("contract.cancelled", await db.fetchval(
        "SELECT thread_id FROM notify_contracts"))
    await deliver(pnode)
    assert await db.fetchval("SELECT count(*) FROM notify_webpush") == 0


async def test_no_push_for_what_was_read_in_app(pnode: NotifyNode, peers: dict[str, Any]
                                                ) -> None:
    await register_all(pnode, peers, "bob", "reader")
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"), {
        "quiet_hours": {"start": "08:00", "end": "12:00"}})  # T0 is 09:00 in Tokyo: deferred
    assert status == 200
    await contract(pnode)
    await pnode.tick()
    assert await pnode.n.delivery.run_until_idle() == 0
    status, _ = await pnode.http("POST", "/v1/notifications/read-all", pnode.token("bob"))
    pnode.clock.advance(4 * 3600)
    assert await pnode.n.delivery.run_until_idle() == 4
    assert peers["push"].received == [] and peers["fcm"].sent == []
    assert peers["apns"].received == [] and peers["mails"] == []
    states = {r[0] for r in await pnode.n.store.db.fetch("SELECT state FROM notify_deliveries")}
    assert states == {"skipped"}


@pytest.mark.parametrize(("endpoint", "refused"), [
    ("https://fcm.googleapis.com/fcm/send/dXk:APA91b", None),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAAAB", None),
    ("https://wns2-by3p.notify.windows.com/w/?token=BQYAAAB", None),
    ("https://web.push.apple.com/QOhZ8bOn", None),
    ("https://169.254.169.254/latest/meta-data/", "not a known push service"),
    ("https://localhost:8443/admin", "not a known push service"),
    ("https://db.internal/", "not a known push service"),
    ("https://push.services.mozilla.com.evil.example/x", "not a known push service"),
    ("https://evilfcm.googleapis.com/x", "not a known push service"),
    ("https://ops:secret@fcm.googleapis.com/x", "no user name or password"),
    ("http://fcm.googleapis.com/fcm/send/x", "https"),
    ("https://fcm.googleapis.com:99999/x", "not a valid URL"),
    ("fcm.googleapis.com/fcm/send/x", "https"),
])
def test_push_endpoints_are_limited_to_push_services(endpoint: str, refused: str | None) -> None:
    """The server POSTs to every registered endpoint: by default only the browsers' push
    services may be named, or any user could make it call internal services (SSRF)."""
    error = push_endpoint_error(endpoint, Settings())
    if refused is None:
        assert error is None
    else:
        assert error is not None and refused in error
    assert push_endpoint_error("https://any.example/x",
                               Settings(notify_push_hosts=("*",))) is None


async def test_internal_push_endpoint_is_refused_and_never_posted_to(
        pnode: NotifyNode, peers: dict[str, Any]) -> None:
    tok = pnode.token("bob")
    sub = peers["push"].subscribe("bob-browser")
    status, body = await pnode.http("POST", "/v1/notifications/webpush", tok,
                                    {**sub, "endpoint": "https://169.254.169.254/latest/x"})
    assert status == 400 and "169.254.169.254" in body["error"]["message"], body
    db = pnode.n.store.db
    assert await db.fetchval("SELECT count(*) FROM notify_webpush") == 0
    # a subscription stored before the host was taken off the list is dropped, unsent
    await register_all(pnode, peers, "bob", "bob-browser")
    await db.execute("UPDATE notify_webpush SET endpoint = ?",
                     "http://10.0.0.1:9/push/bob-browser")
    await contract(pnode)
    await deliver(pnode)
    assert peers["push"].received == []
    assert await db.fetchval("SELECT count(*) FROM notify_webpush") == 0
    error = await db.fetchval("SELECT last_error FROM notify_deliveries WHERE channel = 'webpush'")
    assert "not a known push service" in error
    assert len(peers["fcm"].sent) == 1  # the other channels still deliver


async def test_retry_after_from_the_push_services_is_honoured(pnode: NotifyNode,
                                                              peers: dict[str, Any]) -> None:
    """429/503 with Retry-After: the next attempt is not sooner than the service asked
    (bounded to an hour); without it, the usual backoff."""
    push, fcm, apns = peers["push"], peers["fcm"], peers["apns"]
    await register_all(pnode, peers, "bob", "busy")
    status, _ = await pnode.http("PUT", "/v1/notifications/preferences", pnode.token("bob"),
                                 {"channels": {"contract": {"email": False}}})
    assert status == 200
    push.status["busy"] = [429]
    push.headers["busy"] = {"Retry-After": "120"}
    when = "Mon, 01 Jun 2026 00:05:00 GMT"  # an HTTP date; the clock is not T0 here
    fcm.script.append((503, {"Retry-After": "300"}, {"error": {"code": 503}}))
    apns.script.append((429, {"Retry-After": "99999999"}, b'{"reason":"TooManyRequests"}'))
    await contract(pnode)
    await deliver(pnode)
    db = pnode.n.store.db
    rows = dict(await db.fetch("SELECT channel, next_at FROM notify_deliveries"))
    now = pnode.clock.now_us()
    assert rows["webpush"] - now == 120 * 1_000_000
    assert rows["fcm"] - now == 300 * 1_000_000
    assert rows["apns"] - now == 3600 * 1_000_000  # bounded
    log = await db.fetch("SELECT detail FROM notify_delivery_log WHERE state = 'retry'")
    assert any("Retry-After 120 s" in r[0] for r in log)
    from notifications.channels import retry_after_s

    assert retry_after_s(when, now_s=T0 / 1_000_000) == 300
    assert retry_after_s("soon") is None and retry_after_s("-5") is None
    assert retry_after_s("２０") is None


class _Rcpt:
    """An SMTP server that answers RCPT with the scripted codes, then accepts."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        self.mails: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if self.codes:
            return self.codes.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"


async def test_email_4xx_refusals_retry_and_headers_follow_the_rfcs() -> None:
    import re

    from aiosmtpd.controller import Controller

    from notifications.channels import EmailSender, Outgoing
    from tests.notifications.conftest import free_port

    handler = _Rcpt(["450 4.2.1 mailbox busy, try later", "550 5.1.1 no such user"])
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        sender = EmailSender(Settings(
            smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_tls="none",
            smtp_from="tsunagu <noreply@tsunagu.example>", notify_link_secret="k" * 40),
            base_url="https://tsunagu.example")
        title = "納品の確認をお願いします: " + "とても長い契約のタイトル" * 8
        out = Outgoing("d1", "n1", "bob" * 30, "review_request", "review", "t1", title,
                       "本文", False, "bob@example.com", "ja")
        busy = await sender.send(out)
        assert not busy.ok and busy.retry, busy  # 4xx: try again later
        refused = await sender.send(out)
        assert not refused.ok and not refused.retry, refused  # 5xx: permanent
        assert (await sender.send(out)).ok
    finally:
        smtp.stop()
    [mail] = handler.mails
    raw: bytes = mail.original_content
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    msg = message_from_bytes(raw)
    from email.utils import parsedate_to_datetime

    assert msg["Date"] and parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert str(make_header(decode_header(msg["Subject"]))) == title
    words = re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head)
    assert words and max(len(w) for w in words) <= 75  # RFC 2047
    for line in head.split("\r\n"):
        if not line.startswith("List-Unsubscribe:"):
            assert len(line) <= 78, line
    [unsub] = [line for line in head.split("\r\n") if line.startswith("List-Unsubscribe:")]
    assert unsub.endswith(">") and "=?" not in unsub  # one line, a literal <URL>


async def test_a_token_of_another_sender_or_topic_is_removed(pnode: NotifyNode,
                                                             peers: dict[str, Any]) -> None:
    """FCM 403 SENDER_ID_MISMATCH and APNs 400 DeviceTokenNotForTopic: the token will never
    work for this app, so it is removed like an unregistered one (not retried forever)."""
    fcm, apns = peers["fcm"], peers["apns"]
    await register_all(pnode, peers, "bob", "bob-browser")
    fcm.script.append((403, {}, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                           "details": [{"errorCode": "SENDER_ID_MISMATCH"}]}}))
    apns.script.append((400, {}, b'{"reason":"DeviceTokenNotForTopic"}'))
    await contract(pnode)
    await deliver(pnode)
    db = pnode.n.store.db
    assert await db.fetchval("SELECT count(*) FROM notify_devices") == 0
    rows = dict(await db.fetch("SELECT channel, state FROM notify_deliveries "
                               "WHERE channel IN ('fcm', 'apns')"))
    assert rows == {"fcm": "dead", "apns": "dead"}
