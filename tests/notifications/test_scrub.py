"""What operators see of an error, both back ends: a dead letter's or failed job's error
text never shows an address or a push endpoint's path, whatever their form (IDN addresses,
``bob@localhost``, ``bob@[192.0.2.1]``, endpoints quoted without their scheme), and a dead
letter's own target never shows verbatim."""

from __future__ import annotations

from typing import Any

import aiosmtplib
import pytest

from notifications import scheduler
from notifications.http_api import _scrub
from tests.notifications.conftest import NotifyNode, contract

DEAD = "/v1/notifications/dead-letters"
FAILED = "/v1/notifications/failed-jobs"
IDN = "bob.sato@社内.jp"
ENDPOINT = "updates.push.services.mozilla.com/wpush/v2/gAAAAABlSECRETcapability"


@pytest.mark.parametrize(("text", "secret", "kept"), [
    (f"550 <{IDN}>: rejected", "bob.sato", "b…@社内.jp"),
    ("550 <bob@localhost> unknown", "bob@", "b…@localhost"),
    ("refused bob@[192.0.2.1], try later", "bob@", "b…@[192.0.2.1],"),
    ("refused bob@example.com.", "bob@", "b…@example.com."),
    (f"410 Gone for {ENDPOINT} (expired)", "wpush", "updates.push.services.mozilla.com/…"),
    ("404 'fcm.googleapis.com/fcm/send/abc:def'", "send", "'fcm.googleapis.com/…'"),
    ("host 192.0.2.1:8443/push/xyz down", "xyz", "192.0.2.1:8443/…"),
    ("https://user:pw@push.example/wp/SECRET x", "SECRET", "https://push.example/…"),
])
def test_scrub_hides_addresses_and_paths(text: str, secret: str, kept: str) -> None:
    out = _scrub(text)
    assert out is not None and secret not in out and kept in out, out


def test_scrub_leaves_plain_text_alone() -> None:
    text = "smtp 451 try again (see notifications/delivery.py)"
    assert _scrub(text) == text


async def dead_email(node: NotifyNode, address: str) -> str:
    """bob's e-mail copy of "contract concluded" to ``address``, dead-lettered (its id)."""
    status, body = await node.http("PUT", "/v1/notifications/preferences", node.token("bob"),
                                   {"email": address})
    assert status == 200, body
    await contract(node)
    await node.tick()
    did = await node.n.store.db.fetchval(
        "SELECT id FROM notify_deliveries WHERE channel = 'email' AND user_id = 'bob'")
    assert did
    return str(did)


async def dead_letter(node: NotifyNode, did: str) -> dict[str, Any]:
    status, body = await node.http("GET", DEAD, node.token("ops", "admin"))
    assert status == 200, body
    [d] = [x for x in body["dead_letters"] if x["id"] == did]
    return dict(d)


async def test_a_dead_letters_error_does_not_show_an_idn_address(node: NotifyNode) -> None:
    did = await dead_email(node, IDN)
    db = node.n.store.db
    addr = await db.fetchval("SELECT target FROM notify_deliveries WHERE id = ?", did)
    exc = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(
        550, f"5.1.1 <{addr}>: Recipient address rejected", addr)])
    await db.execute("UPDATE notify_deliveries SET state = 'dead', last_error = ? WHERE id = ?",
                     f"refused: {exc}"[:500], did)
    d = await dead_letter(node, did)
    assert addr not in d["error"] and "bob.sato" not in d["error"], d
    assert d["target"] in d["error"] and "Recipient address rejected" in d["error"]


@pytest.mark.parametrize("address", ["bob@localhost", "bob@[192.0.2.1]"])
async def test_a_dead_letters_error_does_not_show_a_bare_address(
        node: NotifyNode, address: str) -> None:
    did = await dead_email(node, address)
    await node.n.store.db.execute(
        "UPDATE notify_deliveries SET target = ?, state = 'dead', last_error = ? WHERE id = ?",
        address, f"550 {address} unknown user", did)
    d = await dead_letter(node, did)
    assert address not in d["error"] and "bob@" not in d["error"], d
    assert d["error"].startswith("550 b…@")


async def test_a_dead_letters_own_target_is_never_shown(node: NotifyNode) -> None:
    """The target (here a push endpoint) quoted anywhere in the error, even glued to other
    text no pattern knows, shows as its hint."""
    did = await dead_email(node, "bob@example.com")
    target = f"https://{ENDPOINT}"
    await node.n.store.db.execute(
        "UPDATE notify_deliveries SET channel = 'webpush', target = ?, state = 'dead', "
        "last_error = ? WHERE id = ?", target, f"gone:{target}|and {ENDPOINT}", did)
    d = await dead_letter(node, did)
    assert "SECRET" not in d["error"] and "wpush" not in d["error"], d
    assert d["target"] == "https://updates.push.services.mozilla.com/…"


async def test_a_failed_jobs_error_does_not_show_addresses_or_endpoints(
        node: NotifyNode, monkeypatch: pytest.MonkeyPatch) -> None:
    real = scheduler.notice_text

    def text(kind: str, params: dict[str, Any], **kw: Any) -> tuple[str, str]:
        if kind == "contract_concluded_worker":
            raise RuntimeError(f"cannot word it for {IDN}, bob@localhost, {ENDPOINT}")
        return real(kind, params, **kw)

    monkeypatch.setattr(scheduler, "notice_text", text)
    await contract(node)
    await node.tick()
    status, body = await node.http("GET", FAILED, node.token("ops", "admin"))
    assert status == 200, body
    [job] = body["failed_jobs"]
    for secret in ("bob.sato", "bob@", "wpush", "SECRET"):
        assert secret not in job["error"], job
    assert "updates.push.services.mozilla.com/…" in job["error"]
