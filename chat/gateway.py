"""The WebSocket gateway at ``/v1/ws``: handshake, hello, the frame loop, drain.

The handler only carries bytes: frames are decoded by :mod:`chat.frames`, decisions are
made by :class:`~chat.service.ChatService` and pushes are ordered by
:class:`~chat.session.Connection`. See ``docs/protocol.md`` for the frames.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from . import frames as F
from .auth import Identity, TokenVerifier
from .config import Settings
from .errors import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_UNAUTHORIZED,
    BadFrame,
    ChatError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from .fanout import Event, role_channel, thread_channel, user_channel
from .limits import RateLimiter
from .models import ThreadBrief
from .presence import Presence
from .service import ChatService
from .session import Connection

log = logging.getLogger("tsunagu.gateway")

STAFF_ROLES = ("moderator", "dispute", "admin")


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...],
                   scheme: str) -> bool:
    """Cross-site WebSocket hijacking guard: a browser's Origin must be allowed.

    No Origin header (a non-browser client) is accepted; the token still decides. Same
    origin (the page was served by tsunagu itself) is accepted.
    """
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    return host is not None and origin in (f"http://{host}", f"https://{host}",
                                           f"{scheme}://{host}")


class Gateway:
    def __init__(
        self,
        settings: Settings,
        service: ChatService,
        verifier: TokenVerifier,
        presence: Presence,
    ) -> None:
        self.settings = settings
        self.service = service
        self.verifier = verifier
        self.presence = presence
        self.hub = service.fanout.hub
        self.limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)
        # sockets opened per user: a client reconnecting in a loop costs the node a read of
        # the user's threads and every participant of them a presence push per attempt
        self.hello_limiter = RateLimiter(settings.hello_rate_per_s, settings.hello_rate_burst)
        self.connections: set[Connection] = set()
        self._greeting: set[web.WebSocketResponse] = set()  # upgraded, waiting for hello
        self.draining = False
        self._inflight = 0
        # Token expiries: one heap and one timer for the node, not a timer per connection
        # (an idle connection's timer, bound method and arguments were ~600 bytes).
        # Entries: (exp, tie-breaker, weak reference to the connection); a refreshed token
        # adds an entry, and the stale one is skipped when it comes up.
        self._expiries: list[tuple[float, int, weakref.ref[Connection]]] = []
        self._expiry_seq = itertools.count()
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = float("inf")  # when the timer fires (wall clock, like ``exp``)
        self._heartbeat: asyncio.Task[None] | None = None
        service.fanout.on_resync = self.resync

    # --- the handler
    async def handle(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        if self.draining:
            raise web.HTTPServiceUnavailable(
                text='{"error":{"code":"unavailable","message":"draining"}}',
                content_type="application/json",
            )
        if not origin_allowed(request.headers.get("Origin"), request.host, s.allowed_origins,
                              request.scheme):
            raise web.HTTPForbidden(
                text='{"error":{"code":"forbidden","message":"origin not allowed"}}',
                content_type="application/json",
            )
        # No per-socket heartbeat timer: one node-wide sweep pings idle connections
        # (``_heartbeat_loop``), and pings and pongs are handled here (autoping off).
        ws = web.WebSocketResponse(
            heartbeat=None, autoping=False, max_msg_size=s.max_frame_bytes, compress=False
        )
        await ws.prepare(request)
        self._greeting.add(ws)
        try:
            identity, resume, hello_id = await self._hello(ws)
        finally:
            self._greeting.discard(ws)
        if identity is None:
            return ws
        if self.draining:  # the drain started while this socket's hello was on its way
            await ws.close(code=CLOSE_GOING_AWAY, message=b"server draining")
            return ws
        if self.presence.connections(identity.user_id) >= s.max_connections_per_user:
            await ws.close(code=CLOSE_TOO_MANY_CONNECTIONS, message=b"too many connections")
            return ws
        wait = self.hello_limiter.check(identity.user_id)
        if wait > 0:
            await ws.close(code=CLOSE_TOO_MANY_CONNECTIONS,
                           message=f"reconnecting too fast; retry in {math.ceil(wait)} s".encode())
            return ws
        transport = request.transport
        conn = Connection(ws, identity, self.service.store, queue_depth=s.outbound_queue_depth,
                          close_timeout=s.close_timeout_s,
                          abort=transport.abort if transport is not None else None)
        conn.on_join = self._on_join
        conn.last_seen = asyncio.get_running_loop().time()
        self.connections.add(conn)
        self._schedule_expiry(conn)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="ws-heartbeat")
        try:
            try:
                await self._open(conn, resume, hello_id)
            except ChatError as exc:  # storage unreachable at hello: the client retries
                log.warning("hello of %s failed: %s", identity.user_id, exc.message)
                await ws.close(code=CLOSE_INTERNAL_ERROR, message=b"unavailable; retry")
                return ws
            await self._loop(ws, conn)
        finally:
            await self._close(conn)
        return ws

    async def _hello(self, ws: web.WebSocketResponse
                     ) -> tuple[Identity | None, dict[str, int], str | None]:
        try:
            async with asyncio.timeout(self.settings.hello_timeout_s):
                msg = await ws.receive()
                while msg.type in (WSMsgType.PING, WSMsgType.PONG):  # a client's keepalive
                    if msg.type == WSMsgType.PING:
                        await ws.pong(msg.data)
                    msg = await ws.receive()
        except TimeoutError:
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"no hello within the time limit")
            return None, {}, None
        if msg.type != WSMsgType.TEXT:
            code = CLOSE_TOO_BIG if msg.type == WSMsgType.ERROR else CLOSE_UNAUTHORIZED
            if not ws.closed:
                await ws.close(code=code, message=b"expected a hello frame")
            return None, {}, None
        try:
            frame = F.decode(msg.data, max_body_chars=self.settings.max_body_chars)
        except BadFrame as exc:
            frame = None
            why = exc.message
        else:
            why = "the first frame must be hello"
        if not isinstance(frame, F.Hello):
            await ws.close(code=CLOSE_UNAUTHORIZED, message=why.encode()[:120])
            return None, {}, None
        try:
            identity = self.verifier.verify(frame.token)
        except Unauthorized as exc:
            await ws.close(code=CLOSE_UNAUTHORIZED, message=exc.message.encode()[:120])
            return None, {}, None
        return identity, frame.resume, frame.id

    async def _open(self, conn: Connection, resume: dict[str, int], hello_id: str | None) -> None:
        """Subscribe, answer hello, then push what the client missed (see session docs)."""
        user = conn.user
        store = self.service.store
        briefs = await store.user_threads_brief(user)
        conn.threads = briefs
        for tid, brief in briefs.items():
            conn.cursors[tid] = min(resume.get(tid, brief.last_seq), brief.last_seq)
        others = {m for b in briefs.values() for m in b.members if m != user}
        came_online = await self.presence.connected(user)
        conn.counted = True
        online = await self.presence.online(others)
        conn.presence = {u: ("online" if u in online else "offline") for u in others}
        conn.send(F.ok_frame(
            hello_id,
            user=conn.identity.to_json(),
            threads={tid: {"last_seq": b.last_seq, "stage": b.stage} for tid, b in briefs.items()},
            presence=conn.presence,
            limits={
                "max_frame_bytes": self.settings.max_frame_bytes,
                "max_body_chars": self.settings.max_body_chars,
                "rate_per_s": self.settings.rate_per_s,
                "rate_burst": self.settings.rate_burst,
                "history_max_limit": self.settings.history_max_limit,
            },
        ))
        for channel in self._channels(conn):
            self.hub.add(channel, conn)
        conn.role_channels = self._role_channels(conn.identity)
        for channel in conn.role_channels:
            self.hub.add(channel, conn)
        conn.start()
        for tid in briefs:
            if conn.cursors[tid] < briefs[tid].last_seq:
                conn.sync(tid)
        # Anything stored between the first read and the subscription is pushed from storage.
        for tid, seq in (await store.user_thread_seqs(user)).items():
            if tid in briefs and seq > briefs[tid].last_seq and conn.cursors[tid] >= briefs[
                tid
            ].last_seq:
                conn.sync(tid)
        if came_online:
            self._publish_presence(conn, "online")

    def _channels(self, conn: Connection) -> list[str]:
        """The thread and user channels of ``conn`` (role channels: ``conn.role_channels``).

        Thread channels are subscribed at hello (``threads``) and when a thread is joined
        (``followed``, see ``_on_join``), and never dropped before the close, so these two
        sets are the record of what was subscribed."""
        chans = [thread_channel(t) for t in conn.threads.keys() | conn.followed]
        chans.append(user_channel(conn.user))
        return chans

    @staticmethod
    def _role_channels(identity: Identity) -> tuple[str, ...]:
        # An admin may use the review API too, so it gets the moderators' pushes as well.
        return tuple(role_channel(r) for r in STAFF_ROLES if identity.has(r)
                     or (r == "moderator" and identity.has("admin")))

    def _set_roles(self, conn: Connection, identity: Identity) -> None:
        """A refreshed token: follow the role channels of its roles, and only those."""
        new = self._role_channels(identity)
        old = conn.role_channels
        if new == old:
            return
        for channel in old:
            if channel not in new:
                self.hub.discard(channel, conn)
        for channel in new:
            if channel not in old:
                self.hub.add(channel, conn)
        conn.role_channels = new

    def _on_join(self, conn: Connection, thread: str) -> None:
        self.hub.add(thread_channel(thread), conn)

    def _publish_presence(self, conn: Connection, status: str) -> None:
        for tid in conn.threads:
            self.service.fanout.publish(
                Event(thread_channel(tid), "presence", {"user": conn.user, "status": status})
            )

    def _schedule_expiry(self, conn: Connection) -> None:
        """End the socket when the connection's token runs out (again after a refresh)."""
        exp = conn.identity.exp
        heapq.heappush(self._expiries, (exp, next(self._expiry_seq), weakref.ref(conn)))
        if len(self._expiries) > 2 * len(self.connections) + 1024:
            # Entries of closed connections and of refreshed tokens wait for their time:
            # under connection churn, drop them now and then (linear, rare).
            self._expiries = [e for e in self._expiries
                              if (c := e[2]()) is not None and not c.closed]
            heapq.heapify(self._expiries)
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        if not self._expiries:
            return
        first = self._expiries[0][0]
        if self._expiry_timer is not None and self._expiry_at <= first:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_at = first
        self._expiry_timer = asyncio.get_running_loop().call_later(
            max(0.0, first - time.time()), self._expire)

    def _expire(self) -> None:
        self._expiry_timer = None
        self._expiry_at = float("inf")
        now = time.time()
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, _, ref = heapq.heappop(heap)
            conn = ref()
            # gone, or the client sent a fresh ``token`` meanwhile (its entry is later)
            if conn is None or conn.closed or conn.identity.exp > now:
                continue
            conn.close_after_frame(CLOSE_UNAUTHORIZED, "token expired")
        self._arm_expiry()

    async def _close(self, conn: Connection) -> None:
        for channel in self._channels(conn):
            self.hub.discard(channel, conn)
        for channel in conn.role_channels:  # what was subscribed, whatever the token says now
            self.hub.discard(channel, conn)
        conn.role_channels = ()
        self.connections.discard(conn)
        await conn.stop()
        if conn.counted and await self.presence.disconnected(conn.user):
            self._publish_presence(conn, "offline")

    async def _heartbeat_loop(self) -> None:
        """Every ``heartbeat_s``: ping each connection that sent nothing for half that long
        or more, and close one that sent nothing (not even a pong) for twice that long.

        Half: a ping goes out at a sweep and its pong comes back a round trip later, so at
        the next sweep the connection has been idle a little less than one period; had it to
        be idle a whole period to be pinged, the sweep after that (idle two periods plus the
        timer's lateness, which on a fast network exceeds the round trip) would close a
        peer that answers every ping. So an idle live peer is pinged once per period.
        One task for the node instead of a timer per socket (less memory per idle
        connection, no timer reset per frame). A dead peer is dropped within 3 periods.
        """
        period = self.settings.heartbeat_s
        loop = asyncio.get_running_loop()
        while self.connections:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self.connections):
                idle = now - conn.last_seen
                if idle > 2 * period:
                    log.info("closing %s: no answer to the heartbeat", conn.user)
                    conn.close_soon(CLOSE_GOING_AWAY, "no answer to the heartbeat")
                elif idle >= period / 2:
                    conn.ping()

    async def _loop(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        clock = asyncio.get_running_loop().time
        async for msg in ws:
            conn.last_seen = clock()
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                pass
            elif msg.type == WSMsgType.TEXT:
                conn.busy = True
                self._inflight += 1
                try:
                    await self._frame(conn, msg.data)
                finally:
                    conn.busy = False
                    self._inflight -= 1
                if conn.ending is not None:  # e.g. the token ran out meanwhile: answered, now close
                    if not conn.closed:
                        await conn.flush(self.settings.close_timeout_s)
                        await conn.close_now(*conn.ending)
                    break
                if self.draining:
                    await conn.flush(self.settings.drain_timeout_s)
                    await ws.close(code=CLOSE_GOING_AWAY, message=b"server draining")
                    break
            elif msg.type == WSMsgType.BINARY:
                conn.send(F.error_frame(None, "bad_frame", "binary frames are not accepted"))
            elif msg.type == WSMsgType.ERROR:
                break
        if ws.close_code == CLOSE_TOO_BIG:
            log.info("closed %s: frame larger than %d bytes", conn.user, self.settings.max_frame_bytes)

    async def _frame(self, conn: Connection, data: str) -> None:
        re: str | None = None
        try:
            frame = F.decode(data, max_body_chars=self.settings.max_body_chars)
            re = frame.id
            answer = await self._dispatch(conn, frame)
        except ChatError as exc:
            if exc.status == 401:
                conn.close_soon(CLOSE_UNAUTHORIZED, exc.message)
                return
            extra = {k: v for k, v in exc.extra.items() if k != "re"}
            conn.send(F.error_frame(exc.extra.get("re", re), exc.code, exc.message, **extra))
            return
        except Exception:
            log.exception("frame handler failed for %s", conn.user)
            conn.send(F.error_frame(re, "internal", "internal error; the frame was not applied"))
            return
        if answer is not None:
            conn.send(answer)

    async def _known_member(self, conn: Connection, thread: str) -> ThreadBrief:
        """The thread's brief; reload it if the client was added after connecting."""
        brief = conn.threads.get(thread)
        if brief is not None:
            return brief
        t = await self.service.store.get_thread(thread)
        if t is None:
            raise NotFound(f"thread {thread!r} does not exist")
        if t.role_of(conn.user) is None:
            raise Forbidden("you do not take part in this thread")
        conn.deliver(Event(user_channel(conn.user), "thread", {"thread": t.to_json()}))
        return ThreadBrief(t.last_seq, t.stage, {p.user_id: p.role for p in t.participants})

    def _rate(self, conn: Connection) -> None:
        wait = self.limiter.check(conn.user)
        if wait > 0:
            raise RateLimited("too many messages; slow down", retry_after=wait)

    def _rate_send(self, conn: Connection, frame: F.Send) -> bool:
        """Charge a send unless it is a retry of one already paid for; True if charged."""
        wait, charged = self.limiter.admit(conn.user, (frame.thread, frame.client_msg_id))
        if wait > 0:
            raise RateLimited("too many messages; slow down", retry_after=wait)
        return charged

    async def _dispatch(self, conn: Connection, frame: F.Frame) -> dict[str, Any] | None:
        svc = self.service
        who = conn.identity
        match frame:
            case F.Send():
                brief = await self._known_member(conn, frame.thread)
                charged = self._rate_send(conn, frame)
                out = await svc.send(
                    who, thread=frame.thread, stage=brief.stage,
                    role=brief.members.get(conn.user, "member"),
                    client_msg_id=frame.client_msg_id, body=frame.body,
                )
                fields: dict[str, Any] = {}
                if out.appended is not None:
                    fields["message"] = out.appended.message.view(conn.user, locale=who.locale)
                    fields["duplicate"] = not out.appended.created
                    if charged and not out.appended.created:
                        # An idempotent retry (e.g. resent after a reconnect) costs nothing.
                        self.limiter.refund(conn.user, (frame.thread, frame.client_msg_id))
                if out.withheld is not None:
                    fields["withheld"] = out.withheld
                if out.verdict is not None and out.verdict.record is not None:
                    fields["moderation"] = _sender_moderation(out.verdict.record, who.locale)
                return F.ok_frame(frame.id, **fields)
            case F.Read():
                await self._known_member(conn, frame.thread)
                pos = await svc.read(who, thread=frame.thread, seq=frame.seq)
                return F.ok_frame(frame.id, thread=frame.thread, seq=pos)
            case F.Typing():
                await self._known_member(conn, frame.thread)  # no I/O for a known thread
                svc.typing(who, thread=frame.thread)
                return None if frame.id is None else F.ok_frame(frame.id)
            case F.Edit():
                brief = await self._known_member(conn, frame.thread)
                self._rate(conn)
                msg, verdict, withheld = await svc.edit(
                    who, thread=frame.thread, stage=brief.stage,
                    role=brief.members.get(conn.user, "member"),
                    message_id=frame.message, body=frame.body,
                )
                fields = {"message": msg.view(conn.user, locale=who.locale)}
                if verdict is not None and verdict.record is not None:
                    fields["moderation"] = _sender_moderation(verdict.record, who.locale)
                if withheld is not None:
                    fields["withheld"] = withheld
                return F.ok_frame(frame.id, **fields)
            case F.Delete():
                await self._known_member(conn, frame.thread)
                msg = await svc.delete(who, thread=frame.thread, message_id=frame.message)
                return F.ok_frame(frame.id, message=msg.view(conn.user, locale=who.locale))
            case F.Thanks():
                await self._known_member(conn, frame.thread)
                msg, added = await svc.thank(who, thread=frame.thread, message_id=frame.message)
                return F.ok_frame(frame.id, message=msg.view(conn.user, locale=who.locale), added=added)
            case F.Ping():
                return F.ok_frame(frame.id, time=time.time())
            case F.Token():
                new = self.verifier.verify(frame.token)
                if new.user_id != conn.user:
                    raise Forbidden("a new token must be for the same user")
                conn.identity = new
                self._set_roles(conn, new)
                self._schedule_expiry(conn)
                return F.ok_frame(frame.id, exp=int(new.exp))
            case F.Hello():
                raise BadFrame("hello was already received", re=frame.id)
        raise BadFrame("unsupported frame")  # pragma: no cover - decode() is exhaustive

    # --- cluster events
    async def resync(self) -> None:
        """After a fan-out outage, push from storage whatever local clients may have missed."""
        self.service.store.forget_message(None)  # changes made elsewhere went unheard
        lowest: dict[str, int] = {}
        for conn in list(self.connections):
            for tid, cur in conn.cursors.items():
                lowest[tid] = min(cur, lowest.get(tid, cur))
        for tid, after in lowest.items():
            while True:  # every page: a long outage may have missed more than one
                try:
                    page = await self.service.store.history(tid, after_seq=after, limit=1000)
                except ChatError as exc:
                    log.warning("resync of %s failed: %s", tid, exc)
                    break
                for msg in page:
                    self.hub.dispatch(Event(thread_channel(tid), "message", {}, msg))
                if len(page) < 1000:
                    break
                after = page[-1].seq

    async def drain(self) -> None:
        """Graceful shutdown: refuse new sockets, let in-flight frames finish, close 1001."""
        self.draining = True
        deadline = time.monotonic() + self.settings.drain_timeout_s
        # Sockets still waiting for their hello: aiohttp reads nothing more once the server
        # shuts down, so without this they would wait for the hello timeout (4001).
        if self._greeting:
            await asyncio.gather(*(self._going_away(ws) for ws in list(self._greeting)))
        for conn in list(self.connections):
            if not conn.busy:
                await conn.flush(max(0.0, deadline - time.monotonic()))
                # Bounded: a peer that never answers the close frame is aborted.
                await conn.close_now(CLOSE_GOING_AWAY, "server draining")
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.service.committer.drain()
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    async def _going_away(self, ws: web.WebSocketResponse) -> None:
        """Close a socket that has no connection yet with 1001 (bounded, like close_now)."""
        try:
            async with asyncio.timeout(self.settings.close_timeout_s):
                await ws.close(code=CLOSE_GOING_AWAY, message=b"server draining")
        except Exception as exc:  # the timeout cancels the close, which drops the transport
            log.debug("closing a socket before its hello failed: %s", exc)


def _sender_moderation(record: dict[str, Any], locale: str) -> dict[str, Any]:
    out: dict[str, Any] = {"action": record.get("action"),
                           "categories": record.get("categories", [])}
    if record.get("sender_warning"):
        out["warning"] = {**record["sender_warning"], "text": record["sender_warning"].get(locale)}
    return out
