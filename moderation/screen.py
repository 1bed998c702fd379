"""Moderation in the send path: scan, decide, and keep what was withheld.

:class:`ModerationScreener` implements :class:`chat.service.Screener`. For every ``send`` and
``edit`` it scans the body together with the sender's recent messages in the thread (so a
number split over several messages is caught), asks the policy for an action, and returns a
:class:`~chat.service.Verdict`:

* ``allow`` with no findings: nothing is recorded;
* ``flag``/``mask``: the message is delivered (masked for recipients) and queued for review
  by :meth:`after_store`;
* ``hold``/``block``: the message takes no seq; :meth:`withheld` keeps it in
  ``mod_withheld`` and queues it. A held message is delivered when a moderator releases it.

Users under restriction have every message held.

A finding may span the sender's earlier messages (a phone number split over three
messages). Those pieces were delivered in clear, so masking only the current piece would
leave the recipient most of the digits. When the action is ``mask`` or stricter, the
earlier pieces' spans are masked too, retroactively: their ``masked`` text is stored and an
``update`` (``action: "mask"``) is pushed to the thread, so recipients' screens and history
show them masked (a client that already rendered the clear text replaces it). Each finding
in the record says whether it lies in the current message (``current``) and, if not, which
stored message it belongs to (``message_id``); the record's ``earlier_messages`` lists
those messages with their text, for the review item. Dismissing the item unmasks them.

A retried send (same ``client_msg_id``) is screened again - the verdict only picks the
path - but gets what its first attempt got: the store answers an allowed retry of a
withheld send with its withheld record (chat.store.base), and :meth:`withheld` answers a
held retry of a delivered send with the stored message. Its body is not added to the
sender's recent messages a second time, nor scanned together with its first copy.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import urlsplit

import orjson

from chat.auth import Identity
from chat.config import Settings
from chat.fanout import Event, FanOut, role_channel, thread_channel
from chat.models import Message, NewMessage, new_id, now_us
from chat.service import Verdict
from chat.store.base import Store, Withheld

from .findings import Finding
from .policy import Policy, mask
from .queue import ReviewQueue
from .scanner import Scanner

HISTORY_CACHE = 100_000  # (thread, sender) pairs whose recent bodies are kept in memory
RESTRICTIONS_TTL_S = 5.0

_ORDER = ("allow", "flag", "mask", "hold", "block")


def platform_domains(settings: Settings) -> tuple[str, ...]:
    """The domains moderation never flags: ``moderation_allow_domains`` and the host of
    ``notify_public_url`` (the service's public address) when set."""
    domains = list(settings.moderation_allow_domains)
    host = urlsplit(settings.notify_public_url).hostname if settings.notify_public_url else None
    if host and host not in domains:
        domains.append(host)
    return tuple(domains)


class _Recent:
    """One of the sender's recent messages: its client_msg_id, body and (once stored) id."""

    __slots__ = ("body", "key", "message_id")

    def __init__(self, key: str | None, body: str, message_id: str | None = None) -> None:
        self.key = key
        self.body = body
        self.message_id = message_id


class ModerationScreener:
    def __init__(self, settings: Settings, store: Store, fanout: FanOut,
                 queue: ReviewQueue) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.queue = queue
        self.scanner = Scanner(allow_domains=platform_domains(settings),
                               allow_phrases=settings.moderation_allow_phrases)
        self.policy = Policy.load(settings.moderation_policy or None)
        # (thread, sender) -> that sender's recent messages in the thread
        self._recent: OrderedDict[tuple[str, str], deque[_Recent]] = OrderedDict()
        self._restricted: frozenset[str] = frozenset()
        self._restricted_at = 0.0
        self._refresh: asyncio.Future[None] | None = None

    async def _history(self, thread: str, sender: str) -> deque[_Recent]:
        key = (thread, sender)
        recent = self._recent.get(key)
        if recent is not None:
            self._recent.move_to_end(key)
            return recent
        recent = deque(maxlen=self.settings.moderation_history)
        for msg in await self.store.history(thread, limit=50):
            if msg.sender == sender and msg.kind == "user" and msg.deleted_at is None:
                recent.append(_Recent(msg.client_msg_id, msg.body, msg.id))
        self._recent[key] = recent
        if len(self._recent) > HISTORY_CACHE:
            self._recent.popitem(last=False)
        return recent

    async def _is_restricted(self, user: str) -> bool:
        now = time.monotonic()
        if now - self._restricted_at > RESTRICTIONS_TTL_S:
            # One refresh at a time: the sends that arrive while it runs wait for the same
            # query instead of each starting their own (at 2,000 msgs/s that was dozens of
            # queries every few seconds, queueing behind each other for the store).
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.ensure_future(self._load_restrictions(now))
            await asyncio.shield(self._refresh)
        return user in self._restricted

    async def _load_restrictions(self, now: float) -> None:
        self._restricted = frozenset(await self.queue.restricted_users())
        self._restricted_at = now

    def forget_restrictions(self) -> None:
        self._restricted_at = 0.0

    async def screen_send(
        self, *, thread: str, stage: str, sender: Identity, sender_role: str, body: str,
        client_msg_id: str | None = None,
    ) -> Verdict:
        recent = await self._history(thread, sender.user_id)
        # A retry is scanned with the history its first attempt had (not with itself), and
        # is not remembered twice (a split number would count its digits twice).
        if client_msg_id is not None and any(e.key == client_msg_id for e in recent):
            entries = [e for e in recent if e.key != client_msg_id]
        else:
            entries = list(recent)
            recent.append(_Recent(client_msg_id, body))
        history = [e.body for e in entries]
        findings = self.scanner.scan(body, history)
        decision = self.policy.decide(findings, stage=stage, sender_role=sender_role)
        action = decision.action
        restricted = await self._is_restricted(sender.user_id)
        if restricted and _ORDER.index(action) < _ORDER.index("hold"):
            action = "hold"
        if action == "allow" and not findings:
            return Verdict("allow", None, None)
        current = len(history)
        earlier = sorted({f.message_index for f in decision.findings
                          if 0 <= f.message_index < current})
        for i in earlier:
            if entries[i].message_id is None:
                entries[i].message_id = await self._stored_id(thread, sender.user_id,
                                                              entries[i])
        record: dict[str, Any] = {
            "action": action,
            "categories": sorted({f.category for f in decision.findings}),
            "findings": [_finding_dict(f, current, entries) for f in decision.findings],
            "risk": decision.risk + (50 if restricted else 0),
            "stage": stage,
            "sender_role": sender_role,
        }
        if restricted:
            record["restricted"] = True
        if decision.sender_warning:
            record["sender_warning"] = decision.sender_warning
        if decision.recipient_warning:
            record["recipient_warning"] = decision.recipient_warning
        if earlier:
            record["earlier_messages"] = [
                {"message_index": i, "message_id": entries[i].message_id,
                 "text": entries[i].body} for i in earlier]
            if _ORDER.index(action) >= _ORDER.index("mask"):
                masked_ids = await self._mask_earlier(thread, entries, earlier,
                                                      decision.findings, record)
                if masked_ids:
                    record["earlier_masked"] = masked_ids
        masked = mask(body, decision.findings, current) if action == "mask" else None
        return Verdict(action, masked, record)

    async def _stored_id(self, thread: str, sender: str, entry: _Recent) -> str | None:
        """The id of a recent message whose id the cache does not know yet (its send is
        still being stored, or it was sent through another node): by its client_msg_id."""
        if entry.key is None:
            return None
        row = await self.store.db.fetchrow(
            "SELECT id FROM messages WHERE thread_id = ? AND sender = ? AND client_msg_id = ?",
            thread, sender, entry.key,
        )
        return None if row is None else str(row[0])

    async def _mask_earlier(self, thread: str, entries: list[_Recent], earlier: list[int],
                            findings: tuple[Finding, ...], record: dict[str, Any]
                            ) -> list[str]:
        """Mask the findings' spans in the sender's earlier, already delivered messages;
        push each changed message as an ``update``. Returns the ids masked now."""
        done: list[str] = []
        for i in earlier:
            entry = entries[i]
            if entry.message_id is None:  # never delivered (held, blocked) or unknown
                continue
            msg = await self.store.get_message(thread, entry.message_id)
            if msg is None or msg.deleted_at is not None or msg.body != entry.body:
                continue  # gone, or edited since: the spans no longer apply
            before = msg.masked if msg.masked is not None else msg.body
            after = mask(before, findings, i)
            if after == before:
                continue
            own = dict(msg.moderation or {"action": "allow", "categories": []})
            if "split_masked" not in own:
                own["split_masked"] = {"action": own.get("action", "allow"),
                                       "masked": msg.masked,
                                       "recipient_warning": own.get("recipient_warning")}
            if _ORDER.index(str(own.get("action", "allow"))) < _ORDER.index("mask"):
                own["action"] = "mask"
            own["categories"] = sorted(set(own.get("categories", []))
                                       | set(record["categories"]))
            if record.get("recipient_warning") and not own.get("recipient_warning"):
                own["recipient_warning"] = record["recipient_warning"]
            await self.store.db.execute(
                "UPDATE messages SET masked = ?, moderation = ? WHERE id = ?",
                after, orjson.dumps(own).decode(), msg.id,
            )
            fresh = await self.store.get_message(thread, msg.id)
            if fresh is not None:
                self.fanout.publish(
                    Event(thread_channel(thread), "update", {"action": "mask"}, fresh))
            done.append(msg.id)
        return done

    async def after_store(self, message: Message, verdict: Verdict, *, stage: str,
                          sender_role: str) -> None:
        """Remember the stored message's id; queue it for review if flagged or masked."""
        recent = self._recent.get((message.thread, message.sender))
        if recent is not None:
            for entry in reversed(recent):
                if entry.message_id is None and (
                        entry.key == message.client_msg_id if message.client_msg_id
                        is not None else entry.body == message.body):
                    entry.message_id = message.id
                    break
        if verdict.record is None or verdict.action not in ("flag", "mask"):
            return
        item = await self.queue.add_item(
            thread=message.thread, message_id=message.id, withheld_id=None,
            sender=message.sender, sender_role=sender_role, stage=stage,
            action=verdict.action, record=verdict.record, text=message.body,
        )
        self._announce(item)

    async def withheld(
        self, *, req: NewMessage, verdict: Verdict, sender: Identity, thread_stage: str
    ) -> Withheld | Message:
        assert verdict.record is not None
        edit_of = (req.data or {}).get("edit_of")
        kept = await self.queue.withhold(
            id=new_id("w"), thread=req.thread, sender=req.sender,
            client_msg_id=req.client_msg_id, body=req.body, action=verdict.action,
            record=verdict.record, edit_of=edit_of, at=now_us(),
        )
        if isinstance(kept, Message):  # a retry of a delivered send: nothing is withheld
            return kept
        held, created = kept
        if created:
            item = await self.queue.add_item(
                thread=req.thread, message_id=None, withheld_id=held["id"],
                sender=req.sender, sender_role=verdict.record.get("sender_role", "member"),
                stage=thread_stage, action=verdict.action, record=verdict.record,
                text=req.body,
            )
            self._announce(item)
        return Withheld(held["id"], held["status"], held["action"], held["record"])

    async def unmask_earlier(self, thread: str, ids: list[str]) -> None:
        """Undo :meth:`_mask_earlier` for ``ids`` (the item was dismissed): each message
        gets back the masked text and action it had before, and an ``update``."""
        for mid in ids:
            msg = await self.store.get_message(thread, mid)
            if msg is None or not msg.moderation or "split_masked" not in msg.moderation:
                continue
            own = dict(msg.moderation)
            prior = own.pop("split_masked")
            own["action"] = prior.get("action", "allow")
            own.pop("recipient_warning", None)
            if prior.get("recipient_warning"):
                own["recipient_warning"] = prior["recipient_warning"]
            await self.store.db.execute(
                "UPDATE messages SET masked = ?, moderation = ? WHERE id = ?",
                prior.get("masked"), orjson.dumps(own).decode(), mid,
            )
            fresh = await self.store.get_message(thread, mid)
            if fresh is not None:
                self.fanout.publish(
                    Event(thread_channel(thread), "update", {"action": "unmask"}, fresh))

    def _announce(self, item: dict[str, Any]) -> None:
        summary = {k: item[k] for k in ("id", "thread", "status", "risk", "action", "categories")}
        self.fanout.publish(Event(role_channel("moderator"), "review", {"item": summary}))


def _finding_dict(f: Finding, current: int, entries: list[_Recent]) -> dict[str, Any]:
    """A finding as recorded: ``current`` (its span is in this message's text) and, for a
    finding on an earlier message, that message's id (None if it was never stored)."""
    d = f.to_dict()
    d["current"] = f.message_index == current
    if 0 <= f.message_index < current:
        d["message_id"] = entries[f.message_index].message_id
    return d
