"""The HTTP API on both back ends: path ids are validated like body ids, a 405 names the
allowed methods, and ``GET /v1/threads`` pages with a cursor."""

from __future__ import annotations

from typing import Any

import pytest

from chat.store import Store
from tests.test_http_api import Start, assert_error, call, svc
from tests.test_http_api import start as start  # the fixture: nodes on the test's back end
from tests.test_store_conformance import T0, append, make_thread, msg

# --- F: path ids --------------------------------------------------------------------------

def routes(tid: str, bad: str) -> list[tuple[str, str, str, Any]]:
    """(who, method, path, body) for every chat route with an id in its path."""
    return [
        ("user", "GET", f"/v1/threads/{bad}", None),
        ("service", "PATCH", f"/v1/threads/{bad}", {"stage": "in_progress"}),
        ("service", "POST", f"/v1/threads/{bad}/participants",
         {"user_id": "carol", "role": "worker"}),
        ("service", "POST", f"/v1/threads/{bad}/system", {"body": "納品されました"}),
        ("user", "GET", f"/v1/threads/{bad}/messages", None),
        ("user", "GET", f"/v1/threads/{bad}/withheld", None),
        ("user", "GET", f"/v1/threads/{bad}/messages/m_1/thanks", None),
        ("user", "GET", f"/v1/threads/{tid}/messages/{bad}/thanks", None),
        ("user", "GET", f"/v1/users/{bad}/thanks", None),
    ]


@pytest.mark.parametrize("bad, why", [("t%00x", "NUL"), ("%00", "NUL"), ("x" * 129, "longer")])
async def test_bad_path_ids_are_400_bad_request(start: Start, bad: str, why: str) -> None:
    node = await start()
    thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
    tokens = {"user": node.token("alice"), "service": svc(node)}
    for who, method, path, body in routes(thread["id"], bad):
        status, _, answer = await call(node, method, path, tokens[who], json=body)
        assert_error(status, answer, 400, "bad_request")
        assert why in answer["error"]["message"], (path, answer)
    # The storage is fine (no 503 on PostgreSQL), and an id that is merely unknown is 404.
    status, _, answer = await call(node, "GET", "/v1/threads/t_nope", tokens["user"])
    assert_error(status, answer, 404, "not_found")
    status, _, answer = await call(node, "GET", "/healthz")
    assert status == 200 and answer["ok"] is True
    # Authentication still comes first.
    status, _, answer = await call(node, "GET", f"/v1/threads/{bad}")
    assert_error(status, answer, 401, "unauthorized")


# --- G: 405 keeps Allow -------------------------------------------------------------------

async def test_405_is_json_and_names_the_allowed_methods(start: Start) -> None:
    node = await start()
    status, headers, answer = await call(node, "DELETE", "/v1/threads/t1/messages",
                                         node.token("alice"))
    assert_error(status, answer, 405, "method_not_allowed")
    assert "Allow" in headers, headers
    assert {m.strip() for m in headers["Allow"].split(",")} >= {"GET"}
    status, headers, answer = await call(node, "PUT", "/v1/threads", svc(node), json={})
    assert_error(status, answer, 405, "method_not_allowed")
    assert {m.strip() for m in headers["Allow"].split(",")} >= {"GET", "POST"}


# --- E: paging the thread list ------------------------------------------------------------

async def test_store_user_threads_pages_by_activity_then_id(store: Store) -> None:
    # Ties on updated_at (same creation time) are ordered by id and split across pages.
    for tid in ("t1", "t2", "t3", "t4"):
        await make_thread(store, tid, at=T0)
    await make_thread(store, "t5", at=T0 + 10)
    await make_thread(store, "t6", at=T0 - 10)
    await make_thread(store, "x1", at=T0 + 20, members=(("bob", "client"), ("carol", "worker")))
    full = [r.thread.id for r in await store.user_threads("alice", limit=100)]
    assert full == ["t5", "t1", "t2", "t3", "t4", "t6"]
    got: list[str] = []
    before: tuple[int, str] | None = None
    while True:
        page = await store.user_threads("alice", limit=2, before=before)
        got += [r.thread.id for r in page]
        if len(page) < 2:
            break
        before = (page[-1].thread.updated_at, page[-1].thread.id)
    assert got == full
    # The page after t2 starts at t3 (same updated_at, next id).
    t2 = next(r.thread for r in await store.user_threads("alice", limit=100)
              if r.thread.id == "t2")
    after = await store.user_threads("alice", limit=2, before=(t2.updated_at, "t2"))
    assert [r.thread.id for r in after] == ["t3", "t4"]
    # Activity moves a thread to the front; unread counts are per page row as before.
    await append(store, msg("t6", "bob", at=T0 + 30))
    first = await store.user_threads("alice", limit=1)
    assert [(r.thread.id, r.unread) for r in first] == [("t6", 1)]


async def test_http_thread_list_pages_with_next(start: Start) -> None:
    node = await start()
    ids = []
    for i in range(5):
        t = await node.create_thread(("alice", "client"), (f"w{i}", "worker"))
        ids.append(t["id"])
    await node.create_thread(("bob", "client"), ("carol", "worker"))  # not alice's
    token = node.token("alice")
    status, whole = await node.http("GET", "/v1/threads", token)
    assert status == 200 and whole["next"] is None
    order = [t["id"] for t in whole["threads"]]
    assert sorted(order) == sorted(ids)
    got: list[str] = []
    path = "/v1/threads?limit=2"
    pages = 0
    while True:
        status, page = await node.http("GET", path, token)
        assert status == 200, page
        pages += 1
        assert len(page["threads"]) <= 2
        got += [t["id"] for t in page["threads"]]
        if page["next"] is None:
            break
        path = f"/v1/threads?limit=2&before={page['next']}"
    assert got == order and pages == 3
    # Exactly a full last page: no empty page after it.
    status, page = await node.http("GET", "/v1/threads?limit=5", token)
    assert len(page["threads"]) == 5 and page["next"] is None
    for bad in ("nope", "12", ".t1", "x.t1", "1.", "1." + "x" * 129, "1.t%00", "",
                "9999999999999999999.t1"):  # beyond BIGINT: 400, not a storage error
        status, _, answer = await call(node, "GET", f"/v1/threads?before={bad}", token)
        assert_error(status, answer, 400, "bad_request")


def staff_routes(bad: str) -> list[tuple[str, str, str, Any]]:
    """(role, method, path, body) for the moderation, dispute and notification routes with an
    id in their path."""
    return [
        ("moderator", "GET", f"/v1/moderation/items/{bad}", None),
        ("moderator", "POST", f"/v1/moderation/items/{bad}/claim", None),
        ("moderator", "POST", f"/v1/moderation/items/{bad}/decide",
         {"decision": "release", "note": "ok"}),
        ("moderator", "GET", f"/v1/moderation/threads/{bad}", None),
        ("moderator", "DELETE", f"/v1/moderation/restrictions/{bad}", {"note": "ok"}),
        ("dispute", "GET", f"/v1/disputes/{bad}", None),
        ("dispute", "GET", f"/v1/disputes/{bad}/log", None),
        ("dispute", "GET", f"/v1/disputes/{bad}/access", None),
        ("dispute", "GET", f"/v1/disputes/{bad}/export", None),
        ("dispute", "POST", f"/v1/disputes/{bad}/close", {"reason": "done"}),
        ("client", "GET", f"/v1/evidence/threads/{bad}", None),
        ("client", "POST", f"/v1/notifications/{bad}/read", None),
        ("client", "GET", f"/v1/notifications/{bad}/deliveries", None),
    ]


@pytest.mark.parametrize("bad, why", [("t%00x", "NUL"), ("x" * 129, "longer")])
async def test_bad_path_ids_on_staff_and_notification_routes_are_400(
        start: Start, bad: str, why: str) -> None:
    node = await start()
    for role, method, path, body in staff_routes(bad):
        token = node.token(f"u-{role}", role)
        status, _, answer = await call(node, method, path, token, json=body)
        assert_error(status, answer, 400, "bad_request")
        assert why in answer["error"]["message"], (path, answer)
