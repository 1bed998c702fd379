"""The dispute staff API over a real node: roles, reasons, the participants' checkpoint push,
an exported bundle that ``tsunagu verify`` accepts with the published key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from chat.cli import main as tsunagu
from tests.support import Client, Node

ENDPOINTS = [
    ("POST", "/v1/disputes", {"thread": "t", "reason": "x"}),
    ("GET", "/v1/disputes/d_x", None),
    ("GET", "/v1/disputes/d_x/log?reason=x", None),
    ("GET", "/v1/disputes/d_x/access?reason=x", None),
    ("GET", "/v1/disputes/d_x/export?reason=x", None),
    ("POST", "/v1/disputes/d_x/close", {"reason": "x"}),
]


async def test_every_dispute_endpoint_refuses_other_roles(settings_factory: Any) -> None:
    node = await Node(settings_factory()).start()
    try:
        for method, path, body in ENDPOINTS:
            status, _ = await node.http(method, path, None, body)
            assert status == 401, (method, path)
            for role in ("client", "worker", "moderator", "admin", "service"):
                status, out = await node.http(method, path, node.token("u1", role), body)
                assert status == 403 and out["error"]["code"] == "forbidden", (method, path, role)
            status, _ = await node.http(method, path, node.token("s1", "dispute"), body)
            assert status in (201, 400, 404), (method, path, status)
    finally:
        await node.stop()


async def test_dispute_flow_push_export_verify(settings_factory: Any, tmp_path: Path) -> None:
    node = await Node(settings_factory()).start()
    try:
        thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
        tid = thread["id"]
        a = await Client(node.ws_url, node.token("alice", "client")).connect()
        b = await Client(node.ws_url, node.token("bob", "worker")).connect()
        await a.send(tid, "デザイン案です / here is the draft")
        await b.messages(1)
        staff = node.token("s1", "dispute")
        status, out = await node.http("POST", "/v1/disputes", staff, {"thread": tid})
        assert status == 400  # no reason
        status, out = await node.http("POST", "/v1/disputes", staff,
                                      {"thread": tid, "reason": "支払い紛争 / payment claim"})
        assert status == 201, out
        did = out["dispute"]["id"]
        for c in (a, b):
            push = await c.push("evidence_checkpoint")
            assert push["dispute"] == did and push["checkpoint"] == out["checkpoint"]
            assert push["signature"] == out["signature"] and push["proof"]["seq"] >= 3
        status, _ = await node.http("GET", f"/v1/disputes/{did}/log", staff)
        assert status == 400
        status, log = await node.http("GET", f"/v1/disputes/{did}/log?reason=review", staff)
        assert status == 200 and log["chain_ok"]
        assert [e["kind"] for e in log["entries"]] == [
            "thread_created", "message", "dispute_opened"]
        async with aiohttp.ClientSession() as s, s.get(
            f"{node.url}/v1/disputes/{did}/export?reason=arbitration",
            headers={"Authorization": f"Bearer {staff}"},
        ) as r:
            assert r.status == 200 and r.content_type == "application/zip"
            (tmp_path / "bundle.zip").write_bytes(await r.read())
        status, keys = await node.http("GET", "/v1/evidence/keys")
        assert status == 200
        pem = tmp_path / "key.pem"
        pem.write_text(keys["keys"][0]["public_key_pem"])
        assert tsunagu(["verify", str(tmp_path / "bundle.zip"), "--public-key", str(pem)]) == 0
        status, receipt = await node.http("GET", f"/v1/evidence/threads/{tid}",
                                          node.token("bob", "worker"))
        assert status == 200 and receipt["proof"]["seq"] == 3
        assert receipt["checkpoint"]["size"] >= 1 and receipt["signature"]
        status, _ = await node.http("GET", f"/v1/evidence/threads/{tid}",
                                    node.token("mallory", "client"))
        assert status == 403
        status, closed = await node.http("POST", f"/v1/disputes/{did}/close", staff,
                                         {"reason": "settled", "resolution": "refund 50%"})
        assert status == 200 and closed["dispute"]["open"] is False
        status, got = await node.http("GET", f"/v1/disputes/{did}?reason=check", staff)
        assert status == 200 and got["dispute"]["resolution"] == "refund 50%"
        status, acc = await node.http("GET", f"/v1/disputes/{did}/access?reason=audit", staff)
        assert [(x["staff"], x["action"]) for x in acc["access"]] == [
            ("s1", "open"), ("s1", "read_log"), ("s1", "export"), ("s1", "close"),
            ("s1", "read"), ("s1", "read_access_log")]
        await a.close()
        await b.close()
    finally:
        await node.stop()


async def test_evidence_and_notification_calls_share_the_http_rate_limit(
        settings_factory: Any) -> None:
    """Every component's HTTP API counts against the node's per-user limit: a participant
    cannot make the node commit and sign checkpoints (or read the inbox) without bound."""
    node = await Node(settings_factory(http_rate_per_s=0.5, http_rate_burst=3)).start()
    try:
        tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        bob = node.token("bob", "worker")
        for _ in range(2):
            status, _ = await node.http("GET", f"/v1/evidence/threads/{tid}", bob)
            assert status == 200
        status, _ = await node.http("GET", "/v1/notifications", bob)
        assert status == 200
        status, out = await node.http("GET", f"/v1/evidence/threads/{tid}", bob)
        assert status == 429 and out["error"]["code"] == "rate_limited"
        status, out = await node.http("GET", "/v1/notifications", bob)
        assert status == 429
        status, _ = await node.http("GET", "/v1/notifications", node.token("alice", "client"))
        assert status == 200  # per user
    finally:
        await node.stop()


async def test_system_data_numbers_are_checked_at_the_edge(settings_factory: Any) -> None:
    """A number JSON cannot carry exactly is a 400 for that request; the other messages of
    the same moment are logged and the log still verifies."""
    import asyncio

    node = await Node(settings_factory()).start()
    try:
        tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        svc = node.token("platform", "service")
        path = f"/v1/threads/{tid}/system"
        bad = [{"id": 2**53}, {"n": [1, {"x": -(2**60)}]}, {"f": 1e16}, {"big": 2**70}]
        ok = [{"id": 2**53 - 1, "amount": 50000.5}, {"id": "12345678901234567890"}]
        results = await asyncio.gather(*(
            node.http("POST", path, svc, {"body": "仮払い / deposit", "data": d})
            for d in (*bad, *ok)))
        for (status, out), d in zip(results, (*bad, *ok), strict=True):
            if d in bad:
                assert status == 400, (d, out)
                assert "2^53" in out["error"]["message"] and "string" in out["error"]["message"]
            else:
                assert status == 201, (d, out)
        staff = node.token("s1", "dispute")
        status, out = await node.http("POST", "/v1/disputes", staff,
                                      {"thread": tid, "reason": "check"})
        assert status == 201, out
        status, out = await node.http("GET", f"/v1/disputes/{out['dispute']['id']}/log"
                                      "?reason=check", staff)
        assert status == 200 and out["chain_ok"], out["problems"]
        assert sum(e["kind"] == "message" for e in out["entries"]) == len(ok)
    finally:
        await node.stop()


def test_unsafe_payload_numbers_are_refused_at_append_and_old_entries_verify() -> None:
    import pytest

    from chat.evidence.canonical import NotCanonicalizable
    from chat.evidence.chain import LogEntry, Pending, extend, verify_chain

    with pytest.raises(NotCanonicalizable, match=r"payload\.data\.f"):
        extend({}, [Pending("t1", "message", "svc", {"data": {"f": 1e16}}, 1)])
    # An entry written before the limit: 1e16 stored as its JCS form, an integer on re-read.
    import orjson

    from chat.evidence.canonical import canonical, sha256_hex
    from chat.evidence.chain import GENESIS, entry_hash

    form = canonical({"data": {"f": 1e16}})
    ch = sha256_hex(form)
    h = entry_hash(thread="t1", seq=1, kind="message", actor="svc", at=1, content=ch,
                   prev=GENESIS)
    stored = LogEntry.from_row(("t1", 1, "message", "svc", 1, form.decode(), ch, GENESIS, h))
    assert stored.payload == {"data": {"f": 10**16}}
    assert orjson.loads(form) == stored.payload
    assert verify_chain([stored], thread="t1") == []
