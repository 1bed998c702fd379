"""The delivery worker: sends queued push and e-mail deliveries, retries, dead-letters.

Theory of operation:

* A delivery row (``notify_deliveries``) is created by the scheduler in the same transaction
  as its notice, ``queued`` with ``next_at`` (now, or the end of the user's quiet hours).
* :meth:`DeliveryWorker.tick` claims due rows in a short transaction (``sending`` with a
  short lease owned by this claim, renewed while the batch is worked on and released on a
  graceful stop; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), checks each copy again
  (:meth:`_recheck`: its category still on for its channel in the user's preferences, an
  e-mail copy's address still the user's, read in-app, overtaken by the contract's state,
  chat thread read; the target still registered to the user; a malformed row alone is
  dead-lettered; a deadline
  reminder sent late - held for quiet hours however briefly, retried - is worded with the
  time left now, or skipped as stale when the next reminder is due too), merges chat
  alerts of one user, thread and target due together into one digest (its count kept on
  the row), sends the rest concurrently outside any transaction, then records each outcome
  (only for rows it still leases): ``sent``; ``skipped`` with the reason; ``retry`` with
  exponential backoff and full jitter (not sooner than a Retry-After); ``dead`` after the
  last attempt or a permanent refusal (the dead-letter record); ``gone`` removes the Web
  Push subscription or device token. Every step is written to ``notify_delivery_log``. A
  node that dies mid-send leaves the row ``sending``; when the lease runs out another node
  takes it again (at-least-once; collapse keys and Message-ID absorb a repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from chat.models import new_id
from chat.store.db import Db

from . import repo
from .channels import Outgoing, Result, Sender
from .prefs import UserProfile, enabled, pref_channel
from .rules import ContractState, fire_payload, retry_delay_s, still_applies
from .scheduler import Clock
from .schema import DELIVERIES, DEVICES, INBOX, JOBS, WEBPUSH
from .texts import notice_text

log = logging.getLogger("tsunagu.notify.delivery")


def _digest_of(r: _Row) -> tuple[int, list[list[str]]]:
    """How many messages a chat alert stands for, and the deliveries it already covers."""
    if r.coalesced is None:
        return int(r.payload.get("count", 1)), []
    members = [[str(x[0]), str(x[1])] for x in r.coalesced.get("members", [])]
    return int(r.coalesced["count"]), members


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
    send_timeout_s: float = 10.0


# A Retry-After from a push service is honoured up to this long (a bad or hostile value must
# not park a delivery for days).
RETRY_AFTER_MAX_S = 3600.0
# Held chat alerts of this many (user, channel, target, thread) groups are claimed by one
# statement (4 parameters each).
GROUPS_PER_QUERY = 200


def _json_object(text: Any) -> dict[str, Any] | None:
    if not text:
        return None
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value




def _same_address(current: str, target: str) -> bool:
    """Is ``target`` (an e-mail copy's address when queued) still ``current``? The domain
    is compared without regard to case (RFC 5321), the local part exactly."""
    a_local, _, a_domain = current.rpartition("@")
    b_local, _, b_domain = target.rpartition("@")
    return a_local == b_local and a_domain.casefold() == b_domain.casefold()


def _why(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:300]


@dataclass(slots=True)
class _Row:
    """One claimed delivery with what sending it needs."""

    id: str
    notice: str
    user: str
    channel: str
    target: str
    attempts: int
    kind: str
    category: str
    thread: str
    title: str
    body: str
    urgent: bool
    read_at: int | None
    p256dh: str | None
    auth: str | None
    push_owner: str | None  # who the Web Push endpoint is registered to now
    device_owner: str | None  # who the FCM/APNs token is registered to now
    job_state: str | None
    payload: dict[str, Any]
    created_at: int
    coalesced: dict[str, Any] | None  # a digest's stored count and members (``coalesced``)
    skip: str | None = None  # why it is not sent, decided before sending
    fail: str | None = None  # why it cannot be sent at all (a malformed row): dead-lettered


_CLAIM_COLS = (
    "d.id, d.notice_id, d.user_id, d.channel, d.target, d.attempts, n.kind, n.category, "
    "n.thread_id, n.title, n.body, n.urgent, n.read_at, w.p256dh, w.auth, w.user_id, "
    "v.user_id, j.state, j.payload, n.created_at, d.coalesced")
_CLAIM_FROM = (
    f"{DELIVERIES} d JOIN {INBOX} n ON n.id = d.notice_id "
    f"LEFT JOIN {JOBS} j ON j.id = n.job_id "
    f"LEFT JOIN {WEBPUSH} w ON d.channel = 'webpush' AND w.endpoint = d.target "
    f"LEFT JOIN {DEVICES} v ON d.channel IN ('fcm', 'apns') AND v.platform = d.channel "
    "AND v.token = d.target")


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
        self.lost_leases = 0
        self._leases: dict[str, list[str]] = {}  # owner -> delivery ids of batches in hand

    def lease_us(self) -> int:
        """A claim is leased for ``lease_s`` only, however large the batch: a node that dies
        or is stopped mid-batch holds its rows that long at most. While the batch is being
        worked on the lease is renewed every third of it (:meth:`renew_leases`)."""
        return int(self.cfg.lease_s * 1_000_000)

    async def _claim(self, now: int, owner: str) -> list[_Row]:
        sql = (f"SELECT id FROM {DELIVERIES} WHERE (state IN ('queued', 'retry') AND "
               "next_at <= ?) OR (state = 'sending' AND lease_until < ?) "
               "ORDER BY next_at, id LIMIT ?")
        pg = self.db.dialect == "postgres"
        if pg:
            sql += " FOR UPDATE SKIP LOCKED"
        async with self.db.transaction() as tx:
            ids = [r[0] for r in await tx.fetch(sql, now, now, self.cfg.batch)]
            if not ids:
                return []
            rows = await self._fetch(tx, ids)
            # Held copies of chat alerts for the same user, thread and target that are due
            # too (quiet hours, retries) go out as ONE digest: claim them all.
            # One statement for (up to GROUPS_PER_QUERY of) the batch's groups, served by
            # the (user_id, channel, target, state, next_at) index.
            groups = sorted({(r.user, r.channel, r.target, r.thread) for r in rows
                             if r.kind == "chat"})
            seen = set(ids)
            more: list[str] = []
            for i in range(0, len(groups), GROUPS_PER_QUERY):
                part_g = groups[i:i + GROUPS_PER_QUERY]
                extra = await tx.fetch(
                    f"SELECT d.id FROM (VALUES {', '.join('(?, ?, ?, ?)' for _ in part_g)}) g "
                    f"JOIN {DELIVERIES} d ON d.user_id = g.column1 AND d.channel = g.column2 "
                    f"AND d.target = g.column3 JOIN {INBOX} n ON n.id = d.notice_id "
                    "AND n.thread_id = g.column4 WHERE n.kind = 'chat' "
                    "AND d.state IN ('queued', 'retry') AND d.next_at <= ?"
                    + (" FOR UPDATE OF d SKIP LOCKED" if pg else ""),
                    *(v for grp in part_g for v in grp), now)
                for x in extra:
                    if x[0] not in seen:
                        seen.add(x[0])
                        more.append(x[0])
            if more:
                ids.extend(more)
                rows.extend(await self._fetch(tx, more))
            lease = now + self.lease_us()
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                await tx.execute(
                    f"UPDATE {DELIVERIES} SET state = 'sending', lease_until = ?, "
                    f"lease_owner = ?, attempts = attempts + 1, updated_at = ? "
                    f"WHERE id IN ({', '.join('?' for _ in part)})", lease, owner, now, *part)
            for r in rows:
                r.attempts += 1
            return rows

    @staticmethod
    async def _fetch(tx: Any, ids: list[str]) -> list[_Row]:
        out: list[_Row] = []
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            for r in await tx.fetch(f"SELECT {_CLAIM_COLS} FROM {_CLAIM_FROM} "
                                    f"WHERE d.id IN ({', '.join('?' for _ in part)})", *part):
                # A malformed row is dead-lettered with the reason; the batch goes on.
                fail = None
                try:
                    payload = _json_object(r[18]) or {}
                except Exception as exc:
                    payload, fail = {}, f"failed: malformed notice payload ({_why(exc)})"
                try:
                    coalesced = _json_object(r[20])
                except Exception as exc:
                    coalesced = None
                    fail = fail or f"failed: malformed digest record ({_why(exc)})"
                out.append(_Row(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8],
                                r[9], r[10], bool(r[11]), r[12], r[13], r[14], r[15], r[16],
                                r[17], payload, int(r[19]), coalesced, fail=fail))
        return out

    async def tick(self) -> int:
        """Claim and send one batch; return how many deliveries were attempted."""
        now = self.clock.now_us()
        owner = new_id("lease")
        rows = await self._claim(now, owner)
        if not rows:
            return 0
        self._leases[owner] = [r.id for r in rows]
        renew = asyncio.create_task(self._renew(owner))
        done: dict[str, Result] = {}

        async def one(r: _Row, locale: str) -> Result:
            res = await self._one(r, locale)
            done[r.id] = res
            return res

        try:
            users = sorted({r.user for r in rows})
            profiles = await repo.profiles(self.db, users, tz=self.cfg.default_tz,
                                           quiet=("00:00", "00:00"))
            prefs = await repo.user_prefs(self.db, users)
            await self._recheck(rows, now, profiles, prefs)
            self._coalesce(rows, profiles)
            results = await asyncio.gather(*(one(r, profiles[r.user].locale) for r in rows))
        except asyncio.CancelledError:  # stopping: record what was sent, release the rest
            renew.cancel()
            await self._release(rows, done, owner)
            raise
        finally:
            self._leases.pop(owner, None)
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
        await self._record(rows, results, owner)
        return len(rows)

    async def _renew(self, owner: str) -> None:
        """Keep the batch's lease while it is being worked on."""
        every = max(0.05, self.cfg.lease_s / 3)
        while True:
            await asyncio.sleep(every)
            await self.renew_leases(owner)

    async def renew_leases(self, owner: str | None = None) -> int:
        """Extend the leases of the batches in hand (or of ``owner``'s) by ``lease_s`` from
        now; return how many rows are still this worker's."""
        until = self.clock.now_us() + self.lease_us()
        n = 0
        for own, ids in list(self._leases.items()):
            if owner is not None and own != owner:
                continue
            try:
                for i in range(0, len(ids), 500):
                    part = ids[i:i + 500]
                    n += await self.db.execute(
                        f"UPDATE {DELIVERIES} SET lease_until = ? WHERE lease_owner = ? AND "
                        f"state = 'sending' AND id IN ({', '.join('?' for _ in part)})",
                        until, own, *part)
            except Exception:  # the next renewal will do
                log.warning("could not renew a delivery lease", exc_info=True)
        return n

    async def _release(self, rows: list[_Row], done: Mapping[str, Result], owner: str
                       ) -> None:
        """A batch interrupted by a graceful stop: the outcomes already known are recorded;
        the rows not sent yet are queued again, due now, their attempt not counted, so
        another node (or this one after its restart) sends them at once."""
        try:
            sent = [r for r in rows if r.id in done]
            if sent:
                await self._record(sent, [done[r.id] for r in sent], owner)
            rest = [r for r in rows if r.id not in done]
            now = self.clock.now_us()
            async with self.db.transaction() as tx:
                for i in range(0, len(rest), 500):
                    part = [r.id for r in rest[i:i + 500]]
                    await tx.execute(
                        f"UPDATE {DELIVERIES} SET state = 'queued', next_at = ?, "
                        "lease_until = NULL, lease_owner = NULL, attempts = attempts - 1, "
                        f"updated_at = ? WHERE lease_owner = ? AND state = 'sending' AND id IN "
                        f"({', '.join('?' for _ in part)})", now, now, owner, *part)
                await repo.log_delivery(tx, [(r.id, r.notice, r.channel, "queued",
                                              "released: the worker stopped before sending",
                                              now) for r in rest])
        except Exception:  # the leases run out on their own
            log.warning("could not release the leases of an interrupted batch", exc_info=True)

    async def _recheck(self, rows: list[_Row], now: int,
                       profiles: Mapping[str, UserProfile],
                       prefs: Mapping[str, Mapping[tuple[str, str], bool]] | None = None
                       ) -> None:
        """Does each notice still apply now? A copy held for quiet hours or retried can be
        overtaken: the user turned its category off on its channel since (preferences,
        one-click unsubscribe), an e-mail copy's address is no longer the user's (changed
        or removed), the deposit paid, the contract cancelled, the deadline changed or
        passed (or, for a deadline reminder sent late, the next shorter reminder is due
        too), the chat thread read in-app or a newer chat digest of it delivered (on any
        channel: a re-queued or long-retried old alert). Such a copy is skipped, with the
        reason. A
        deadline reminder that is still sent but late (retried much later) or was held for
        quiet hours at all, however briefly, is worded again with the time really left now
        (:func:`rules.fire_payload`), not its lead time."""
        threads = sorted({r.thread for r in rows if r.kind != "chat"})
        contracts = await repo.load_contracts(self.db, threads)
        seqs = await repo.read_seqs(self.db, sorted({(r.thread, r.user) for r in rows
                                                     if r.kind == "chat"}))
        held = await repo.held_deliveries(self.db, sorted(
            {r.notice for r in rows if r.kind == "deadline_reminder" and r.fail is None}))
        overtaken = await repo.chat_overtaken(self.db, sorted(
            {r.notice for r in rows if r.kind == "chat" and r.fail is None}))
        for r in rows:
            if r.fail is not None:
                continue
            try:
                self._recheck_one(r, contracts, seqs, now, profiles.get(r.user),
                                  None if prefs is None else prefs.get(r.user, {}),
                                  held=r.id in held, overtaken_by=overtaken.get(r.notice))
            except Exception as exc:  # one malformed row fails alone
                log.warning("delivery %s cannot be checked", r.id, exc_info=True)
                r.fail = f"failed: cannot be checked ({_why(exc)})"

    @staticmethod
    def _recheck_one(r: _Row, contracts: Mapping[str, ContractState],
                     seqs: Mapping[tuple[str, str], int], now: int,
                     prof: UserProfile | None,
                     prefs: Mapping[tuple[str, str], bool] | None = None, *,
                     held: bool = False, overtaken_by: str | None = None) -> None:
        # (the in-app copy is not a delivery: its inbox row is stored when the notice fires)
        if prefs is not None and not enabled(prefs, r.category, pref_channel(r.channel)):
            r.skip = (f"skipped: the user turned {r.category} notifications off for "
                      f"{pref_channel(r.channel)} since the copy was queued")
        elif r.channel == "email" and prof is not None and not prof.email:
            r.skip = "skipped: the user no longer has an e-mail address"
        elif r.channel == "email" and prof is not None and \
                not _same_address(prof.email or "", r.target):
            r.skip = "skipped: the user's e-mail address changed since the copy was queued"
        elif r.read_at is not None:
            r.skip = "skipped: already read in-app"
        elif r.job_state == "cancelled":
            r.skip = "skipped: the notice was cancelled"
        elif r.kind == "chat":
            if seqs.get((r.thread, r.user), 0) >= int(r.payload.get("last_seq", 0)):
                r.skip = "skipped: read in-app"
            elif overtaken_by is not None:  # e.g. a re-queued or long-retried old alert
                r.skip = ("skipped: a newer chat digest of this conversation was delivered "
                          f"({overtaken_by})")
        else:
            state = contracts.get(r.thread)
            why = still_applies(r.kind, r.payload, state, now)
            if why is not None:
                r.skip = f"skipped: no longer applies ({why})"
            elif state is not None and prof is not None:
                # Held (quiet hours) or retried: "72 h left" is no longer true at 08:00,
                # nor "24 h left" after a hold of 30 min, nor "24 hours since the contract"
                # at 08:00 (rules.fire_payload says which notices change, and how).
                payload = fire_payload(r.kind, r.payload, state, now, held=held)
                if payload is not r.payload:
                    r.title, r.body = notice_text(r.kind, {**state.params(), **payload},
                                                  locale=prof.locale, tz=prof.tz)

    def _coalesce(self, rows: list[_Row], profiles: Mapping[str, Any]) -> None:
        """Chat alerts for one user, thread and target due together become one digest: the
        newest is sent, counting the unread messages of all of them; the others are
        skipped. The digest's count and the deliveries it covers are stored on the kept
        row (``coalesced``, written with its outcome), so a retry sends the same digest and
        a dead-lettered digest names the alerts it stood for."""
        groups: dict[tuple[str, str, str, str], list[_Row]] = {}
        for r in rows:
            if r.kind == "chat" and r.skip is None and r.fail is None:
                groups.setdefault((r.user, r.thread, r.channel, r.target), []).append(r)
        for group in groups.values():
            members: list[tuple[tuple[int, int], int, list[list[str]], _Row]] = []
            for m in group:
                try:
                    members.append(((m.created_at, int(m.payload.get("last_seq", 0))),
                                    *_digest_of(m), m))
                except Exception as exc:  # one malformed row fails alone
                    m.fail = f"failed: cannot be coalesced ({_why(exc)})"
            if not members or (len(members) < 2 and members[0][3].coalesced is None):
                continue
            members.sort(key=lambda x: x[0])
            keep = members[-1][3]
            count = sum(x[1] for x in members)
            covered = [*members[-1][2]]
            for _, _, sub, m in members[:-1]:
                covered.append([m.id, m.notice])
                covered.extend(sub)
            prof = profiles[keep.user]
            try:
                keep.title, keep.body = notice_text("chat", {**keep.payload, "count": count},
                                                    locale=prof.locale, tz=prof.tz)
            except Exception as exc:  # the others then go out on their own
                keep.fail = f"failed: cannot be rendered ({_why(exc)})"
                continue
            keep.coalesced = {"count": count, "members": covered}
            for _, _, _, m in members[:-1]:
                m.skip = f"skipped: coalesced into digest delivery {keep.id}"

    async def _one(self, r: _Row, locale: str) -> Result:
        if r.fail is not None:
            return Result(False, r.fail)
        if r.skip is not None:
            return Result(False, r.skip)
        channel = r.channel
        sender = self.senders.get(channel)
        if sender is None:
            return Result(False, f"channel {channel} is not configured")
        if channel == "webpush":
            if r.p256dh is None:
                return Result(False, "skipped: the subscription was removed")
            if r.push_owner != r.user:
                return Result(False, "skipped: the subscription now belongs to another user")
        if channel in ("fcm", "apns") and r.device_owner != r.user:
            return Result(False, "skipped: the device token was removed or now belongs to "
                                 "another user")
        out = Outgoing(r.id, r.notice, r.user, r.kind, r.category, r.thread, r.title, r.body,
                       bool(r.urgent), r.target, locale,
                       {"p256dh": r.p256dh, "auth": r.auth or ""} if r.p256dh else None)
        async with self._sem:
            try:
                return await sender.send(out)
            except Exception as exc:  # a sender bug must not stop the worker
                log.exception("sender %s failed", channel)
                return Result(False, f"error: {exc.__class__.__name__}: {exc}", retry=True)

    async def _record(self, rows: list[_Row], results: list[Result], owner: str) -> None:
        now = self.clock.now_us()
        updates: list[tuple[Any, ...]] = []
        log_rows: list[tuple[str, str, str, str, str | None, int]] = []
        gone_push: list[tuple[str, str]] = []
        gone_devices: list[tuple[str, str, str]] = []
        covered: list[tuple[str, int, str, str]] = []  # (why, now, member id, digest id)
        for r, res in zip(rows, results, strict=True):
            if res.ok:
                state, next_at = "sent", now
            elif res.detail.startswith("skipped"):
                state, next_at = "skipped", now
            elif res.retry and r.attempts < self.cfg.max_attempts:
                delay = retry_delay_s(r.attempts, base_s=self.cfg.retry_base_s,
                                      max_s=self.cfg.retry_max_s, rand=self.rng.random())
                if res.retry_after_s is not None:  # the service said when: not sooner
                    delay = max(delay, min(res.retry_after_s, RETRY_AFTER_MAX_S))
                state, next_at = "retry", now + int(delay * 1_000_000)
            else:
                state, next_at = "dead", now
            if res.gone:
                if r.channel == "webpush":
                    gone_push.append((r.target, r.user))
                elif r.channel in ("fcm", "apns"):
                    gone_devices.append((r.channel, r.target, r.user))
            digest = None if r.coalesced is None or state == "skipped" else \
                repo.dumps(r.coalesced)
            updates.append((state, next_at, res.detail[:500], digest, now, r.id, owner))
            detail = res.detail[:500] if state != "retry" else \
                f"{res.detail[:400]}; retry at {next_at}"
            log_rows.append((r.id, r.notice, r.channel, state, detail, now))
            if state == "dead" and r.coalesced is not None:
                # The alerts this digest stood for were not delivered either.
                why = f"covered by digest delivery {r.id}, which was dead-lettered: " \
                    f"{res.detail[:300]}"
                try:
                    stood_for = _digest_of(r)[1]
                except Exception:  # a malformed record: nothing to name
                    stood_for = []
                for mid, mnotice in stood_for:
                    log_rows.append((mid, mnotice, r.channel, "dead", why, now))
                    covered.append((why, now, mid, r.id))
        async with self.db.transaction() as tx:
            # Only rows this node still leases: one whose lease ran out and that another
            # node took over is that node's to record.
            held: set[str] = set()
            ids = [r.id for r in rows]
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                held.update(x[0] for x in await tx.fetch(
                    f"SELECT id FROM {DELIVERIES} WHERE lease_owner = ? AND state = 'sending' "
                    f"AND id IN ({', '.join('?' for _ in part)})", owner, *part))
            lost = len(rows) - len(held)
            if lost:
                self.lost_leases += lost
                log.warning("%d deliveries were taken over by another node before their "
                            "outcome was recorded", lost)
            await tx.executemany(
                f"UPDATE {DELIVERIES} SET state = ?, next_at = ?, last_error = ?, "
                "coalesced = coalesce(?, coalesced), lease_until = NULL, lease_owner = NULL, "
                "updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'sending'",
                [u for u in updates if u[5] in held])
            cov = [c for c in covered if c[3] in held]
            members = {c[2] for c in cov}
            await repo.log_delivery(tx, [lr for lr in log_rows
                                         if lr[0] in held or lr[0] in members])
            if cov:
                await tx.executemany(
                    f"UPDATE {DELIVERIES} SET last_error = ?, updated_at = ? "
                    "WHERE id = ? AND state = 'skipped'", [c[:3] for c in cov])
            for endpoint, user in gone_push:
                await tx.execute(f"DELETE FROM {WEBPUSH} WHERE endpoint = ? AND user_id = ?",
                                 endpoint, user)
            for platform, token, user in gone_devices:
                await tx.execute(f"DELETE FROM {DEVICES} WHERE platform = ? AND token = ? "
                                 "AND user_id = ?", platform, token, user)

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
