"""The WebSocket protocol at ``/v1/ws`` end to end, through real sockets, on both back ends.

Every line of the WebSocket part of ``wire-v1.md`` and the extensions of issue 2 (edit,
delete, thanks, token refresh, presence, heartbeat, slow consumers, Origin allowlist,
graceful drain). Pushes are awaited with timeouts; where a test must show that something is
*not* pushed, it first sends a request on the same connection and waits for its answer: the
server writes answers and pushes through one ordered queue, so anything queued before the
answer has arrived by then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from chat.session import Connection
from tests.support import Client, Node

Start = Callable[..., Awaitable["Env"]]


class Env:
    """A running node and the clients a test opened on it (all closed at the end)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.clients: list[Client] = []
        self.sessions: list[aiohttp.ClientSession] = []
        self.stalled: list[RawWs] = []

    async def client(self, user: str, *roles: str, hello: bool = True,
                     resume: dict[str, int] | None = None, origin: str | None = None,
                     token: str | None = None) -> Client:
        c = Client(self.node.ws_url, token or self.node.token(user, *roles), origin=origin)
        self.clients.append(c)
        await c.connect(hello=hello, resume=resume)
        return c

    async def raw(self, user: str, *, autoping: bool = True
                  ) -> aiohttp.ClientWebSocketResponse:
        """A bare socket after a successful hello; nothing reads it unless the test does."""
        session = aiohttp.ClientSession()
        self.sessions.append(session)
        ws = await session.ws_connect(self.node.ws_url, autoping=autoping, max_msg_size=0)
        await ws.send_json({"type": "hello", "id": "h", "token": self.node.token(user)})
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT and msg.json()["type"] == "ok", msg
        return ws

    def connection(self, user: str) -> Connection:
        [conn] = [c for c in self.node.gateway.connections if c.user == user]
        return conn

    async def close(self) -> None:
        for c in self.clients:
            with contextlib.suppress(Exception):
                await c.close()
        for s in self.sessions:
            await s.close()
        for w in self.stalled:
            w.close()
        await self.node.stop()


@pytest.fixture
async def start(settings_factory: Any) -> AsyncIterator[Start]:
    envs: list[Env] = []

    async def make(**overrides: Any) -> Env:
        env = Env(await Node(settings_factory(**overrides)).start())
        envs.append(env)
        return env

    yield make
    for env in envs:
        await env.close()


async def wait_until(cond: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def token_until(node: Node, sub: str, exp: int, roles: tuple[str, ...] = ("client",)) -> str:
    return jwt.encode({"sub": sub, "roles": list(roles), "exp": exp},
                      str(node.settings.jwt_secret), algorithm="HS256")


class RawWs:
    """A bare WebSocket client on a TCP stream that reads only when the test does.

    aiohttp's client keeps reading into memory; this one stops, so the server meets a full
    TCP window, as with a stalled phone.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, token: str) -> RawWs:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        ws = cls(reader, writer)
        ws.send_text(orjson.dumps({"type": "hello", "id": "h", "token": token}))
        op, data = await ws.frame()
        assert op == 1 and orjson.loads(data)["type"] == "ok", data
        return ws

    def send_text(self, data: bytes) -> None:
        mask = os.urandom(4)
        n = len(data)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        self.writer.write(b"\x81" + length + mask
                          + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def frame(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload (the server neither masks nor fragments)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.transport.abort()


async def ping(c: Client) -> dict[str, Any]:
    """A round trip: every push queued for ``c`` before it has arrived when this returns."""
    answer = await c.request({"type": "ping"})
    assert answer["type"] == "ok", answer
    return answer


async def pair(env: Env, **kw: Any) -> tuple[str, Client, Client]:
    thread = await env.node.create_thread(("alice", "client"), ("bob", "worker"), **kw)
    a = await env.client("alice", "client")
    b = await env.client("bob", "worker")
    return thread["id"], a, b


# --- hello and tokens ---------------------------------------------------------------------

async def test_hello_answers_user_threads_and_presence(start: Start) -> None:
    env = await start()
    thread = await env.node.create_thread(("alice", "client"), ("bob", "worker"))
    b = await env.client("bob", "worker")
    a = await env.client("alice", "client")
    hello = a.hello_ok
    assert hello["user"]["id"] == "alice" and hello["user"]["roles"] == ["client"]
    assert hello["threads"] == {thread["id"]: {"last_seq": 0, "stage": "deposit_pending"}}
    assert hello["presence"] == {"bob": "online"}
    assert hello["limits"] == {"max_frame_bytes": 65536, "max_body_chars": 10_000,
                               "rate_per_s": env.node.settings.rate_per_s,
                               "rate_burst": env.node.settings.rate_burst,
                               "history_max_limit": 500}
    assert b.hello_ok["presence"] == {"alice": "offline"}


async def test_anything_before_hello_closes_4001(start: Start) -> None:
    env = await start()
    for first in (
        orjson.dumps({"type": "send", "thread": "t", "client_msg_id": "c", "body": "x"}),
        orjson.dumps({"type": "ping", "id": "p"}),
        b"not json",
        b"[]",
    ):
        c = await env.client("alice", hello=False)
        await c.send_raw(first.decode())
        assert await c.wait_closed() == 4001, first


async def test_binary_before_hello_closes_4001(start: Start) -> None:
    env = await start()
    c = await env.client("alice", hello=False)
    assert c.ws is not None
    await c.ws.send_bytes(b'{"type": "hello"}')
    assert await c.wait_closed() == 4001


async def test_bad_token_closes_4001(start: Start) -> None:
    env = await start()
    node = env.node
    secret = str(node.settings.jwt_secret)
    for kind, token in {
        "garbage": "not-a-jwt",
        "expired": node.token("alice", ttl=-30),
        "other_key": jwt.encode({"sub": "alice", "exp": int(time.time()) + 60},
                                "another-secret-" + "y" * 40, algorithm="HS256"),
        "unknown_role": node.token("alice", "superuser"),
        "no_exp": jwt.encode({"sub": "alice"}, secret, algorithm="HS256"),
        "alg_none": jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None,
                               algorithm="none"),
    }.items():
        c = await env.client("alice", hello=False)
        await c.send_raw(orjson.dumps({"type": "hello", "id": "h", "token": token}).decode())
        assert await c.wait_closed() == 4001, kind
    assert not node.gateway.connections


async def test_no_hello_in_time_closes_4001(start: Start) -> None:
    env = await start(hello_timeout_s=0.3)
    c = await env.client("alice", hello=False)
    assert await c.wait_closed() == 4001


async def test_token_expiry_ends_socket_and_refresh_extends_it(start: Start) -> None:
    env = await start()
    node = env.node
    exp = int(time.time()) + 2
    stale = await env.client("alice", token=token_until(node, "alice", exp))
    fresh = await env.client("bob", token=token_until(node, "bob", exp))
    other = await fresh.request({"type": "token", "token": node.token("mallory")})
    assert other["type"] == "error" and other["code"] == "forbidden"
    ok = await fresh.request({"type": "token", "token": node.token("bob", ttl=3600)})
    assert ok["type"] == "ok" and ok["exp"] > exp
    assert await stale.wait_closed(timeout=6) == 4001
    # Both sockets had the same expiry; give the refreshed one's old deadline time to pass.
    await asyncio.sleep(max(0.0, exp + 0.3 - time.time()))
    await ping(fresh)
    assert not fresh.closed.is_set()


async def test_token_refresh_with_bad_token_closes_4001(start: Start) -> None:
    env = await start()
    c = await env.client("alice")
    await c.send_raw(orjson.dumps({"type": "token", "id": "t", "token": "nope"}).decode())
    assert await c.wait_closed() == 4001


# --- send, resume, ordering ---------------------------------------------------------------

async def test_send_and_idempotent_retry(start: Start) -> None:
    env = await start()
    tid, a, b = await pair(env)
    ok = await a.send(tid, "見積もりをお送りします", cmid="k-1")
    msg = ok["message"]
    assert ok["type"] == "ok" and ok["duplicate"] is False
    assert msg["seq"] == 1 and msg["thread"] == tid and msg["sender"] == "alice"
    assert msg["kind"] == "user" and msg["body"] == "見積もりをお送りします"
    assert msg["client_msg_id"] == "k-1" and msg["created_at"].endswith("Z")
    [got] = await b.messages(1)
    assert got["id"] == msg["id"] and "client_msg_id" not in got
    # Retry on the same socket, with another body even: the first message, nothing new.
    again = await a.send(tid, "changed", cmid="k-1")
    assert again["duplicate"] is True
    assert (again["message"]["id"], again["message"]["seq"]) == (msg["id"], 1)
    assert again["message"]["body"] == "見積もりをお送りします"
    # Retry from a new connection (the client reconnected before it saw the ok).
    await a.close()
    a2 = await env.client("alice", "client")
    third = await a2.send(tid, "見積もりをお送りします", cmid="k-1")
    assert third["message"]["id"] == msg["id"] and third["duplicate"] is True
    # The same client_msg_id from another sender is another message.
    mine = await b.send(tid, "了解です", cmid="k-1")
    assert mine["duplicate"] is False and mine["message"]["seq"] == 2
    # Bob saw seq 1 exactly once: his next message push is seq 2.
    [nxt] = await b.messages(1)
    assert nxt["seq"] == 2
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("alice"))
    assert status == 200 and [m["seq"] for m in page["messages"]] == [1, 2]


async def test_concurrent_senders_pushes_in_seq_order(start: Start) -> None:
    env = await start(rate_burst=1000)
    node = env.node
    thread = await node.create_thread(("alice", "client"), ("bob", "worker"),
                                      ("carol", "member"), kind="team")
    tid = thread["id"]
    a = await env.client("alice")
    b = await env.client("bob", "worker")
    c = await env.client("carol", "worker")
    n = 20
    answers = await asyncio.gather(
        *(a.send(tid, f"a{i}") for i in range(n)), *(b.send(tid, f"b{i}") for i in range(n))
    )
    assert sorted(x["message"]["seq"] for x in answers) == list(range(1, 2 * n + 1))
    for client in (a, b, c):
        got = await client.messages(2 * n)
        assert [m["seq"] for m in got] == list(range(1, 2 * n + 1))
        assert {m["id"] for m in got} == {x["message"]["id"] for x in answers}


async def test_resume_pushes_missed_messages_before_live_ones(start: Start) -> None:
    env = await start(rate_burst=1000)
    node = env.node
    tid = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    other = (await node.create_thread(("alice", "client"), ("bob", "worker")))["id"]
    a = await env.client("alice")
    for i in range(30):
        await a.send(tid, f"m{i}")
    for i in range(3):
        await a.send(other, f"o{i}")

    bob = Client(node.ws_url, node.token("bob", "worker"))
    env.clients.append(bob)

    async def live() -> list[int]:
        return [(await a.send(tid, f"live{i}"))["message"]["seq"] for i in range(5)]

    _, live_seqs = await asyncio.gather(bob.connect(resume={tid: 10}), live())
    assert live_seqs == [31, 32, 33, 34, 35]
    assert bob.hello_ok["threads"][tid]["last_seq"] >= 30
    got = await bob.messages(25)
    assert [(m["thread"], m["seq"]) for m in got] == [(tid, s) for s in range(11, 36)]
    assert [m["body"] for m in got[:20]] == [f"m{i}" for i in range(10, 30)]
    last = await a.send(tid, "after")
    [nxt] = await bob.messages(1)
    assert (nxt["thread"], nxt["seq"]) == (tid, last["message"]["seq"])  # no duplicate between
    # The thread that was not in resume is followed from its end: nothing old was pushed.
    await ping(bob)
    assert [f for f in bob.drain_pushes() if f["type"] == "message"] == []


async def test_resume_beyond_the_end_pushes_nothing(start: Start) -> None:
    env = await start()
    tid, a, _ = await pair(env)
    await a.send(tid, "one")
    c = await env.client("bob", "worker", resume={tid: 99, "t_unknown": 3})
    await ping(c)
    assert [f for f in c.drain_pushes() if f["type"] == "message"] == []
    await a.send(tid, "two")
    [m] = await c.messages(1)
    assert m["seq"] == 2


# --- read, typing, presence ---------------------------------------------------------------

async def test_read_sends_receipt_and_clamps(start: Start) -> None:
    env = await start()
    tid, a, b = await pair(env)
    for i in range(3):
        await a.send(tid, f"m{i}")
    ok = await b.request({"type": "read", "thread": tid, "seq": 2})
    assert ok["type"] == "ok" and ok["seq"] == 2
    assert await a.push("receipt") == {"type": "receipt", "thread": tid, "user": "bob", "seq": 2}
    high = await b.request({"type": "read", "thread": tid, "seq": 1000})
    assert high["seq"] == 3  # clamped to the thread's last seq
    assert (await a.push("receipt"))["seq"] == 3
    back = await b.request({"type": "read", "thread": tid, "seq": 1})
    assert back["seq"] == 3  # never backwards
    status, body = await env.node.http("GET", "/v1/threads", env.node.token("bob"))
    assert status == 200 and body["threads"][0]["read_seq"] == 3


async def test_a_read_that_moves_nothing_sends_no_receipt(start: Start) -> None:
    """A repeated or older ``read`` is answered with the position but tells no one (and
    writes nothing): a client that sends one per render cannot flood the thread."""
    env = await start()
    tid, a, b = await pair(env)
    for i in range(3):
        await a.send(tid, f"m{i}")
    assert (await b.request({"type": "read", "thread": tid, "seq": 3}))["seq"] == 3
    assert (await a.push("receipt"))["seq"] == 3
    for seq in (3, 3, 1, 2, 1000):
        assert (await b.request({"type": "read", "thread": tid, "seq": seq}))["seq"] == 3
    await a.send(tid, "m3")
    assert (await b.request({"type": "read", "thread": tid, "seq": 4}))["seq"] == 4
    assert (await a.push("receipt"))["seq"] == 4  # the next receipt: nothing in between


async def test_typing_goes_out_at_most_once_a_second_and_again_after_a_message(
        start: Start) -> None:
    """A client in a loop sending ``typing``: the others hear it once per second at most;
    the user's message ends the interval (the next keystroke is a new "typing")."""
    env = await start()
    tid, a, b = await pair(env)
    typing = orjson.dumps({"type": "typing", "thread": tid}).decode()
    for _ in range(20):  # one burst, handled within milliseconds
        await a.send_raw(typing)
    await a.send(tid, "できました")
    await a.send_raw(typing)
    await a.send(tid, "もう一点")
    kinds = [(await b.push(where=lambda f: f["type"] in ("typing", "message")))["type"]
             for _ in range(4)]
    assert kinds == ["typing", "message", "typing", "message"]
    await b.request({"type": "ping"})  # anything else for b has arrived by now
    assert [f for f in b.drain_pushes() if f["type"] == "typing"] == []


async def test_typing_reaches_others_only_and_is_not_stored(start: Start) -> None:
    env = await start()
    node = env.node
    thread = await node.create_thread(("alice", "client"), ("bob", "worker"),
                                      ("carol", "member"), kind="team")
    tid = thread["id"]
    a = await env.client("alice")
    b = await env.client("bob", "worker")
    c = await env.client("carol", "worker")
    await a.send_raw(orjson.dumps({"type": "typing", "thread": tid}).decode())  # no id: no answer
    for other in (b, c):
        assert await other.push("typing") == {"type": "typing", "thread": tid, "user": "alice"}
    ok = await a.request({"type": "typing", "thread": tid})
    assert ok["type"] == "ok"
    assert [f for f in a.drain_pushes() if f["type"] == "typing"] == []
    status, page = await node.http("GET", f"/v1/threads/{tid}/messages", node.token("bob"))
    assert status == 200 and page["messages"] == [] and page["last_seq"] == 0


async def test_presence_of_the_other_participant(start: Start) -> None:
    env = await start()
    await env.node.create_thread(("alice", "client"), ("bob", "worker"))
    await env.node.create_thread(("alice", "client"), ("bob", "worker"))  # shared twice
    b = await env.client("bob", "worker")
    a = await env.client("alice")
    assert await b.push("presence") == {"type": "presence", "user": "alice", "status": "online"}
    # A second socket of alice is not news.
    a2 = await env.client("alice")
    await a2.close()
    await a.close()
    assert await b.push("presence") == {"type": "presence", "user": "alice", "status": "offline"}
    await ping(b)
    assert [f for f in b.drain_pushes() if f["type"] == "presence"] == []


# --- edit, delete, thanks -----------------------------------------------------------------

async def test_edit_pushes_update_and_keeps_revision(start: Start) -> None:
    env = await start()
    tid, a, b = await pair(env)
    sent = (await a.send(tid, "納期は5日です"))["message"]
    await b.messages(1)
    ok = await a.request({"type": "edit", "thread": tid, "message": sent["id"],
                          "body": "納期は7日です"})
    assert ok["type"] == "ok" and ok["message"]["body"] == "納期は7日です"
    assert ok["message"]["rev"] == 1 and "edited_at" in ok["message"]
    up = await b.push("update")
    assert up["action"] == "edit" and up["message"]["id"] == sent["id"]
    assert up["message"]["body"] == "納期は7日です" and up["message"]["seq"] == 1
    assert (await a.push("update"))["message"]["body"] == "納期は7日です"
    revs = await env.node.gateway.service.store.revisions(sent["id"])
    assert [(r["action"], r["body"], r["actor"]) for r in revs] == [
        ("edit", "納期は5日です", "alice")]
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("bob"))
    assert page["messages"][0]["body"] == "納期は7日です" and page["messages"][0]["rev"] == 1
    # Someone else's message, a missing one, a thread one is not in.
    err = await b.request({"type": "edit", "thread": tid, "message": sent["id"], "body": "x"})
    assert err["type"] == "error" and err["code"] == "forbidden"
    err = await a.request({"type": "edit", "thread": tid, "message": "m_missing", "body": "x"})
    assert err["code"] == "not_found"
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("bob"))
    assert status == 200 and page["messages"][0]["body"] == "納期は7日です"


async def test_delete_leaves_a_tombstone(start: Start) -> None:
    env = await start()
    tid, a, b = await pair(env)
    sent = (await a.send(tid, "電話番号は…"))["message"]
    await b.messages(1)
    err = await b.request({"type": "delete", "thread": tid, "message": sent["id"]})
    assert err["type"] == "error" and err["code"] == "forbidden"
    ok = await a.request({"type": "delete", "thread": tid, "message": sent["id"]})
    assert ok["type"] == "ok" and ok["message"]["deleted"] is True and ok["message"]["body"] == ""
    for c in (a, b):
        up = await c.push("update")
        assert up["action"] == "delete" and up["message"]["id"] == sent["id"]
        assert up["message"]["deleted"] is True and up["message"]["body"] == ""
    revs = await env.node.gateway.service.store.revisions(sent["id"])
    assert [(r["action"], r["body"]) for r in revs] == [("delete", "電話番号は…")]
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("bob"))
    assert status == 200
    [m] = page["messages"]
    assert m["deleted"] is True and m["body"] == "" and m["seq"] == 1
    err = await a.request({"type": "edit", "thread": tid, "message": sent["id"], "body": "x"})
    assert err["type"] == "error" and err["code"] == "conflict"


async def test_thanks_once_per_user_and_counted(start: Start) -> None:
    env = await start()
    node = env.node
    thread = await node.create_thread(("alice", "client"), ("bob", "worker"),
                                      ("carol", "member"), kind="team")
    tid = thread["id"]
    a = await env.client("alice")
    b = await env.client("bob", "worker")
    c = await env.client("carol", "worker")
    sent = (await b.send(tid, "納品しました"))["message"]
    own = await b.request({"type": "thanks", "thread": tid, "message": sent["id"]})
    assert own["type"] == "error" and own["code"] == "bad_request"
    first = await a.request({"type": "thanks", "thread": tid, "message": sent["id"]})
    assert first["type"] == "ok" and first["added"] is True and first["message"]["thanks"] == 1
    up = await b.push("update")
    assert up["action"] == "thanks" and up["by"] == "alice" and up["message"]["thanks"] == 1
    again = await a.request({"type": "thanks", "thread": tid, "message": sent["id"]})
    assert again["added"] is False and again["message"]["thanks"] == 1
    third = await c.request({"type": "thanks", "thread": tid, "message": sent["id"]})
    assert third["added"] is True and third["message"]["thanks"] == 2
    up = await b.push("update")
    assert up["by"] == "carol" and up["message"]["thanks"] == 2
    await ping(b)
    assert [f for f in b.drain_pushes() if f["type"] == "update"] == []  # the repeat is silent
    missing = await a.request({"type": "thanks", "thread": tid, "message": "m_nope"})
    assert missing["code"] == "not_found"
    tok = node.token("alice")
    assert await node.http("GET", "/v1/users/bob/thanks", tok) == (
        200, {"user": "bob", "received": 2, "given": 0})
    assert await node.http("GET", "/v1/users/alice/thanks", tok) == (
        200, {"user": "alice", "received": 0, "given": 1})
    assert await node.http("GET", f"/v1/threads/{tid}/messages/{sent['id']}/thanks", tok) == (
        200, {"message": sent["id"], "thanks": 2})


# --- errors and limits --------------------------------------------------------------------

async def test_bad_frames_answer_bad_frame_and_keep_the_connection(start: Start) -> None:
    env = await start()
    tid, a, _ = await pair(env)
    for raw in ("{not json", "[1, 2]", "42", '"hello"', "", '{"id": "x"}'):
        await a.send_raw(raw)
        err = await a.push("error")
        assert err["code"] == "bad_frame", raw
    for frame in (
        {"type": "dance"},
        {"type": "send", "thread": tid, "body": "no client_msg_id"},
        {"type": "send", "thread": tid, "client_msg_id": "c"},
        {"type": "send", "thread": tid, "client_msg_id": "c", "body": 5},
        {"type": "send", "thread": tid, "client_msg_id": "c", "body": "x" * 10001},
        {"type": "read", "thread": tid},
        {"type": "read", "thread": tid, "seq": -1},
        {"type": "read", "thread": tid, "seq": "3"},
        {"type": "typing"},
        {"type": "edit", "thread": tid, "message": "m"},
        {"type": "hello", "token": a.token},
    ):
        err = await a.request(frame)
        assert err["type"] == "error" and err["code"] == "bad_frame", frame
        assert err["re"] == frame["id"] and err["message"]
    assert a.ws is not None
    await a.ws.send_bytes(b'{"type": "ping"}')
    assert (await a.push("error"))["code"] == "bad_frame"
    ok = await a.send(tid, "still here")
    assert ok["type"] == "ok" and ok["message"]["seq"] == 1
    assert not a.closed.is_set()


async def test_forbidden_and_not_found_threads(start: Start) -> None:
    env = await start()
    node = env.node
    tid, a, _ = await pair(env)
    foreign = (await node.create_thread(("carol", "client"), ("dave", "worker")))["id"]
    msg = (await a.send(tid, "x"))["message"]["id"]
    frames: list[dict[str, Any]] = [
        {"type": "send", "client_msg_id": "c", "body": "x"},
        {"type": "read", "seq": 1},
        {"type": "typing"},
        {"type": "edit", "message": msg, "body": "y"},
        {"type": "delete", "message": msg},
        {"type": "thanks", "message": msg},
    ]
    for frame in frames:
        err = await a.request({**frame, "thread": foreign})
        assert err["type"] == "error" and err["code"] == "forbidden", frame
        err = await a.request({**frame, "thread": "t_does_not_exist"})
        assert err["type"] == "error" and err["code"] == "not_found", frame
    status, page = await node.http("GET", f"/v1/threads/{foreign}/messages", node.token("carol"))
    assert status == 200 and page["messages"] == []


async def test_frame_over_the_limit_closes_1009(start: Start) -> None:
    env = await start()
    tid, a, _ = await pair(env)
    big = orjson.dumps({"type": "send", "thread": tid, "client_msg_id": "c",
                        "body": "x" * 70000}).decode()
    assert len(big) > 65536
    await a.send_raw(big)
    assert await a.wait_closed() == 1009
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("alice"))
    assert status == 200 and page["messages"] == []


async def test_frame_over_the_limit_before_hello_closes_1009(start: Start) -> None:
    env = await start(max_frame_bytes=1024)
    c = await env.client("alice", hello=False)
    await c.send_raw(orjson.dumps({"type": "hello", "token": "x" * 2000}).decode())
    assert await c.wait_closed() == 1009


async def test_rate_limited_with_retry_after(start: Start) -> None:
    env = await start(rate_per_s=0.5, rate_burst=2)
    tid, a, _ = await pair(env)
    assert (await a.send(tid, "1"))["type"] == "ok"
    assert (await a.send(tid, "2"))["type"] == "ok"
    err = await a.send(tid, "3")
    assert err["type"] == "error" and err["code"] == "rate_limited"
    assert 0 < err["retry_after"] <= 2
    # The limit is per user, not per socket.
    a2 = await env.client("alice")
    assert (await a2.send(tid, "4"))["code"] == "rate_limited"
    await ping(a)
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("alice"))
    assert status == 200 and [m["body"] for m in page["messages"]] == ["1", "2"]


async def test_a_user_reconnecting_in_a_loop_is_closed_4029(start: Start) -> None:
    """Sockets opened per user are rate limited (a client reconnecting without backoff
    would make the node read the user's threads and push presence each time): past the
    burst, a new socket is closed with 4029 after its hello, telling no one; others are
    not affected; after a pause the user connects again."""
    env = await start(hello_rate_per_s=4.0, hello_rate_burst=3)
    node = env.node
    thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
    bob = await env.client("bob", "worker")
    for _ in range(3):
        c = await env.client("alice")
        assert (await bob.push("presence"))["status"] == "online"
        await c.close()
        assert (await bob.push("presence"))["status"] == "offline"
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(node.ws_url)
        await ws.send_json({"type": "hello", "id": "h", "token": node.token("alice")})
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4029
        assert "too fast" in msg.extra
    finally:
        await session.close()
    await env.client("carol")  # others are not affected
    await asyncio.sleep(0.6)  # two more tokens
    again = await env.client("alice")
    assert thread["id"] in again.hello_ok["threads"]
    assert (await bob.push("presence"))["status"] == "online"  # this one, not the refused
    await bob.request({"type": "ping"})
    assert [f for f in bob.drain_pushes() if f["type"] == "presence"] == []


async def test_connections_per_user_limit_closes_4029(start: Start) -> None:
    env = await start(max_connections_per_user=2)
    node = env.node
    first = await env.client("alice")
    await env.client("alice")
    extra = await env.client("alice", hello=False)
    await extra.send_raw(orjson.dumps({"type": "hello", "token": extra.token}).decode())
    assert await extra.wait_closed() == 4029
    await env.client("bob")  # others are not affected
    await first.close()
    await wait_until(lambda: node.gateway.presence.connections("alice") < 2)
    await env.client("alice")


# --- Origin -------------------------------------------------------------------------------

async def test_origin_allowlist(start: Start) -> None:
    env = await start(allowed_origins=("https://app.example.jp",))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await env.client("alice", origin="https://evil.example")
    assert refused.value.status == 403
    ok = await env.client("alice", origin="https://app.example.jp")
    assert ok.hello_ok["user"]["id"] == "alice"
    assert (await env.client("alice")).hello_ok["type"] == "ok"  # no Origin: not a browser
    same = await env.client("alice", origin=env.node.url)  # served by tsunagu itself
    assert same.hello_ok["type"] == "ok"


async def test_origin_refused_when_none_allowed_and_star_allows_all(start: Start) -> None:
    strict = await start()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await strict.client("alice", origin="https://app.example.jp")
    assert refused.value.status == 403
    star = await start(allowed_origins=("*",))
    c = await star.client("alice", origin="https://anything.example")
    assert c.hello_ok["type"] == "ok"


# --- slow consumers, heartbeat, drain, joining --------------------------------------------

async def overflow_slow_consumer(env: Env) -> tuple[Client, RawWs, int]:
    """alice reads, slow never does; system messages are pushed until the server drops slow."""
    node = env.node
    tid = (await node.create_thread(("alice", "client"), ("slow", "worker")))["id"]
    reader = await env.client("alice")
    slow = await RawWs.connect(node.port, node.token("slow", "worker"))  # stops reading here
    env.stalled.append(slow)
    conn = env.connection("slow")
    service = node.token("platform", "service")
    body = "遅" * 20000  # 60 KB of UTF-8 per push
    sent = 0
    async with aiohttp.ClientSession() as http:

        async def post() -> None:
            async with http.post(f"{node.url}/v1/threads/{tid}/system", json={"body": body},
                                 headers={"Authorization": f"Bearer {service}"}) as r:
                assert r.status == 201

        # Socket buffers absorb some of it; push until the server gives up on the client.
        while not conn.closed and sent < 1000:
            await asyncio.gather(*(post() for _ in range(4)))
            sent += 4
    assert conn.closed, f"still connected after {sent} pushes"
    assert sent < 1000
    return reader, slow, sent


async def test_slow_consumer_is_disconnected_4008(start: Start) -> None:
    env = await start(outbound_queue_depth=16, max_body_chars=60000)
    reader, slow, sent = await overflow_slow_consumer(env)
    # It finds, after what was already buffered, a close frame with 4008.
    async with asyncio.timeout(10):
        while True:
            op, data = await slow.frame()
            if op != 1:
                break
    assert (op, int.from_bytes(data[:2], "big")) == (8, 4008)
    await wait_until(lambda: len(env.node.gateway.connections) == 1)
    # The one that reads got everything, in order, and is still connected.
    got = await reader.messages(sent)
    assert [m["seq"] for m in got] == list(range(1, sent + 1))
    assert not reader.closed.is_set()


async def test_slow_consumer_that_never_reads_is_released(start: Start) -> None:
    env = await start(outbound_queue_depth=16, max_body_chars=60000, close_timeout_s=0.3)
    reader, _, _ = await overflow_slow_consumer(env)
    # Its close frame cannot be sent (its window is full): the socket is aborted.
    await wait_until(lambda: len(env.node.gateway.connections) == 1)
    assert env.node.gateway.presence.connections("slow") == 0
    assert await reader.push("presence") == {"type": "presence", "user": "slow",
                                             "status": "online"}
    assert await reader.push("presence") == {"type": "presence", "user": "slow",
                                             "status": "offline"}
    assert not reader.closed.is_set()


async def test_server_heartbeat_pings_and_drops_a_silent_peer(start: Start) -> None:
    env = await start(heartbeat_s=0.2)
    ws = await env.raw("alice", autoping=False)

    async def next_ping() -> aiohttp.WSMessage:
        async with asyncio.timeout(5):
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.PING:
                    return msg
                assert msg.type == aiohttp.WSMsgType.TEXT, msg

    first = await next_ping()
    await ws.pong(first.data)
    await next_ping()  # the pong kept the connection: the server pings again
    # No pong this time: the server gives up on the connection.
    await wait_until(lambda: not env.node.gateway.connections)


async def test_a_peer_that_answers_every_ping_is_never_dropped(start: Start) -> None:
    """An idle client whose only frames are pongs: its pong comes back a round trip after
    the sweep that pinged it, so every later sweep must still ping it before its silence
    reaches the close threshold (on localhost the round trip is far below the timer's
    lateness). Over eight periods it gets pings and stays."""
    env = await start(heartbeat_s=0.2)
    ws = await env.raw("alice", autoping=False)
    pings = 0
    loop = asyncio.get_running_loop()
    until = loop.time() + 8 * 0.2
    while loop.time() < until:
        try:
            msg = await ws.receive(timeout=max(0.01, until - loop.time()))
        except TimeoutError:
            break
        assert msg.type != aiohttp.WSMsgType.CLOSE, msg
        if msg.type == aiohttp.WSMsgType.PING:
            pings += 1
            await ws.pong(msg.data)
    assert pings >= 4 and len(env.node.gateway.connections) == 1
    await ws.close()


async def test_client_pings_are_answered_before_and_after_hello(start: Start) -> None:
    """Pings and pongs are handled by the gateway (autoping off): a client library's keepalive
    before its hello, or at any time after, gets its pong and never counts as a frame."""
    env = await start()
    async with aiohttp.ClientSession() as s, s.ws_connect(env.node.ws_url,
                                                           autoping=False) as ws:
        await ws.ping(b"before-hello")
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.PONG and msg.data == b"before-hello"
        await ws.pong(b"unsolicited")  # ignored, not a bad frame
        await ws.send_json({"type": "hello", "id": "h", "token": env.node.token("alice")})
        ok = await ws.receive_json(timeout=5)
        assert ok["type"] == "ok" and ok["re"] == "h"
        await ws.ping(b"later")
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.PONG:
                assert msg.data == b"later"
                break
            assert msg.type == aiohttp.WSMsgType.TEXT and '"bad_frame"' not in msg.data


async def test_drain_closes_1001_and_finishes_inflight_send(start: Start, settings_factory: Any
                                                            ) -> None:
    env = await start()
    node = env.node
    tid, a, b = await pair(env)
    url = node.settings.effective_database_url
    # Hold the store's write lock so alice's send is in flight when the drain starts.
    release: Callable[[], Awaitable[None]]
    if url.startswith("sqlite:"):
        lock = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")

        async def release() -> None:
            lock.execute("ROLLBACK")
            lock.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(url)
        tx = pg.transaction()
        await tx.start()
        await pg.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", tid)

        async def release() -> None:
            await tx.rollback()
            await pg.close()

    try:
        sending = asyncio.create_task(a.send(tid, "送信中 / in flight", cmid="drain-1"))
        await wait_until(lambda: env.connection("alice").busy)
        stopping = asyncio.create_task(node.stop())
        await wait_until(lambda: node.gateway.draining)
        assert await b.wait_closed() == 1001  # idle: closed at once
        assert not sending.done()
    finally:
        await release()
    ok = await sending
    assert ok["type"] == "ok" and ok["message"]["seq"] == 1
    assert await a.wait_closed() == 1001
    await stopping
    # A new node on the same storage has the message.
    again = Node(settings_factory())
    await again.start()
    try:
        status, page = await again.http("GET", f"/v1/threads/{tid}/messages",
                                        again.token("bob"))
        assert status == 200 and [m["id"] for m in page["messages"]] == [ok["message"]["id"]]
    finally:
        await again.stop()


async def test_added_participant_gets_thread_push_and_its_messages(start: Start) -> None:
    env = await start()
    node = env.node
    tid, a, _ = await pair(env)
    await a.send(tid, "before carol")
    c = await env.client("carol", "worker")
    err = await c.send(tid, "not yet")
    assert err["type"] == "error" and err["code"] == "forbidden"
    status, _ = await node.http("POST", f"/v1/threads/{tid}/participants",
                                node.token("platform", "service"),
                                {"user_id": "carol", "role": "member"})
    assert status == 200
    push = await c.push("thread")
    assert push["thread"]["id"] == tid
    assert {p["user_id"] for p in push["thread"]["participants"]} == {"alice", "bob", "carol"}
    assert (await a.push("participant")) == {"type": "participant", "thread": tid,
                                             "user": "carol", "role": "member"}
    live = await a.send(tid, "welcome")
    [m] = await c.messages(1)
    assert m["id"] == live["message"]["id"] and m["seq"] == 2
    mine = await c.send(tid, "よろしくお願いします")
    assert mine["type"] == "ok" and mine["message"]["seq"] == 3
    got = await a.messages(2)  # seq 1 went by before the participant push
    assert [x["seq"] for x in got] == [2, 3]



def test_typing_memory_stays_bounded_when_many_type_at_once(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_TYPING_KEPT`` entries the stale ones are swept; if most are fresh (that many
    users typing at once) they are forgotten instead of swept again on every frame — each
    first ``typing`` still goes out."""
    from chat import service as service_mod
    from chat.auth import Identity
    from chat.config import load_settings
    from chat.fanout import LocalFanOut
    from chat.store import open_store

    monkeypatch.setattr(service_mod, "_TYPING_KEPT", 4)
    settings = load_settings(env={}, data_dir=str(tmp_path))
    fan = LocalFanOut()
    sent: list[Any] = []
    monkeypatch.setattr(fan, "publish", sent.append)
    svc = service_mod.ChatService(settings, open_store(settings), fan)
    who = Identity(user_id="u", roles=frozenset({"client"}), name="u", locale="ja",
                   tz="Asia/Tokyo", exp=0.0)
    for i in range(5):
        svc.typing(who, thread=f"t{i}")
    assert len(sent) == 5  # every thread's first typing went out
    assert len(svc._typing_at) == 1  # four fresh entries forgotten, the fifth remembered
