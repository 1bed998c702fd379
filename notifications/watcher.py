"""Chat alerts: a new message for a participant who is not connected becomes a digest job.

The watcher observes every message stored through this node (``ChatService.message_observers``
tell each message once, on the node whose call stored it: a retried send, answered with the
stored message on any node, is published to the thread again but not observed again, so one
message is never counted twice in a digest nor alerted twice), keeps user messages in a
small bounded buffer, and every ``flush_s`` turns them into chat digest jobs in ONE
transaction: per (thread, recipient) at most one pending ``chat`` job, due
``chat_digest_s`` after the first unseen message; later messages only raise its count, so
the user gets one "3 new messages from 田中さん" rather than three pushes. Recipients who
are online anywhere (presence) are skipped. When the job fires, the scheduler drops it if
the user has meanwhile read up to the last counted message in-app. Threads' participants
and titles are remembered, and forgotten when a change passes through the fan-out (from
any node); MEMBERS_TTL_S bounds how long one whose event was lost is believed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from chat.fanout import Event
from chat.models import Message
from chat.presence import Presence
from chat.service import ChatService
from chat.store.db import Db

from . import repo
from .scheduler import Clock

log = logging.getLogger("tsunagu.notify.watcher")

MAX_BUFFER = 10000
# Threads' titles and participants are remembered this long (and at most MEMBERS_MAX of
# them): a flush under load would otherwise read every thread of the last 0.2 s again.
# A change is seen at once through its fan-out event (``observe_event``); MEMBERS_TTL_S
# only bounds a change whose event was lost (Redis pub/sub is at most once).
MEMBERS_TTL_S = 30.0
MEMBERS_MAX = 50_000
Members = tuple[str, list[tuple[str, str]]]  # title, (user, role) participants


class ChatWatcher:
    def __init__(self, db: Db, service: ChatService, presence: Presence, clock: Clock, *,
                 digest_us: int, flush_s: float = 0.2, default_tz: str = "Asia/Tokyo",
                 on_job: asyncio.Event | None = None) -> None:
        self.db = db
        self.service = service
        self.presence = presence
        self.clock = clock
        self.digest_us = digest_us
        self.flush_s = flush_s
        self.default_tz = default_tz
        self.on_job = on_job
        self.pending: OrderedDict[str, Message] = OrderedDict()
        self._members: dict[str, tuple[float, Members]] = {}  # thread -> (read at, members)
        self._changes = 0  # forget() calls: a read that raced with one is not remembered
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()

    def observe(self, message: Message) -> None:
        if message.kind != "user" or message.id in self.pending:
            return
        if len(self.pending) >= MAX_BUFFER:
            self.dropped += 1  # overload: an alert is a courtesy, the message is stored
            return
        self.pending[message.id] = message
        self._kick.set()

    def observe_event(self, event: Event) -> None:
        """A fan-out observer (every event, this node's and the others'): a thread whose
        participants or title changed is read again at the next flush."""
        if event.kind in ("participant", "thread_updated"):
            self.forget(event.payload["thread"])

    def forget(self, thread: str) -> None:
        self._members.pop(thread, None)
        self._changes += 1

    async def flush(self) -> int:
        """Turn buffered messages into digest jobs; return how many jobs were touched."""
        batch = list(self.pending.values())
        self.pending.clear()
        if not batch:
            return 0
        members = await self._thread_members({m.thread for m in batch})
        recipients = {u for ms in members.values() for u, _ in ms[1]}
        online = await self.presence.online(recipients)
        # Who is away, per message: the only ones a digest is for. Nobody away (the usual
        # case under load: both sides are chatting) means no write transaction at all.
        away = [(m, members[m.thread][0], [u for u, role in members[m.thread][1]
                                           if u != m.sender and u not in online
                                           and role != "observer"])
                for m in batch if m.thread in members]
        away = [a for a in away if a[2]]
        if not away:
            return 0
        now = self.clock.now_us()
        touched = 0
        async with self.db.transaction() as tx:
            names = await repo.profiles(tx, sorted({m.sender for m, _, _ in away}),
                                        tz=self.default_tz, quiet=("00:00", "00:00"))
            for m, title, users in away:
                for user in users:
                    group = f"chat:{m.thread}:{user}"
                    if self.db.dialect == "postgres":
                        await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", group)
                    current = await repo.chat_job(tx, group, self.db.dialect)
                    sender = names[m.sender].name
                    added = False
                    if current is not None:
                        jid, payload = current
                        payload["count"] = int(payload.get("count", 0)) + 1
                        payload["sender"] = sender
                        payload["last_seq"] = max(int(payload.get("last_seq", 0)), m.seq)
                        # Only while it is pending: a job that fired meanwhile would never
                        # tell this message; it gets a new job instead.
                        added = await repo.set_payload(tx, jid, payload)
                    if not added:
                        await repo.add_chat_job(tx, group, m.thread, user,
                                                now + self.digest_us,
                                                {"count": 1, "sender": sender,
                                                 "last_seq": m.seq, "title": title},
                                                now)
                    touched += 1
        return touched

    async def _thread_members(self, threads: set[str]) -> dict[str, Members]:
        """Title and participants of ``threads``, remembered ones from memory."""
        now = asyncio.get_running_loop().time()
        out: dict[str, Members] = {}
        missing: list[str] = []
        for t in threads:
            got = self._members.get(t)
            if got is not None and now - got[0] < MEMBERS_TTL_S:
                out[t] = got[1]
            else:
                missing.append(t)
        if missing:
            changes = self._changes
            read = await self._read_members(sorted(missing))
            out.update(read)
            if changes == self._changes:  # no change was announced while reading
                if len(self._members) + len(read) > MEMBERS_MAX:
                    self._members.clear()
                for t, m in read.items():
                    self._members[t] = (now, m)
        return out

    async def _read_members(self, threads: list[str]) -> dict[str, Members]:
        """Title and (user, role) participants of ``threads``: one query per 500 threads."""
        out: dict[str, Members] = {}
        for i in range(0, len(threads), 500):
            chunk = threads[i:i + 500]
            rows = await self.db.fetch(
                "SELECT t.id, t.title, p.user_id, p.role FROM threads t JOIN participants p "
                f"ON p.thread_id = t.id WHERE t.id IN ({', '.join('?' * len(chunk))})", *chunk)
            for tid, title, user, role in rows:
                out.setdefault(tid, (title, []))[1].append((user, role))
        return out

    async def _loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat watcher flush failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notify-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
