"""The delivery worker: sends queued push and e-mail deliveries, retries, dead-letters.

Theory of operation:

* A delivery row (``notify_deliveries``) is created by the scheduler in the same transaction
  as its notice, ``queued`` with ``next_at`` (now, or the end of the user's quiet hours).
* :meth:`DeliveryWorker.tick` claims due rows in a short transaction (``sending`` with a
  lease; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends them concurrently outside any
  transaction, then records each outcome: ``sent``; ``skipped`` when the user has read the
  notice in-app meanwhile (no duplicate); ``retry`` with exponential backoff and full jitter;
  ``dead`` after the last attempt or a permanent refusal (the dead-letter record); ``gone``
  removes the Web Push subscription or device token. Every step is written to
  ``notify_delivery_log``. A node that dies mid-send leaves the row ``sending``; when the
  lease runs out another node takes it again (at-least-once; collapse keys and Message-ID
  absorb a repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chat.store.db import Db

from . import repo
from .channels import Outgoing, Result, Sender
from .rules import retry_delay_s
from .scheduler import Clock
from .schema import DELIVERIES, DEVICES, INBOX, WEBPUSH

log = logging.getLogger("tsunagu.notify.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    batch: int = 200
    lease_s: float = 60.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 600.0
    concurrency: int = 32
    tick_s: float = 1.0
    default_tz: str = "Asia/Tokyo"


class DeliveryWorker:
    def __init__(self, db: Db, senders: Mapping[str, Sender], clock: Clock,
                 cfg: DeliveryConfig, *, rng: random.Random | None = None) -> None:
        self.db = db
        self.senders = dict(senders)
        self.clock = clock
        self.cfg = cfg
        self.rng = rng or random.Random()
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sem = asyncio.Semaphore(cfg.concurrency)

    async def _claim(self, now: int) -> list[tuple[Any, ...]]:
        lease = now + int(self.cfg.lease_s * 1_000_000)
        sql = (f"SELECT id FROM {DELIVERIES} WHERE (state IN ('queued', 'retry') AND "
               "next_at <= ?) OR (state = 'sending' AND lease_until < ?) "
               "ORDER BY next_at LIMIT ?")
        if self.db.dialect == "postgres":
            sql += " FOR UPDATE SKIP LOCKED"
        async with self.db.transaction() as tx:
            ids = [r[0] for r in await tx.fetch(sql, now, now, self.cfg.batch)]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                f"UPDATE {DELIVERIES} SET state = 'sending', lease_until = ?, "
                f"attempts = attempts + 1, updated_at = ? WHERE id IN ({marks})",
                lease, now, *ids)
            return await tx.fetch(
                f"SELECT d.id, d.notice_id, d.user_id, d.channel, d.target, d.attempts, "
                f"n.kind, n.category, n.thread_id, n.title, n.body, n.urgent, n.read_at, "
                f"w.p256dh, w.auth FROM {DELIVERIES} d JOIN {INBOX} n ON n.id = d.notice_id "
                f"LEFT JOIN {WEBPUSH} w ON d.channel = 'webpush' AND w.endpoint = d.target "
                f"WHERE d.id IN ({marks})", *ids)

    async def tick(self) -> int:
        """Claim and send one batch; return how many deliveries were attempted."""
        now = self.clock.now_us()
        rows = await self._claim(now)
        if not rows:
            return 0
        users = sorted({r[2] for r in rows})
        profiles = await repo.profiles(self.db, users, tz=self.cfg.default_tz,
                                       quiet=("00:00", "00:00"))
        results = await asyncio.gather(*(self._one(r, profiles[r[2]].locale) for r in rows))
        await self._record(rows, results)
        return len(rows)

    async def _one(self, r: tuple[Any, ...], locale: str) -> Result:
        (did, nid, user, channel, target, _attempts, kind, category, thread, title, body,
         urgent, read_at, p256dh, auth) = r
        if read_at is not None:
            return Result(False, "skipped: already read in-app")
        sender = self.senders.get(channel)
        if sender is None:
            return Result(False, f"channel {channel} is not configured")
        if channel == "webpush" and p256dh is None:
            return Result(False, "subscription removed", gone=True)
        out = Outgoing(did, nid, user, kind, category, thread, title, body, bool(urgent),
                       target, locale, {"p256dh": p256dh, "auth": auth} if p256dh else None)
        async with self._sem:
            try:
                return await sender.send(out)
            except Exception as exc:  # a sender bug must not stop the worker
                log.exception("sender %s failed", channel)
                return Result(False, f"error: {exc.__class__.__name__}: {exc}", retry=True)

    async def _record(self, rows: list[tuple[Any, ...]], results: list[Result]) -> None:
        now = self.clock.now_us()
        updates: list[tuple[Any, ...]] = []
        log_rows: list[tuple[str, str, str, str, str | None, int]] = []
        gone_push: list[str] = []
        gone_devices: list[tuple[str, str]] = []
        for r, res in zip(rows, results, strict=True):
            did, nid, channel, target, attempts = r[0], r[1], r[3], r[4], r[5]
            if res.ok:
                state, next_at = "sent", now
            elif res.detail.startswith("skipped"):
                state, next_at = "skipped", now
            elif res.retry and attempts < self.cfg.max_attempts:
                delay = retry_delay_s(attempts, base_s=self.cfg.retry_base_s,
                                      max_s=self.cfg.retry_max_s, rand=self.rng.random())
                state, next_at = "retry", now + int(delay * 1_000_000)
            else:
                state, next_at = "dead", now
            if res.gone:
                if channel == "webpush":
                    gone_push.append(target)
                elif channel in ("fcm", "apns"):
                    gone_devices.append((channel, target))
            updates.append((state, next_at, res.detail[:500], now, did))
            detail = res.detail[:500] if state != "retry" else \
                f"{res.detail[:400]}; retry at {next_at}"
            log_rows.append((did, nid, channel, state, detail, now))
        async with self.db.transaction() as tx:
            await tx.executemany(
                f"UPDATE {DELIVERIES} SET state = ?, next_at = ?, last_error = ?, "
                "lease_until = NULL, updated_at = ? WHERE id = ?", updates)
            await repo.log_delivery(tx, log_rows)
            for endpoint in gone_push:
                await tx.execute(f"DELETE FROM {WEBPUSH} WHERE endpoint = ?", endpoint)
            for platform, token in gone_devices:
                await tx.execute(f"DELETE FROM {DEVICES} WHERE platform = ? AND token = ?",
                                 platform, token)

    async def run_until_idle(self) -> int:
        total = 0
        while True:
            n = await self.tick()
            total += n
            if n < self.cfg.batch:
                return total

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_until_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery tick failed; retrying")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.cfg.tick_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notify-delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sender in self.senders.values():
            await sender.close()
