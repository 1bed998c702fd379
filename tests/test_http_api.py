"""The HTTP API end to end, through a real server, on both back ends.

Every endpoint of ``wire-v1.md`` and the extensions (PATCH thread, /v1/me, thanks counts),
each validation error, and the rule that every error body is JSON
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support import Client, Node

Start = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start(settings_factory: Any) -> AsyncIterator[Start]:
    nodes: list[Node] = []
    clients: list[Client] = []

    async def make(**overrides: Any) -> Node:
        node = await Node(settings_factory(**overrides)).start()
        nodes.append(node)
        node.clients = clients  # type: ignore[attr-defined]
        return node

    yield make
    for c in clients:
        await c.close()
    for node in nodes:
        await node.stop()


async def ws(node: Node, user: str, *roles: str) -> Client:
    c = Client(node.ws_url, node.token(user, *roles))
    node.clients.append(c)  # type: ignore[attr-defined]
    return await c.connect()


async def call(node: Node, method: str, path: str, token: str | None = None, *,
               json: Any = None, data: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request; returns status, headers and the decoded JSON body (None if empty)."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if json is not None:
        data = orjson.dumps(json)
        h["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as s, s.request(method, node.url + path, data=data,
                                                        headers=h) as r:
        raw = await r.read()
        return r.status, dict(r.headers), orjson.loads(raw) if raw else None


def assert_error(status: int, body: Any, expected: int, code: str | None = None) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, body


def svc(node: Node) -> str:
    return node.token("platform", "service")


GOOD = {"kind": "contract", "title": "LP制作", "participants": [
    {"user_id": "alice", "role": "client"}, {"user_id": "bob", "role": "worker"}]}


# --- threads ------------------------------------------------------------------------------

async def test_create_thread(start: Start) -> None:
    node = await start()
    body = {**GOOD, "ref": {"job_id": "j-1", "contract_id": 42}}
    status, _, out = await call(node, "POST", "/v1/threads", svc(node), json=body)
    assert status == 201
    t = out["thread"]
    assert t["id"] and t["kind"] == "contract" and t["title"] == "LP制作"
    assert t["ref"] == {"job_id": "j-1", "contract_id": 42} and t["last_seq"] == 0
    assert [(p["user_id"], p["role"]) for p in t["participants"]] == [
        ("alice", "client"), ("bob", "worker")]
    status, _, got = await call(node, "GET", f"/v1/threads/{t['id']}", node.token("alice"))
    assert status == 200 and got["thread"]["id"] == t["id"]
    status, _, got = await call(node, "GET", f"/v1/threads/{t['id']}", node.token("mallory"))
    assert_error(status, got, 403, "forbidden")
    # An explicit id is kept; the same id twice is a conflict.
    status, _, out = await call(node, "POST", "/v1/threads", svc(node),
                                json={**GOOD, "id": "t_fixed"})
    assert status == 201 and out["thread"]["id"] == "t_fixed"
    status, _, out = await call(node, "POST", "/v1/threads", svc(node),
                                json={**GOOD, "id": "t_fixed"})
    assert_error(status, out, 409, "conflict")


BAD_THREADS: list[tuple[str, Any]] = [
    ("not an object", [1, 2]),
    ("no kind", {k: v for k, v in GOOD.items() if k != "kind"}),
    ("bad kind", {**GOOD, "kind": "chat"}),
    ("kind not a string", {**GOOD, "kind": 3}),
    ("no title", {k: v for k, v in GOOD.items() if k != "title"}),
    ("empty title", {**GOOD, "title": ""}),
    ("long title", {**GOOD, "title": "x" * 201}),
    ("no participants", {k: v for k, v in GOOD.items() if k != "participants"}),
    ("empty participants", {**GOOD, "participants": []}),
    ("participants not a list", {**GOOD, "participants": {"user_id": "a"}}),
    ("participant not an object", {**GOOD, "participants": ["alice"]}),
    ("participant without user_id", {**GOOD, "participants": [{"role": "client"}]}),
    ("participant without role", {**GOOD, "participants": [{"user_id": "alice"}]}),
    ("bad role", {**GOOD, "participants": [{"user_id": "alice", "role": "boss"}]}),
    ("twice", {**GOOD, "participants": [{"user_id": "a", "role": "client"},
                                        {"user_id": "a", "role": "worker"}]}),
    ("reserved user", {**GOOD, "participants": [{"user_id": "system", "role": "client"}]}),
    ("too many", {**GOOD, "participants": [{"user_id": f"u{i}", "role": "worker"}
                                           for i in range(4)]}),
    ("ref not an object", {**GOOD, "ref": "j-1"}),
    ("ref value", {**GOOD, "ref": {"job_id": ["x"]}}),
    ("ref bool", {**GOOD, "ref": {"job_id": True}}),
    ("bad stage", {**GOOD, "stage": "paid"}),
]


async def test_create_thread_validation(start: Start) -> None:
    node = await start(max_participants=3)
    for why, body in BAD_THREADS:
        status, _, out = await call(node, "POST", "/v1/threads", svc(node), json=body)
        assert_error(status, out, 400, "bad_request")
        assert status == 400, why
    for raw in (b"{not json", b"\xff\xfe", b"null"):
        status, _, out = await call(node, "POST", "/v1/threads", svc(node), data=raw)
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "GET", "/v1/threads", node.token("alice"))
    assert out["threads"] == []  # nothing was created


async def test_auth_errors(start: Start) -> None:
    node = await start()
    status, _, out = await call(node, "POST", "/v1/threads", json=GOOD)
    assert_error(status, out, 401, "unauthorized")
    for header in ("Bearer not-a-jwt", "Basic abc", "Bearer ", "bearer"):
        status, _, out = await call(node, "POST", "/v1/threads", json=GOOD,
                                    headers={"Authorization": header})
        assert_error(status, out, 401, "unauthorized")
    expired = node.token("platform", "service", ttl=-30)
    status, _, out = await call(node, "POST", "/v1/threads", expired, json=GOOD)
    assert_error(status, out, 401, "unauthorized")
    for roles in (("client",), ("worker",), ("moderator",)):
        status, _, out = await call(node, "POST", "/v1/threads", node.token("u", *roles),
                                    json=GOOD)
        assert_error(status, out, 403, "forbidden")
    status, _, out = await call(node, "GET", "/v1/me")
    assert_error(status, out, 401, "unauthorized")


async def test_add_participant(start: Start) -> None:
    node = await start()
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    path = f"/v1/threads/{tid}/participants"
    status, _, out = await call(node, "POST", path, svc(node),
                                json={"user_id": "carol", "role": "member"})
    assert status == 200
    assert {p["user_id"] for p in out["thread"]["participants"]} == {"alice", "bob", "carol"}
    # Again with the same role: nothing changes; with another role: conflict.
    status, _, out = await call(node, "POST", path, svc(node),
                                json={"user_id": "carol", "role": "member"})
    assert status == 200 and len(out["thread"]["participants"]) == 3
    status, _, out = await call(node, "POST", path, svc(node),
                                json={"user_id": "carol", "role": "client"})
    assert_error(status, out, 409, "conflict")
    status, _, out = await call(node, "POST", "/v1/threads/t_missing/participants", svc(node),
                                json={"user_id": "carol", "role": "member"})
    assert_error(status, out, 404, "not_found")
    for body in ({"user_id": "dave"}, {"role": "member"}, {"user_id": "dave", "role": "x"},
                 {"user_id": "system", "role": "member"}, {"user_id": "", "role": "member"}):
        status, _, out = await call(node, "POST", path, svc(node), json=body)
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "POST", path, node.token("alice"),
                                json={"user_id": "dave", "role": "member"})
    assert_error(status, out, 403, "forbidden")


async def test_system_message_reaches_participants_and_is_idempotent(start: Start) -> None:
    node = await start()
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    a = await ws(node, "alice")
    b = await ws(node, "bob", "worker")
    path = f"/v1/threads/{tid}/system"
    body = {"body": "仮払いが完了しました / Deposit received",
            "data": {"event": "deposit", "amount": 50000}, "client_msg_id": "dep-1"}
    status, _, out = await call(node, "POST", path, svc(node), json=body)
    assert status == 201
    msg = out["message"]
    assert msg["kind"] == "system" and msg["seq"] == 1 and msg["sender"] == "system"
    assert msg["data"] == {"event": "deposit", "amount": 50000}
    for c in (a, b):
        [got] = await c.messages(1)
        assert got["id"] == msg["id"] and got["kind"] == "system" and got["body"] == body["body"]
    status, _, again = await call(node, "POST", path, svc(node), json=body)
    assert status == 200 and again["message"]["id"] == msg["id"]
    await a.send(tid, "ok")
    [nxt] = await b.messages(1)
    assert nxt["seq"] == 2  # the retry was not pushed again
    for bad in ({}, {"body": ""}, {"body": 5}, {"body": "x" * 10001}, {"body": "x", "data": 3}):
        status, _, out = await call(node, "POST", path, svc(node), json=bad)
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "POST", "/v1/threads/t_missing/system", svc(node),
                                json={"body": "x"})
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "POST", path, node.token("alice"), json={"body": "x"})
    assert_error(status, out, 403, "forbidden")


async def test_patch_thread_pushes_thread_updated(start: Start) -> None:
    node = await start()
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    b = await ws(node, "bob", "worker")
    status, _, out = await call(node, "PATCH", f"/v1/threads/{tid}", svc(node),
                                json={"stage": "in_progress"})
    assert status == 200 and out["thread"]["stage"] == "in_progress"
    assert await b.push("thread_updated") == {"type": "thread_updated", "thread": tid,
                                              "stage": "in_progress", "title": "ロゴ制作 / Logo design"}
    status, _, out = await call(node, "PATCH", f"/v1/threads/{tid}", svc(node),
                                json={"title": "ロゴ制作（改訂）"})
    assert status == 200 and out["thread"]["title"] == "ロゴ制作（改訂）"
    assert out["thread"]["stage"] == "in_progress"
    pushed = await b.push("thread_updated")
    assert pushed["title"] == "ロゴ制作（改訂）" and pushed["stage"] == "in_progress"
    for bad in ({}, {"stage": "paid"}, {"title": ""}, {"title": "x" * 201}, {"stage": 1}):
        status, _, out = await call(node, "PATCH", f"/v1/threads/{tid}", svc(node), json=bad)
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "PATCH", "/v1/threads/t_missing", svc(node),
                                json={"stage": "closed"})
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "PATCH", f"/v1/threads/{tid}", node.token("alice"),
                                json={"stage": "closed"})
    assert_error(status, out, 403, "forbidden")


async def test_thread_list_with_unread_counts(start: Start) -> None:
    node = await start()
    t1 = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    t2 = (await node.create_thread(("alice", "client"), ("carol", "worker"), kind="inquiry"))["id"]
    await node.create_thread(("dave", "client"), ("erin", "worker"))
    a = await ws(node, "alice")
    b = await ws(node, "bob", "worker")
    for i in range(3):
        await a.send(t1, f"m{i}")
    await b.send(t1, "bob's own")

    async def listing(user: str) -> dict[str, dict[str, Any]]:
        status, _, out = await call(node, "GET", "/v1/threads", node.token(user))
        assert status == 200
        return {t["id"]: t for t in out["threads"]}

    bobs = await listing("bob")
    assert set(bobs) == {t1}
    assert bobs[t1]["unread"] == 3 and bobs[t1]["last_seq"] == 4  # his own do not count
    assert bobs[t1]["kind"] == "contract" and bobs[t1]["title"]
    alices = await listing("alice")
    assert set(alices) == {t1, t2}
    assert alices[t1]["unread"] == 1 and alices[t2]["unread"] == 0
    await b.request({"type": "read", "thread": t1, "seq": 2})
    assert (await listing("bob"))[t1]["unread"] == 1
    await b.request({"type": "read", "thread": t1, "seq": 4})
    assert (await listing("bob"))[t1]["unread"] == 0
    assert await listing("nobody") == {}
    for q in ("limit=0", "limit=x", "limit=1001"):
        status, _, out = await call(node, "GET", f"/v1/threads?{q}", node.token("bob"))
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "GET", "/v1/threads?limit=1", node.token("alice"))
    assert status == 200 and len(out["threads"]) == 1


async def test_history_paging(start: Start) -> None:
    node = await start(history_max_limit=50, rate_burst=100)
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    a = await ws(node, "alice")
    for i in range(1, 11):
        await a.send(tid, f"m{i}")
    tok = node.token("bob")

    async def seqs(query: str) -> list[int]:
        status, _, out = await call(node, "GET", f"/v1/threads/{tid}/messages?{query}", tok)
        assert status == 200, out
        assert out["last_seq"] == 10
        return [m["seq"] for m in out["messages"]]

    assert await seqs("") == list(range(1, 11))
    assert await seqs("after_seq=3&limit=4") == [4, 5, 6, 7]
    assert await seqs("after_seq=0&limit=2") == [1, 2]
    assert await seqs("after_seq=8") == [9, 10]
    assert await seqs("after_seq=10") == []
    assert await seqs("after_seq=99") == []
    assert await seqs("before_seq=5&limit=2") == [3, 4]
    assert await seqs("before_seq=1") == []
    assert await seqs("limit=3") == [8, 9, 10]  # the latest
    assert await seqs("after_seq=3&before_seq=6") == [4, 5]
    assert await seqs("limit=50") == list(range(1, 11))
    for q in ("limit=0", "limit=51", "limit=abc", "after_seq=-1", "after_seq=1.5",
              "before_seq=x", "before_seq=-2"):
        status, _, out = await call(node, "GET", f"/v1/threads/{tid}/messages?{q}", tok)
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "GET", f"/v1/threads/{tid}/messages",
                                node.token("mallory"))
    assert_error(status, out, 403, "forbidden")
    status, _, out = await call(node, "GET", "/v1/threads/t_missing/messages", tok)
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "GET", f"/v1/threads/{tid}/messages?limit=1", svc(node))
    assert status == 200 and out["messages"][0]["seq"] == 10  # the service may read any


OFFSITE = "Let's sign the contract directly outside the platform to avoid the fee."


async def test_own_withheld_messages_only_the_callers(start: Start) -> None:
    """GET /v1/threads/{id}/withheld: a sender's own held messages survive a page reload;
    released ones leave the default list, rejected ones say so; never another's."""
    node = await start(rate_burst=100)
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker"),
                                    kind="inquiry"))["id"]
    alice, bob = await ws(node, "alice", "client"), await ws(node, "bob", "worker")
    held = []
    for who, cmid in ((alice, "a1"), (alice, "a2"), (bob, "b1")):
        ok = await who.send(tid, OFFSITE + f" ({cmid})", cmid=cmid)
        assert ok["withheld"]["status"] == "held", ok
        held.append(ok["withheld"]["id"])
    path = f"/v1/threads/{tid}/withheld"

    async def mine(user: str, query: str = "") -> list[dict[str, Any]]:
        status, _, out = await call(node, "GET", f"{path}{query}", node.token(user, locale="en"))
        assert status == 200, out
        return list(out["withheld"])

    rows = await mine("alice")
    assert [(r["id"], r["client_msg_id"], r["status"]) for r in rows] == [
        (held[0], "a1", "held"), (held[1], "a2", "held")]
    first = rows[0]
    assert first["body"] == OFFSITE + " (a1)" and first["thread"] == tid
    assert first["action"] == "hold" and first["edit_of"] is None
    assert first["moderation"]["action"] == "hold"
    assert first["moderation"]["categories"] == ["off_platform_deal"]
    assert first["moderation"]["warning"]["text"] == first["moderation"]["warning"]["en"]
    assert not {"record", "findings", "risk", "sender"} & set(first), "no staff-only fields"
    assert [r["id"] for r in await mine("bob")] == [held[2]]
    assert await mine("alice", "?limit=1") == rows[1:]

    # A moderator releases a1 and rejects a2 (a warning rejects the held message).
    mod = node.token("mod1", "moderator")
    status, _, queue = await call(node, "GET", "/v1/moderation/queue", mod)
    assert status == 200
    item = {i["withheld_id"]: i["id"] for i in queue["items"]}
    for wid, decision in ((held[0], "release"), (held[1], "warn")):
        status, _, out = await call(node, "POST", f"/v1/moderation/items/{item[wid]}/decide",
                                    mod, json={"decision": decision, "note": ""})
        assert status == 200, out
    rows = await mine("alice")
    assert [(r["id"], r["status"]) for r in rows] == [(held[1], "rejected")]
    released = await mine("alice", "?status=released")
    status, _, hist = await call(node, "GET", f"/v1/threads/{tid}/messages", node.token("bob"))
    assert [m["id"] for m in hist["messages"]] == [released[0]["released_message_id"]]
    assert [r["status"] for r in await mine("alice", "?status=held,rejected,released")] == [
        "released", "rejected"]

    for q in ("?status=bogus", "?status=held,nope", "?status=,", "?limit=0", "?limit=501"):
        status, _, out = await call(node, "GET", path + q, node.token("alice"))
        assert_error(status, out, 400, "bad_request")
    status, _, out = await call(node, "GET", path, node.token("mallory"))
    assert_error(status, out, 403, "forbidden")
    status, _, out = await call(node, "GET", path, mod)  # staff use the review API
    assert_error(status, out, 403, "forbidden")
    status, _, out = await call(node, "GET", path)
    assert_error(status, out, 401)
    status, _, out = await call(node, "GET", "/v1/threads/t_missing/withheld",
                                node.token("alice"))
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "GET", path, svc(node))  # the service has none
    assert status == 200 and out == {"withheld": []}


async def test_own_withheld_is_empty_without_moderation(start: Start) -> None:
    node = await start(moderation_enabled=False)
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    ok = await (await ws(node, "alice", "client")).send(tid, OFFSITE)
    assert "message" in ok
    status, _, out = await call(node, "GET", f"/v1/threads/{tid}/withheld", node.token("alice"))
    assert status == 200 and out == {"withheld": []}


async def test_me_and_healthz(start: Start) -> None:
    node = await start()
    status, _, out = await call(node, "GET", "/v1/me", node.token("alice", "client",
                                                                  "worker"))
    assert status == 200
    assert out["user"]["id"] == "alice" and out["user"]["roles"] == ["client", "worker"]
    assert out["user"]["locale"] == "ja" and out["user"]["tz"] == "Asia/Tokyo"
    status, _, out = await call(node, "GET", "/healthz")
    assert status == 200 and out["ok"] is True and out["store"] == "ok"
    assert out["fanout"]["ok"] is True


async def test_body_over_the_limit_is_413(start: Start) -> None:
    node = await start(max_http_body_bytes=4096)
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    status, _, out = await call(node, "POST", f"/v1/threads/{tid}/system", svc(node),
                                json={"body": "x" * 5000})
    assert_error(status, out, 413, "too_large")
    status, _, out = await call(node, "POST", f"/v1/threads/{tid}/system", svc(node),
                                json={"body": "x" * 3000})
    assert status == 201


async def test_http_rate_limit_is_429_with_retry_after(start: Start) -> None:
    node = await start(http_rate_per_s=0.5, http_rate_burst=3)
    tok = node.token("alice")
    for _ in range(3):
        status, _, _ = await call(node, "GET", "/v1/me", tok)
        assert status == 200
    status, headers, out = await call(node, "GET", "/v1/me", tok)
    assert_error(status, out, 429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 2
    assert 0 < out["error"]["retry_after"] <= 2
    # Per user: others are not limited; the service role is not limited.
    status, _, _ = await call(node, "GET", "/v1/me", node.token("bob"))
    assert status == 200
    for _ in range(5):
        status, _, _ = await call(node, "GET", "/v1/me", svc(node))
        assert status == 200


async def test_unknown_routes_and_methods_are_json(start: Start) -> None:
    node = await start()
    tok = node.token("alice")
    status, _, out = await call(node, "GET", "/v1/nothing-here", tok)
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "GET", "/nope")
    assert_error(status, out, 404, "not_found")
    status, _, out = await call(node, "DELETE", "/v1/threads", tok)
    assert_error(status, out, 405, "method_not_allowed")
    status, _, out = await call(node, "PUT", "/v1/me", tok)
    assert_error(status, out, 405, "method_not_allowed")
    status, headers, out = await call(node, "GET", "/v1/threads/t_missing", tok)
    assert_error(status, out, 404, "not_found")
    assert headers["Content-Type"].startswith("application/json")
