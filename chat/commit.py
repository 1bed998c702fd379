"""Group commit: appends that arrive while a transaction is in flight share the next one.

One flusher task per committer. A caller enqueues its request and awaits a future; the
flusher takes everything queued (up to ``max_batch``), calls
:meth:`~chat.store.base.Store.append_batch` once, and resolves each future with its own
result. Under light load a batch has one message and adds no delay; under heavy load the
batch grows and the cost of a commit (and fsync) is shared.

A commit has a fixed cost (on SQLite the WAL write and ``fsync``: most of a batch's CPU), so
under load the flusher *lingers*: when the previous commit carried more than one request
and ended less than ``linger`` seconds ago, it waits until the oldest queued request is
``linger`` old before committing, as PostgreSQL's ``commit_delay`` does. A request that
arrives after a quiet spell, or while requests come one at a time (a commit of one), is
committed at once; under load each request waits at most ``linger`` longer, and a batch
carries several requests instead of one or two.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .errors import ChatError, Unavailable
from .models import Appended, NewMessage
from .store.base import Store


class GroupCommitter:
    def __init__(self, store: Store, *, max_batch: int = 512, linger: float = 0.0) -> None:
        self._store = store
        self._max = max_batch
        self._linger = linger
        self._queue: deque[tuple[NewMessage, asyncio.Future[Appended | ChatError]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._head_since = 0.0  # loop time at which the oldest queued request arrived
        self._last_commit = float("-inf")  # loop time at which the last commit ended
        self._last_size = 0  # requests the last commit carried
        self.batches = 0
        self.messages = 0

    async def append(self, req: NewMessage) -> Appended:
        """Store ``req`` (or find its earlier copy); raise ChatError if it cannot be stored."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Appended | ChatError] = loop.create_future()
        if not self._queue:
            self._head_since = loop.time()
        self._queue.append((req, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        # No shield: if the caller is cancelled the future is cancelled too, and the flusher
        # skips it (``fut.done()``); the request itself is committed either way.
        result = await fut
        if isinstance(result, ChatError):
            raise result
        return result

    async def _flush(self) -> None:
        batch: list[tuple[NewMessage, asyncio.Future[Appended | ChatError]]] = []
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                if self._linger and self._last_size > 1 and len(self._queue) < self._max:
                    now = loop.time()
                    if now - self._last_commit < self._linger:  # under load: gather more
                        wait = self._head_since + self._linger - now
                        if wait > 0:
                            await asyncio.sleep(wait)
                n = min(len(self._queue), self._max)
                batch = [self._queue.popleft() for _ in range(n)]
                self._head_since = loop.time()
                try:
                    results = await self._store.append_batch([req for req, _ in batch])
                except ChatError as exc:
                    results = [exc] * len(batch)
                except Exception as exc:  # a bug or an untranslated driver error
                    results = [Unavailable(f"store error: {exc.__class__.__name__}")] * len(batch)
                self._last_commit = loop.time()
                self._last_size = len(batch)
                self.batches += 1
                self.messages += len(batch)
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
                batch = []
        except asyncio.CancelledError:
            # Shutting down mid-batch: nobody may wait forever. The batch's outcome is
            # unknown (it may have committed); a retry with the same client_msg_id is safe.
            for _, fut in [*batch, *self._queue]:
                if not fut.done():
                    fut.set_result(Unavailable("shutting down; retry with the same client_msg_id"))
            self._queue.clear()
            raise

    async def drain(self) -> None:
        """Wait until every queued append has been committed."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])
