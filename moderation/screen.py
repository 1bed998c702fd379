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
leave the recipient most of the digits. When the policy's action (not a restriction's
hold) is ``mask`` or stricter, the record says ``mask_earlier`` and the earlier pieces'
spans are masked too, retroactively - but only once the message is stored or its withheld
record created (:meth:`after_store`, :meth:`withheld`; a retry creates nothing, so masks
nothing). Each piece is changed under its row lock with a higher ``rev``
(:meth:`ReviewQueue.change_mask`) and pushed as an ``update`` (``action: "mask"``), so
recipients' screens and history show it masked. A piece keeps the spans per review item
(``split_masks``, over ``split_base``: what it had of its own), so dismissing one item
removes only that item's spans (:meth:`unmask_earlier`). Each finding in the record says
whether it lies in the current message (``current``) and, if not, which stored message it
belongs to (``message_id``); the record's ``earlier_messages`` lists those messages with
their text, for the review item.

A retried send (same ``client_msg_id``) is screened again - the verdict only picks the
path - but gets what its first attempt got: the store answers an allowed retry of a
withheld send with its withheld record (chat.store.base), and :meth:`withheld` answers a
held retry of a delivered send with the stored message. Its body is not added to the
sender's recent messages a second time, nor scanned together with its first copy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from chat.auth import Identity
from chat.config import Settings
from chat.errors import ChatError
from chat.fanout import Event, FanOut, role_channel, thread_channel
from chat.models import Message, NewMessage, new_id, now_us
from chat.service import Verdict
from chat.store.base import Store, Withheld

from .findings import Finding
from .policy import MASK_CHAR, Policy, mask
from .queue import ReviewQueue
from .scanner import HISTORY_TAIL_CHARS, Scanner

log = logging.getLogger("tsunagu.moderation")

HISTORY_CACHE = 100_000  # (thread, sender) pairs whose recent bodies are kept in memory
RESTRICTIONS_TTL_S = 5.0
# Findings of the message itself that its record lists (the log, the review item, the
# stored row): a hostile 10,000-character message can give a thousand (one per repeated
# "my LINE is kotaro"), a record 25 times the message's size, written three times. Past
# this, the record keeps the first ones, the first of each further rule, and the total
# (``findings_total``); the masking covers every finding, and the original text is kept,
# so the scan can be run again on it.
RECORDED_FINDINGS = 100

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


def _remember(recent: deque[_Recent], entry: _Recent) -> None:
    """Append ``entry``; a message longer than the scanner's tail ends its look-back, so
    what came before it is never scanned again and is forgotten (a long talker's history
    holds one message, a short one's up to ``moderation_history``)."""
    if len(entry.body) > HISTORY_TAIL_CHARS:
        recent.clear()
    recent.append(entry)


class ModerationScreener:
    def __init__(self, settings: Settings, store: Store, fanout: FanOut,
                 queue: ReviewQueue) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.queue = queue
        self.scanner = Scanner(allow_domains=platform_domains(settings),
                               allow_phrases=settings.moderation_allow_phrases,
                               max_history=settings.moderation_history)
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
                _remember(recent, _Recent(msg.client_msg_id, msg.body, msg.id))
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
        user = sender.user_id
        # The cached history and the fresh restrictions without a coroutine each (the
        # common case; the same as awaiting `_history` and `_is_restricted`).
        key = (thread, user)
        recent = self._recent.get(key)
        if recent is not None:
            self._recent.move_to_end(key)
        else:
            recent = await self._history(thread, user)
        # A retry is scanned with the history its first attempt had (not with itself), and
        # is not remembered twice (a split number would count its digits twice).
        retry = False
        if client_msg_id is not None:
            for e in recent:
                if e.key == client_msg_id:
                    retry = True
                    break
        if retry:
            entries = [e for e in recent if e.key != client_msg_id]
        else:
            entries = list(recent)
            _remember(recent, _Recent(client_msg_id, body))
        history = [e.body for e in entries]
        findings = self.scanner.scan(body, history)
        decision = self.policy.decide(findings, stage=stage, sender_role=sender_role)
        action = decision.action
        if time.monotonic() - self._restricted_at > RESTRICTIONS_TTL_S:
            restricted = await self._is_restricted(user)
        else:
            restricted = user in self._restricted
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
        recorded = _recorded(decision.findings, current)
        record: dict[str, Any] = {
            "action": action,
            "categories": sorted({f.category for f in decision.findings}),
            "findings": [_finding_dict(f, current, entries) for f in recorded],
            "risk": decision.risk + (50 if restricted else 0),
            "stage": stage,
            "sender_role": sender_role,
        }
        if len(recorded) < len(decision.findings):
            record["findings_total"] = len(decision.findings)
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
            # The policy's own action decides (a restriction holds the message but does not
            # make a finding the policy only flags mask anything). The masking itself waits
            # until the message or its withheld record is created (after_store, withheld):
            # a retry is screened again but must change nothing.
            if _ORDER.index(decision.action) >= _ORDER.index("mask"):
                record["mask_earlier"] = True
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

    async def _mask_earlier(self, item: dict[str, Any], record: dict[str, Any]) -> None:
        """Mask ``item``'s findings' spans in the sender's earlier, delivered messages (the
        record says ``mask_earlier``); push each changed message as an ``update``. Each
        message keeps the spans per item (``split_masks``), so dismissing one item removes
        only what that item added; the item notes which messages it masked."""
        if not record.get("mask_earlier"):
            return
        thread, item_id = item["thread"], item["id"]
        done: list[str] = []
        for em in record.get("earlier_messages") or []:
            mid = em.get("message_id")
            if mid is None:  # never delivered (held, blocked) or unknown
                continue
            spans = [[f["start"], f["end"]] for f in record.get("findings", [])
                     if f.get("message_index") == em["message_index"] and not f.get("current")]
            entry = {"spans": spans, "categories": record.get("categories", []),
                     "recipient_warning": record.get("recipient_warning")}
            try:
                fresh = await self.queue.change_mask(
                    thread, mid, functools.partial(_add_split, item_id=item_id,
                                                   text=em["text"], entry=entry))
            except ChatError as exc:  # the message is stored: do not fail its send
                log.warning("masking %s for item %s failed: %s", mid, item_id, exc)
                continue
            if fresh is not None:
                self.fanout.publish(
                    Event(thread_channel(thread), "update", {"action": "mask"}, fresh))
                done.append(mid)
        if done:
            try:
                await self.queue.note_earlier_masked(item_id, done)
            except ChatError as exc:
                log.warning("noting the masked pieces of item %s failed: %s", item_id, exc)

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
        await self._mask_earlier(item, verdict.record)
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
            await self._mask_earlier(item, verdict.record)
            self._announce(item)
        return Withheld(held["id"], held["status"], held["action"], held["record"])

    async def unmask_earlier(self, thread: str, item_id: str, ids: list[str]) -> None:
        """Undo what :meth:`_mask_earlier` did for ``item_id`` (the item was dismissed) in
        ``ids``: each message's masked text is recomputed from the spans of the items still
        in force (none left: the masked text and action it had before), with an ``update``."""
        for mid in ids:
            fresh = await self.queue.change_mask(
                thread, mid, lambda m: _drop_split(m, item_id))
            if fresh is not None:
                self.fanout.publish(
                    Event(thread_channel(thread), "update", {"action": "unmask"}, fresh))

    def _announce(self, item: dict[str, Any]) -> None:
        summary = {k: item[k] for k in ("id", "thread", "status", "risk", "action", "categories")}
        self.fanout.publish(Event(role_channel("moderator"), "review", {"item": summary}))


def _recorded(findings: Sequence[Finding], current: int) -> Sequence[Finding]:
    """The findings a record lists (see `RECORDED_FINDINGS`), in their order: every one in
    the sender's earlier messages (whose masking reads them from the record), the first
    ``RECORDED_FINDINGS`` of the message itself, and the first of each rule beyond."""
    if len(findings) <= RECORDED_FINDINGS:
        return findings
    out: list[Finding] = []
    rules: set[str] = set()
    own = 0
    for f in findings:
        if f.message_index != current:
            out.append(f)
        elif own < RECORDED_FINDINGS or f.rule not in rules:
            out.append(f)
            own += 1
        rules.add(f.rule)
    return out


def _finding_dict(f: Finding, current: int, entries: list[_Recent]) -> dict[str, Any]:
    """A finding as recorded: ``current`` (its span is in this message's text) and, for a
    finding on an earlier message, that message's id (None if it was never stored)."""
    d = f.to_dict()
    d["current"] = f.message_index == current
    if 0 <= f.message_index < current:
        d["message_id"] = entries[f.message_index].message_id
    return d


def _add_split(msg: Message, item_id: str, text: str, entry: dict[str, Any]
               ) -> tuple[str | None, dict[str, Any]] | None:
    """``msg`` with ``item_id``'s spans masked (for :meth:`ReviewQueue.change_mask`); None
    if it is gone or was edited since the scan (its spans no longer apply)."""
    if msg.deleted_at is not None or msg.body != text:
        return None
    own = dict(msg.moderation or {"action": "allow", "categories": []})
    if "split_base" not in own:
        own["split_base"] = {"action": own.get("action", "allow"), "masked": msg.masked,
                             "categories": list(own.get("categories", [])),
                             "recipient_warning": own.get("recipient_warning")}
    masks = dict(own.get("split_masks") or {})
    if item_id in masks:
        return None
    masks[item_id] = entry
    own["split_masks"] = masks
    return split_view(msg.body, own)


def _drop_split(msg: Message, item_id: str) -> tuple[str | None, dict[str, Any]] | None:
    """``msg`` without ``item_id``'s spans; None if that item masked nothing in it."""
    own = dict(msg.moderation or {})
    masks = dict(own.get("split_masks") or {})
    if item_id not in masks:
        return None
    del masks[item_id]
    own["split_masks"] = masks
    return split_view(msg.body, own)


def split_view(body: str, own: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The masked text and record of a message whose moderation record has ``split_base``
    (what it had of its own) and ``split_masks`` (item id -> spans masked for that item's
    split finding): the base masked text (or the body) with every item's spans masked; no
    items left, the base as it was."""
    own = dict(own)
    base = own["split_base"]
    masks: dict[str, Any] = own.get("split_masks") or {}
    if not masks:
        own.pop("split_base", None)
        own.pop("split_masks", None)
        own["action"] = base.get("action", "allow")
        own["categories"] = list(base.get("categories", []))
        own.pop("recipient_warning", None)
        if base.get("recipient_warning"):
            own["recipient_warning"] = base["recipient_warning"]
        return base.get("masked"), own
    chars = list(base["masked"] if base.get("masked") is not None else body)
    for entry in masks.values():
        for start, end in entry.get("spans", []):
            for i in range(max(0, start), min(len(chars), end)):
                if not chars[i].isspace():
                    chars[i] = MASK_CHAR
    if _ORDER.index(str(base.get("action", "allow"))) < _ORDER.index("mask"):
        own["action"] = "mask"
    else:
        own["action"] = base["action"]
    categories = set(base.get("categories", []))
    warning = base.get("recipient_warning")
    for entry in masks.values():
        categories |= set(entry.get("categories", []))
        warning = warning or entry.get("recipient_warning")
    own["categories"] = sorted(categories)
    own.pop("recipient_warning", None)
    if warning:
        own["recipient_warning"] = warning
    return "".join(chars), own
