"""A retried ``send`` gets the answer its first attempt got, whatever moderation says of it
now (docs/protocol.md, "Idempotent retry"), on both back ends, through real sockets.

The retry is screened again, but its outcome is read where the first attempt's was written:
a restriction that starts after a send was delivered does not withhold its retry, and one
lifted after a send was held does not deliver its retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat.app import SERVICE
from chat.auth import Identity
from chat.config import Secret, Settings
from moderation.schema import WITHHELD
from moderation.screen import ModerationScreener
from tests.support import Client, Node, NoHistoryStore

HELLO = "こんにちは、よろしくお願いします"


@pytest.fixture
async def world(settings_factory: Any) -> AsyncIterator[dict[str, Any]]:
    node = await Node(settings_factory()).start()
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"), kind="inquiry")
    client = await Client(node.ws_url, node.token("tanaka", "client", locale="ja")).connect()
    worker = await Client(node.ws_url, node.token("sato", "worker", locale="en")).connect()
    assert node.app is not None
    screener = node.app[SERVICE].screener
    assert isinstance(screener, ModerationScreener)
    yield {"node": node, "thread": thread["id"], "client": client, "worker": worker,
           "screener": screener, "mod_token": node.token("mod1", "moderator")}
    for c in (client, worker):
        await c.close()
    await node.stop()


async def restrict(screener: ModerationScreener, user: str) -> None:
    await screener.queue.restrict(user, "test", "mod1")
    screener.forget_restrictions()


async def lift(screener: ModerationScreener, user: str) -> None:
    await screener.queue.lift(user)
    screener.forget_restrictions()


async def staff_view(world: dict[str, Any]) -> dict[str, Any]:
    status, body = await world["node"].http(
        "GET", f"/v1/moderation/threads/{world['thread']}", world["mod_token"])
    assert status == 200, body
    return dict(body)


async def test_retry_after_a_restriction_answers_the_delivered_message(
        world: dict[str, Any]) -> None:
    """Stored and delivered, then the sender is restricted: the retry answers the stored
    message (duplicate), and withholds nothing and queues nothing for review."""
    tid, client, screener = world["thread"], world["client"], world["screener"]
    first = await client.send(tid, HELLO, cmid="r-1")
    assert first["duplicate"] is False and first["message"]["seq"] == 1
    assert (await world["worker"].push("message"))["message"]["id"] == first["message"]["id"]
    await restrict(screener, "tanaka")
    retry = await client.send(tid, HELLO, cmid="r-1")
    assert "withheld" not in retry, retry
    assert retry["duplicate"] is True
    assert retry["message"]["id"] == first["message"]["id"] and retry["message"]["seq"] == 1
    assert "moderation" not in retry  # as the first answer: nothing was found in it
    staff = await staff_view(world)
    assert staff["withheld"] == [] and staff["items"] == []
    assert [m["id"] for m in staff["messages"]] == [first["message"]["id"]]
    # The restriction holds new sends (the test's premise: the retry was screened "hold").
    later = await client.send(tid, "別件です", cmid="r-2")
    assert later["withheld"]["status"] == "held"


async def test_retry_after_a_restriction_is_lifted_answers_the_withheld_record(
        world: dict[str, Any]) -> None:
    """Held only because the sender was restricted; the restriction is lifted; the retry
    answers the same withheld record, and nothing is stored or pushed."""
    node, tid, client, screener = (world["node"], world["thread"], world["client"],
                                   world["screener"])
    await restrict(screener, "tanaka")
    first = await client.send(tid, HELLO, cmid="h-1")
    assert "message" not in first and first["withheld"]["status"] == "held"
    assert first["moderation"]["action"] == "hold"
    await lift(screener, "tanaka")
    retry = await client.send(tid, HELLO, cmid="h-1")
    assert "message" not in retry and "duplicate" not in retry, retry
    assert retry["withheld"] == first["withheld"]
    assert retry["moderation"] == first["moderation"]
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert status == 200 and hist["messages"] == []
    staff = await staff_view(world)
    assert [(w["id"], w["status"]) for w in staff["withheld"]] == [
        (first["withheld"]["id"], "held")]
    assert len(staff["items"]) == 1
    # A new send is delivered (the premise: the retry was screened "allow"), with seq 1:
    # the retry took none.
    later = await client.send(tid, "別件です", cmid="h-2")
    assert later["message"]["seq"] == 1
    got = await world["worker"].push("message")
    assert got["message"]["id"] == later["message"]["id"], "the retry was never pushed"


async def test_several_retries_of_a_withheld_send_in_one_batch(
        world: dict[str, Any]) -> None:
    """Concurrent retries (one group-commit batch or several) all answer the record."""
    tid, client, screener = world["thread"], world["client"], world["screener"]
    await restrict(screener, "tanaka")
    first = await client.send(tid, HELLO, cmid="b-1")
    await lift(screener, "tanaka")
    answers = await asyncio.gather(*(client.send(tid, HELLO, cmid="b-1") for _ in range(5)),
                                   client.send(tid, "新しいメッセージ", cmid="b-2"))
    assert [a["withheld"] for a in answers[:5]] == [first["withheld"]] * 5
    assert answers[5]["message"]["seq"] == 1


def test_the_store_reads_moderations_withheld_table() -> None:
    from chat.store.base import WITHHELD_TABLE  # chat does not import moderation

    assert WITHHELD_TABLE == WITHHELD


async def test_a_retry_is_not_added_to_the_senders_history_again() -> None:
    """The screener keeps the sender's recent bodies to catch a number split over several
    messages: a retried body is neither remembered twice nor scanned with its own copy."""

    settings = Settings(jwt_secret=Secret("x" * 40))
    screener = ModerationScreener(settings, store=NoHistoryStore(), fanout=Any,  # type: ignore[arg-type]
                                  queue=Any)  # type: ignore[arg-type]
    screener._restricted_at = float("inf")  # no restriction look-ups
    who = Identity("tanaka", frozenset({"client"}), "田中", "ja", "Asia/Tokyo", 0.0)
    for _ in range(3):
        await screener.screen_send(thread="t1", stage="inquiry", sender=who,
                                   sender_role="client", body="電話は090-", client_msg_id="s-1")
    await screener.screen_send(thread="t1", stage="inquiry", sender=who, sender_role="client",
                               body="5555-1234", client_msg_id="s-2")
    assert [(e.key, e.body) for e in screener._recent[("t1", "tanaka")]] == [
        ("s-1", "電話は090-"), ("s-2", "5555-1234")]
