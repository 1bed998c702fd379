"""The durable scheduler: turns due jobs into inbox notices and queued deliveries.

Theory of operation:

* Jobs live in ``notify_jobs`` (written by the event intake and the chat watcher in the
  same transaction as the state change that causes them), so they survive restarts.
* :meth:`Scheduler.tick` opens ONE transaction, claims the oldest due pending jobs (ordered by
  ``due_at``; on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two nodes take disjoint rows; on
  SQLite the single writer), re-reads the contract state, asks :func:`rules.check_due`
  whether each still applies, and for those that do writes the inbox notice, one queued
  delivery per enabled push/e-mail target (deferred past quiet hours unless urgent), and marks
  the job ``done`` (or ``dropped`` with the reason). The job, its notice and its deliveries
  commit together: each job fires exactly once, whatever the number of nodes.
* After the commit, each new notice is pushed live as a ``notification`` frame on the user's
  channel, and the delivery worker is woken. A tick that found a full batch runs again at
  once, so work missed during downtime is caught up in due order.
* Time comes from an injectable :class:`Clock` (tests drive a :class:`ManualClock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chat.fanout import Event, FanOut, user_channel
from chat.models import new_id
from chat.store.db import Db

from . import repo
from .prefs import enabled, quiet_until
from .rules import CATEGORY, check_due, is_urgent
from .schema import INBOX
from .texts import notice_text

log = logging.getLogger("tsunagu.notify.scheduler")


class Clock(Protocol):
    def now_us(self) -> int: ...


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


class ManualClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start_us: int) -> None:
        self.t = start_us

    def now_us(self) -> int:
        return self.t

    def advance(self, seconds: float) -> int:
        self.t += int(seconds * 1_000_000)
        return self.t

    def set(self, us: int) -> None:
        self.t = us


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    batch: int = 500
    tick_s: float = 1.0
    default_tz: str = "Asia/Tokyo"
    quiet: tuple[str, str] = ("22:00", "08:00")
    public_url: str = ""


@dataclass(frozen=True, slots=True)
class TickResult:
    claimed: int
    fired: int
    dropped: int
    notices: tuple[dict[str, Any], ...]  # (user, notice json) after commit, for live push


class Scheduler:
    def __init__(self, db: Db, fanout: FanOut, clock: Clock, cfg: SchedulerConfig,
                 *, on_deliveries: Callable[[], None] | None = None) -> None:
        self.db = db
        self.fanout = fanout
        self.clock = clock
        self.cfg = cfg
        self.on_deliveries = on_deliveries
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fired = 0
        self.dropped = 0

    async def tick(self) -> TickResult:
        """Fire one batch of due jobs (see the module docstring)."""
        now = self.clock.now_us()
        notices: list[tuple[str, dict[str, Any]]] = []
        fired = dropped = 0
        queued = 0
        async with self.db.transaction() as tx:
            jobs = await repo.claim_due(tx, now, self.cfg.batch, self.db.dialect)
            if not jobs:
                return TickResult(0, 0, 0, ())
            threads = sorted({j.thread for j in jobs})
            users = sorted({j.user for j in jobs})
            contracts = await repo.load_contracts(tx, threads)
            chat_pairs = [(j.thread, j.user) for j in jobs if j.kind == "chat"]
            seqs = await repo.read_seqs(tx, chat_pairs)
            profiles = await repo.profiles(tx, users, tz=self.cfg.default_tz,
                                           quiet=self.cfg.quiet)
            prefs = await repo.user_prefs(tx, users)
            targets = await repo.targets(tx, users)
            outcomes: list[tuple[str, str, int, str]] = []
            inbox_rows: list[tuple[Any, ...]] = []
            deliveries: list[tuple[Any, ...]] = []
            for job in jobs:
                if job.kind == "chat":
                    last = int(job.payload.get("last_seq", 0))
                    reason = "read in-app" if seqs.get((job.thread, job.user), 0) >= last \
                        else None
                else:
                    reason = check_due(job.kind, job.payload, contracts.get(job.thread), now)
                if reason is not None:
                    outcomes.append(("dropped", reason, now, job.id))
                    dropped += 1
                    continue
                prof = profiles[job.user]
                category = CATEGORY[job.kind]
                contract = contracts.get(job.thread)
                params = contract.params() if contract is not None else {}
                params.update(job.payload)
                title, body = notice_text(job.kind, params, locale=prof.locale, tz=prof.tz)
                urgent = is_urgent(job.kind, job.payload)
                nid = new_id("n")
                user_prefs = prefs[job.user]
                inapp = enabled(user_prefs, category, "inapp")
                data = {"thread": job.thread, **{k: v for k, v in job.payload.items()
                                                 if k in ("hours", "count", "days")}}
                inbox_rows.append((nid, job.user, job.id, job.kind, category, job.thread, title,
                                   body, repo.dumps(data), int(urgent), now,
                                   None if inapp else now))
                if inapp:
                    notices.append((job.user, {
                        "id": nid, "kind": job.kind, "category": category,
                        "thread": job.thread, "title": title, "body": body, "data": data,
                        "urgent": urgent, "seen": False, "read": False, "archived": False,
                        "created_at": now}))
                due = now if urgent else (quiet_until(now, prof.tz, prof.quiet_start,
                                                      prof.quiet_end) or now)
                chans = list(targets[job.user])
                if prof.email:
                    chans.append(("email", prof.email))
                for channel, target in chans:
                    pref_channel = "mobile" if channel in ("fcm", "apns") else channel
                    if enabled(user_prefs, category, pref_channel):
                        deliveries.append((new_id("d"), nid, job.user, channel, target, due))
                outcomes.append(("done", "fired", now, job.id))
                fired += 1
            await repo.insert_notices(tx, inbox_rows)
            await repo.insert_deliveries(tx, deliveries, now)
            await repo.finish_jobs(tx, outcomes)
            queued = len(deliveries)
            unread = await _unread_counts(tx, sorted({u for u, _ in notices}))
        from chat.models import rfc3339

        out = []
        for user, notice in notices:
            notice["created_at"] = rfc3339(notice["created_at"])
            payload = {"notification": notice, "unread": unread.get(user, 0)}
            self.fanout.publish(Event(user_channel(user), "notification", payload))
            out.append(payload)
        if queued and self.on_deliveries is not None:
            self.on_deliveries()
        self.fired += fired
        self.dropped += dropped
        return TickResult(len(jobs), fired, dropped, tuple(out))

    async def run_until_idle(self) -> int:
        """Tick until nothing is due (catch-up); return how many jobs were claimed."""
        total = 0
        while True:
            r = await self.tick()
            total += r.claimed
            if r.claimed < self.cfg.batch:
                return total

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_until_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; retrying")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.cfg.tick_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notify-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def _unread_counts(tx: Any, users: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(users), 500):
        part = users[i:i + 500]
        rows = await tx.fetch(
            f"SELECT user_id, count(*) FROM {INBOX} WHERE user_id IN "
            f"({', '.join('?' for _ in part)}) AND read_at IS NULL AND archived_at IS NULL "
            "GROUP BY user_id", *part)
        out.update({r[0]: int(r[1]) for r in rows})
    return out
