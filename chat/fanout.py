"""Fan-out: one interface, two back ends (in-process for one node; Redis pub/sub for many).

Theory of operation:

* Storage is the source of truth; fan-out is only the fast path. Every ``message`` event
  carries its ``seq``, and each connection remembers the last seq it pushed per thread
  (:mod:`chat.session`), so a duplicate is dropped and a gap is filled from storage.
* Local subscribers (connections) register on the node's :class:`Hub` by channel name:
  ``t:<thread>`` for a thread's events, ``u:<user>`` for one user, ``r:<role>`` for staff.
* :class:`RedisFanOut` delivers an event to the local hub at once, and publishes it on one
  Redis channel that every node subscribes to; a node ignores its own echo. Publishes are
  batched by a flusher task: the events pending when it wakes go out as one Redis message
  (up to BATCH_MAX_BYTES), so under load a node reads one message per batch, not per
  event. If Redis drops, the reader reconnects with backoff and
  resubscribes by itself, then calls the ``on_resync`` hook so the node re-reads from storage
  whatever its local subscribers may have missed. Publishes that failed are retried.
  ``health()`` tells whether the subscription is live (exposed on ``/healthz``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import orjson

from .models import Message

log = logging.getLogger("tsunagu.fanout")
STOP_WAIT_S = 2.0  # how long stop() waits for its tasks and the client to close

_MESSAGE_FIELDS = tuple(f.name for f in fields(Message))
REDIS_POOL_MAX = 64  # connections per node (the subscriber holds one)
REDIS_POOL_WAIT_S = 5.0  # how long a command waits for a free connection
# Events pending when the publisher wakes travel together, as one Redis message of at most
# this size (one PUBLISH, and one message for every node to read, instead of one per event).
BATCH_MAX_BYTES = 256 * 1024


@dataclass(slots=True)  # not frozen: see chat.models.Message
class Event:
    """Something to push to the subscribers of ``channel``.

    ``kind`` is ``message`` (then ``message`` is set), or a frame type pushed as is
    (``receipt``, ``typing``, ``presence``, ``update``, ``thread``, ``notification``,
    ``review``...) with ``payload`` as its fields.
    """

    channel: str
    kind: str
    payload: dict[str, Any]
    message: Message | None = None

    def encode(self) -> bytes:
        """This event as JSON, to travel between nodes inside a batch (`encode_batch`)."""
        doc: dict[str, Any] = {"c": self.channel, "k": self.kind, "p": self.payload}
        if self.message is not None:
            doc["m"] = [getattr(self.message, f) for f in _MESSAGE_FIELDS]
        return orjson.dumps(doc)

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> Event:
        msg = Message(*doc["m"]) if "m" in doc else None
        return Event(doc["c"], doc["k"], doc["p"], msg)


def encode_batch(origin: str, events: list[bytes]) -> bytes:
    """One Redis message for several encoded events: ``{"o": origin, "b": [event, ...]}``.

    The origin comes first, so a node recognises its own echo by the prefix alone."""
    return b'{"o":' + orjson.dumps(origin) + b',"b":[' + b",".join(events) + b"]}"


def decode_batch(data: bytes) -> tuple[str, list[Event]]:
    """The origin and the events of a Redis message (a batch, or one bare event as nodes
    before batching sent them). Raises on a message that is not JSON or has no origin; an
    event in it that is malformed is logged and left out."""
    doc = orjson.loads(data)
    origin = doc["o"]
    if not isinstance(origin, str):
        raise TypeError("origin is not a string")
    docs = doc["b"] if "b" in doc else [doc]
    events: list[Event] = []
    for d in docs:
        try:
            events.append(Event.from_doc(d))
        except (KeyError, TypeError) as exc:
            log.error("undecodable fan-out event dropped: %s", exc)
    return origin, events


def thread_channel(thread_id: str) -> str:
    return f"t:{thread_id}"


def user_channel(user_id: str) -> str:
    return f"u:{user_id}"


def role_channel(role: str) -> str:
    return f"r:{role}"


class Subscriber(Protocol):
    def deliver(self, event: Event) -> None:
        """Take an event without blocking (queue it, or drop the subscriber if it is full)."""


class Hub:
    """The node's local subscribers, by channel."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}

    def add(self, channel: str, sub: Subscriber) -> None:
        self._subs.setdefault(channel, set()).add(sub)

    def discard(self, channel: str, sub: Subscriber) -> None:
        subs = self._subs.get(channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[channel]

    def dispatch(self, event: Event) -> int:
        subs = self._subs.get(event.channel)
        if not subs:
            return 0
        for sub in tuple(subs):
            sub.deliver(event)
        return len(subs)

    def channels(self) -> list[str]:
        return list(self._subs)

    def __len__(self) -> int:
        return len(self._subs)


ResyncHook = Callable[[], Awaitable[None]]


class FanOut(abc.ABC):
    """Publish events to every subscriber of a channel, on this node and on the others."""

    def __init__(self) -> None:
        self.hub = Hub()
        self.on_resync: ResyncHook | None = None
        # Called with every event before local delivery, whether this node published it
        # or another node did (e.g. a store forgetting what it remembers of a changed
        # message); must not block or raise.
        self.observers: list[Callable[[Event], None]] = []

    def _observe(self, event: Event) -> None:
        for observe in self.observers:
            observe(event)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background tasks (Redis reader and publisher)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background tasks, after flushing pending publishes."""

    @abc.abstractmethod
    def publish(self, event: Event) -> None:
        """Deliver to local subscribers now and to other nodes as soon as possible."""

    def health(self) -> dict[str, Any]:
        return {"backend": "in-process", "ok": True}


class LocalFanOut(FanOut):
    """One node: the hub is everything."""

    def publish(self, event: Event) -> None:
        self._observe(event)
        self.hub.dispatch(event)


class RedisFanOut(FanOut):
    def __init__(
        self, url: str, *, prefix: str, node_id: str, max_pending: int = 100_000
    ) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        # A blocking pool: when every connection is busy (a burst of hellos doing presence
        # look-ups), callers wait for one instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=REDIS_POOL_MAX, timeout=REDIS_POOL_WAIT_S,
            socket_connect_timeout=2, socket_keepalive=True,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._url = url
        self.channel = f"{prefix}:fanout"
        self.node_id = node_id
        self._own_prefix = orjson.dumps({"o": node_id})[:-1] + b","
        self._pending: deque[bytes] = deque()
        self._inflight = 0  # publishes being sent right now
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[None]] = set()
        self._subscribed = asyncio.Event()
        self._stopping = False
        self.reconnects = 0
        self.dropped = 0
        self.received = 0
        self.published = 0

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._reader(), name="redis-fanout-reader"),
            asyncio.create_task(self._publisher(), name="redis-fanout-publisher"),
        ]
        # Wait (briefly) for the first subscription so a fresh node does not miss events.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush_all(), 2)
        for task in self._tasks:
            task.cancel()
        # Bounded: a task stuck in its own clean-up (a pub/sub connection that does not
        # close) must not stop the node from ending.
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: a task that failed is not logged at exit
            if pending:
                log.warning("redis fan-out: %d task(s) did not stop within %.0f s",
                            len(pending), STOP_WAIT_S)
        try:
            await asyncio.wait_for(self._redis.aclose(close_connection_pool=True), STOP_WAIT_S)
        except Exception as exc:  # a timeout included
            log.warning("redis fan-out: closing the client failed: %r", exc)

    async def _flush_all(self) -> None:
        while self._pending:
            await asyncio.sleep(0.01)

    def publish(self, event: Event) -> None:
        self._observe(event)
        self.hub.dispatch(event)
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(event.encode())
        self._wake.set()

    def health(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "ok": self._subscribed.is_set(),
            "reconnects": self.reconnects,
            "pending_publishes": len(self._pending) + self._inflight,
            "dropped_publishes": self.dropped,
        }

    async def _publisher(self) -> None:
        backoff = 0.05
        while True:
            if not self._pending:
                self._wake.clear()
                if self._stopping:
                    return
                await self._wake.wait()
                continue
            batch = list(self._pending)
            self._pending.clear()
            self._inflight = len(batch)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for data in self._batches(batch):
                        pipe.publish(self.channel, data)
                    await pipe.execute()
            except Exception as exc:  # redis errors, OSError: put back in order and retry
                self._pending.extendleft(reversed(batch))
                self._inflight = 0
                while len(self._pending) > self._max_pending:
                    self._pending.popleft()
                    self.dropped += 1
                log.warning("redis publish failed (%s); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._inflight = 0
            self.published += len(batch)

    def _batches(self, events: list[bytes]) -> list[bytes]:
        """``events`` in order, as Redis messages of at most BATCH_MAX_BYTES (an event larger
        than that travels alone)."""
        out: list[bytes] = []
        part: list[bytes] = []
        size = 0
        for data in events:
            if part and size + len(data) > BATCH_MAX_BYTES:
                out.append(encode_batch(self.node_id, part))
                part, size = [], 0
            part.append(data)
            size += len(data) + 1
        if part:
            out.append(encode_batch(self.node_id, part))
        return out

    async def _reader(self) -> None:
        backoff = 0.1
        first = True
        while True:
            # Not ignore_subscribe_messages=True on the PubSub itself: redis-py checks that flag
            # too, so the confirmation awaited below would be swallowed for good (the reader
            # would never reach its read loop and nothing would cross nodes).
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                # The subscription is confirmed by the first reply; read until we see it.
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=5)
                    if msg is not None and msg["type"] == "subscribe":
                        break
                self._subscribed.set()
                if not first:
                    self.reconnects += 1
                    log.warning("redis fan-out resubscribed; resyncing local subscribers")
                    if self.on_resync is not None:
                        task = asyncio.ensure_future(self.on_resync())
                        self._background.add(task)
                        task.add_done_callback(self._background.discard)
                first = False
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
                    if msg is None:
                        await pubsub.ping()
                        continue
                    if msg["type"] != "message":
                        continue
                    self._on_data(msg["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                raise
            except Exception as exc:
                self._subscribed.clear()
                log.warning("redis fan-out subscription lost (%s); retrying in %.1fs", exc, backoff)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)

    def _on_data(self, data: bytes) -> None:
        # This node's own events come back from Redis too (one channel): skip them on the
        # encoded prefix, before decoding (``Event.encode`` writes the origin first).
        if data.startswith(self._own_prefix):
            return
        try:
            origin, events = decode_batch(data)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.error("undecodable fan-out message dropped: %s", exc)
            return
        if origin == self.node_id:
            return
        self.received += len(events)
        for event in events:
            self._observe(event)
            self.hub.dispatch(event)
