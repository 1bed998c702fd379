"""Notification test support: a real node whose scheduler runs on a manual clock."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web

from chat.app import build_app
from notifications import NOTIFICATIONS, RUN_LOOPS, Notifications
from notifications.events import sign
from notifications.scheduler import ManualClock
from tests.support import Node, migrate

EVENT_SECRET = "event-secret-" + "y" * 40
# 2026-06-01 00:00 UTC = 09:00 in Tokyo (outside the default quiet hours)
T0 = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1_000_000)
HOUR = 3600


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NotifyNode(Node):
    """A node whose notification loops are off; the test ticks them on a manual clock."""

    def __init__(self, settings: Any, clock: ManualClock) -> None:
        super().__init__(settings)
        self.clock = clock

    async def pages(self, path: str, key: str, token: str, *, limit: int = 2,
                    most: int = 10) -> list[str]:
        """Walk an operator listing ``limit`` rows at a time through its ``next`` cursors
        (at most ``most`` pages); the ids of its ``key`` rows, in the order served."""
        seen: list[str] = []
        cursor = ""
        for _ in range(most):
            status, body = await self.http("GET", f"{path}?limit={limit}{cursor}", token)
            assert status == 200, body
            seen.extend(row["id"] for row in body[key])
            if body["next"] is None:
                return seen
            cursor = f"&before={quote(body['next'])}"
        raise AssertionError(f"{path}: more than {most} pages")

    async def refuses_non_operators(self, listing: str, action: str) -> None:
        """``GET listing`` and ``POST action`` answer 401 without a token and 403 to a
        worker and to a moderator (they are for the service and admin roles)."""
        for method, path in (("GET", listing), ("POST", action)):
            status, body = await self.http(method, path)
            assert status == 401 and body["error"]["code"] == "unauthorized", (path, body)
            for who in (self.token("bob", "worker"), self.token("mod", "moderator")):
                status, body = await self.http(method, path, who)
                assert status == 403 and body["error"]["code"] == "forbidden", (path, body)

    async def refuses_bad_input(self, listing: str, queries: list[tuple[str, str]],
                                action: str, unknown: str) -> None:
        """As an admin: every ``(query, word)`` of ``listing`` is a 400 naming ``word``;
        ``action`` (with ``{}`` for the id) is a 400 for malformed ids (too long, NUL) and a
        404 for the ``unknown`` one. Common limit and cursor mistakes are added."""
        admin = self.token("ops", "admin")
        common = [("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                  ("before=nonsense", "before"), ("before=", "before"),
                  ("before=12.", "before")]
        for query, word in [*common, *queries]:
            status, body = await self.http("GET", f"{listing}?{query}", admin)
            assert status == 400, (query, body)
            assert body["error"]["code"] == "bad_request" and word in body["error"]["message"]
        for bad in ("x" * 129, "a%00b"):
            status, body = await self.http("POST", action.format(bad), admin)
            assert status == 400 and body["error"]["code"] == "bad_request", body
        status, body = await self.http("POST", action.format(unknown), admin)
        assert status == 404 and body["error"]["code"] == "not_found", body

    async def start(self) -> NotifyNode:
        if not self.settings.is_embedded:
            await migrate(self.settings)
        self.app = build_app(self.settings)
        self.app[RUN_LOOPS] = False
        self.app[NOTIFICATIONS].set_clock(self.clock)
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                    shutdown_timeout=self.settings.drain_timeout_s)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    @property
    def n(self) -> Notifications:
        assert self.app is not None
        return self.app[NOTIFICATIONS]

    async def event(self, type_: str, thread: str, eid: str | None = None,
                    **data: Any) -> tuple[int, Any]:
        doc = {"id": eid or f"evt-{type_}-{thread}", "type": type_, "thread": thread,
               "data": data}
        return await self.http("POST", "/v1/events", self.token("platform", "service"), doc)

    async def signed_event(self, body: bytes, *, ts: int | None = None,
                           secret: str = EVENT_SECRET) -> tuple[int, Any]:
        ts = int(time.time()) if ts is None else ts
        return await self.raw("/v1/events", body, {
            "Content-Type": "application/json", "X-Tsunagu-Timestamp": str(ts),
            "X-Tsunagu-Signature": sign(secret, ts, body)})

    async def raw(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.post(self.url + path, data=body,
                                                        headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def count(self, sql: str, *args: Any) -> int:
        return int(await self.n.store.db.fetchval(sql, *args))

    async def tick(self) -> int:
        return await self.n.scheduler.run_until_idle()

    async def at(self, us: int) -> int:
        """Move the clock to ``us`` and fire what is due; return how many jobs were claimed."""
        self.clock.set(us)
        return await self.tick()


@pytest.fixture
async def node(settings_factory: Any) -> AsyncIterator[NotifyNode]:
    n = await NotifyNode(settings_factory(notify_event_secret=EVENT_SECRET),
                         ManualClock(T0)).start()
    try:
        yield n
    finally:
        await n.stop()


async def contract(node: NotifyNode, *, deadline_h: float = 100, client: str = "alice",
                   worker: str = "bob", **extra: Any) -> str:
    """A contract thread with a concluded contract (deadline ``deadline_h`` hours after T0)."""
    thread = await node.create_thread((client, "client"), (worker, "worker"))
    status, body = await node.event(
        "contract.concluded", thread["id"], client=client, worker=worker, amount=50000,
        deadline=iso(node.clock.now_us() + int(deadline_h * HOUR * 1_000_000)),
        title="ロゴ制作", **extra)
    assert status == 200, body
    return str(thread["id"])


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


SUBJECT = "mailto:ops@tsunagu.example"


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A Web Push service, FCM, APNs and an SMTP server, all local."""
    from aiosmtpd.controller import Controller
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.notifications.fakes import (
        ApnsServer,
        FcmServer,
        PushService,
        b64u,
        ec_pem,
    )

    vapid = ec.generate_private_key(ec.SECP256R1())
    pub = b64u(vapid.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint))
    push = await PushService(pub, SUBJECT).start()
    fcm = await FcmServer(tmp_path).start()
    apns = await ApnsServer(tmp_path).start()
    smtp_inbox = Inbox()
    smtp = Controller(smtp_inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        yield {"vapid_pem": ec_pem(vapid), "push": push, "fcm": fcm, "apns": apns,
               "smtp": smtp, "mails": smtp_inbox.mails}
    finally:
        smtp.stop()
        await push.stop()
        await fcm.stop()
        await apns.stop()


@pytest.fixture
async def pnode(settings_factory: Any, peers: dict[str, Any]) -> AsyncIterator[NotifyNode]:
    """A node whose senders talk to ``peers``."""
    fcm, apns = peers["fcm"], peers["apns"]
    settings = settings_factory(
        notify_event_secret=EVENT_SECRET, notify_insecure_push=True,
        notify_push_hosts=("127.0.0.1",),
        vapid_private_key=peers["vapid_pem"], vapid_subject=SUBJECT,
        smtp_host="127.0.0.1", smtp_port=peers["smtp"].port, smtp_tls="none",
        smtp_from="tsunagu <noreply@tsunagu.example>",
        notify_public_url="https://tsunagu.example",
        fcm_project_id="tsunagu-test", fcm_credentials_file=fcm.credentials_file(),
        fcm_endpoint=f"http://127.0.0.1:{fcm.port}",
        apns_key_file=apns.key_file(), apns_key_id=apns.key_id, apns_team_id=apns.team_id,
        apns_topic=apns.topic, apns_endpoint=f"https://127.0.0.1:{apns.port}",
        apns_ca_file=apns.cert_file, notify_max_attempts=3, notify_retry_base_s=10.0)
    n = await NotifyNode(settings, ManualClock(T0)).start()
    try:
        yield n
    finally:
        await n.stop()


async def register_all(node: NotifyNode, peers: dict[str, Any], user: str, sid: str
                       ) -> None:
    tok = node.token(user)
    status, body = await node.http("POST", "/v1/notifications/webpush", tok,
                                   peers["push"].subscribe(sid))
    assert status == 201, body
    for platform, token in (("fcm", f"fcm-{user}"), ("apns", "ab" * 32)):
        status, body = await node.http("POST", "/v1/notifications/devices", tok,
                                       {"platform": platform, "token": token})
        assert status == 201, body
    status, body = await node.http("PUT", "/v1/notifications/preferences", tok,
                                   {"email": f"{user}@example.com"})
    assert status == 200


async def deliver(node: NotifyNode) -> int:
    await node.tick()
    return await node.n.delivery.run_until_idle()
