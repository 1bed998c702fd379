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

from chat.auth import Identity
from chat.config import Settings
from chat.fanout import Event, FanOut, role_channel
from chat.models import Message, NewMessage, new_id, now_us
from chat.service import Verdict
from chat.store.base import Store, Withheld

from .policy import Policy, mask
from .queue import ReviewQueue
from .scanner import Scanner

HISTORY_CACHE = 100_000  # (thread, sender) pairs whose recent bodies are kept in memory
RESTRICTIONS_TTL_S = 5.0

_ORDER = ("allow", "flag", "mask", "hold", "block")


class ModerationScreener:
    def __init__(self, settings: Settings, store: Store, fanout: FanOut,
                 queue: ReviewQueue) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.queue = queue
        self.scanner = Scanner(allow_domains=settings.moderation_allow_domains)
        self.policy = Policy.load(settings.moderation_policy or None)
        # (thread, sender) -> that sender's recent (client_msg_id, body) in the thread
        self._recent: OrderedDict[tuple[str, str], deque[tuple[str | None, str]]] = OrderedDict()
        self._restricted: frozenset[str] = frozenset()
        self._restricted_at = 0.0
        self._refresh: asyncio.Future[None] | None = None

    async def _history(self, thread: str, sender: str) -> deque[tuple[str | None, str]]:
        key = (thread, sender)
        recent = self._recent.get(key)
        if recent is not None:
            self._recent.move_to_end(key)
            return recent
        recent = deque(maxlen=self.settings.moderation_history)
        for msg in await self.store.history(thread, limit=50):
            if msg.sender == sender and msg.kind == "user" and msg.deleted_at is None:
                recent.append((msg.client_msg_id, msg.body))
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
        if client_msg_id is not None and any(k == client_msg_id for k, _ in recent):
            history = [b for k, b in recent if k != client_msg_id]
        else:
            history = [b for _, b in recent]
            recent.append((client_msg_id, body))
        findings = self.scanner.scan(body, history)
        decision = self.policy.decide(findings, stage=stage, sender_role=sender_role)
        action = decision.action
        restricted = await self._is_restricted(sender.user_id)
        if restricted and _ORDER.index(action) < _ORDER.index("hold"):
            action = "hold"
        if action == "allow" and not findings:
            return Verdict("allow", None, None)
        current = len(history)
        record: dict[str, Any] = {
            "action": action,
            "categories": sorted({f.category for f in decision.findings}),
            "findings": [f.to_dict() for f in decision.findings],
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
        masked = mask(body, decision.findings, current) if action == "mask" else None
        return Verdict(action, masked, record)

    async def after_store(self, message: Message, verdict: Verdict, *, stage: str,
                          sender_role: str) -> None:
        """Queue a delivered but flagged or masked message for review."""
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

    def _announce(self, item: dict[str, Any]) -> None:
        summary = {k: item[k] for k in ("id", "thread", "status", "risk", "action", "categories")}
        self.fanout.publish(Event(role_channel("moderator"), "review", {"item": summary}))
