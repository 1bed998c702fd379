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

With ``in_flight`` > 1 (PostgreSQL: a pool of connections) several batches are in flight at
once, each on its own connection; a batch takes only requests of threads that have none in
flight, so the requests of one thread are committed in the order they came, one batch
after the other (its seqs, its log chain and the retries of a request stay in one order),
while other threads need not wait for a commit they have no part in. SQLite has one
writer: one batch at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .errors import ChatError, Unavailable
from .models import Appended, NewMessage
from .store.base import BatchResult, ScreenedMessage, Store, Withheld

_Item = tuple[NewMessage, "asyncio.Future[BatchResult]"]  # a request, its answer


class GroupCommitter:
    def __init__(self, store: Store, *, max_batch: int = 512, linger: float = 0.0,
                 in_flight: int = 1) -> None:
        self._store = store
        self._max = max_batch
        self._linger = linger
        self._in_flight = max(1, in_flight)
        self._queue: deque[_Item] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._busy: set[str] = set()  # threads of the batches in flight
        # batches in flight as tasks (in_flight > 1), with their requests
        self._running: dict[asyncio.Task[None], list[_Item]] = {}
        self._done = asyncio.Event()  # a batch in flight ended
        self._head_since = 0.0  # loop time at which the oldest queued request arrived
        self._last_commit = float("-inf")  # loop time at which the last commit ended
        self._last_size = 0  # requests the last commit carried
        self.batches = 0
        self.messages = 0

    async def append(self, req: NewMessage) -> Appended:
        """Store ``req`` (or find its earlier copy); raise ChatError if it cannot be stored.
        (A :class:`ScreenedMessage` goes through :meth:`append_screened`.)"""
        result = await self._submit(req)
        if isinstance(result, Withheld):  # only a ScreenedMessage is answered so
            raise TypeError("a ScreenedMessage must be appended with append_screened")
        return result

    async def append_screened(self, req: ScreenedMessage) -> Appended | Withheld:
        """As :meth:`append`, but if moderation withheld an earlier attempt with ``req``'s key
        (and none is stored), answer with that record and store nothing."""
        return await self._submit(req)

    async def _submit(self, req: NewMessage) -> Appended | Withheld:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[BatchResult] = loop.create_future()
        if not self._queue:
            self._head_since = loop.time()
        self._queue.append((req, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="group-commit")
        # No shield: if the caller is cancelled the future is cancelled too, and the flusher
        # skips it (``fut.done()``); the request itself is committed either way.
        result = await fut
        if isinstance(result, ChatError):
            raise result
        return result

    def _take(self) -> list[_Item]:
        """The next batch: the oldest requests, up to ``max_batch``, of threads that have no
        batch in flight (a thread's requests stay in order: all of them wait)."""
        queue, busy = self._queue, self._busy
        if not busy:
            n = min(len(queue), self._max)
            return [queue.popleft() for _ in range(n)]
        batch: list[_Item] = []
        kept: deque[_Item] = deque()
        while queue and len(batch) < self._max:
            item = queue.popleft()
            (batch if item[0].thread not in busy else kept).append(item)
        kept.extend(queue)
        self._queue = kept
        return batch

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Item] = []
        try:
            while self._queue:
                if len(self._running) >= self._in_flight:
                    await self._wait_one()
                    continue
                if self._linger and self._last_size > 1 and len(self._queue) < self._max:
                    now = loop.time()
                    if now - self._last_commit < self._linger:  # under load: gather more
                        wait = self._head_since + self._linger - now
                        if wait > 0:
                            await asyncio.sleep(wait)
                batch = self._take()
                if not batch:  # every queued thread has a batch in flight
                    await self._wait_one()
                    continue
                self._head_since = loop.time()
                threads = {req.thread for req, _ in batch}
                self._busy |= threads  # now, not when the task starts: the next _take sees it
                if self._in_flight == 1:
                    await self._commit(batch, threads)
                else:
                    task = loop.create_task(self._commit(batch, threads),
                                            name="group-commit-batch")
                    self._running[task] = batch
                    task.add_done_callback(self._ended)
                batch = []
        except asyncio.CancelledError:
            # Shutting down mid-batch: nobody may wait forever. The batch's outcome is
            # unknown (it may have committed); a retry with the same client_msg_id is safe.
            in_flight = [item for task, items in self._running.items() if task.cancel()
                         for item in items]  # (a task cancelled before it ran answers no one)
            for _, fut in [*batch, *in_flight, *self._queue]:
                if not fut.done():
                    fut.set_result(Unavailable("shutting down; retry with the same client_msg_id"))
            self._queue.clear()
            raise

    async def _wait_one(self) -> None:
        self._done.clear()
        await self._done.wait()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._done.set()

    async def _commit(self, batch: list[_Item],
                      threads: set[str]) -> None:
        results: list[BatchResult] = [
            Unavailable("shutting down; retry with the same client_msg_id")] * len(batch)
        try:
            try:
                results = await self._store.append_batch([req for req, _ in batch])
            except ChatError as exc:
                results = [exc] * len(batch)
            except Exception as exc:  # a bug or an untranslated driver error
                results = [Unavailable(f"store error: {exc.__class__.__name__}")] * len(batch)
        finally:
            self._busy -= threads
            self._last_commit = asyncio.get_running_loop().time()
            self._last_size = len(batch)
            self.batches += 1
            self.messages += len(batch)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def drain(self) -> None:
        """Wait until every queued append has been committed."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])
        while self._running:
            await asyncio.wait(list(self._running))
