"""The durable scheduler: turns due jobs into inbox notices and queued deliveries.

Theory of operation:

* Jobs live in ``notify_jobs`` (written by the event intake and the chat watcher in the
  same transaction as the state change that causes them), so they survive restarts.
* :meth:`Scheduler.tick` opens ONE transaction, claims the oldest due pending jobs (ordered by
  ``due_at``; on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two nodes take disjoint rows; on
  SQLite the single writer), re-reads the contract state, asks :func:`rules.still_applies`
  (the delivery worker's own send-time check) whether each still applies, and for those
  that do writes the inbox notice, one queued
  delivery per enabled push/e-mail target (deferred past quiet hours unless urgent), and marks
  the job ``done`` (or ``dropped`` with the reason; ``failed`` with the error when it cannot
  be rendered or written, without holding back the rest of the batch; a deadline reminder
  firing late is worded with the time really left). A first fire and an operator's retry
  get the same check: either may have been overtaken before it fires (deposit paid since,
  deadline changed again - after downtime, or while the job lay failed). The job, its
  notice and its deliveries commit together: each job fires exactly once, whatever the
  number of nodes.
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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from chat.fanout import Event, FanOut, user_channel
from chat.models import new_id
from chat.store.db import Db

from . import repo
from .prefs import enabled, pref_channel, quiet_until
from .rules import CATEGORY, fire_payload, is_urgent, still_applies
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
    failed: int = 0


@dataclass(slots=True)
class _Batch:
    """What one batch's transaction did (used after its commit)."""

    claimed: int = 0
    fired: int = 0
    dropped: int = 0
    failed: int = 0
    queued: int = 0
    notices: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)

    def add(self, other: _Batch) -> None:
        self.claimed += other.claimed
        self.fired += other.fired
        self.dropped += other.dropped
        self.failed += other.failed
        self.queued += other.queued
        self.notices.extend(other.notices)
        self.unread.update(other.unread)


# A job whose own transaction fails this many times is marked failed (a transient database
# error gets as many tries; a job that can never be written no longer blocks the schedule).
MAX_JOB_ERRORS = 3


def _why(exc: BaseException) -> str:
    return f"error: {exc.__class__.__name__}: {exc}"[:500]


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
        self.failed = 0

    async def tick(self) -> TickResult:
        """Fire one batch of due jobs (see the module docstring).

        A job that cannot be rendered is marked ``failed`` (with the reason) and the rest of
        the batch goes on. If the batch's transaction fails anyway (a write refused), its
        jobs are fired one per transaction, so one bad job cannot hold back the others; a
        job whose own transaction fails MAX_JOB_ERRORS times is marked ``failed``.
        """
        now = self.clock.now_us()
        try:
            async with self.db.transaction() as tx:
                jobs = await repo.claim_due(tx, now, self.cfg.batch, self.db.dialect)
                if not jobs:
                    return TickResult(0, 0, 0, ())
                batch = await self._fire(tx, jobs, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler batch failed; firing its jobs one at a time")
            batch = await self._one_by_one(now)
        return await self._after(batch)

    async def _one_by_one(self, now: int) -> _Batch:
        total = _Batch()
        errored: list[str] = []  # tried once in this pass: the next tick tries them again
        for _ in range(self.cfg.batch):
            claimed: list[repo.Job] = []
            try:
                async with self.db.transaction() as tx:
                    claimed = await repo.claim_due(tx, now, 1, self.db.dialect, errored)
                    if not claimed:
                        break
                    part = await self._fire(tx, claimed, now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not claimed:
                    raise
                job = claimed[0]
                errored.append(job.id)
                log.exception("notification job %s (%s) failed", job.id, job.kind)
                failed = await repo.job_error(self.db, job.id, _why(exc), now,
                                              give_up_after=MAX_JOB_ERRORS)
                total.claimed += 1
                total.failed += int(failed)
                continue
            total.add(part)
        return total

    async def _fire(self, tx: Any, jobs: list[repo.Job], now: int) -> _Batch:
        out = _Batch(claimed=len(jobs))
        threads = sorted({j.thread for j in jobs})
        users = sorted({j.user for j in jobs})
        contracts = await repo.load_contracts(tx, threads)
        chat_pairs = [(j.thread, j.user) for j in jobs if j.kind == "chat"]
        seqs = await repo.read_seqs(tx, chat_pairs)
        profiles = await repo.profiles(tx, users, tz=self.cfg.default_tz, quiet=self.cfg.quiet)
        prefs = await repo.user_prefs(tx, users)
        targets = await repo.targets(tx, users)
        outcomes: list[tuple[str, str, int, str]] = []
        inbox_rows: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        for job in jobs:
            try:
                if job.kind == "chat":
                    last = int(job.payload.get("last_seq", 0))
                    reason = "read in-app" if seqs.get((job.thread, job.user), 0) >= last \
                        else None
                else:
                    # The full send-time check, the one the delivery worker applies to every
                    # copy, on a first fire as on an operator's retry: a job can be
                    # overtaken before it fires (deposit paid, deadline changed again, the
                    # contract moved on) - after downtime, or while it lay failed.
                    reason = still_applies(job.kind, job.payload, contracts.get(job.thread),
                                           now)
                if reason is not None:
                    outcomes.append(("dropped", reason, now, job.id))
                    out.dropped += 1
                    continue
                payload = fire_payload(job.kind, job.payload, contracts.get(job.thread), now)
                if payload is not job.payload:
                    job = replace(job, payload=payload)
                notice, row, dels = self._render(job, contracts.get(job.thread),
                                                 profiles[job.user], prefs[job.user],
                                                 targets[job.user], now)
            except Exception as exc:  # one bad job must not stop the others
                log.exception("notification job %s (%s) cannot be fired", job.id, job.kind)
                outcomes.append(("failed", _why(exc), now, job.id))
                out.failed += 1
                continue
            inbox_rows.append(row)
            deliveries.extend(dels)
            if notice is not None:
                out.notices.append((job.user, notice))
            outcomes.append(("done", "fired", now, job.id))
            out.fired += 1
        await repo.insert_notices(tx, inbox_rows)
        await repo.insert_deliveries(tx, deliveries, now)
        await repo.finish_jobs(tx, outcomes)
        out.queued = len(deliveries)
        out.unread = await _unread_counts(tx, sorted({u for u, _ in out.notices}))
        return out

    def _render(self, job: repo.Job, contract: Any, prof: Any,
                user_prefs: dict[tuple[str, str], bool], user_targets: list[tuple[str, str]],
                now: int) -> tuple[dict[str, Any] | None, tuple[Any, ...], list[tuple[Any, ...]]]:
        """The inbox row, the live frame's notice (None if in-app is off) and the deliveries
        of one job that fires now."""
        category = CATEGORY[job.kind]
        params = contract.params() if contract is not None else {}
        params.update(job.payload)
        title, body = notice_text(job.kind, params, locale=prof.locale, tz=prof.tz)
        urgent = is_urgent(job.kind, job.payload)
        nid = new_id("n")
        inapp = enabled(user_prefs, category, "inapp")
        data = {"thread": job.thread, **{k: v for k, v in job.payload.items()
                                         if k in ("hours", "count", "days")}}
        row = (nid, job.user, job.id, job.kind, category, job.thread, title, body,
               repo.dumps(data), int(urgent), now, None if inapp else now)
        notice = None
        if inapp:
            notice = {"id": nid, "kind": job.kind, "category": category, "thread": job.thread,
                      "title": title, "body": body, "data": data, "urgent": urgent,
                      "seen": False, "read": False, "archived": False, "created_at": now}
        due = now if urgent else (quiet_until(now, prof.tz, prof.quiet_start,
                                              prof.quiet_end) or now)
        chans = list(user_targets)
        if prof.email:
            chans.append(("email", prof.email))
        deliveries = []
        for channel, target in chans:
            if enabled(user_prefs, category, pref_channel(channel)):
                deliveries.append((new_id("d"), nid, job.user, channel, target, due))
        return notice, row, deliveries

    async def _after(self, batch: _Batch) -> TickResult:
        """After the commit: live frames, wake the delivery worker, counters."""
        from chat.models import rfc3339

        out = []
        for user, notice in batch.notices:
            notice["created_at"] = rfc3339(notice["created_at"])
            payload = {"notification": notice, "unread": batch.unread.get(user, 0)}
            self.fanout.publish(Event(user_channel(user), "notification", payload))
            out.append(payload)
        if batch.queued and self.on_deliveries is not None:
            self.on_deliveries()
        self.fired += batch.fired
        self.dropped += batch.dropped
        self.failed += batch.failed
        return TickResult(batch.claimed, batch.fired, batch.dropped, tuple(out), batch.failed)

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
