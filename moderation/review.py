"""The moderators' review queue over HTTP (role ``moderator`` or ``admin``).

    GET  /v1/moderation/queue                  open items, highest risk first
                                               (?group=thread: one summary per thread)
    GET  /v1/moderation/items/{id}             one item with its thread context
    POST /v1/moderation/items/{id}/claim       take an item
    POST /v1/moderation/items/{id}/decide      {decision, note, wrong_rules?}
    GET  /v1/moderation/threads/{id}           the whole thread as staff see it
    GET  /v1/moderation/precision              per-rule precision from decisions
    GET  /v1/moderation/audit                  the staff audit log
    GET  /v1/moderation/restrictions           restricted users (why, by whom, since)
    DELETE /v1/moderation/restrictions/{user}  lift a restriction {note}

Every call is recorded in the audit log (who, what, which thread; a queue listing writes
one ``read_queue`` row per thread whose texts it returned, naming the items). Decisions:
``dismiss`` (false positive: a held message is delivered, a masked one unmasked), ``warn``
(confirmed; the sender is warned in their language; a held message is rejected),
``restrict`` (confirmed; the sender's messages are held from now on; a held message is
rejected), ``release`` (deliver a held message), ``reject`` (confirmed; a held message is
never delivered), ``escalate`` (hand to dispute staff: the item becomes ``escalated`` and a
held message stays held; dispute staff or an admin then claim and decide it - a moderator
no longer can).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from chat.auth import Identity
from chat.errors import BadRequest, Conflict, Forbidden, NotFound
from chat.fanout import Event, role_channel, thread_channel, user_channel
from chat.http_api import Body, HttpApi, json_response, path_id, query_int
from chat.models import Message, NewMessage, now_us
from chat.service import ChatService

from .queue import DECISIONS, ReviewQueue
from .screen import ModerationScreener, split_view

WARNING_TEXT = {
    "ja": "運営からの注意: あなたのメッセージは利用規約に反する可能性があります。"
    "サイト外での連絡・取引や個人情報の要求、費用負担の要求はご遠慮ください。",
    "en": "A notice from the moderators: your message may break the terms of use. "
    "Please do not move contact or dealing off the platform, ask for personal data or "
    "ask the other party to pay costs.",
}
RESTRICT_TEXT = {
    "ja": "運営からのお知らせ: 規約違反が確認されたため、あなたのメッセージは確認後に配信されます。",
    "en": "A notice from the moderators: after a confirmed violation, your messages are "
    "delivered after review.",
}

LIFTED_TEXT = {
    "ja": "運営からのお知らせ: 制限が解除されました。あなたのメッセージは通常どおり配信されます。",
    "en": "A notice from the moderators: your restriction has been lifted; your messages are "
    "delivered as usual again.",
}


class ReviewApi:
    def __init__(self, http: HttpApi, service: ChatService, queue: ReviewQueue,
                 screener: ModerationScreener) -> None:
        self.http = http
        self.service = service
        self.queue = queue
        self.screener = screener

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/moderation/queue", self.list_queue),
            web.get("/v1/moderation/items/{id}", self.get_item),
            web.post("/v1/moderation/items/{id}/claim", self.claim),
            web.post("/v1/moderation/items/{id}/decide", self.decide),
            web.get("/v1/moderation/threads/{id}", self.thread),
            web.get("/v1/moderation/precision", self.precision),
            web.get("/v1/moderation/audit", self.audit_log),
            web.get("/v1/moderation/restrictions", self.list_restrictions),
            web.delete("/v1/moderation/restrictions/{user}", self.lift_restriction),
        ]

    def staff(self, request: web.Request) -> Identity:
        who = self.http.identify(request)
        if not who.has("moderator", "admin"):
            raise Forbidden("this call needs the moderator role")
        return who

    async def item_staff(self, request: web.Request) -> tuple[Identity, dict[str, Any]]:
        """The caller and the item of the path. Moderators and admins reach any item;
        dispute staff only escalated ones (the others answer 403 as if they did not exist).
        Once escalated, only dispute staff and admins may claim or decide it."""
        who = self.http.identify(request)
        if who.has("moderator", "admin"):
            return who, await self.queue.get_item(path_id(request))
        if who.has("dispute"):
            try:
                item = await self.queue.get_item(path_id(request))
            except NotFound:
                item = None
            if item is not None and item["escalated_by"] is not None:
                return who, item
            raise Forbidden("dispute staff reach only escalated review items")
        raise Forbidden("this call needs the moderator role")

    @staticmethod
    def _may_act(who: Identity, item: dict[str, Any]) -> None:
        if item["status"] == "escalated" and not who.has("dispute", "admin"):
            raise Forbidden("this item was escalated: dispute staff or an admin decide it")

    async def list_queue(self, request: web.Request) -> web.Response:
        """Open items; texts are returned, so every thread whose items are listed gets one
        ``read_queue`` audit row naming them. ``group=thread``: one summary per thread
        (count, highest risk, oldest item, categories), without texts."""
        who = self.http.identify(request)
        status = request.query.get("status") or None
        if status not in (None, "open", "claimed", "decided", "escalated"):
            raise BadRequest("status must be open, claimed, decided or escalated")
        if not who.has("moderator", "admin") and not (who.has("dispute")
                                                      and status == "escalated"):
            raise Forbidden("this call needs the moderator role")
        group = request.query.get("group") or None
        if group not in (None, "thread"):
            raise BadRequest("group must be thread")
        limit = query_int(request, "limit", default=100, lo=1, hi=500)
        assert limit is not None
        if group == "thread":
            threads = await self.queue.list_threads(status=status, limit=limit)
            await self.queue.audit(who.user_id, "read_queue", note=f"group=thread {status or ''}"
                                   .strip())
            return json_response({"threads": threads})
        items = await self.queue.list_items(status=status, limit=limit)
        by_thread: dict[str, list[str]] = {}
        for it in items:
            by_thread.setdefault(it["thread"], []).append(it["id"])
        for thread_id, ids in by_thread.items():
            await self.queue.audit(who.user_id, "read_queue", thread=thread_id,
                                   note="items " + " ".join(ids))
        if not by_thread:
            await self.queue.audit(who.user_id, "read_queue", note=status)
        return json_response({"items": items})

    async def get_item(self, request: web.Request) -> web.Response:
        """One item with the messages around it (``before``/``after``, 5 each by default)
        and, for findings on the sender's earlier messages, those messages."""
        who, item = await self.item_staff(request)
        before = query_int(request, "before", default=5, lo=0, hi=50)
        after = query_int(request, "after", default=5, lo=0, hi=50)
        assert before is not None and after is not None
        context = await self._context(item, before, after)
        await self.queue.audit(who.user_id, "read_item", target=item["id"],
                               thread=item["thread"])
        return json_response({
            "item": item,
            "context": [m.view(None, staff=True) for m in context],
            "finding_messages": _finding_messages(item),
        })

    async def _context(self, item: dict[str, Any], before: int, after: int) -> list[Message]:
        """Messages around the item's message: ``before`` earlier and ``after`` later ones,
        and the message itself. A withheld message has no seq: it is placed after the
        last message created before it (or its released copy, once released)."""
        store = self.service.store
        thread = item["thread"]
        message_id = item["message_id"]
        if message_id is None and item["withheld_id"] is not None:
            held = await self.queue.get_withheld(item["withheld_id"])
            message_id = held["released_message_id"] or held["edit_of"]
        seq: int | None = None
        own: list[Message] = []
        if message_id is not None:
            msg = await store.get_message(thread, message_id)
            if msg is not None:
                seq, own = msg.seq, [msg]
        if seq is None:  # a held message: the messages stored before it was held
            last = await self.queue.seq_before(item["id"])
            earlier = await store.history(thread, before_seq=last + 1, limit=before) \
                if before else []
            later = await store.history(thread, after_seq=last, limit=after) if after else []
            return earlier + later
        earlier = await store.history(thread, before_seq=seq, limit=before) if before else []
        later = await store.history(thread, after_seq=seq, limit=after) if after else []
        return earlier + own + later

    async def claim(self, request: web.Request) -> web.Response:
        who, current = await self.item_staff(request)
        self._may_act(who, current)
        item = await self.queue.claim(current["id"], who.user_id)
        await self.queue.audit(who.user_id, "claim", target=item["id"], thread=item["thread"])
        return json_response({"item": item})

    async def decide(self, request: web.Request) -> web.Response:
        who, current = await self.item_staff(request)
        body = await Body.read(request)
        decision = body.req_str("decision", max_chars=16)
        if decision not in DECISIONS:
            raise BadRequest(f"decision must be one of {', '.join(DECISIONS)}")
        note = body.text("note", max_chars=2000, required=False, allow_empty=True) or ""
        wrong_rules = body.data.get("wrong_rules")
        rules = {f["rule"] for f in current["findings"]}
        if wrong_rules is not None and (
                not isinstance(wrong_rules, list)
                or not all(isinstance(r, str) and r in rules for r in wrong_rules)):
            raise BadRequest("wrong_rules must be a list of rules of this item's findings: "
                             + ", ".join(sorted(rules)))
        self._may_act(who, current)
        held = None
        if current["withheld_id"] is not None:
            held = await self.queue.get_withheld(current["withheld_id"])
        if decision in ("release", "reject") and (held is None or held["status"] != "held"):
            raise Conflict("only a held message can be "
                           + ("released" if decision == "release" else "rejected"))
        item = await self.queue.decide(current["id"], who.user_id, decision, note,
                                       wrong_rules=wrong_rules)
        effect = await self._apply(who, item, held, decision)
        await self.queue.audit(who.user_id, f"decide:{decision}", target=item["id"],
                               thread=item["thread"], note=note)
        self.service.fanout.publish(
            Event(role_channel("moderator"), "review",
                  {"item": {"id": item["id"], "thread": item["thread"],
                            "status": item["status"], "decision": decision}})
        )
        return json_response({"item": item, **effect})

    async def _apply(self, who: Identity, item: dict[str, Any], held: dict[str, Any] | None,
                     decision: str) -> dict[str, Any]:
        fanout = self.service.fanout
        sender = item["sender"]
        if decision == "dismiss":
            await self._unmask_earlier(item, held)
        if held is not None and held["status"] == "held":
            if decision in ("release", "dismiss"):
                return {"released": await self._release(held, who)}
            if decision == "escalate":  # still held: dispute staff decide it
                fanout.publish(Event(role_channel("dispute"), "escalation",
                                     {"item": item["id"], "thread": item["thread"],
                                      "by": who.user_id}))
                return {}
            await self.queue.set_withheld_status(held["id"], "rejected")
            fanout.publish(Event(user_channel(sender), "withheld",
                                 {"id": held["id"], "thread": held["thread"],
                                  "status": "rejected"}))
        if decision == "dismiss" and item["message_id"] is not None and item["action"] == "mask":
            await self._unmask(item)
        if decision == "warn":
            fanout.publish(Event(user_channel(sender), "moderation_warning",
                                 {"thread": item["thread"], "warning": WARNING_TEXT}))
        elif decision == "restrict":
            await self.queue.restrict(sender, item["note"] or "restricted by moderator",
                                      who.user_id)
            self.screener.forget_restrictions()
            fanout.publish(Event(user_channel(sender), "moderation_warning",
                                 {"thread": item["thread"], "warning": RESTRICT_TEXT}))
        elif decision == "escalate":
            fanout.publish(Event(role_channel("dispute"), "escalation",
                                 {"item": item["id"], "thread": item["thread"],
                                  "by": who.user_id}))
        return {}

    async def _release(self, held: dict[str, Any], who: Identity) -> dict[str, Any]:
        record = dict(held["record"])
        record["released_by"] = who.user_id
        if held["edit_of"]:
            msg = await self.service.store.edit_message(
                held["thread"], held["edit_of"], actor=held["sender"], body=held["body"],
                masked=None, moderation=record, at=now_us(),
            )
            self.service.fanout.publish(
                Event(thread_channel(msg.thread), "update", {"action": "edit"}, msg))
        else:
            appended = await self.service.committer.append(NewMessage(
                thread=held["thread"], sender=held["sender"], kind="user", body=held["body"],
                client_msg_id=held["client_msg_id"], moderation=record,
            ))
            msg = appended.message
            self.service.publish_message(msg)
        await self.queue.set_withheld_status(held["id"], "released", msg.id)
        self.service.fanout.publish(Event(user_channel(held["sender"]), "withheld", {
            "id": held["id"], "thread": held["thread"], "status": "released",
            "message": msg.view(held["sender"]),
        }))
        return msg.view(None, staff=True)

    async def _unmask_earlier(self, item: dict[str, Any], held: dict[str, Any] | None
                              ) -> None:
        """A dismissed item: remove the masks its split finding put on the sender's earlier
        pieces (screen.py; each message keeps them per item, so other items' stay)."""
        ids = [e["message_id"] for e in item.get("earlier_messages") or []
               if e.get("message_id") is not None]
        if ids:
            await self.screener.unmask_earlier(item["thread"], item["id"], ids)

    async def _unmask(self, item: dict[str, Any]) -> None:
        """A dismissed masked message: delivered in clear (but for the masks other items'
        split findings put on it), with a higher rev."""

        def change(msg: Message) -> tuple[str | None, dict[str, Any]] | None:
            record = dict(msg.moderation or {})
            if "split_base" in record:
                record["split_base"] = {**record["split_base"], "action": "allow",
                                        "masked": None, "recipient_warning": None}
                record["dismissed"] = True
                return split_view(msg.body, record)
            if msg.masked is None:
                return None
            record["action"] = "allow"
            record["dismissed"] = True
            record.pop("recipient_warning", None)
            return None, record

        fresh = await self.queue.change_mask(item["thread"], item["message_id"], change)
        if fresh is not None:
            self.service.fanout.publish(
                Event(thread_channel(fresh.thread), "update", {"action": "unmask"}, fresh))

    async def thread(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        thread = await self.service.get_thread(path_id(request))
        reason = request.query.get("reason", "")
        limit = query_int(request, "limit", default=200, lo=1, hi=1000)
        assert limit is not None
        before = query_int(request, "before_seq", lo=1)  # page back to an older message
        msgs = await self.service.store.history(thread.id, before_seq=before, limit=limit)
        await self.queue.audit(who.user_id, "read_thread", thread=thread.id, note=reason)
        return json_response({
            "thread": thread.to_json(),
            "messages": [m.view(None, staff=True) for m in msgs],
            "withheld": await self.queue.thread_withheld(thread.id),
            "items": await self.queue.thread_items(thread.id),
        })

    async def precision(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        await self.queue.audit(who.user_id, "read_precision")
        return json_response({"rules": await self.queue.precision()})

    async def list_restrictions(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        restrictions = await self.queue.restrictions()
        await self.queue.audit(who.user_id, "read_restrictions")
        return json_response({"restrictions": restrictions})

    async def lift_restriction(self, request: web.Request) -> web.Response:
        """Lift a restriction: the user's later messages are screened as anyone's again (on
        every node within the screener's cache time). Messages already held stay in the
        queue for a decision. The note (why) is kept in the audit log."""
        who = self.staff(request)
        user = path_id(request, "user")
        note = ""
        if request.can_read_body:
            body = await Body.read(request)
            note = body.text("note", max_chars=2000, required=False, allow_empty=True) or ""
        lifted = await self.queue.lift(user)
        self.screener.forget_restrictions()
        await self.queue.audit(who.user_id, "lift_restriction", target=user, note=note)
        self.service.fanout.publish(Event(user_channel(user), "moderation_warning",
                                          {"thread": None, "warning": LIFTED_TEXT}))
        return json_response({"lifted": lifted})

    async def audit_log(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        limit = query_int(request, "limit", default=200, lo=1, hi=1000)
        assert limit is not None
        thread = request.query.get("thread") or None
        entries = await self.queue.audit_log(thread=thread, limit=limit)
        await self.queue.audit(who.user_id, "read_audit", thread=thread)
        return json_response({"entries": entries})


def _finding_messages(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The sender's earlier messages that findings of the item point into (a number split
    over messages): ``message_index``, ``message_id`` (None if never stored, e.g. held)
    and ``text``. Their findings carry ``current: false`` and are not spans of item.text."""
    return list(item.get("earlier_messages") or [])


def setup(app: web.Application, http: HttpApi, service: ChatService) -> ModerationScreener:
    """Wire moderation into a chat app: the screener on the send path, the review routes."""
    queue = ReviewQueue(service.store.db)
    screener = ModerationScreener(service.settings, service.store, service.fanout, queue)
    service.screener = screener
    app.router.add_routes(ReviewApi(http, service, queue, screener).routes())
    return screener
