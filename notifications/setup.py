"""Wiring: :func:`setup` adds the notifications component to the chat application.

One call in ``chat.app.build_app``. It adds the routes, observes published chat messages,
and through ``app.cleanup_ctx`` (after the store is open) starts the scheduler, the delivery
worker and the chat watcher, and stops them (and the HTTP session) on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from chat.config import Settings
from chat.service import ChatService
from chat.store import Store

from .channels import ApnsSender, EmailSender, FcmSender, Sender, WebPushSender
from .delivery import DeliveryConfig, DeliveryWorker
from .http_api import NotificationsApi
from .intake import Intake
from .rules import DAY_US, HOUR_US, RuleConfig
from .scheduler import Clock, Scheduler, SchedulerConfig, SystemClock
from .watcher import ChatWatcher

log = logging.getLogger("tsunagu.notify")


def rule_config(s: Settings) -> RuleConfig:
    return RuleConfig(
        deposit_reminder_us=int(s.notify_deposit_reminder_h * HOUR_US),
        deadline_offsets_us=tuple(sorted((int(float(h) * HOUR_US)
                                          for h in s.notify_deadline_reminders_h),
                                         reverse=True)),
        review_reminder_us=int(s.notify_review_reminder_d * DAY_US),
        chat_digest_us=int(s.notify_chat_digest_s * 1_000_000),
    )


class Notifications:
    """The component's running parts (one per node)."""

    def __init__(self, settings: Settings, store: Store, service: ChatService, presence: Any,
                 identify: Any, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or SystemClock()
        s = settings
        self.rules = rule_config(s)
        self.senders: dict[str, Sender] = {}
        self.session: aiohttp.ClientSession | None = None
        self.webpush_key: str | None = None
        if s.vapid_private_key:
            # The key is parsed now so a bad key fails at start-up, not at the first send.
            self.webpush_key = _vapid_public(s)
        self.delivery = DeliveryWorker(store.db, self.senders, self.clock, DeliveryConfig(
            batch=min(s.notify_batch, 500), lease_s=s.notify_lease_s,
            max_attempts=s.notify_max_attempts, retry_base_s=s.notify_retry_base_s,
            retry_max_s=s.notify_retry_max_s, concurrency=s.notify_send_concurrency,
            tick_s=s.notify_tick_s, default_tz=s.notify_default_tz,
            send_timeout_s=s.notify_send_timeout_s))
        self.scheduler = Scheduler(store.db, service.fanout, self.clock, SchedulerConfig(
            batch=s.notify_batch, tick_s=s.notify_tick_s, default_tz=s.notify_default_tz,
            quiet=(s.notify_quiet_start, s.notify_quiet_end)),
            on_deliveries=self.delivery.wake.set)
        self.intake = Intake(store.db, service, self.rules, default_tz=s.notify_default_tz)
        self.watcher = ChatWatcher(store.db, service, presence, self.clock,
                                   digest_us=self.rules.chat_digest_us,
                                   default_tz=s.notify_default_tz)
        service.message_observers.append(self.watcher.observe)
        service.fanout.observers.append(self.watcher.observe_event)
        self.api = NotificationsApi(s, store.db, identify, self.intake,
                                    vapid_public_key=self.webpush_key, clock=self.clock,
                                    on_event=self.scheduler.wake.set,
                                    on_requeue=self.delivery.wake.set,
                                    on_retry=self.scheduler.wake.set)

    def _open_senders(self, base_url: str) -> None:
        s = self.settings
        self.session = aiohttp.ClientSession()
        if s.vapid_private_key:
            self.senders["webpush"] = WebPushSender(s, self.session)
        if s.fcm_project_id:
            self.senders["fcm"] = FcmSender(s, self.session)
        if s.apns_key_file:
            self.senders["apns"] = ApnsSender(s)
        if s.smtp_host:
            self.senders["email"] = EmailSender(s, base_url=base_url)
        self.delivery.senders = dict(self.senders)

    async def start(self, *, run: bool = True) -> None:
        s = self.settings
        self._open_senders(s.notify_public_url or f"http://{s.host}:{s.port}")
        if run:
            self.scheduler.start()
            self.delivery.start()
            self.watcher.start()
        log.info("notifications on: channels inapp%s", "".join(f", {c}" for c in self.senders))

    def set_clock(self, clock: Clock) -> None:
        self.clock = self.scheduler.clock = self.delivery.clock = self.watcher.clock = clock
        self.api.clock = clock

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.scheduler.stop()
        await self.delivery.stop()
        if self.session is not None:
            await self.session.close()
            self.session = None


NOTIFICATIONS = web.AppKey("notifications", Notifications)
# Tests set ``app[RUN_LOOPS] = False`` before start-up and drive the ticks themselves.
RUN_LOOPS = web.AppKey("notify_run_loops", bool)


def setup(app: web.Application, settings: Settings, store: Store, service: ChatService,
          gateway: Any, identify: Any, *, clock: Clock | None = None, run: bool = True
          ) -> Notifications | None:
    """Add notifications to ``app`` (call after the store's cleanup_ctx is registered).

    ``run=False`` opens the senders but leaves the loops to the caller (tests drive
    ``scheduler.tick()`` and ``delivery.tick()`` with a manual clock).
    """
    if not settings.notify_enabled:
        return None
    n = Notifications(settings, store, service, gateway.presence, identify,
                      clock=clock)
    app[NOTIFICATIONS] = n
    app.router.add_routes(n.api.routes())

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await n.start(run=run and app.get(RUN_LOOPS, True))
        yield
        await n.stop()

    app.cleanup_ctx.append(ctx)
    return n


def _vapid_public(s: Settings) -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid02

    raw = str(s.vapid_private_key).strip()
    v = Vapid02.from_pem(raw.encode()) if raw.startswith("-----BEGIN") else \
        Vapid02.from_raw(raw.encode())
    point = v.public_key.public_bytes(serialization.Encoding.X962,
                                      serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()
