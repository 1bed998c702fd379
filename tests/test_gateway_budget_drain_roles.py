"""The WebSocket gateway, on both back ends: idempotent retries and the rate limit, a socket
that says hello while the node drains, and staff role channels across a token refresh."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat.fanout import Event, role_channel
from tests.support import Client, Node
from tests.test_gateway import Start, pair, ping, wait_until
from tests.test_gateway import start as start  # the fixture: nodes on the test's back end

# --- C: an idempotent retry costs no rate budget ------------------------------------------

async def test_resent_stored_sends_after_reconnect_are_duplicates_not_rate_limited(
        start: Start) -> None:
    env = await start(rate_per_s=0.01, rate_burst=3)  # no refill worth speaking of
    tid, a, _ = await pair(env)
    sent = [await a.send(tid, f"m{i}", cmid=f"c{i}") for i in range(3)]
    assert all(s["type"] == "ok" and s["duplicate"] is False for s in sent), sent
    assert (await a.send(tid, "over", cmid="c3"))["code"] == "rate_limited"
    # The connection drops before the client saw the answers; it resends them all.
    await a.close()
    a2 = await env.client("alice")
    for i, first in enumerate(sent):
        again = await a2.send(tid, f"m{i}", cmid=f"c{i}")
        assert again["type"] == "ok", again
        assert again["duplicate"] is True
        assert again["message"]["id"] == first["message"]["id"]
    # Retries grant no budget either: a new message still waits.
    assert (await a2.send(tid, "new", cmid="c4"))["code"] == "rate_limited"
    status, page = await env.node.http("GET", f"/v1/threads/{tid}/messages",
                                       env.node.token("alice"))
    assert status == 200 and [m["body"] for m in page["messages"]] == ["m0", "m1", "m2"]


async def test_duplicates_do_not_use_up_the_budget_for_new_messages(start: Start) -> None:
    env = await start(rate_per_s=0.01, rate_burst=3)
    tid, a, _ = await pair(env)
    assert (await a.send(tid, "one", cmid="k1"))["duplicate"] is False
    again = await a.send(tid, "one", cmid="k1")  # a retry after a reconnect: refunded
    assert again["type"] == "ok" and again["duplicate"] is True, again
    assert (await a.send(tid, "two", cmid="k2"))["duplicate"] is False
    assert (await a.send(tid, "three", cmid="k3"))["duplicate"] is False
    # The bucket is empty: a retry of a paid-for send still passes, once.
    assert (await a.send(tid, "one", cmid="k1"))["duplicate"] is True
    assert (await a.send(tid, "four", cmid="k4"))["code"] == "rate_limited"


async def test_a_resend_loop_of_one_stored_message_is_rate_limited(start: Start) -> None:
    # Each retry is refunded once per message: resending one stored message in a loop
    # (each one scanned, committed and republished) cannot flood the node for free.
    env = await start(rate_per_s=0.01, rate_burst=4)
    tid, a, _ = await pair(env)
    assert (await a.send(tid, "one", cmid="k1"))["duplicate"] is False
    answers = [await a.send(tid, "one", cmid="k1") for _ in range(6)]
    assert [x.get("duplicate") for x in answers[:4]] == [True] * 4, answers
    assert answers[-1]["code"] == "rate_limited", answers


# --- D: a socket that says hello while the node drains ------------------------------------

async def test_socket_waiting_for_its_hello_is_closed_1001_by_the_drain(start: Start
                                                                         ) -> None:
    env = await start()
    node = env.node
    late = await env.client("alice", hello=False)  # upgraded, hello not sent yet
    idle = await env.client("bob")
    await asyncio.sleep(0.1)  # the server handler waits for the hello
    t0 = time.monotonic()
    await node.stop()
    # At once, and "going away" (reconnect elsewhere), not 4001 after the hello timeout.
    assert await late.wait_closed(timeout=3) == 1001
    assert await idle.wait_closed() == 1001
    assert time.monotonic() - t0 < 3


async def test_hello_answered_while_draining_is_closed_1001(start: Start) -> None:
    env = await start()
    node = env.node
    late = await env.client("alice", hello=False)
    await asyncio.sleep(0.1)  # the server handler waits for the hello
    # The drain began after this socket's hello was read (past the drain's walks).
    node.gateway.draining = True
    with pytest.raises(ConnectionError):
        await late.request({"type": "hello", "token": late.token})
    assert late.close_code == 1001
    assert not node.gateway.connections
    assert node.gateway.presence.connections("alice") == 0


# --- H: role channels follow the token ----------------------------------------------------

def review(node: Node, n: int) -> None:
    node.gateway.service.fanout.publish(
        Event(role_channel("moderator"), "review", {"item": {"id": f"q{n}"}}))


async def reviews(c: Client) -> list[str]:
    await ping(c)  # everything queued before the answer has arrived
    return [p["item"]["id"] for p in c.drain_pushes() if p["type"] == "review"]


def holders(node: Node, user: str) -> list[str]:
    """The hub channels that still hold a connection of ``user``."""
    hub = node.gateway.hub
    return [ch for ch, subs in hub._subs.items()
            if any(getattr(s, "user", None) == user for s in subs)]


async def test_demoted_moderator_gets_no_more_review_pushes(start: Start) -> None:
    env = await start()
    node = env.node
    m = await env.client("mina", "moderator")
    review(node, 1)
    assert await reviews(m) == ["q1"]
    ok = await m.request({"type": "token", "token": node.token("mina", "client")})
    assert ok["type"] == "ok", ok
    review(node, 2)
    assert await reviews(m) == []
    assert role_channel("moderator") not in holders(node, "mina")
    # Promoted again (or promoted at all): the pushes start.
    ok = await m.request({"type": "token", "token": node.token("mina", "admin")})
    assert ok["type"] == "ok", ok
    review(node, 3)
    assert await reviews(m) == ["q3"]


@pytest.mark.parametrize("first, then", [(("moderator",), ("client",)),
                                         (("client",), ("moderator", "dispute")),
                                         (("moderator",), ("moderator",))])
async def test_a_closed_connection_leaves_nothing_in_the_hub(
        start: Start, first: tuple[str, ...], then: tuple[str, ...]) -> None:
    env = await start()
    node = env.node
    await node.create_thread(("mina", "client"), ("bob", "worker"))
    m = await env.client("mina", *first)
    assert holders(node, "mina")
    ok = await m.request({"type": "token", "token": node.token("mina", *then)})
    assert ok["type"] == "ok", ok
    await m.close()
    await wait_until(lambda: not [c for c in node.gateway.connections if c.user == "mina"])
    assert holders(node, "mina") == []
    for role in ("moderator", "dispute"):
        assert role_channel(role) not in node.gateway.hub.channels()
