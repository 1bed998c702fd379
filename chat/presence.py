"""Presence: which users have at least one live connection, on any node.

In-process: a count per user. Redis: a hash per user (``<prefix>:presence:<user>``) with one
field per node holding the time of its last refresh; every node refreshes its own users every
``REFRESH_S`` and a field older than ``STALE_S`` (a dead node) no longer counts. The keys
expire by themselves, so presence stays cheap (see Synapse's presence troubles).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("tsunagu.presence")

REFRESH_S = 30.0
STALE_S = 90.0
# Users per Redis pipeline when a node refreshes (or clears) all its users: one pipeline of
# 10,000 users built 20,000 commands at once every 30 s - a stall of the event loop and a
# few MB that the process kept.
PIPELINE_USERS = 500


class Presence(abc.ABC):
    def __init__(self) -> None:
        self.local: Counter[str] = Counter()

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    async def connected(self, user: str) -> bool:
        """Count a connection; return True if the user just came online on this node."""
        self.local[user] += 1
        return self.local[user] == 1

    async def disconnected(self, user: str) -> bool:
        """Uncount a connection; return True if the user is now offline everywhere."""
        self.local[user] -= 1
        if self.local[user] > 0:
            return False
        del self.local[user]
        return True

    def connections(self, user: str) -> int:
        return self.local.get(user, 0)

    @abc.abstractmethod
    async def online(self, users: Iterable[str]) -> set[str]: ...


class LocalPresence(Presence):
    async def online(self, users: Iterable[str]) -> set[str]:
        return {u for u in users if self.local.get(u, 0) > 0}


class RedisPresence(Presence):
    def __init__(self, redis: Any, *, prefix: str, node_id: str) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix
        self._node = node_id
        self._task: asyncio.Task[None] | None = None

    def _key(self, user: str) -> str:
        return f"{self._prefix}:presence:{user}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_loop(), name="presence-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._pipelined(list(self.local),
                                  lambda pipe, user: pipe.hdel(self._key(user), self._node))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self._mark(list(self.local))
            except Exception as exc:
                log.warning("presence refresh failed: %s", exc)

    async def _mark(self, users: list[str]) -> None:
        now = time.time()

        def mark(pipe: Any, user: str) -> None:
            pipe.hset(self._key(user), self._node, now)
            pipe.expire(self._key(user), int(STALE_S))

        await self._pipelined(users, mark)

    async def _pipelined(self, users: list[str], queue: Callable[[Any, str], Any]) -> None:
        """``queue(pipe, user)`` for every user, sent PIPELINE_USERS users at a time."""
        for i in range(0, len(users), PIPELINE_USERS):
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users[i:i + PIPELINE_USERS]:
                    queue(pipe, user)
                await pipe.execute()

    async def connected(self, user: str) -> bool:
        first = await super().connected(user)
        if first:
            try:
                await self._mark([user])
            except Exception as exc:
                log.warning("presence update failed: %s", exc)
        return first

    async def disconnected(self, user: str) -> bool:
        if not await super().disconnected(user):
            return False
        try:
            await self._redis.hdel(self._key(user), self._node)
            return user not in await self.online([user])
        except Exception as exc:
            log.warning("presence update failed: %s", exc)
            return True

    async def online(self, users: Iterable[str]) -> set[str]:
        local: set[str] = set()
        remote: list[str] = []
        for u in users:
            if self.local.get(u, 0) > 0:
                local.add(u)
            else:
                remote.append(u)
        if not remote:  # connected here: no need to ask Redis
            return local
        users = remote
        cutoff = time.time() - STALE_S
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.hvals(self._key(user))
                rows = await pipe.execute()
        except Exception as exc:
            log.warning("presence lookup failed: %s", exc)
            return local
        return local | {u for u, vals in zip(users, rows, strict=True)
                        if any(float(v) > cutoff for v in vals)}
