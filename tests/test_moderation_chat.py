"""Moderation wired into chat, end to end through real sockets, on both back ends.

Masked, held-then-released and blocked messages; warnings in Japanese and English; the review
queue, decisions and their audit entries; restrictions; edits are scanned too; only
moderators reach the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from chat.app import SERVICE
from chat.errors import Unavailable
from moderation.policy import MASK_CHAR
from tests.support import Client, Node

LINE_ASK = "Do you have LINE? add me there"
PHONE = "私の番号は 090-5555-1234 です。電話ください"
OFFSITE = "Let's sign the contract directly outside the platform to avoid the fee."
EXPENSE = "作業の前に登録料3万円を私の口座に振り込んでください"


@pytest.fixture
async def world(settings_factory: Any, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    # The default policy, with expense demands blocked before a contract (to test block).
    default = (Path(__file__).parents[1] / "moderation" / "policy.toml").read_text("utf-8")
    custom = default.replace('[actions.expense_demand]\ninquiry = "hold"',
                             '[actions.expense_demand]\ninquiry = "block"')
    assert custom != default
    policy = tmp_path / "policy.toml"
    policy.write_text(custom, "utf-8")
    node = await Node(settings_factory(moderation_policy=str(policy))).start()
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"), kind="inquiry")
    client = await Client(node.ws_url, node.token("tanaka", "client", locale="ja")).connect()
    worker = await Client(node.ws_url, node.token("sato", "worker", locale="en")).connect()
    mod = await Client(node.ws_url, node.token("mod1", "moderator")).connect()
    yield {"node": node, "thread": thread["id"], "client": client, "worker": worker, "mod": mod,
           "mod_token": node.token("mod1", "moderator")}
    for c in (client, worker, mod):
        await c.close()
    await node.stop()


async def test_masked_message_is_masked_for_the_recipient_only(world: dict[str, Any]) -> None:
    node, tid = world["node"], world["thread"]
    ok = await world["client"].send(tid, LINE_ASK)
    assert ok["message"]["body"] == LINE_ASK, "the sender sees what they wrote"
    assert ok["moderation"]["action"] == "mask"
    assert ok["moderation"]["warning"]["text"] == ok["moderation"]["warning"]["ja"]
    pushed = (await world["worker"].push("message"))["message"]
    assert pushed["masked"] is True and MASK_CHAR in pushed["body"] and "LINE" not in pushed["body"]
    # The recipient's warning, in the recipient's language (en).
    warning = pushed["moderation"]["warning"]
    assert warning["text"] == warning["en"] and "platform" in warning["en"]
    # History over HTTP is masked for the recipient too; the original stays in the log.
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert status == 200 and "LINE" not in hist["messages"][0]["body"]
    status, staff = await node.http("GET", f"/v1/moderation/threads/{tid}", world["mod_token"])
    assert status == 200 and staff["messages"][0]["body"] == LINE_ASK
    assert staff["messages"][0]["moderation"]["findings"][0]["category"] == "contact_exchange"
    review = await world["mod"].push("review")
    assert review["item"]["action"] == "mask" and review["item"]["thread"] == tid


async def test_a_message_with_a_thousand_findings_keeps_a_bounded_record(
        world: dict[str, Any]) -> None:
    """10,000 characters of "my LINE is kotaro ": 1,100 findings (held: an ID is high
    severity). The record (withheld row, review item, dispute log) lists the first 100 and
    the total, not a record 25 times the message's size written three times."""
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    body = ("my LINE is kotaro " * 560)[:10_000]
    ok = await world["client"].send(tid, body)
    assert ok["moderation"]["action"] == "hold" and "message" not in ok
    pushed_id = (await world["mod"].push("review"))["item"]["id"]
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    [item] = [i for i in queue["items"] if i["id"] == pushed_id]
    rules = {"contact.messenger", "contact.messenger_id"}
    assert {f["rule"] for f in item["findings"]} == rules
    assert len(item["findings"]) == 100 and item["findings_total"] > 1000
    assert [f["start"] for f in item["findings"]] == sorted(f["start"] for f in item["findings"])
    [payload] = [orjson.loads(r[0]) for r in await node.app[SERVICE].store.db.fetch(
        "SELECT payload FROM thread_log WHERE thread_id = ? AND kind = 'moderation.held'", tid)]
    assert len(payload["findings"]) == 100
    assert payload["findings_total"] == item["findings_total"]
    # An ordinary item lists all its findings, and says so.
    await world["client"].send(tid, LINE_ASK)
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    assert status == 200
    [small] = [i for i in queue["items"] if i["id"] != item["id"]]
    assert small["findings_total"] == len(small["findings"]) >= 1


async def test_admins_get_the_review_pushes_too(world: dict[str, Any]) -> None:
    """An admin may use the review API, so its connections get the moderators' pushes."""
    node, tid = world["node"], world["thread"]
    admin = await Client(node.ws_url, node.token("root1", "admin")).connect()
    worker = await Client(node.ws_url, node.token("sato", "worker")).connect()  # a 2nd device
    try:
        await world["client"].send(tid, LINE_ASK)
        review = await admin.push("review")
        assert review["item"]["thread"] == tid and review["item"]["action"] == "mask"
        await worker.push("message")  # delivered to the worker's device, without the review
        assert all(f["type"] != "review" for f in worker.drain_pushes())
    finally:
        await admin.close()
        await worker.close()


async def test_masked_messenger_share_hides_the_id_too(world: dict[str, Any]) -> None:
    # Once work is in progress contact sharing is flagged; the shared ID (high severity)
    # raises that to a mask, and the mask covers the ID, not only the app name.
    node = world["node"]
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      stage="in_progress")
    body = "Add me on LINE: tanaka_123 (full width works too: ＷｅＣｈａｔ：ｔｎｋ８８)"
    ok = await world["client"].send(thread["id"], body)
    assert ok["moderation"]["action"] == "mask"
    pushed = (await world["worker"].push("message"))["message"]
    assert pushed["masked"] is True and len(pushed["body"]) == len(body)
    assert pushed["body"] == ("Add me on ●●●●: ●●●●●●●●●● (full width works too: "
                              "●●●●●●：●●●●●)")
    status, hist = await node.http("GET", f"/v1/threads/{thread['id']}/messages",
                                   node.token("sato", "worker"))
    assert status == 200 and "tanaka_123" not in hist["messages"][0]["body"]


async def test_held_message_is_delivered_only_when_released(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, OFFSITE, cmid="held-1")
    assert "message" not in ok and ok["withheld"]["status"] == "held"
    assert ok["moderation"]["action"] == "hold"
    retry = await world["client"].send(tid, OFFSITE, cmid="held-1")
    assert retry["withheld"]["id"] == ok["withheld"]["id"], "a retry is not held twice"
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    items = [i for i in queue["items"] if i["withheld_id"] == ok["withheld"]["id"]]
    assert len(items) == 1 and items[0]["categories"] == ["off_platform_deal"]
    # Nothing reached the worker, and the thread has no message yet.
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert hist["messages"] == []
    status, claimed = await node.http("POST", f"/v1/moderation/items/{items[0]['id']}/claim",
                                      mod_token)
    assert status == 200 and claimed["item"]["claimed_by"] == "mod1"
    status, decided = await node.http(
        "POST", f"/v1/moderation/items/{items[0]['id']}/decide", mod_token,
        {"decision": "release", "note": "契約後の相談なので問題なし"},
    )
    assert status == 200 and decided["item"]["decision"] == "release"
    got = (await world["worker"].push("message"))["message"]
    assert got["body"] == OFFSITE and got["seq"] == 1
    note = await world["client"].push("withheld")
    assert note["status"] == "released" and note["message"]["seq"] == 1
    status, audit = await node.http("GET", f"/v1/moderation/audit?thread={tid}", mod_token)
    actions = [e["action"] for e in audit["entries"]]
    assert "decide:release" in actions and "claim" in actions
    entry = next(e for e in audit["entries"] if e["action"] == "decide:release")
    assert entry["actor"] == "mod1" and entry["note"] == "契約後の相談なので問題なし"


async def test_blocked_attempt_is_not_delivered_but_is_logged(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, EXPENSE)
    assert ok["withheld"]["status"] == "blocked" and ok["moderation"]["action"] == "block"
    assert "expense_demand" in ok["moderation"]["categories"]
    status, staff = await node.http("GET", f"/v1/moderation/threads/{tid}", mod_token)
    [blocked] = staff["withheld"]
    assert blocked["body"] == EXPENSE and blocked["status"] == "blocked"
    assert staff["messages"] == []
    [item] = staff["items"]
    status, body = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                   mod_token, {"decision": "release", "note": ""})
    assert status == 409 and body["error"]["code"] == "conflict"
    await world["client"].send(tid, "よろしくお願いします")
    got = (await world["worker"].push("message"))["message"]
    assert got["body"] == "よろしくお願いします" and got["seq"] == 1, "the blocked one took no seq"


async def test_restrict_holds_later_messages_and_warns(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, OFFSITE)
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    item = next(i for i in queue["items"] if i["withheld_id"] == ok["withheld"]["id"])
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod_token,
                                {"decision": "restrict", "note": "repeat offender"})
    assert status == 200
    pushes = {}
    while len(pushes) < 2:
        frame = await world["client"].push(
            where=lambda f: f["type"] in ("moderation_warning", "withheld"))
        pushes[frame["type"]] = frame
    assert pushes["moderation_warning"]["warning"]["ja"]
    assert pushes["moderation_warning"]["warning"]["en"]
    assert pushes["withheld"]["status"] == "rejected"
    later = await world["client"].send(tid, "こんにちは、進捗はいかがですか")
    assert later["withheld"]["status"] == "held", "a restricted user's messages are held"
    # moderators see the restriction and can lift it; the user is told, in both languages
    status, listed = await node.http("GET", "/v1/moderation/restrictions", mod_token)
    assert status == 200
    [r] = listed["restrictions"]
    assert (r["user"], r["reason"], r["by"]) == ("tanaka", "repeat offender", "mod1")
    worker_token = node.token("sato", "worker")
    status, _ = await node.http("DELETE", "/v1/moderation/restrictions/tanaka", worker_token,
                                {"note": "let me go"})
    assert status == 403, "only moderators lift restrictions"
    status, body = await node.http("DELETE", "/v1/moderation/restrictions/tanaka", mod_token,
                                   {"note": "appeal accepted"})
    assert status == 200 and body["lifted"]["user"] == "tanaka"
    lifted = await world["client"].push("moderation_warning")
    assert lifted["thread"] is None and "解除" in lifted["warning"]["ja"]
    assert "lifted" in lifted["warning"]["en"]
    after = await world["client"].send(tid, "修正版をお送りします")
    assert "withheld" not in after and after["message"]["seq"] == 1, "delivered again"
    status, body = await node.http("DELETE", "/v1/moderation/restrictions/tanaka", mod_token)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, listed = await node.http("GET", "/v1/moderation/restrictions", mod_token)
    assert listed["restrictions"] == []
    status, audit = await node.http("GET", "/v1/moderation/audit", mod_token)
    entry = next(e for e in audit["entries"] if e["action"] == "lift_restriction")
    assert (entry["actor"], entry["target"], entry["note"]) == ("mod1", "tanaka",
                                                                "appeal accepted")


async def test_dismissing_a_masked_message_unmasks_it(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, LINE_ASK)
    await world["worker"].push("message")
    review = await world["mod"].push("review")
    status, _ = await node.http("POST", f"/v1/moderation/items/{review['item']['id']}/decide",
                                mod_token, {"decision": "dismiss", "note": "LINE stickers job"})
    assert status == 200
    update = await world["worker"].push("update")
    assert update["action"] == "unmask" and update["message"]["body"] == LINE_ASK
    assert update["message"]["id"] == ok["message"]["id"]
    status, precision = await node.http("GET", "/v1/moderation/precision", mod_token)
    rules = {r["rule"]: r for r in precision["rules"]}
    assert any(r["dismissed"] == 1 and r["precision"] == 0.0 for r in rules.values())


async def test_edits_are_scanned(world: dict[str, Any]) -> None:
    tid = world["thread"]
    ok = await world["client"].send(tid, "ロゴの件、よろしくお願いします")
    await world["worker"].push("message")
    edit = await world["client"].request({"type": "edit", "thread": tid,
                                          "message": ok["message"]["id"], "body": LINE_ASK})
    assert edit["type"] == "ok" and edit["moderation"]["action"] == "mask"
    update = await world["worker"].push("update")
    assert update["action"] == "edit" and update["message"]["masked"] is True
    held = await world["client"].request({"type": "edit", "thread": tid,
                                          "message": ok["message"]["id"], "body": OFFSITE})
    assert held["moderation"]["action"] == "hold"
    assert held["message"]["body"] == LINE_ASK, "a held edit leaves the message as it was"
    # the sender is told what waits for a moderator, and learns the outcome by its id
    assert held["withheld"]["status"] == "held" and held["withheld"]["action"] == "hold"
    node, mod_token = world["node"], world["mod_token"]
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    item = next(i for i in queue["items"] if i["withheld_id"] == held["withheld"]["id"])
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod_token,
                                {"decision": "release", "note": "契約後なので問題なし"})
    assert status == 200
    update = await world["worker"].push("update")
    assert update["action"] == "edit" and update["message"]["body"] == OFFSITE
    released = await world["client"].push(
        "withheld", where=lambda f: f["id"] == held["withheld"]["id"])
    assert released["status"] == "released" and released["message"]["body"] == OFFSITE


async def test_only_moderators_reach_the_queue(world: dict[str, Any]) -> None:
    node = world["node"]
    paths = [("GET", "/v1/moderation/queue"), ("GET", "/v1/moderation/items/q_x"),
             ("POST", "/v1/moderation/items/q_x/claim"),
             ("POST", "/v1/moderation/items/q_x/decide"),
             ("GET", f"/v1/moderation/threads/{world['thread']}"),
             ("GET", "/v1/moderation/precision"), ("GET", "/v1/moderation/audit")]
    for role in ("client", "worker", "service", "dispute"):
        token = node.token("someone", role)
        for method, path in paths:
            status, body = await node.http(method, path, token, {"decision": "dismiss"})
            assert status == 403 and body["error"]["code"] == "forbidden", (role, path)
    for method, path in paths:
        status, _ = await node.http(method, path, None)
        assert status == 401, path


async def test_clean_work_talk_is_untouched(world: dict[str, Any]) -> None:
    tid = world["thread"]
    for text in ("納期は12月15日、金額は50,000円でいかがでしょうか。",
                 "I'll pay through escrow once the contract is signed.",
                 "ガイドラインに沿ってデッドラインまでに納品します。"):
        ok = await world["client"].send(tid, text)
        assert "moderation" not in ok and ok["message"]["body"] == text
        got = (await world["worker"].push("message"))["message"]
        assert got["body"] == text and "masked" not in got


async def test_moderation_outcomes_are_in_the_dispute_log(world: dict[str, Any]) -> None:
    """Blocked and held attempts, findings and decisions belong to the thread's chained log."""
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    await world["client"].send(tid, EXPENSE)  # blocked
    held = await world["client"].send(tid, OFFSITE)  # held
    masked = await world["client"].send(tid, LINE_ASK)  # delivered masked, flagged
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    item = next(i for i in queue["items"] if i["withheld_id"] == held["withheld"]["id"])
    await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod_token,
                    {"decision": "release", "note": "ok"})
    staff = node.token("disp1", "dispute")
    status, opened = await node.http("POST", "/v1/disputes", staff,
                                     {"thread": tid, "reason": "client complaint #12"})
    assert status == 201, opened
    did = opened["dispute"]["id"]
    status, log = await node.http("GET", f"/v1/disputes/{did}/log?reason=review", staff)
    assert status == 200 and log["chain_ok"] is True, log.get("problems")
    kinds = [e["kind"] for e in log["entries"]]
    assert "moderation.blocked" in kinds and "moderation.held" in kinds
    assert "moderation.finding" in kinds and "moderation.decision" in kinds
    blocked = next(e for e in log["entries"] if e["kind"] == "moderation.blocked")
    assert blocked["payload"]["body"] == EXPENSE
    assert "expense_demand" in blocked["payload"]["categories"]
    finding = next(e for e in log["entries"] if e["kind"] == "moderation.finding")
    assert finding["payload"]["message"] == masked["message"]["id"]
    decision = next(e for e in log["entries"] if e["kind"] == "moderation.decision")
    assert decision["payload"]["decision"] == "release" and decision["actor"] == "mod1"
    # The released message is in the log after the decision, as a message entry.
    assert kinds.index("moderation.decision") < len(kinds) - 1


async def _item_for(node: Any, token: str, pred: Any) -> dict[str, Any]:
    status, queue = await node.http("GET", "/v1/moderation/queue", token)
    assert status == 200
    return next(i for i in queue["items"] if pred(i))


async def test_escalate_keeps_a_held_message_held_for_dispute_staff(
        world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, OFFSITE)
    wid = ok["withheld"]["id"]
    item = await _item_for(node, mod_token, lambda i: i["withheld_id"] == wid)
    status, body = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                   mod_token, {"decision": "escalate", "note": "unsure"})
    assert status == 200 and body["item"]["status"] == "escalated"
    assert body["item"]["escalated_by"] == "mod1"
    status, staff = await node.http("GET", f"/v1/moderation/threads/{tid}", mod_token)
    [held] = staff["withheld"]
    assert held["status"] == "held", "escalating must not reject the held message"
    # Escalated: moderators no longer decide it; dispute staff find and decide it.
    status, body = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                   mod_token, {"decision": "release"})
    assert status == 403
    dispute = node.token("disp1", "dispute")
    status, body = await node.http("GET", "/v1/moderation/queue?status=escalated", dispute)
    assert status == 200 and [i["id"] for i in body["items"]] == [item["id"]]
    status, body = await node.http("GET", "/v1/moderation/queue", dispute)
    assert status == 403
    status, body = await node.http("GET", f"/v1/moderation/items/{item['id']}", dispute)
    assert status == 200
    status, body = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                   dispute, {"decision": "release", "note": "agreed on site"})
    assert status == 200 and body["item"]["status"] == "decided"
    got = (await world["worker"].push("message"))["message"]
    assert got["body"] == OFFSITE
    # A second held message, escalated, then rejected by an admin: never delivered.
    ok = await world["client"].send(tid, OFFSITE + " Really.")
    wid = ok["withheld"]["id"]
    item = await _item_for(node, mod_token, lambda i: i["withheld_id"] == wid)
    await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod_token,
                    {"decision": "escalate"})
    admin = node.token("root1", "admin")
    status, body = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                   admin, {"decision": "reject", "note": "fee avoidance"})
    assert status == 200 and body["item"]["decision"] == "reject"
    status, staff = await node.http("GET", f"/v1/moderation/threads/{tid}", mod_token)
    assert {w["id"]: w["status"] for w in staff["withheld"]}[wid] == "rejected"


async def test_split_phone_masks_the_earlier_pieces_too(world: dict[str, Any]) -> None:
    node, mod_token = world["node"], world["mod_token"]
    # in progress: contact sharing is flagged; a phone number (high) raises it to mask.
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      stage="in_progress")
    tid = thread["id"]
    first = await world["client"].send(tid, "090")
    second = await world["client"].send(tid, "5555")
    assert [m["body"] for m in await world["worker"].messages(2)] == ["090", "5555"]
    third = await world["client"].send(tid, "1234")
    assert third["moderation"]["action"] == "mask"
    updates = [await world["worker"].push("update") for _ in range(2)]
    assert {u["message"]["id"]: u["message"]["body"] for u in updates} == {
        first["message"]["id"]: "●●●", second["message"]["id"]: "●●●●"}
    assert all(u["action"] == "mask" and u["message"]["masked"] for u in updates)
    got = (await world["worker"].push("message"))["message"]
    assert got["body"] == "●●●●"
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert [m["body"] for m in hist["messages"]] == ["●●●", "●●●●", "●●●●"]
    # The review item places each finding in its own message.
    item = await _item_for(node, mod_token,
                           lambda i: i["message_id"] == third["message"]["id"])
    status, body = await node.http("GET", f"/v1/moderation/items/{item['id']}", mod_token)
    assert status == 200 and body["item"]["text"] == "1234"
    by_current = {f["current"] for f in body["item"]["findings"]}
    assert by_current == {True, False}
    earlier = [f for f in body["item"]["findings"] if not f["current"]]
    assert {f["message_id"] for f in earlier} == {first["message"]["id"],
                                                   second["message"]["id"]}
    assert [(m["message_id"], m["text"]) for m in body["finding_messages"]] == [
        (first["message"]["id"], "090"), (second["message"]["id"], "5555")]
    # Dismissed: every piece is unmasked again.
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                mod_token, {"decision": "dismiss"})
    assert status == 200
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert [m["body"] for m in hist["messages"]] == ["090", "5555", "1234"]


async def _worker_bodies(node: Any, tid: str) -> list[str]:
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert status == 200
    return [m["body"] for m in hist["messages"]]


async def first_two_pieces(world: dict[str, Any]) -> str:
    """A new contract thread in progress where tanaka sent the first two pieces of a phone
    number ("090", "5555"), each harmless alone; the thread's id."""
    thread = await world["node"].create_thread(("tanaka", "client"), ("sato", "worker"),
                                               stage="in_progress")
    tid: str = thread["id"]
    await world["client"].send(tid, "090")
    await world["client"].send(tid, "5555")
    return tid


async def test_a_retried_last_piece_masks_nothing_again(world: dict[str, Any]) -> None:
    """The earlier pieces are masked when the last one is stored, not when it is screened:
    a retry of it (lost ack) after a moderator dismissed the item leaves them in clear."""
    node, mod_token = world["node"], world["mod_token"]
    tid = await first_two_pieces(world)
    third = await world["client"].send(tid, "1234", cmid="last-piece")
    assert third["moderation"]["action"] == "mask"
    assert await _worker_bodies(node, tid) == ["●●●", "●●●●", "●●●●"]
    item = await _item_for(node, mod_token,
                           lambda i: i["message_id"] == third["message"]["id"])
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                mod_token, {"decision": "dismiss"})
    assert status == 200
    assert await _worker_bodies(node, tid) == ["090", "5555", "1234"]
    world["worker"].drain_pushes()
    retry = await world["client"].send(tid, "1234", cmid="last-piece")
    assert retry["duplicate"] is True and retry["message"]["id"] == third["message"]["id"]
    assert await _worker_bodies(node, tid) == ["090", "5555", "1234"]
    assert not [f for f in world["worker"].drain_pushes()
                if f["type"] == "update" and f["action"] == "mask"]
    status, queue = await node.http("GET", "/v1/moderation/queue", mod_token)
    assert not [i for i in queue["items"] if i["message_id"] == third["message"]["id"]]


async def test_a_last_piece_never_stored_masks_nothing_until_its_retry_is(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A first attempt whose commit fails masks nothing; its retry, stored, masks the
    earlier pieces, and dismissing the retry's item unmasks them."""
    node, mod_token = world["node"], world["mod_token"]
    assert node.app is not None
    committer = node.app[SERVICE].committer
    real = committer.append_screened
    failed: list[str] = []

    async def fail_once(req: Any) -> Any:
        if req.body == "1234" and not failed:
            failed.append(req.client_msg_id)
            raise Unavailable("commit lost")
        return await real(req)

    monkeypatch.setattr(committer, "append_screened", fail_once)
    tid = await first_two_pieces(world)
    lost = await world["client"].send(tid, "1234", cmid="never-stored")
    assert failed == ["never-stored"] and lost["type"] == "error", lost
    assert await _worker_bodies(node, tid) == ["090", "5555"]
    stored = await world["client"].send(tid, "1234", cmid="never-stored")
    assert stored["duplicate"] is False and stored["moderation"]["action"] == "mask"
    assert await _worker_bodies(node, tid) == ["●●●", "●●●●", "●●●●"]
    item = await _item_for(node, mod_token,
                           lambda i: i["message_id"] == stored["message"]["id"])
    assert [e.get("masked") for e in item["earlier_messages"]] == [True, True]
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                mod_token, {"decision": "dismiss"})
    assert status == 200
    assert await _worker_bodies(node, tid) == ["090", "5555", "1234"]


async def test_a_restriction_does_not_mask_what_the_policy_only_flags(
        settings_factory: Any, tmp_path: Path) -> None:
    """A restricted sender's messages are held, but only the policy's own action decides
    whether a split finding masks the earlier pieces (here: flag, so they stay as sent)."""
    default = (Path(__file__).parents[1] / "moderation" / "policy.toml").read_text("utf-8")
    custom = default.replace("high_severity_steps = 1", "high_severity_steps = 0")
    assert custom != default
    policy = tmp_path / "flag.toml"
    policy.write_text(custom, "utf-8")
    node = await Node(settings_factory(moderation_policy=str(policy))).start()
    client = await Client(node.ws_url, node.token("tanaka", "client", locale="ja")).connect()
    mod_token = node.token("mod1", "moderator")
    try:
        inquiry = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
        tid = (await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                        stage="in_progress"))["id"]
        await client.send(tid, "090")
        await client.send(tid, "5555")
        ok = await client.send(inquiry["id"], OFFSITE)
        item = await _item_for(node, mod_token,
                               lambda i: i["withheld_id"] == ok["withheld"]["id"])
        status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                    mod_token, {"decision": "restrict", "note": "test"})
        assert status == 200
        held = await client.send(tid, "1234")
        assert held["withheld"]["status"] == "held"
        assert await _worker_bodies(node, tid) == ["090", "5555"]
        item = await _item_for(node, mod_token,
                               lambda i: i["withheld_id"] == held["withheld"]["id"])
        assert len(item["earlier_messages"]) == 2
        assert not any(e.get("masked") for e in item["earlier_messages"])
    finally:
        await client.close()
        await node.stop()


async def test_split_masks_raise_rev_and_are_undone_per_item(world: dict[str, Any]) -> None:
    """A mask and an unmask are updates with a higher rev; a message masked by two items
    (its own, and a later split finding) keeps the other's spans when one is dismissed."""
    node, mod_token = world["node"], world["mod_token"]
    worker = world["worker"]
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      stage="in_progress")
    tid = thread["id"]
    first = await world["client"].send(tid, "090")
    await world["client"].send(tid, "5555")
    third = await world["client"].send(tid, "1234\n080")
    assert third["moderation"]["action"] == "mask"
    update = await worker.push("update", where=lambda f: f["message"]["id"]
                               == first["message"]["id"])
    assert update["action"] == "mask" and update["message"]["rev"] == 1
    await world["client"].send(tid, "7777")
    fifth = await world["client"].send(tid, "8888")
    assert fifth["moderation"]["action"] == "mask"
    assert await _worker_bodies(node, tid) == [
        "●●●", "●●●●", "●●●●\n●●●", "●●●●", "●●●●"]
    item_a = await _item_for(node, mod_token,
                             lambda i: i["message_id"] == third["message"]["id"])
    item_b = await _item_for(node, mod_token,
                             lambda i: i["message_id"] == fifth["message"]["id"])
    worker.drain_pushes()
    # Dismissing the first item unmasks its own pieces but not the 080 the second masked.
    status, _ = await node.http("POST", f"/v1/moderation/items/{item_a['id']}/decide",
                                mod_token, {"decision": "dismiss"})
    assert status == 200
    assert await _worker_bodies(node, tid) == [
        "090", "5555", "1234\n●●●", "●●●●", "●●●●"]
    update = await worker.push("update", where=lambda f: f["message"]["id"]
                               == first["message"]["id"])
    assert update["action"] == "unmask" and update["message"]["rev"] == 2
    status, hist = await node.http("GET", f"/v1/threads/{tid}/messages",
                                   node.token("sato", "worker"))
    assert [m.get("rev", 0) for m in hist["messages"]] == [2, 2, 2, 1, 0]
    status, _ = await node.http("POST", f"/v1/moderation/items/{item_b['id']}/decide",
                                mod_token, {"decision": "dismiss"})
    assert status == 200
    assert await _worker_bodies(node, tid) == ["090", "5555", "1234\n080", "7777", "8888"]


async def test_queue_listing_audits_each_thread_it_shows(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    ok = await world["client"].send(tid, OFFSITE)
    item = await _item_for(node, mod_token,
                           lambda i: i["withheld_id"] == ok["withheld"]["id"])
    _, audit = await node.http("GET", f"/v1/moderation/audit?thread={tid}", mod_token)
    reads = [e for e in audit["entries"] if e["action"] == "read_queue"]
    assert reads and reads[0]["actor"] == "mod1" and item["id"] in reads[0]["note"]


async def test_item_context_is_around_the_flagged_message(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    await world["client"].send(tid, "はじめまして")
    flagged = await world["client"].send(tid, LINE_ASK)
    for n in range(12):
        await world["client"].send(tid, f"進捗その{n}です")
    item = await _item_for(node, mod_token,
                           lambda i: i["message_id"] == flagged["message"]["id"])
    status, body = await node.http("GET", f"/v1/moderation/items/{item['id']}", mod_token)
    assert status == 200
    seqs = [m["seq"] for m in body["context"]]
    assert seqs == list(range(1, 8)), "one before, the message, five after"
    status, body = await node.http(
        "GET", f"/v1/moderation/items/{item['id']}?before=0&after=1", mod_token)
    assert [m["seq"] for m in body["context"]] == [2, 3]


async def test_precision_counts_rules_marked_wrong_and_not_releases(
        world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    body = "LINEで連絡ください。作業前に登録料3万円をお支払いください"
    ok = await world["client"].send(tid, body)
    assert ok["withheld"]["status"] == "blocked"
    item = await _item_for(node, mod_token,
                           lambda i: i["withheld_id"] == ok["withheld"]["id"])
    rules = sorted({f["rule"] for f in item["findings"]})
    assert len(rules) >= 2
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                mod_token, {"decision": "warn", "wrong_rules": ["nope"]})
    assert status == 400
    wrong = rules[0]
    status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide",
                                mod_token, {"decision": "warn", "wrong_rules": [wrong]})
    assert status == 200
    held = await world["client"].send(tid, OFFSITE)
    item2 = await _item_for(node, mod_token,
                            lambda i: i["withheld_id"] == held["withheld"]["id"])
    await node.http("POST", f"/v1/moderation/items/{item2['id']}/decide", mod_token,
                    {"decision": "release", "note": "after the contract"})
    status, precision = await node.http("GET", "/v1/moderation/precision", mod_token)
    stats = {r["rule"]: r for r in precision["rules"]}
    assert stats[wrong]["dismissed"] == 1 and stats[wrong]["precision"] == 0.0
    for rule in rules[1:]:
        assert stats[rule]["confirmed"] == 1 and stats[rule]["precision"] == 1.0
    for rule in {f["rule"] for f in item2["findings"]} - set(rules):
        assert stats[rule]["dismissed"] == 0 and stats[rule]["other"] == 1


async def test_queue_grouped_by_thread(world: dict[str, Any]) -> None:
    node, tid, mod_token = world["node"], world["thread"], world["mod_token"]
    other = await node.create_thread(("tanaka", "client"), ("sato", "worker"), kind="inquiry")
    await world["client"].send(tid, LINE_ASK)
    await world["client"].send(tid, OFFSITE)
    await world["client"].send(other["id"], LINE_ASK)
    status, body = await node.http("GET", "/v1/moderation/queue?group=thread", mod_token)
    assert status == 200
    groups = {g["thread"]: g for g in body["threads"]}
    assert groups[tid]["count"] == 2 and groups[other["id"]]["count"] == 1
    assert body["threads"][0]["thread"] == tid, "highest risk first"
    assert groups[tid]["max_risk"] >= groups[other["id"]]["max_risk"]
    assert set(groups[tid]["categories"]) == {"contact_exchange", "off_platform_deal"}
    assert groups[tid]["oldest"] and len(groups[tid]["items"]) == 2
    assert "text" not in groups[tid]


async def test_staff_thread_view_pages_back_with_before_seq(world: dict[str, Any]) -> None:
    node, tid = world["node"], world["thread"]
    for i in range(5):
        await world["worker"].send(tid, f"進捗 {i} です")
    url = f"/v1/moderation/threads/{tid}"
    status, last = await node.http("GET", f"{url}?limit=2", world["mod_token"])
    assert status == 200 and [m["seq"] for m in last["messages"]] == [4, 5]
    status, older = await node.http("GET", f"{url}?limit=2&before_seq=4", world["mod_token"])
    assert status == 200 and [m["seq"] for m in older["messages"]] == [2, 3]
    status, bad = await node.http("GET", f"{url}?before_seq=x", world["mod_token"])
    assert status == 400 and bad["error"]["code"] == "bad_request"
