"""The chat operations, shared by the WebSocket gateway and the HTTP API.

Callers check who may act (participant or service role) before calling; this layer stores,
then publishes. Every write is stored before it is published, and published after the
commit, so a receiver that gets an event can always read it back from storage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .auth import Identity
from .commit import GroupCommitter
from .config import Settings
from .errors import BadRequest, Forbidden, NotFound
from .fanout import Event, FanOut, thread_channel, user_channel
from .models import (
    PARTICIPANT_ROLES,
    STAGES,
    THREAD_KINDS,
    Appended,
    Message,
    NewMessage,
    Thread,
    new_id,
    now_us,
)
from .store.base import ScreenedMessage, Store, Withheld

log = logging.getLogger("tsunagu.service")

SYSTEM_SENDER = "system"
# A user's ``typing`` in a thread is passed on at most this often (the SDK sends one every
# 3 s while typing; a client in a loop would otherwise make every participant's
# connection take each frame). A message from the user ends the interval.
TYPING_INTERVAL_S = 1.0
_TYPING_KEPT = 10_000  # past this many (thread, user) entries, the stale ones are dropped


@dataclass(slots=True)  # not frozen: see chat.models.Message
class Verdict:
    """What moderation decided about a body (see :mod:`moderation`)."""

    action: str  # allow | flag | mask | hold | block
    masked: str | None
    record: dict[str, Any] | None  # stored with the message: findings, action, warnings


def recorded_verdict(action: str, masked: str | None,
                     record: dict[str, Any] | None) -> Verdict | None:
    """The verdict kept with a stored message or a withheld record (a retry's answer)."""
    return None if record is None else Verdict(record.get("action", action), masked, record)


class Screener(Protocol):
    async def screen_send(
        self, *, thread: str, stage: str, sender: Identity, sender_role: str, body: str,
        client_msg_id: str | None = None,
    ) -> Verdict:
        """Decide about ``body``. ``client_msg_id``: a retry of a send already screened is
        not added to the sender's history again."""
        ...

    async def withheld(
        self, *, req: NewMessage, verdict: Verdict, sender: Identity, thread_stage: str
    ) -> Withheld | Message:
        """Store a held or blocked message outside the thread's seq; return its record. A
        retry of a send returns what its first attempt left: the same record, or the stored
        message if that attempt was delivered (then nothing is withheld)."""
        ...

    async def after_store(
        self, message: Message, verdict: Verdict, *, stage: str, sender_role: str
    ) -> None:
        """A flagged or masked message was stored: queue it for review."""
        ...


@runtime_checkable
class WithheldReader(Protocol):
    """Reads withheld messages (moderation's review queue has this)."""

    async def thread_withheld(self, thread: str) -> list[dict[str, Any]]: ...


WITHHELD_STATUSES = ("held", "rejected", "blocked", "released")


def sender_withheld_view(row: dict[str, Any], locale: str) -> dict[str, Any]:
    """A withheld message as its sender may see it: no findings, risk or staff notes."""
    record = row.get("record") or {}
    moderation: dict[str, Any] = {"action": record.get("action", row.get("action")),
                                  "categories": record.get("categories", [])}
    warning = record.get("sender_warning")
    if warning:
        moderation["warning"] = {**warning, "text": warning.get(locale)}
    return {
        "id": row["id"],
        "thread": row["thread"],
        "client_msg_id": row.get("client_msg_id"),
        "body": row["body"],
        "status": row["status"],
        "action": row["action"],
        "created_at": row["created_at"],
        "edit_of": row.get("edit_of"),
        "released_message_id": row.get("released_message_id"),
        "moderation": moderation,
    }


@dataclass(slots=True)  # not frozen: see chat.models.Message
class SendOutcome:
    appended: Appended | None  # None when moderation withheld the message
    verdict: Verdict | None
    withheld: dict[str, Any] | None = None


class ChatService:
    def __init__(self, settings: Settings, store: Store, fanout: FanOut) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.committer = GroupCommitter(
            store, max_batch=settings.group_commit_max,
            linger=settings.group_commit_linger_ms / 1000,
            in_flight=settings.group_commit_in_flight if store.concurrent_batches else 1)
        self.screener: Screener | None = None
        # Called once with every message this node stored (after its commit; not again when
        # a retry publishes it again: see _published); must not block or raise.
        self.message_observers: list[Callable[[Message], None]] = []
        fanout.observers.append(self._observe)
        self._typing_at: dict[tuple[str, str], float] = {}  # when each last went out

    def _observe(self, event: Event) -> None:
        # A message changed, here or on another node: the store must not answer a retry of
        # its send with a copy it remembers from before the change.
        if event.kind == "update" and event.message is not None:
            self.store.forget_message(event.message)

    # --- threads (service role)
    async def create_thread(
        self,
        *,
        kind: str,
        title: str,
        participants: Sequence[tuple[str, str]],
        ref: dict[str, Any],
        stage: str | None = None,
        thread_id: str | None = None,
    ) -> Thread:
        if kind not in THREAD_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(THREAD_KINDS)}")
        stage = stage or ("inquiry" if kind == "inquiry" else "deposit_pending"
                          if kind == "contract" else "in_progress")
        if stage not in STAGES:
            raise BadRequest(f"stage must be one of {', '.join(STAGES)}")
        seen: set[str] = set()
        for user, role in participants:
            if role not in PARTICIPANT_ROLES:
                raise BadRequest(f"participant role must be one of {', '.join(PARTICIPANT_ROLES)}")
            if user in seen:
                raise BadRequest(f"participant {user!r} is listed twice")
            if user == SYSTEM_SENDER:
                raise BadRequest(f"{SYSTEM_SENDER!r} is reserved")
            seen.add(user)
        if len(participants) > self.settings.max_participants:
            raise BadRequest(f"at most {self.settings.max_participants} participants")
        thread = await self.store.create_thread(
            id=thread_id or new_id("t"),
            kind=kind,
            title=title,
            stage=stage,
            ref=ref,
            participants=participants,
            at=now_us(),
        )
        for p in thread.participants:
            self._publish_membership(thread, p.user_id)
        return thread

    async def add_participant(self, thread_id: str, user_id: str, role: str) -> Thread:
        if role not in PARTICIPANT_ROLES:
            raise BadRequest(f"role must be one of {', '.join(PARTICIPANT_ROLES)}")
        if user_id == SYSTEM_SENDER:
            raise BadRequest(f"{SYSTEM_SENDER!r} is reserved")
        current = await self.get_thread(thread_id)
        if len(current.participants) >= self.settings.max_participants and current.role_of(
            user_id
        ) is None:
            raise BadRequest(f"at most {self.settings.max_participants} participants")
        thread, added = await self.store.add_participant(thread_id, user_id, role, at=now_us())
        if added:
            self._publish_membership(thread, user_id)
            self.fanout.publish(
                Event(
                    thread_channel(thread.id),
                    "participant",
                    {"thread": thread.id, "user": user_id, "role": role},
                )
            )
        return thread

    def _publish_membership(self, thread: Thread, user_id: str) -> None:
        self.fanout.publish(Event(user_channel(user_id), "thread", {"thread": thread.to_json()}))

    async def update_thread(
        self, thread_id: str, *, stage: str | None = None, title: str | None = None
    ) -> Thread:
        if stage is not None and stage not in STAGES:
            raise BadRequest(f"stage must be one of {', '.join(STAGES)}")
        thread = await self.store.update_thread(thread_id, stage=stage, title=title, at=now_us())
        self.fanout.publish(
            Event(
                thread_channel(thread.id),
                "thread_updated",
                {"thread": thread.id, "stage": thread.stage, "title": thread.title},
            )
        )
        return thread

    async def get_thread(self, thread_id: str) -> Thread:
        thread = await self.store.get_thread(thread_id)
        if thread is None:
            raise NotFound(f"thread {thread_id!r} does not exist")
        return thread

    async def participant_thread(self, who: Identity, thread_id: str) -> Thread:
        """The thread, if ``who`` takes part in it (staff and service may read any)."""
        thread = await self.get_thread(thread_id)
        if thread.role_of(who.user_id) is None and not who.has("service", "admin"):
            raise Forbidden("you do not take part in this thread")
        return thread

    async def own_withheld(
        self, who: Identity, thread_id: str, *, statuses: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """The caller's own withheld (held, rejected, blocked, released) messages in a thread,
        oldest first (the newest ``limit``). Never anybody else's: moderators use the review
        API. Empty when moderation is off."""
        reader = getattr(self.screener, "queue", None)
        if not isinstance(reader, WithheldReader):
            return []
        rows = [r for r in await reader.thread_withheld(thread_id)
                if r["sender"] == who.user_id and r["status"] in statuses]
        return [sender_withheld_view(r, who.locale) for r in rows[-limit:]]

    # --- messages
    async def send(
        self,
        who: Identity,
        *,
        thread: str,
        stage: str,
        role: str,
        client_msg_id: str,
        body: str,
    ) -> SendOutcome:
        """Store and publish a user message (after moderation); idempotent per client_msg_id.

        A retry (same thread, sender and client_msg_id) gets what the first attempt got,
        whatever moderation says of it now: the stored message (``created`` false), or the
        same withheld record. The retry is screened again (the verdict picks the path: the
        idempotency lookups are made where the first attempt's outcome is written, in the
        group-commit transaction or in moderation's withhold transaction), but is answered
        from storage, and stores, queues and notifies nothing new."""
        if self.screener is None:
            appended = await self.committer.append(NewMessage(
                thread=thread, sender=who.user_id, kind="user", body=body,
                client_msg_id=client_msg_id))
            self._published(appended)
            return SendOutcome(appended, None)
        verdict = await self.screener.screen_send(
            thread=thread, stage=stage, sender=who, sender_role=role, body=body,
            client_msg_id=client_msg_id,
        )
        if verdict.action in ("hold", "block"):
            kept = await self.screener.withheld(
                req=NewMessage(thread=thread, sender=who.user_id, kind="user", body=body,
                               client_msg_id=client_msg_id),
                verdict=verdict, sender=who, thread_stage=stage,
            )
            if isinstance(kept, Message):  # a retry of a send that was delivered
                return self._repeated(Appended(kept, created=False))
            return self._withheld(kept)
        result = await self.committer.append_screened(ScreenedMessage(
            thread=thread, sender=who.user_id, kind="user", body=body,
            client_msg_id=client_msg_id, masked=verdict.masked, moderation=verdict.record,
        ))
        if isinstance(result, Withheld):  # a retry of a send that moderation withheld
            return self._withheld(result)
        if not result.created:
            return self._repeated(result)
        await self.screener.after_store(result.message, verdict, stage=stage, sender_role=role)
        self._published(result)
        return SendOutcome(result, verdict)

    @staticmethod
    def _withheld(kept: Withheld) -> SendOutcome:
        return SendOutcome(None, recorded_verdict(kept.action, None, kept.record), kept.view())

    def _repeated(self, appended: Appended) -> SendOutcome:
        """The answer to a retry of a stored message, with the verdict stored with it."""
        self._published(appended)
        msg = appended.message
        return SendOutcome(appended, recorded_verdict("allow", msg.masked, msg.moderation))

    def _published(self, appended: Appended) -> None:
        # Publish retries too: if an earlier attempt was stored but its node died before
        # publishing, this repairs it; receivers drop what they already have by seq. The
        # message observers (chat alerts) see each message once: only the call that stored
        # it tells them (on whichever node), never a retry, which cannot know whether the
        # first attempt's node told them before it died.
        self.publish_message(appended.message, observe=appended.created)

    def publish_message(self, message: Message, *, observe: bool = True) -> None:
        """Publish a stored message to the thread; ``observe``: and tell the message
        observers (only once per message: the call that stored it)."""
        self.fanout.publish(Event(thread_channel(message.thread), "message", {}, message))
        if self._typing_at:  # the sender's next keystroke is a new "typing"
            self._typing_at.pop((message.thread, message.sender), None)
        if observe:
            for observer in self.message_observers:
                observer(message)

    async def post_system(
        self, thread_id: str, body: str, data: dict[str, Any] | None = None,
        *, client_msg_id: str | None = None,
    ) -> Appended:
        appended = await self.committer.append(
            NewMessage(thread=thread_id, sender=SYSTEM_SENDER, kind="system", body=body,
                       data=data, client_msg_id=client_msg_id)
        )
        self._published(appended)
        return appended

    async def _own_message(self, who: Identity, thread: str, message_id: str) -> Message:
        msg = await self.store.get_message(thread, message_id)
        if msg is None:
            raise NotFound(f"message {message_id!r} does not exist in this thread")
        if msg.sender != who.user_id or msg.kind != "user":
            raise Forbidden("you may only change your own messages")
        return msg

    async def edit(
        self, who: Identity, *, thread: str, stage: str, role: str, message_id: str, body: str
    ) -> tuple[Message, Verdict | None, dict[str, Any] | None]:
        """Edit one's own message: the stored message, the moderation verdict, and for an
        edit that moderation holds or blocks (not applied) its ``withheld`` record."""
        await self._own_message(who, thread, message_id)
        verdict: Verdict | None = None
        masked: str | None = None
        record: dict[str, Any] | None = None
        if self.screener is not None:
            verdict = await self.screener.screen_send(
                thread=thread, stage=stage, sender=who, sender_role=role, body=body
            )
            if verdict.action in ("hold", "block"):
                # The edit is not applied; the attempt is logged by the screener, and a held
                # one waits for a moderator (released, it arrives as an `update`).
                kept = await self.screener.withheld(
                    req=NewMessage(thread=thread, sender=who.user_id, kind="user", body=body,
                                   data={"edit_of": message_id}),
                    verdict=verdict, sender=who, thread_stage=stage,
                )
                assert isinstance(kept, Withheld)  # no client_msg_id: never a stored message
                return (await self._own_message(who, thread, message_id), verdict,
                        kept.view())
            masked, record = verdict.masked, verdict.record
        msg = await self.store.edit_message(
            thread, message_id, actor=who.user_id, body=body, masked=masked,
            moderation=record, at=now_us(),
        )
        if verdict is not None and self.screener is not None:
            await self.screener.after_store(msg, verdict, stage=stage, sender_role=role)
        self._publish_update(msg, "edit")
        return msg, verdict, None

    async def delete(self, who: Identity, *, thread: str, message_id: str) -> Message:
        await self._own_message(who, thread, message_id)
        msg = await self.store.delete_message(thread, message_id, actor=who.user_id, at=now_us())
        self._publish_update(msg, "delete")
        return msg

    async def thank(self, who: Identity, *, thread: str, message_id: str) -> tuple[Message, bool]:
        msg = await self.store.get_message(thread, message_id)
        if msg is None:
            raise NotFound(f"message {message_id!r} does not exist in this thread")
        if msg.sender == who.user_id:
            raise BadRequest("you cannot thank your own message")
        if msg.kind != "user" or msg.deleted_at is not None:
            raise BadRequest("only live user messages can be thanked")
        msg, added = await self.store.thank(thread, message_id, who.user_id, at=now_us())
        if added:
            self._publish_update(msg, "thanks", by=who.user_id)
        return msg, added

    def _publish_update(self, msg: Message, action: str, **extra: Any) -> None:
        self.fanout.publish(
            Event(thread_channel(msg.thread), "update", {"action": action, **extra}, msg)
        )

    async def read(self, who: Identity, *, thread: str, seq: int) -> int:
        """Advance the user's read position; a ``receipt`` goes to the thread only if it
        moved (a repeated or older ``read`` writes nothing and tells no one)."""
        pos, advanced = await self.store.advance_read(thread, who.user_id, seq)
        if advanced:
            self.fanout.publish(
                Event(thread_channel(thread), "receipt", {"thread": thread, "user": who.user_id,
                                                          "seq": pos})
            )
        return pos

    def typing(self, who: Identity, *, thread: str) -> None:
        """Pass ``typing`` on to the thread, at most once per `TYPING_INTERVAL_S` per user
        and thread (the others are answered but go no further)."""
        now = time.monotonic()
        key = (thread, who.user_id)
        last = self._typing_at.get(key)
        if last is not None and now - last < TYPING_INTERVAL_S:
            return
        if len(self._typing_at) >= _TYPING_KEPT:
            self._typing_at = {k: t for k, t in self._typing_at.items()
                               if now - t < TYPING_INTERVAL_S}
            if len(self._typing_at) >= _TYPING_KEPT // 2:
                # that many typing at once: forget them rather than sweep on every frame
                self._typing_at.clear()
        self._typing_at[key] = now
        self.fanout.publish(
            Event(thread_channel(thread), "typing", {"thread": thread, "user": who.user_id})
        )
