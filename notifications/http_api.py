"""HTTP routes of the notifications component.

    POST   /v1/events                           contract events (service token or signature)
    GET    /v1/notifications                    the inbox (?state=unread|all|archived, limit)
    GET    /v1/notifications/count              unread and unseen counts
    POST   /v1/notifications/seen               mark everything seen (the badge)
    POST   /v1/notifications/read-all           mark everything read
    POST   /v1/notifications/{id}/{action}      read | unread | archive | unarchive
    GET    /v1/notifications/{id}/deliveries    the delivery log of one notice
    GET    /v1/notifications/preferences        profile, quiet hours, channel matrix
    PUT    /v1/notifications/preferences        change any of them
    GET    /v1/notifications/webpush/key        the VAPID application server key
    POST   /v1/notifications/webpush            register a PushSubscription (JSON)
    DELETE /v1/notifications/webpush            remove one ({"endpoint": ...})
    POST   /v1/notifications/devices            register an FCM or APNs token
    DELETE /v1/notifications/devices            remove one ({"platform", "token"})
    GET|POST /v1/notifications/unsubscribe      e-mail one-click unsubscribe (signed link)
    GET    /v1/notifications/dead-letters       dead-lettered deliveries (service, admin)
    POST   /v1/notifications/dead-letters/{id}/requeue   send one again (idempotent)
    GET    /v1/notifications/failed-jobs        scheduler jobs that failed (service, admin)
    POST   /v1/notifications/failed-jobs/{id}/retry      fire one again (idempotent)
"""

from __future__ import annotations

import hmac
import html
import logging
import re
import time
from collections.abc import Callable, MutableSequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from chat.auth import Identity
from chat.config import Settings
from chat.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from chat.frames import MAX_ID_CHARS
from chat.http_api import (
    Body,
    Identify,
    checked_text,
    json_response,
    parse_thread_cursor,
    path_id,
    query_int,
    thread_cursor,
)
from chat.models import now_us, rfc3339
from chat.store.db import Db

from . import repo
from .channels import link_key, push_endpoint_error, unsubscribe_sig
from .events import parse_event, verify_signature
from .intake import Intake
from .prefs import CHANNELS, check_tz, enabled, parse_hhmm
from .rules import CATEGORIES
from .schema import DELIVERIES, DELIVERY_LOG, DEVICES, INBOX, JOBS, WEBPUSH

log = logging.getLogger("tsunagu.notify.http")

MAX_EVENT_BYTES = 65536
ACTIONS = {"read": ("read_at", True), "unread": ("read_at", False),
           "archive": ("archived_at", True), "unarchive": ("archived_at", False)}
DELIVERY_CHANNELS = ("webpush", "fcm", "apns", "email")
# A dead letter as the operators' routes show it.
_DEAD_COLS = ("d.id, d.notice_id, d.user_id, d.channel, d.target, d.state, d.attempts, "
              "d.last_error, d.next_at, d.created_at, d.updated_at, n.kind, n.category, "
              "n.thread_id, n.title")
_DEAD_FROM = f"{DELIVERIES} d LEFT JOIN {INBOX} n ON n.id = d.notice_id"
# A scheduler job as the operators' routes show it (never its payload).
_JOB_COLS = ("id, kind, thread_id, user_id, due_at, state, attempts, outcome, fired_at, "
             "created_at, retried_at")
_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")


class NotificationsApi:
    def __init__(self, settings: Settings, db: Db, identify: Identify, intake: Intake,
                 *, vapid_public_key: str | None, clock: Any, on_event: Any = None,
                 on_requeue: Any = None, on_retry: Any = None) -> None:
        self.s = settings
        self.db = db
        self.identify = identify  # the node's bearer-token check and HTTP rate limit
        self.intake = intake
        self.vapid_public_key = vapid_public_key
        self.on_event = on_event
        self.on_requeue = on_requeue  # wakes the delivery worker
        self.on_retry = on_retry  # wakes the scheduler
        self.clock = clock  # notify.scheduler.Clock: events are stamped with its time

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/events", self.post_event),
            web.get("/v1/notifications", self.list),
            web.get("/v1/notifications/count", self.count),
            web.post("/v1/notifications/seen", self.seen),
            web.post("/v1/notifications/read-all", self.read_all),
            web.get("/v1/notifications/preferences", self.get_prefs),
            web.put("/v1/notifications/preferences", self.put_prefs),
            web.get("/v1/notifications/webpush/key", self.webpush_key),
            web.post("/v1/notifications/webpush", self.add_webpush),
            web.delete("/v1/notifications/webpush", self.del_webpush),
            web.post("/v1/notifications/devices", self.add_device),
            web.delete("/v1/notifications/devices", self.del_device),
            web.get("/v1/notifications/unsubscribe", self.unsubscribe),
            web.post("/v1/notifications/unsubscribe", self.unsubscribe),
            web.get("/v1/notifications/dead-letters", self.dead_letters),
            web.post("/v1/notifications/dead-letters/{id}/requeue", self.requeue),
            web.get("/v1/notifications/failed-jobs", self.failed_jobs),
            web.post("/v1/notifications/failed-jobs/{id}/retry", self.retry_job),
            web.get("/v1/notifications/{id}/deliveries", self.deliveries),
            web.post("/v1/notifications/{id}/{action}", self.act),
        ]

    async def user(self, request: web.Request) -> Identity:
        """The caller; their locale and time zone are remembered for their notices."""
        who = self.identify(request)
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT locale, tz FROM notify_users WHERE user_id = ?",
                                    who.user_id)
            if row is None:
                await repo.upsert_user(tx, who.user_id, now_us(), name=who.name,
                                       locale=who.locale, tz=_tz_or_none(who.tz))
        return who

    # --- events
    async def post_event(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
            raise TooLarge(f"an event is at most {MAX_EVENT_BYTES} bytes")
        body = await request.read()
        if len(body) > MAX_EVENT_BYTES:
            raise TooLarge(f"an event is at most {MAX_EVENT_BYTES} bytes")
        if "X-Tsunagu-Signature" in request.headers:
            verify_signature(str(self.s.notify_event_secret),
                             request.headers.get("X-Tsunagu-Timestamp"),
                             request.headers.get("X-Tsunagu-Signature"), body,
                             now_s=time.time(), window_s=self.s.notify_event_window_s)
        else:
            who = self.identify(request)
            if not who.has("service"):
                raise Forbidden("events need the service role or a signature")
        ev = parse_event(body)
        outcome = await self.intake.handle(ev, self.clock.now_us())
        if self.on_event is not None:
            self.on_event()
        return json_response({**outcome.result, "duplicate": outcome.duplicate})

    # --- inbox
    async def list(self, request: web.Request) -> web.Response:
        who = await self.user(request)
        state = request.query.get("state", "all")
        limit = query_int(request, "limit", default=50, lo=1, hi=200) or 50
        where = {"all": "archived_at IS NULL", "unread": "archived_at IS NULL AND read_at IS NULL",
                 "archived": "archived_at IS NOT NULL"}.get(state)
        if where is None:
            raise BadRequest("state must be all, unread or archived")
        rows = await self.db.fetch(
            f"SELECT {repo.INBOX_COLS} FROM {INBOX} WHERE user_id = ? AND {where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?", who.user_id, limit)
        counts = await self._counts(who.user_id)
        return json_response({"notifications": [repo.notice_json(r) for r in rows], **counts})

    async def _counts(self, user: str) -> dict[str, int]:
        row = await self.db.fetchrow(
            f"SELECT sum(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN seen_at IS NULL THEN 1 ELSE 0 END) FROM {INBOX} "
            "WHERE user_id = ? AND archived_at IS NULL", user)
        return {"unread": int(row[0] or 0) if row else 0, "unseen": int(row[1] or 0) if row else 0}

    async def count(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        return json_response(await self._counts(who.user_id))

    async def seen(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        await self.db.execute(f"UPDATE {INBOX} SET seen_at = ? WHERE user_id = ? AND "
                              "seen_at IS NULL", now_us(), who.user_id)
        return json_response(await self._counts(who.user_id))

    async def read_all(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        now = now_us()
        await self.db.execute(
            f"UPDATE {INBOX} SET read_at = ?, seen_at = coalesce(seen_at, ?) WHERE user_id = ? "
            "AND read_at IS NULL", now, now, who.user_id)
        return json_response(await self._counts(who.user_id))

    async def act(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        action = request.match_info["action"]
        if action not in ACTIONS:
            raise NotFound(f"unknown action {action!r}; use read, unread, archive or unarchive")
        column, on = ACTIONS[action]
        now = now_us()
        value = now if on else None
        extra = ", seen_at = coalesce(seen_at, ?)" if column == "read_at" and on else ""
        args: list[Any] = [value] + ([now] if extra else [])
        changed = await self.db.execute(
            f"UPDATE {INBOX} SET {column} = ?{extra} WHERE id = ? AND user_id = ?",
            *args, path_id(request), who.user_id)
        if not changed:
            raise NotFound("no such notification")
        row = await self.db.fetchrow(f"SELECT {repo.INBOX_COLS} FROM {INBOX} WHERE id = ?",
                                     path_id(request))
        assert row is not None
        return json_response({"notification": repo.notice_json(row),
                              **await self._counts(who.user_id)})

    async def deliveries(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        nid = path_id(request)
        owner = await self.db.fetchval(f"SELECT user_id FROM {INBOX} WHERE id = ?", nid)
        if owner is None or (owner != who.user_id and not who.has("service", "admin")):
            raise NotFound("no such notification")
        rows = await self.db.fetch(
            f"SELECT delivery_id, channel, state, detail, at FROM {DELIVERY_LOG} "
            "WHERE notice_id = ? ORDER BY at, id", nid)
        return json_response({"log": [{"delivery": r[0], "channel": r[1], "state": r[2],
                                       "detail": r[3], "at": rfc3339(r[4])} for r in rows]})

    # --- dead letters (operators)
    def operator(self, request: web.Request) -> Identity:
        who = self.identify(request)
        if not who.has("service", "admin"):
            raise Forbidden("this call needs the service or admin role")
        return who

    async def dead_letters(self, request: web.Request) -> web.Response:
        """Dead-lettered deliveries (the last attempt failed, a permanent refusal, a
        malformed row), most recent first; ``user`` and ``channel`` filter, ``limit`` and
        ``before`` (the ``next`` of the previous page) page."""
        self.operator(request)
        where: list[str] = ["d.state = 'dead'"]
        args: list[Any] = []
        user = request.query.get("user")
        if user is not None:
            where.append("d.user_id = ?")
            args.append(checked_text(user, "query parameter 'user'", max_chars=MAX_ID_CHARS))
        channel = request.query.get("channel")
        if channel is not None:
            if channel not in DELIVERY_CHANNELS:
                raise BadRequest("query parameter 'channel' must be one of "
                                 f"{', '.join(DELIVERY_CHANNELS)}")
            where.append("d.channel = ?")
            args.append(channel)
        # A dead row's next_at is when it died: served by the (state, next_at) index.
        return await self._page(request, f"SELECT {_DEAD_COLS} FROM {_DEAD_FROM}", where, args,
                                ("d.next_at", "d.id", 8), "dead_letters", _dead_json)

    async def _page(self, request: web.Request, select: str, where: MutableSequence[str],
                    args: MutableSequence[Any], order: tuple[str, str, int], key: str,
                    render: Callable[[Any], dict[str, Any]]) -> web.Response:
        """One page of an operator listing, newest first by ``order`` (time column, id
        column, the time's index in a row): ``limit``, and ``before`` = the previous page's
        ``next``."""
        limit = query_int(request, "limit", default=50, lo=1, hi=200)
        assert limit is not None
        at_col, id_col, at_index = order
        raw = request.query.get("before")
        if raw is not None:
            at, last = parse_thread_cursor(raw)
            where.append(f"({at_col} < ? OR ({at_col} = ? AND {id_col} < ?))")
            args.extend((at, at, last))
        rows = await self.db.fetch(
            f"{select} WHERE {' AND '.join(where)} ORDER BY {at_col} DESC, {id_col} DESC "
            "LIMIT ?", *args, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = thread_cursor(int(rows[-1][at_index] or 0), rows[-1][0]) if more else None
        return json_response({key: [render(r) for r in rows], "next": nxt})

    async def requeue(self, request: web.Request) -> web.Response:
        """Send a dead-lettered delivery again: ``queued``, due now, with a fresh budget of
        attempts; it is checked again before sending like any held copy. Idempotent: a
        delivery re-queued already (and not dead again) is left as it is (``requeued``
        false); one that was never dead-lettered is 409, and so is a chat alert whose
        thread has had a newer chat digest delivered to the user since."""
        who = self.operator(request)
        did = path_id(request)
        now = self.clock.now_us()
        lock = " FOR UPDATE OF d" if self.db.dialect == "postgres" else ""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(f"SELECT {_DEAD_COLS} FROM {_DEAD_FROM} WHERE d.id = ?"
                                    f"{lock}", did)
            if row is None:
                raise NotFound("no such delivery")
            requeued = row[5] == "dead"
            if requeued and row[11] == "chat":
                # A chat alert re-queued after a newer digest of its thread reached the user
                # would alert about messages that one covered (or that were read since).
                newer = (await repo.chat_overtaken(tx, [row[1]])).get(row[1])
                if newer is not None:
                    raise Conflict(f"delivery {did} is a chat alert of a conversation whose "
                                   f"newer chat digest was delivered since ({newer}); "
                                   "that one told the user")
            if requeued:
                await tx.execute(
                    f"UPDATE {DELIVERIES} SET state = 'queued', attempts = 0, next_at = ?, "
                    "lease_until = NULL, lease_owner = NULL, updated_at = ? "
                    "WHERE id = ? AND state = 'dead'", now, now, did)
                await repo.log_delivery(tx, [(did, row[1], row[3], "requeued",
                                              "re-queued by an operator", now)])
            elif not await tx.fetchval(
                    f"SELECT count(*) FROM {DELIVERY_LOG} WHERE notice_id = ? AND "
                    "delivery_id = ? AND state = 'requeued'", row[1], did):
                raise Conflict(f"delivery {did} is not dead-lettered (it is {row[5]})")
            row = await tx.fetchrow(f"SELECT {_DEAD_COLS} FROM {_DEAD_FROM} WHERE d.id = ?",
                                    did)
            assert row is not None
        if requeued:
            log.info("delivery %s re-queued by %s", did, who.user_id)
            if self.on_requeue is not None:
                self.on_requeue()
        return json_response({"delivery": _dead_json(row), "requeued": requeued})

    # --- failed scheduler jobs (operators)
    async def failed_jobs(self, request: web.Request) -> web.Response:
        """Scheduler jobs marked ``failed`` (they could not be rendered or written), most
        recently failed first; ``kind`` and ``thread`` filter, ``limit`` and ``before`` (the
        ``next`` of the previous page) page."""
        self.operator(request)
        where: list[str] = ["state = 'failed'"]
        args: list[Any] = []
        kind = request.query.get("kind")
        if kind is not None:
            if not _KIND.fullmatch(kind):
                raise BadRequest("query parameter 'kind' must be a job kind (lowercase "
                                 "letters, digits and '_', at most 64 characters)")
            where.append("kind = ?")
            args.append(kind)
        thread = request.query.get("thread")
        if thread is not None:
            where.append("thread_id = ?")
            args.append(checked_text(thread, "query parameter 'thread'",
                                     max_chars=MAX_ID_CHARS))
        # A failed job's fired_at is when it failed: served by the partial index
        # notify_jobs_failed (or notify_jobs_thread with a thread).
        return await self._page(request, f"SELECT {_JOB_COLS} FROM {JOBS}", where, args,
                                ("fired_at", "id", 8), "failed_jobs", _job_json)

    async def retry_job(self, request: web.Request) -> web.Response:
        """Fire a failed job again: ``pending``, due now, its attempts reset; the scheduler
        checks it like any job (a stale or cancelled one is dropped). Idempotent: a job
        retried already (and not failed again) is left as it is (``retried`` false); one
        that never failed is 409."""
        who = self.operator(request)
        jid = path_id(request)
        now = self.clock.now_us()
        postgres = self.db.dialect == "postgres"
        lock = " FOR UPDATE" if postgres else ""
        async with self.db.transaction() as tx:
            if postgres:
                # The chat watcher adds to (or inserts) a conversation's pending digest under
                # pg_advisory_xact_lock(hashtext(group_key)). Take the same lock before the
                # check for a newer pending digest below, so a digest the watcher is inserting
                # meanwhile is either committed before the check (and seen: 409) or inserted
                # after this retry commits (and the watcher then adds to the retried job,
                # which is pending again). Taken before the row lock, as the watcher takes it
                # before touching job rows. (SQLite has one writer: no race there.)
                group = await tx.fetchval(f"SELECT group_key FROM {JOBS} WHERE id = ?", jid)
                if group:
                    await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", group)
            row = await tx.fetchrow(f"SELECT {_JOB_COLS} FROM {JOBS} WHERE id = ?{lock}", jid)
            if row is None:
                raise NotFound("no such job")
            retried = row[5] == "failed"
            if retried:
                # A chat digest is one pending job per conversation (see the watcher): while
                # a newer one is pending, it alerts the user; a second would alert twice.
                newer = await tx.fetchrow(
                    f"SELECT j.id FROM {JOBS} AS j JOIN {JOBS} AS f ON j.group_key = "
                    "f.group_key WHERE f.id = ? AND j.state = 'pending' AND j.id <> f.id", jid)
                if newer is not None:
                    raise Conflict(f"job {jid} is a chat digest whose conversation has a "
                                   f"newer pending digest ({newer[0]}); that one alerts")
                # outcome keeps the last error until the job is fired (or fails) again
                await tx.execute(
                    f"UPDATE {JOBS} SET state = 'pending', due_at = ?, attempts = 0, "
                    "fired_at = NULL, retried_at = ? WHERE id = ? AND state = 'failed'",
                    now, now, jid)
                row = await tx.fetchrow(f"SELECT {_JOB_COLS} FROM {JOBS} WHERE id = ?", jid)
                assert row is not None
            elif row[10] is None:
                raise Conflict(f"job {jid} has not failed (it is {row[5]})")
        if retried:
            log.info("notification job %s (%s, thread %s) retried by %s", jid, row[1], row[2],
                     who.user_id)
            if self.on_retry is not None:
                self.on_retry()
        return json_response({"job": _job_json(row), "retried": retried})

    # --- preferences
    async def _prefs_doc(self, user: str) -> dict[str, Any]:
        prof = (await repo.profiles(self.db, [user], tz=self.s.notify_default_tz,
                                    quiet=(self.s.notify_quiet_start,
                                           self.s.notify_quiet_end)))[user]
        prefs = (await repo.user_prefs(self.db, [user]))[user]
        return {"locale": prof.locale, "tz": prof.tz, "email": prof.email, "name": prof.name,
                "quiet_hours": {"start": prof.quiet_start, "end": prof.quiet_end},
                "channels": {c: {ch: enabled(prefs, c, ch) for ch in CHANNELS}
                             for c in CATEGORIES}}

    async def get_prefs(self, request: web.Request) -> web.Response:
        who = await self.user(request)
        return json_response(await self._prefs_doc(who.user_id))

    async def put_prefs(self, request: web.Request) -> web.Response:
        who = await self.user(request)
        body = await Body.read(request)
        locale = body.text("locale", max_chars=2, required=False)
        if locale is not None and locale not in ("ja", "en"):
            raise BadRequest("locale must be ja or en")
        tz = body.text("tz", max_chars=64, required=False)
        if tz is not None:
            check_tz(tz)
        email = body.text("email", max_chars=254, required=False)
        if email is not None and ("@" not in email or any(c in email for c in "\r\n <>,")):
            raise BadRequest("email is not an address")
        quiet = body.obj("quiet_hours")
        qs = qe = None
        if quiet is not None:
            qs, qe = str(quiet.get("start", "")), str(quiet.get("end", ""))
            parse_hhmm(qs)
            parse_hhmm(qe)
        channels = body.obj("channels") or {}
        updates: list[tuple[str, str, bool]] = []
        for cat, chans in channels.items():
            if cat not in CATEGORIES or not isinstance(chans, dict):
                raise BadRequest(f"channels: unknown category {cat!r}")
            for ch, on in chans.items():
                if ch not in CHANNELS or not isinstance(on, bool):
                    raise BadRequest(f"channels.{cat}: {ch!r} must be one of {CHANNELS} "
                                     "with a boolean")
                updates.append((cat, ch, on))
        async with self.db.transaction() as tx:
            await repo.upsert_user(tx, who.user_id, now_us(), locale=locale, tz=tz,
                                   email=email, quiet_start=qs, quiet_end=qe)
            for cat, ch, on in updates:
                await repo.set_pref(tx, who.user_id, cat, ch, on)
        return json_response(await self._prefs_doc(who.user_id))

    # --- subscriptions
    async def webpush_key(self, request: web.Request) -> web.Response:
        if self.vapid_public_key is None:
            raise NotFound("Web Push is not configured")
        return json_response({"key": self.vapid_public_key})

    async def add_webpush(self, request: web.Request) -> web.Response:
        who = await self.user(request)
        if self.vapid_public_key is None:
            raise NotFound("Web Push is not configured")
        body = await Body.read(request)
        endpoint = body.req_str("endpoint", max_chars=2048)
        refused = push_endpoint_error(endpoint, self.s)
        if refused is not None:
            raise BadRequest(refused)
        keys = Body(body.obj("keys") or {})
        p256dh, auth = keys.req_str("p256dh", max_chars=200), keys.req_str("auth", max_chars=100)
        await self.db.execute(
            f"INSERT INTO {WEBPUSH} VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET "
            "user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
            endpoint, who.user_id, p256dh, auth, now_us())
        return json_response({"ok": True}, 201)

    async def del_webpush(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        body = await Body.read(request)
        n = await self.db.execute(f"DELETE FROM {WEBPUSH} WHERE endpoint = ? AND user_id = ?",
                                  body.req_str("endpoint", max_chars=2048), who.user_id)
        return json_response({"removed": n})

    async def add_device(self, request: web.Request) -> web.Response:
        who = await self.user(request)
        body = await Body.read(request)
        platform = body.req_str("platform", max_chars=8)
        if platform not in ("fcm", "apns"):
            raise BadRequest("platform must be fcm or apns")
        token = body.req_str("token", max_chars=4096)
        if platform == "apns" and not all(c in "0123456789abcdefABCDEF" for c in token):
            raise BadRequest("an APNs device token is hexadecimal")
        await self.db.execute(
            f"INSERT INTO {DEVICES} VALUES (?, ?, ?, ?) ON CONFLICT (platform, token) DO UPDATE "
            "SET user_id = excluded.user_id", token, platform, who.user_id, now_us())
        return json_response({"ok": True}, 201)

    async def del_device(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        body = await Body.read(request)
        n = await self.db.execute(
            f"DELETE FROM {DEVICES} WHERE platform = ? AND token = ? AND user_id = ?",
            body.req_str("platform", max_chars=8), body.req_str("token", max_chars=4096),
            who.user_id)
        return json_response({"removed": n})

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """E-mail unsubscribe link. GET only shows a confirmation page (mail scanners and link
        previews fetch links: a GET must not change anything); POST unsubscribes — the
        one-click POST of RFC 8058 (``List-Unsubscribe=One-Click``) or the page's button.
        A link that is not valid answers 403: a ja/en page to a person, JSON otherwise."""
        user, cat, sig = (request.query.get(k, "") for k in ("u", "c", "s"))
        form = await request.post() if request.method == "POST" and request.can_read_body else {}
        confirmed = form.get("confirm") == "1"  # the button of the confirmation page
        key = link_key(self.s)
        # bytes: compare_digest raises TypeError on a str that is not ASCII
        if key is None or cat not in CATEGORIES or not hmac.compare_digest(
                sig.encode("utf-8", "replace"), unsubscribe_sig(key, user, cat).encode()):
            # A person (who opened the link or pressed the page's button) gets a ja/en page;
            # the one-click POST and a client asking for JSON get the JSON error.
            if (request.method == "GET" or confirmed) and not _asks_for_json(request):
                return _html(_invalid_link_page(), status=403)
            raise Forbidden("this unsubscribe link is not valid")
        if request.method == "GET":
            return _html(_unsubscribe_page(cat, done=False))
        await repo.set_pref(self.db, user, cat, "email", False)
        if confirmed:
            return _html(_unsubscribe_page(cat, done=True))
        return json_response({"ok": True, "user": user, "category": cat, "email": False})


def _target_hint(channel: str, target: str) -> str:
    """Enough of a delivery's target to tell targets apart, not the target itself (a push
    endpoint or device token lets anyone who holds it push to the device)."""
    if channel == "webpush":
        try:
            parts = urlsplit(target)
            return f"{parts.scheme}://{parts.hostname or '?'}/…"
        except ValueError:
            return "…"
    if channel == "email":
        local, at, domain = target.rpartition("@")
        return f"{local[:1]}…@{domain}" if at else "…"
    return f"…{target[-6:]}" if len(target) > 12 else "…"


def _dead_json(r: Any) -> dict[str, Any]:
    return {"id": r[0], "notice": r[1], "user": r[2], "channel": r[3],
            "target": _target_hint(r[3], r[4]), "state": r[5], "attempts": int(r[6]),
            "error": _scrub(r[7], r[3], r[4]),
            "dead_at": rfc3339(int(r[8])) if r[5] == "dead" else None,
            "created_at": rfc3339(int(r[9])), "updated_at": rfc3339(int(r[10])),
            "kind": r[11], "category": r[12], "thread": r[13], "title": r[14]}


# What an error text may carry that must not be shown: a URL's path (a push endpoint is a
# capability), with or without its scheme (``host.example/path``: the host stays), an e-mail
# address (any run of characters around an ``@``: IDN, ``bob@localhost``, ``bob@[192.0.2.1]``;
# the first character and the domain stay), a long token (a device token, a key).
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://(?:[^/\s'\"@]*@)?([^/?#\s'\"]+)"
                  r"[^\s'\"]*")
_HOST_PATH = re.compile(r"(?<![\w.:/@%-])([\w-]+(?:\.[\w-]+)+(?::\d+)?)/[^\s'\"]*")
_EMAIL = re.compile(r"[^\s'\"<>()\[\],;:@]+@(\[[^\]\s'\"]*\]|[^\s'\"<>()\[\],;:@]+)")
_TOKEN = re.compile(r"[A-Za-z0-9_+/=:-]{40,}")


def _email_hint(m: re.Match[str]) -> str:
    domain, end = m.group(1), ""
    if not domain.startswith("["):  # a full stop after the address is the sentence's
        stripped = domain.rstrip(".")
        domain, end = stripped, domain[len(stripped):]
    return f"{m.group(0)[:1]}…@{domain}{end}"


def _scrub(text: str | None, channel: str | None = None, target: str | None = None
           ) -> str | None:
    """An error text without the secrets it may quote (see above); a dead letter's own
    ``target`` is first replaced, wherever it appears verbatim, by its hint."""
    if text is None:
        return None
    if channel is not None and target:
        text = text.replace(target, _target_hint(channel, target))
    text = _URL.sub(lambda m: f"{m.group(1)}://{m.group(2)}/…", text)
    text = _HOST_PATH.sub(lambda m: f"{m.group(1)}/…", text)
    text = _EMAIL.sub(_email_hint, text)
    return _TOKEN.sub("…", text)


def _job_json(r: Any) -> dict[str, Any]:
    state, outcome = r[5], r[7]
    # a failed or pending job's outcome is its last error; a finished one's says what it did
    last_error = outcome if state in ("failed", "pending") else None
    return {"id": r[0], "kind": r[1], "thread": r[2], "user": r[3],
            "due_at": rfc3339(int(r[4])), "state": state,
            "attempts": None if r[6] is None else int(r[6]), "error": _scrub(last_error),
            "outcome": None if last_error is not None else _scrub(outcome),
            "failed_at": rfc3339(int(r[8])) if state == "failed" and r[8] is not None
            else None,
            "created_at": rfc3339(int(r[9])),
            "retried_at": None if r[10] is None else rfc3339(int(r[10]))}


_CATEGORY_LABELS = {
    "contract": ("契約・仮払い", "contracts and deposits"), "deadline": ("納期", "deadlines"),
    "review": ("検収・評価", "deliveries and reviews"), "chat": ("メッセージ", "messages"),
}


def _unsubscribe_page(category: str, *, done: bool) -> str:
    ja, en = _CATEGORY_LABELS.get(category, (category, category))
    ja, en = html.escape(ja), html.escape(en)
    if done:
        body = (f"<p lang=ja>「{ja}」に関するメールの配信を停止しました。アプリ内の通知は届きます。</p>"
                f"<p lang=en>You will no longer get e-mails about {en}. In-app notices "
                "continue.</p>")
    else:
        body = (f"<p lang=ja>「{ja}」に関するメールの配信を停止しますか？</p>"
                f"<p lang=en>Stop e-mails about {en}?</p>"
                "<form method=post><input type=hidden name=confirm value=1>"
                "<button type=submit>配信停止 / Unsubscribe</button></form>")
    return _page(body)


def _invalid_link_page() -> str:
    """The answer to a link that is not (or no longer) valid: what to do, in ja and en."""
    return _page("<p lang=ja>この配信停止リンクは無効です。メールのリンクが途中で切れていないか"
                 "ご確認ください。メールの配信設定はアプリの通知設定からも変更できます。</p>"
                 "<p lang=en>This unsubscribe link is not valid. Check that the whole link "
                 "from the e-mail was opened. You can also choose which e-mails you get in "
                 "the app's notification settings.</p>")


def _page(body: str) -> str:
    return ("<!doctype html><html lang=ja><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>配信停止 / Unsubscribe</title><main>{body}</main></html>")


def _html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _asks_for_json(request: web.Request) -> bool:
    """The Accept header names JSON and not HTML (a browser's names HTML)."""
    accept = request.headers.get("Accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def _tz_or_none(tz: str) -> str | None:
    try:
        return check_tz(tz)
    except BadRequest:
        return None
