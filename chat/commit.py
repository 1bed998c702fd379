"""Group commit: appends that arrive while a transaction is in flight share the next one.

One flusher task per committer. A caller enqueues its request and awaits a future; the
flusher takes everything queued (up to ``max_batch``), calls
:meth:`~chat.store.base.Store.append_batch` once, and resolves each future with its own
result. Under light load a batch has one message and adds no delay; under heavy load the
batch grows and the cost of a commit (and fsync) is shared.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .errors import ChatError, Unavailable
from .models import Appended, NewMessage
from .store.base import Store


class GroupCommitter:
    def __init__(self, store: Store, *, max_batch: int = 512) -> None:
        self._store = store
        self._max = max_batch
        self._queue: deque[tuple[NewMessage, asyncio.Future[Appended | ChatError]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        self.messages = 0

    async def append(self, req: NewMessage) -> Appended:
        """Store ``req`` (or find its earlier copy); raise ChatError if it cannot be stored."""
        fut: asyncio.Future[Appended | ChatError] = asyncio.get_running_loop().create_future()
        self._queue.append((req, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        result = await asyncio.shield(fut)
        if isinstance(result, ChatError):
            raise result
        return result

    async def _flush(self) -> None:
        batch: list[tuple[NewMessage, asyncio.Future[Appended | ChatError]]] = []
        try:
            while self._queue:
                n = min(len(self._queue), self._max)
                batch = [self._queue.popleft() for _ in range(n)]
                try:
                    results = await self._store.append_batch([req for req, _ in batch])
                except ChatError as exc:
                    results = [exc] * len(batch)
                except Exception as exc:  # a bug or an untranslated driver error
                    results = [Unavailable(f"store error: {exc.__class__.__name__}")] * len(batch)
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
