"""Several nodes on one PostgreSQL and one Redis (production back end only).

* Two nodes deliver to each other's clients: messages both ways, receipts, typing and
  presence. Then node A (a real ``tsunagu serve`` process) is killed with SIGKILL, and its
  client reconnects to node B with ``resume``: it gets everything it missed, once, in order,
  and a send retried after the crash is not stored twice.
* A Redis outage (a private ``redis-server`` that is killed and restarted on the same port):
  messages sent meanwhile are stored and acknowledged, the nodes resubscribe by themselves
  (``/healthz``), the client on the other node receives them without reconnecting, in
  order, once; a client that reconnects with ``resume`` gets the gap filled.
* Two nodes appending to one thread at the same time: seqs are gapless, and every client
  on either node sees 1..N once and in order.
* A message edited through node B: a retry of its send on node A (which remembers what it
  stored) is answered with the edited message.

These tests fail in CI, never skip, if PostgreSQL or Redis is missing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    REDIS_URL,
    TEST_SECRET,
    Backend,
    create_pg_database,
    drop_pg_database,
    make_settings,
    require_servers,
)
from tests.support import Client, Node

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    """Poll ``check`` until it is true (bounded; the bound is not what is tested)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
    assert await check(), what


async def fanout_ok(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as r:
            body = await r.json()
            return bool(r.status == 200 and body["fanout"]["ok"])
    except (aiohttp.ClientError, OSError):
        return False


async def collect(client: Client, thread: str, n: int, timeout: float = 10
                  ) -> list[dict[str, Any]]:
    """The next ``n`` message pushes of ``thread``."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            frame = await client.push("message")
            if frame["message"]["thread"] == thread:
                out.append(frame["message"])
    return out


async def no_more_messages(client: Client, wait: float = 0.3) -> None:
    await asyncio.sleep(wait)
    extra = [f for f in client.drain_pushes() if f["type"] == "message"]
    assert extra == [], extra


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[Backend]:
    require_servers("postgres", "redis")
    dsn = await create_pg_database()
    try:
        yield Backend("production", dsn, REDIS_URL, f"tsunagu-mn-{secrets.token_hex(4)}")
    finally:
        await drop_pg_database(dsn)


class ServeProcess:
    """A real ``python -m chat.cli serve`` node, to be killed without mercy."""

    def __init__(self, backend: Backend, tmp_path: Path, node_id: str,
                 redis_url: str | None = None) -> None:
        self.port = free_port()
        self.log = tmp_path / f"{node_id}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": str(ROOT),
            "TSUNAGU_DATABASE_URL": backend.database_url,
            "TSUNAGU_REDIS_URL": redis_url or backend.redis_url,
            "TSUNAGU_REDIS_PREFIX": backend.redis_prefix,
            "TSUNAGU_JWT_SECRET": TEST_SECRET,
            "TSUNAGU_NODE_ID": node_id,
            "TSUNAGU_DATA_DIR": str(tmp_path / node_id),
            "TSUNAGU_RATE_PER_S": "100000",
            "TSUNAGU_RATE_BURST": "100000",
        }
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chat.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.url}/v1/ws"

    async def ready(self) -> None:
        async def up() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return await fanout_ok(self.url)

        try:
            await until(up, "node process serving", timeout=30)
        except TimeoutError:
            raise AssertionError(f"node did not come up:\n{self.log.read_text()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class RedisServer:
    """A private redis-server (never the shared one), to simulate an outage."""

    def __init__(self, tmp_path: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail("CI is set: redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.dir = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("redis-server exited") from None
                import time

                time.sleep(0.025)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def settings_for(backend: Backend, tmp_path: Path, node_id: str, **kw: Any) -> Any:
    return make_settings(backend, tmp_path / node_id, node_id=node_id, rate_per_s=100000.0,
                         rate_burst=100000, **kw)


async def test_two_nodes_then_node_a_killed(production: Backend, tmp_path: Path) -> None:
    b = await Node(settings_for(production, tmp_path, "node-b")).start()  # migrates
    a = ServeProcess(production, tmp_path, "node-a")
    clients: list[Client] = []
    try:
        await a.ready()
        thread = (await b.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        alice = await Client(a.ws_url, b.token("alice", "client")).connect()
        clients.append(alice)
        bob = await Client(b.ws_url, b.token("bob", "worker")).connect()
        clients.append(bob)
        # presence crosses nodes: bob sees alice online in hello, alice hears bob come online
        assert bob.hello_ok["presence"] == {"alice": "online"}
        online = await alice.push("presence")
        assert online == {"type": "presence", "user": "bob", "status": "online"}

        # messages both ways
        ok = await alice.send(thread, "はじめまして (A→B)", cmid="a-1")
        assert ok["message"]["seq"] == 1
        assert [m["body"] for m in await collect(bob, thread, 1)] == ["はじめまして (A→B)"]
        ok = await bob.send(thread, "よろしくお願いします (B→A)", cmid="b-1")
        assert ok["message"]["seq"] == 2
        assert [m["seq"] for m in await collect(bob, thread, 1)] == [2]  # his own
        got = await collect(alice, thread, 2)  # her own message, then bob's
        assert [m["seq"] for m in got] == [1, 2] and got[1]["sender"] == "bob"
        # receipts and typing cross nodes
        await bob.request({"type": "read", "thread": thread, "seq": 2})
        assert await alice.push("receipt") == {"type": "receipt", "thread": thread,
                                               "user": "bob", "seq": 2}
        await alice.request({"type": "typing", "thread": thread, "id": "t1"})
        assert await bob.push("typing") == {"type": "typing", "thread": thread, "user": "alice"}

        # bob keeps talking; alice has seen up to 4 when node A dies
        for i in (3, 4):
            assert (await bob.send(thread, f"msg {i}"))["message"]["seq"] == i
        assert [m["seq"] for m in await collect(alice, thread, 2)] == [3, 4]
        assert [m["seq"] for m in await collect(bob, thread, 2)] == [3, 4]
        seen = 4
        # alice sends without waiting for the answer, and node A is killed (no drain)
        assert alice.ws is not None
        await alice.ws.send_json({"type": "send", "id": "lost", "thread": thread,
                                  "client_msg_id": "a-crash", "body": "送信中に落ちた"})
        a.kill()
        await alice.wait_closed()
        alice_before = [f for f in alice.drain_pushes() if f["type"] == "message"]
        seen = max([seen, *(f["message"]["seq"] for f in alice_before)])
        # while alice is away
        for i in range(3):
            await bob.send(thread, f"while alice is away {i}")

        # alice reconnects to node B and resumes from what she saw
        alice2 = await Client(b.ws_url, b.token("alice", "client")).connect(
            resume={thread: seen})
        clients.append(alice2)
        status, body = await b.http("GET", f"/v1/threads/{thread}/messages?after_seq=0",
                                    b.token("bob", "worker"))
        assert status == 200
        history = body["messages"]
        last = history[-1]["seq"]
        assert [m["seq"] for m in history] == list(range(1, last + 1))
        missed = await collect(alice2, thread, last - seen)
        assert [m["seq"] for m in missed] == list(range(seen + 1, last + 1))
        assert [m["id"] for m in missed] == [m["id"] for m in history[seen:]]
        # the send in flight at the crash: retried, stored once whatever happened to it
        retry = await alice2.send(thread, "送信中に落ちた", cmid="a-crash")
        crash_msgs = [m for m in history if m["body"] == "送信中に落ちた"]
        assert len(crash_msgs) <= 1
        if crash_msgs:
            assert retry["duplicate"] is True and retry["message"]["id"] == crash_msgs[0]["id"]
        else:
            assert retry["duplicate"] is False and retry["message"]["seq"] == last + 1
            assert [m["seq"] for m in await collect(alice2, thread, 1)] == [last + 1]
        # bob saw everything once, in order, on his one connection
        await no_more_messages(alice2)
        final = retry["message"]["seq"]
        bob_rest = [m["seq"] for m in await collect(bob, thread, final - 4)]
        assert bob_rest == list(range(5, final + 1))
        await no_more_messages(bob)
    finally:
        for c in clients:
            await c.close()
        a.kill()
        await b.stop()


async def test_redis_outage_resync(production: Backend, tmp_path: Path,
                                   private_redis: RedisServer) -> None:
    backend = replace(production, redis_url=private_redis.url)
    a = await Node(settings_for(backend, tmp_path, "node-a")).start()
    b = await Node(settings_for(backend, tmp_path, "node-b")).start()
    clients: list[Client] = []
    try:
        thread = (await a.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        alice = await Client(a.ws_url, a.token("alice", "client")).connect()
        bob = await Client(b.ws_url, b.token("bob", "worker")).connect()
        bob_phone = await Client(b.ws_url, b.token("bob", "worker")).connect()
        clients += [alice, bob, bob_phone]
        await alice.send(thread, "before the outage")
        assert [m["seq"] for m in await collect(bob, thread, 1)] == [1]
        assert [m["seq"] for m in await collect(bob_phone, thread, 1)] == [1]
        await bob_phone.close()  # bob's phone sleeps through the outage

        private_redis.kill()

        async def both_down() -> bool:
            return not await fanout_ok(a.url) and not await fanout_ok(b.url)

        await until(both_down, "nodes notice that Redis is gone")
        # sends while Redis is down are stored and acknowledged (nothing is sent on node B,
        # so bob's connection cannot notice a seq gap by itself: only the resync or the
        # retried publishes can bring these to him)
        during = [await alice.send(thread, f"during the outage {i}") for i in range(3)]
        assert [ok["message"]["seq"] for ok in during] == [2, 3, 4]
        await no_more_messages(bob, 0.2)

        private_redis.start()

        async def both_up() -> bool:
            return await fanout_ok(a.url) and await fanout_ok(b.url)

        await until(both_up, "nodes resubscribe by themselves")
        # bob, still on his connection, gets what alice sent meanwhile, in order, once
        got = await collect(bob, thread, 3)
        assert [m["seq"] for m in got] == [2, 3, 4]
        assert [m["id"] for m in got] == [ok["message"]["id"] for ok in during]
        assert [m["seq"] for m in await collect(alice, thread, 4)] == [1, 2, 3, 4]
        # live delivery works again both ways
        await alice.send(thread, "after the outage")
        assert [m["seq"] for m in await collect(bob, thread, 1)] == [5]
        await bob.send(thread, "bob after the outage")
        assert [m["seq"] for m in await collect(bob, thread, 1)] == [6]  # his own
        assert [m["seq"] for m in await collect(alice, thread, 2)] == [5, 6]
        await no_more_messages(bob)
        await no_more_messages(alice, 0)
        # bob's phone resumes and gets the gap filled
        phone = await Client(b.ws_url, b.token("bob", "worker")).connect(resume={thread: 1})
        clients.append(phone)
        assert [m["seq"] for m in await collect(phone, thread, 5)] == [2, 3, 4, 5, 6]
        await no_more_messages(phone)
        stats = b.gateway.service.fanout.health()
        assert stats["reconnects"] >= 1
    finally:
        for c in clients:
            await c.close()
        await a.stop()
        await b.stop()


async def test_redis_outage_then_sender_node_dies(production: Backend, tmp_path: Path,
                                                 private_redis: RedisServer) -> None:
    """Node A stores messages during a Redis outage and is killed before Redis returns:
    its pending publishes are gone, so only node B's resync from storage can bring them
    to bob, who stays connected to B."""
    backend = replace(production, redis_url=private_redis.url)
    b = await Node(settings_for(backend, tmp_path, "node-b")).start()  # migrates
    a = ServeProcess(backend, tmp_path, "node-a", redis_url=private_redis.url)
    clients: list[Client] = []
    try:
        await a.ready()
        thread = (await b.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        alice = await Client(a.ws_url, b.token("alice", "client")).connect()
        bob = await Client(b.ws_url, b.token("bob", "worker")).connect()
        clients += [alice, bob]
        await alice.send(thread, "before the outage")
        assert [m["seq"] for m in await collect(bob, thread, 1)] == [1]

        private_redis.kill()

        async def b_down() -> bool:
            return not await fanout_ok(b.url)

        await until(b_down, "node B notices that Redis is gone")
        during = [await alice.send(thread, f"during the outage {i}") for i in range(3)]
        assert [ok["message"]["seq"] for ok in during] == [2, 3, 4]
        a.kill()  # with its publishes still pending
        await no_more_messages(bob, 0.2)

        private_redis.start()
        await until(lambda: fanout_ok(b.url), "node B resubscribes by itself")
        got = await collect(bob, thread, 3)
        assert [m["seq"] for m in got] == [2, 3, 4]
        assert [m["id"] for m in got] == [ok["message"]["id"] for ok in during]
        await no_more_messages(bob)
        # alice comes back on node B and resumes
        alice2 = await Client(b.ws_url, b.token("alice", "client")).connect(resume={thread: 4})
        clients.append(alice2)
        await bob.send(thread, "おかえりなさい")
        assert [m["seq"] for m in await collect(alice2, thread, 1)] == [5]
        await no_more_messages(alice2)
    finally:
        for c in clients:
            await c.close()
        a.kill()
        await b.stop()


async def test_two_nodes_append_concurrently(production: Backend, tmp_path: Path) -> None:
    a = await Node(settings_for(production, tmp_path, "node-a")).start()
    b = await Node(settings_for(production, tmp_path, "node-b")).start()
    clients: list[Client] = []
    try:
        users = [("alice", "client"), ("bob", "worker"), ("carol", "worker"), ("dan", "worker")]
        thread = (await a.create_thread(*users, kind="team"))["id"]
        nodes = [a, b, a, b]
        for (user, role), node in zip(users, nodes, strict=True):
            clients.append(await Client(node.ws_url, node.token(user, role)).connect())
        per_client = 25

        async def talk(c: Client, who: str) -> list[int]:
            oks = await asyncio.gather(*(c.send(thread, f"{who} {i}") for i in range(per_client)))
            return [ok["message"]["seq"] for ok in oks]

        acked = await asyncio.gather(*(talk(c, u) for c, (u, _) in zip(clients, users,
                                                                         strict=True)))
        total = per_client * len(clients)
        assert sorted(s for seqs in acked for s in seqs) == list(range(1, total + 1))
        status, body = await a.http("GET", f"/v1/threads/{thread}/messages?after_seq=0&limit=500",
                                    a.token("alice", "client"))
        assert status == 200
        assert [m["seq"] for m in body["messages"]] == list(range(1, total + 1))
        for c in clients:
            got = await collect(c, thread, total)
            assert [m["seq"] for m in got] == list(range(1, total + 1))
            assert [m["id"] for m in got] == [m["id"] for m in body["messages"]]
        for c in clients:
            await no_more_messages(c, 0.1)
    finally:
        for c in clients:
            await c.close()
        await a.stop()
        await b.stop()


async def test_joined_mid_conversation_across_nodes(production: Backend, tmp_path: Path) -> None:
    """A user connected to node A is added to a busy thread on node B: from the
    ``thread`` push on, every message after the snapshot arrives once, in order, with no
    gap, however the join and the messages interleave."""
    a = await Node(settings_for(production, tmp_path, "node-a")).start()
    b = await Node(settings_for(production, tmp_path, "node-b")).start()
    clients: list[Client] = []
    try:
        carol = await Client(a.ws_url, a.token("carol", "worker")).connect()
        alice = await Client(a.ws_url, a.token("alice", "client")).connect()
        bob = await Client(b.ws_url, b.token("bob", "worker")).connect()
        clients += [carol, alice, bob]
        thread = (await b.create_thread(("alice", "client"), ("bob", "worker"),
                                        kind="team"))["id"]
        total = 40

        async def burst() -> None:
            for i in range(0, total, 5):
                await asyncio.gather(*(bob.send(thread, f"m{i + j}") for j in range(5)))

        async def add_carol() -> None:
            await asyncio.sleep(0.01)
            status, _ = await b.http("POST", f"/v1/threads/{thread}/participants",
                                     b.token("platform", "service"),
                                     {"user_id": "carol", "role": "worker"})
            assert status == 200

        await asyncio.gather(burst(), add_carol())
        # alice was a participant from the start: 1..total
        assert [m["seq"] for m in await collect(alice, thread, total)] == list(
            range(1, total + 1))
        # carol: the thread push, then everything after its snapshot
        joined = await carol.push("thread")
        start = joined["thread"]["last_seq"]
        got = await collect(carol, thread, total - start)
        assert [m["seq"] for m in got] == list(range(start + 1, total + 1))
        for c in (alice, carol):
            await no_more_messages(c, 0.1)
    finally:
        for c in clients:
            await c.close()
        await a.stop()
        await b.stop()


async def test_a_retry_after_an_edit_on_another_node_gets_the_edited_message(
        production: Backend, tmp_path: Path) -> None:
    """Node A remembers the messages it stored, to answer a retried send without a query;
    when the message is edited through node B, B's `update` event makes A forget it, so a
    retry of the original send on A is answered with the message as it now is (before, with
    the text as first stored)."""
    a = await Node(settings_for(production, tmp_path, "node-a")).start()
    b = await Node(settings_for(production, tmp_path, "node-b")).start()
    on_a = on_b = None
    try:
        thread = (await a.create_thread(("alice", "client"), ("bob", "worker")))["id"]
        on_a = await Client(a.ws_url, a.token("alice", "client")).connect()
        on_b = await Client(b.ws_url, b.token("alice", "client")).connect()
        ok = await on_a.send(thread, "見積もりは5万円です", cmid="quote-1")
        msg = ok["message"]
        edited = await on_b.request({"type": "edit", "thread": thread, "message": msg["id"],
                                     "body": "見積もりは6万円です"})
        assert edited["type"] == "ok", edited
        update = await on_a.push("update")  # B's event reached A
        assert update["message"]["body"] == "見積もりは6万円です"
        again = await on_a.send(thread, "見積もりは5万円です", cmid="quote-1")  # the retry
        assert (again["message"]["id"], again["message"]["seq"]) == (msg["id"], msg["seq"])
        assert again["message"]["body"] == "見積もりは6万円です"
        assert again["message"]["rev"] == 1
    finally:
        for c in (on_a, on_b):
            if c is not None:
                await c.close()
        await a.stop()
        await b.stop()
