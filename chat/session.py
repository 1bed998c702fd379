"""One authenticated WebSocket connection: its threads, cursors and outbound queue.

Theory of operation:

* Everything sent to the client goes out in the order it was put: answers (``ok``/``error``)
  and pushes keep their order. The common case takes the *direct lane*: while no writer task
  runs, a frame (or an event that needs no storage read) is encoded at once into the
  connection's list of ready frames, and one callback at the end of the event loop's step
  writes the list to the transport (the ``ok`` of a send and its push to the sender's own
  connection, or the pushes of one group-committed batch, in one write) - no task per
  delivery. Anything that must wait (a gap or a resume read from storage, a ping, a client
  that reads too slowly) goes through one bounded queue and one writer task (started when
  the queue gets an item, ended when it is empty, so an idle connection holds none), which
  first writes the ready frames; while it runs, everything queues behind it.
  :meth:`Connection.deliver` never blocks: when the queue is full the client is too slow,
  and it is disconnected (close 4008) instead of letting memory grow.
* ``cursors[thread]`` is the last seq pushed to this client. The writer drops a ``message``
  event at or below the cursor (a duplicate) and, for one above ``cursor + 1`` (a gap: a
  fan-out fault, two nodes publishing out of order), first pushes the missing range from
  storage. A ``sync`` item pushes everything after the cursor (resume, resync). So on one
  connection the messages of a thread arrive exactly once and in seq order, whatever the
  fan-out does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from .auth import Identity
from .errors import CLOSE_INTERNAL_ERROR, CLOSE_SLOW_CONSUMER
from .fanout import Event
from .frames import encode
from .models import Message, ThreadBrief
from .store.base import Store
from .wswrite import drain, fast_writer, send_frames, write_now

log = logging.getLogger("tsunagu.session")

HISTORY_PAGE = 500
FLUSH_FRAMES = 64  # frames the writer gathers at most before it writes them (one write)
EPHEMERAL = frozenset({"typing", "presence"})
_background: set[asyncio.Task[None]] = set()  # close tasks, kept referenced until done


class Socket(Protocol):
    async def send_str(self, data: str) -> None: ...

    async def ping(self, message: bytes = ...) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


@dataclass(frozen=True, slots=True)
class Sync:
    """Push every stored message of ``thread`` after the cursor."""

    thread: str


class _Ping:
    """A WebSocket ping, queued behind what the connection is already sending."""

    __slots__ = ()


class _Drain:
    """Wait until the client reads again (the direct lane found the transport paused)."""

    __slots__ = ()


PING = _Ping()
DRAIN = _Drain()
_NOT_FOLLOWED: frozenset[str] = frozenset()  # shared until a thread is joined after hello


class _MessageFrames:
    """The ``message`` frames of the message being fanned out, one per kind of viewer.

    A message's view depends on its viewer only through whether they sent it (their
    client_msg_id; the masked body for the others; their side of moderation's warnings)
    and, when moderation spoke, their locale. A published message reaches its thread's
    connections one after another in the same step of the loop, so the frame is rendered
    once per kind of viewer instead of once per connection (in a team thread of ten,
    twice instead of ten times). Holding the message keeps its identity from being reused.
    """

    __slots__ = ("frames", "message")

    def __init__(self) -> None:
        self.message: Message | None = None
        self.frames: dict[tuple[bool, str | None], str] = {}

    def frame(self, msg: Message, user: str, locale: str) -> str:
        if msg is not self.message:
            self.message = msg
            self.frames = {}
        key = (user == msg.sender, locale if msg.moderation is not None else None)
        text = self.frames.get(key)
        if text is None:
            text = self.frames[key] = encode(
                {"type": "message", "message": msg.view(user, locale=locale)})
        return text


_message_frames = _MessageFrames()

Outbound = str | Event | Sync | _Ping | _Drain


class Outbox:
    """A bounded FIFO with one consumer: the part of ``asyncio.Queue`` a connection needs.

    A single deque instead of ``asyncio.Queue``'s four deques and an event: about 2.5 KiB
    less per idle connection, and cheaper per message. The consumer is the writer task,
    which :class:`Connection` starts only while there is something to write.
    """

    __slots__ = ("_items", "_maxsize")

    _EMPTY: ClassVar[deque[Outbound]] = deque(maxlen=0)  # shared while idle: a deque costs ~600 bytes

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Outbound] = Outbox._EMPTY
        self._maxsize = maxsize

    def put_nowait(self, item: Outbound) -> None:
        items = self._items
        if items is Outbox._EMPTY:
            items = self._items = deque()
        elif len(items) >= self._maxsize:
            raise asyncio.QueueFull
        items.append(item)

    def pop(self) -> Outbound:
        item = self._items.popleft()
        if not self._items:
            self._items = Outbox._EMPTY  # give the block back while the connection idles
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        return self._maxsize


class Connection:
    __slots__ = (
        "__weakref__",
        "_abort",
        "_broken",
        "_close_timeout",
        "_direct",
        "_on_close",
        "_out",
        "_started",
        "_writer",
        "busy",
        "closed",
        "counted",
        "cursors",
        "dropped_ephemeral",
        "ending",
        "followed",
        "identity",
        "last_seen",
        "on_join",
        "presence",
        "pushed",
        "queue",
        "role_channels",
        "socket",
        "store",
        "threads",
        "user",
    )

    def __init__(
        self,
        socket: Socket,
        identity: Identity,
        store: Store,
        *,
        queue_depth: int,
        on_close: Callable[[Connection], None] | None = None,
        close_timeout: float = 5.0,
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.socket = socket
        self.identity = identity
        self.user = identity.user_id
        self.store = store
        self.threads: dict[str, ThreadBrief] = {}
        self.cursors: dict[str, int] = {}
        self.presence: dict[str, str] = {}
        self.queue = Outbox(queue_depth)
        self.closed = False
        self.busy = False
        # (code, reason) of a close that waits for the frame being handled to be answered
        self.ending: tuple[int, str] | None = None
        self.pushed = 0
        self.dropped_ephemeral = 0
        self._on_close = on_close
        self._close_timeout = close_timeout
        self._abort = abort
        self.on_join: Callable[[Connection, str], None] | None = None
        self.counted = False  # counted by presence (undone on close only if so)
        # threads subscribed after hello (joined later); a shared empty set until then
        self.followed: set[str] | frozenset[str] = _NOT_FOLLOWED
        # the staff role channels the gateway subscribed this connection to (its token's
        # roles; changed by a token refresh), so exactly those are dropped at the close
        self.role_channels: tuple[str, ...] = ()
        self.last_seen = 0.0  # loop time of the last frame (or pong) from the client
        self._writer: asyncio.Task[None] | None = None
        # frames ready to write: the writer task's, or the direct lane's until the end of the
        # loop's step (then written by _write_out); None when there are none
        self._out: list[str] | None = None
        self._direct: Any = None  # aiohttp's frame writer, if the direct lane can use it
        self._started = False
        self._broken = False  # a write failed: the socket is gone

    # --- queue side (called by the hub, the handler, the gateway)
    def start(self) -> None:
        """Start writing (what was queued before is written first, in order)."""
        self._started = True
        self._direct = fast_writer(self.socket)
        self._kick()

    def _kick(self) -> None:
        # One writer at a time, alive only while the queue has items: an idle connection
        # holds no task. A writer that finds the queue empty returns (and clears _writer)
        # in the same step of the event loop, so an item put after that check finds none.
        if (self._started and not self._broken and not self.queue.empty()
                and self._writer is None):
            self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.user}")

    def _write_out(self) -> None:
        """End of the loop's step: write the direct lane's frames (unless a writer task
        took them over)."""
        out = self._out
        if self._writer is not None:
            return
        self._out = None
        if not out:
            return
        direct = self._direct
        if (self._broken or direct._closing or direct.transport is None
                or direct.transport.is_closing()):
            return  # the socket is closing or gone; its handler ends the connection
        try:
            paused = write_now(direct, out)
        except Exception as exc:  # the transport failed under us
            self._fail(exc)
            return
        if paused:  # the client reads too slowly: queue behind a drain until it catches up
            self._put_queued(DRAIN)

    def deliver(self, event: Event) -> None:
        """Hub callback: queue the event, or disconnect a client that cannot keep up.

        Ephemeral events (typing, presence) are dropped first: when the queue is half full
        they are not queued at all.
        """
        if event.kind in EPHEMERAL and self.queue.qsize() * 2 >= self.queue.maxsize:
            self.dropped_ephemeral += 1
            return
        if event.kind == "thread" and not self.closed:
            # Subscribe now, not when the writer reaches the event: a message of the new
            # thread dispatched in between would otherwise reach no one (see _joined).
            tid = event.payload["thread"]["id"]
            if tid not in self.threads and tid not in self.followed:
                if not isinstance(self.followed, set):
                    self.followed = set()
                self.followed.add(tid)
                if self.on_join is not None:
                    self.on_join(self, tid)
        self._put(event)

    def send(self, frame: dict[str, Any]) -> None:
        self._put(encode(frame))

    def sync(self, thread: str) -> None:
        self._put(Sync(thread))

    def ping(self) -> None:
        """Queue a WebSocket ping (the node's heartbeat, see ``Gateway``)."""
        self._put(PING)

    def _put(self, item: Outbound) -> None:
        if self.closed:
            return
        if (self._direct is not None and self._writer is None and not self._broken
                and self.queue.empty() and not isinstance(item, (Sync, _Ping))):
            # The direct lane (see the module's docstring): no writer task runs and nothing
            # waits in the queue, so this item is next; encode it now, write at step end.
            out = self._out
            if out is None:
                out = self._out = []
                asyncio.get_running_loop().call_soon(self._write_out)
            if isinstance(item, str):
                out.append(item)
                return
            if isinstance(item, Event) and item.kind != "thread":
                try:
                    if self._apply(item) is None:
                        return
                except Exception as exc:  # this client's rendering failed, not the others'
                    self._fail(exc, broken=False)  # its socket is fine: what it holds goes
                    return
            # it needs a storage read first: the writer task takes it (and ``out`` first)
        self._put_queued(item)

    def _fail(self, exc: Exception, *, broken: bool = True) -> None:
        """Writing to this client failed (the socket went away, a storage read or a push's
        rendering failed): never leave an open socket that no longer gets what it is owed -
        the client would wait for answers forever. Closing makes it reconnect and resume
        from its cursor. ``broken``: the socket itself failed (nothing more is written to
        it); otherwise the frames put before the failure still go out before the close."""
        log.debug("writing to %s failed: %s", self.user, exc)
        self._broken = self._broken or broken
        self.close_soon(CLOSE_INTERNAL_ERROR, "server error; reconnect and resume")

    def _put_queued(self, item: Outbound) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("slow consumer %s: outbound queue full, disconnecting", self.user)
            self.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full")
            return
        self._kick()

    def close_soon(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        task = asyncio.create_task(self._close(code, reason))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def close_after_frame(self, code: int, reason: str) -> None:
        """Close with ``code`` once the frame being handled (if any) has been answered.

        A token that runs out while a ``send`` waits for its commit: the message will be
        stored, so its ``ok`` goes out before the close frame rather than being dropped
        (the client would learn the outcome only by retrying after it reconnects). The
        gateway's loop closes right after the frame (``Gateway._loop``) and reads no further
        frame; a frame that takes longer than the close timeout is not waited for.
        """
        if self.closed or self.ending is not None:
            return
        if not self.busy:
            self.close_soon(code, reason)
            return
        self.ending = (code, reason)
        asyncio.get_running_loop().call_later(self._close_timeout, self.close_soon, code, reason)

    async def close_now(self, code: int, reason: str) -> None:
        """Close with ``code`` and wait for it (at most the close timeout, then abort)."""
        self.closed = True
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        """Close with ``code``; abort the socket if the close frame cannot be sent in time.

        A client that stopped reading (TCP window full) never takes the close frame; without
        the abort its socket, handler and presence would stay forever.
        """
        self._write_out()  # what the direct lane holds goes before the close frame
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.socket.close(code=code, message=reason.encode()[:120])
        except TimeoutError:
            log.warning("closing %s timed out; aborting the socket", self.user)
            if self._abort is not None:
                self._abort()
        except Exception as exc:
            log.debug("closing %s failed: %s", self.user, exc)

    async def stop(self) -> None:
        """Stop the writer (after the socket is gone)."""
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._on_close is not None:
            self._on_close(self)

    async def flush(self, timeout: float) -> None:
        """Wait until everything put is written (graceful drain)."""
        self._write_out()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._writer is not None and not self._writer.done():
                    await asyncio.sleep(0.01)

    # --- writer side
    async def _write_loop(self) -> None:
        # Frames are gathered in ``_out`` and written together (one system call for the ``ok``
        # and the push of the same message, or for several pushes of one batch): before
        # anything that waits (a storage read, a ping), every FLUSH_FRAMES frames, and when
        # the queue is empty. The loop ends only when both are empty in the same step.
        # The direct lane's frames of this step (if any) come first: they were put first.
        out = self._out = self._out or []
        try:
            while True:
                while not self.queue.empty():
                    item = self.queue.pop()
                    if isinstance(item, str):
                        out.append(item)
                    elif isinstance(item, Sync):
                        await self._sync(item.thread, None)
                    elif isinstance(item, _Ping):
                        await self._flush()
                        await self.socket.ping()
                    elif isinstance(item, _Drain):
                        await self._flush()
                        if self._direct is not None:
                            await drain(self._direct)
                    else:
                        await self._event(item)
                    if len(out) >= FLUSH_FRAMES:
                        await self._flush()
                if not out:
                    return
                await self._flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away mid-send, or storage failed mid-sync
            self._fail(exc)
        finally:
            self._out = None
            self._writer = None

    async def _flush(self) -> None:
        out = self._out
        if out:
            frames = out[:]
            out.clear()
            await send_frames(self.socket, frames)

    def _emit(self, frame: str) -> None:
        assert self._out is not None, "frames are emitted by the writer task or direct lane"
        self._out.append(frame)

    def _push_message(self, msg: Message) -> None:
        self._emit(_message_frames.frame(msg, self.user, self.identity.locale))
        self.cursors[msg.thread] = msg.seq
        brief = self.threads.get(msg.thread)
        if brief is not None and msg.seq > brief.last_seq:
            brief.last_seq = msg.seq
        self.pushed += 1

    async def _sync(self, thread: str, upto: int | None) -> None:
        """Push stored messages after the cursor, up to (not including) ``upto``."""
        while True:
            cursor = self.cursors.get(thread, 0)
            if upto is not None and cursor + 1 >= upto:
                return
            await self._flush()  # what is ready goes out before the storage read
            page = await self.store.history(
                thread, after_seq=cursor, before_seq=upto, limit=HISTORY_PAGE
            )
            for msg in page:
                if msg.seq > self.cursors.get(thread, 0):
                    self._push_message(msg)
            if len(page) < HISTORY_PAGE:
                return

    async def _event(self, event: Event) -> None:
        if event.kind == "thread":
            payload = event.payload
            if self._joined(payload["thread"]):
                self._emit(encode({"type": "thread", **payload}))
                await self._sync(payload["thread"]["id"], None)
            return
        need = self._apply(event)
        if need is not None:
            await self._sync(*need)
            self._apply(event, synced=True)

    def _apply(self, event: Event, *, synced: bool = False) -> tuple[str, int] | None:
        """Emit what ``event`` (not ``thread``) makes this client see; or, if it first needs
        the messages before it from storage, emit nothing and return the read to make
        (thread, up to seq); ``synced``: that read was made."""
        kind = event.kind
        if kind == "message":
            msg = event.message
            assert msg is not None
            if msg.thread not in self.threads:
                return None
            cursor = self.cursors.get(msg.thread, 0)
            if msg.seq <= cursor:
                return None
            if msg.seq > cursor + 1 and not synced:
                return msg.thread, msg.seq
            self._push_message(msg)
            return None
        payload = event.payload
        if kind == "update":
            msg = event.message
            assert msg is not None
            if msg.thread not in self.threads:
                return None
            if msg.seq > self.cursors.get(msg.thread, 0) and not synced:
                # Not pushed yet: push it (and anything before it) from storage first, so an
                # older copy still in flight is dropped as a duplicate.
                return msg.thread, msg.seq + 1
            self._emit(
                encode({"type": "update", **payload, "message": msg.view(self.user, locale=self.identity.locale)})
            )
            return None
        if kind in ("typing", "presence") and payload.get("user") == self.user:
            return None
        if kind == "presence":
            if self.presence.get(payload["user"]) == payload["status"]:
                return None
            self.presence[payload["user"]] = payload["status"]
        elif kind == "participant":
            brief = self.threads.get(payload["thread"])
            if brief is not None:
                brief.members[payload["user"]] = payload["role"]
        elif kind == "thread_updated":
            brief = self.threads.get(payload["thread"])
            if brief is not None:
                brief.stage = payload["stage"]
        self._emit(encode({"type": kind, **payload}))
        return None

    def _joined(self, thread: dict[str, Any]) -> bool:
        """The user was added to a thread: follow it from where it was when they were added.

        The thread's channel was subscribed by :meth:`deliver` when this event arrived; the
        caller then reads back from storage anything stored after the event's snapshot (it
        may have been published before that subscription), so nothing falls between the
        two. Returns False if the thread was already followed.
        """
        tid = thread["id"]
        if tid in self.threads:
            return False
        members = {p["user_id"]: p["role"] for p in thread["participants"]}
        self.threads[tid] = ThreadBrief(thread["last_seq"], thread["stage"], members)
        self.cursors[tid] = thread["last_seq"]
        return True
