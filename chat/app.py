"""The aiohttp application: wires settings, storage, fan-out, presence, gateway and HTTP API.

Long-lived resources are opened and closed by ``cleanup_ctx`` in dependency order; typed
application state uses ``web.AppKey``. :func:`build_app` does no I/O; the resources open
when the app starts.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from aiohttp import web

import notifications

from .auth import TokenVerifier
from .config import Settings
from .errors import ChatError
from .evidence import http as evidence_http
from .fanout import FanOut, LocalFanOut, RedisFanOut
from .gateway import Gateway
from .http_api import HttpApi, errors_middleware, json_response
from .presence import LocalPresence, Presence, RedisPresence
from .service import ChatService
from .store import Store, open_store

log = logging.getLogger("tsunagu")

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
FANOUT = web.AppKey("fanout", FanOut)
SERVICE = web.AppKey("service", ChatService)
GATEWAY = web.AppKey("gateway", Gateway)

STATIC_DIR = Path(__file__).parent / "static"
# Scanned once at start-up so that what the scanner loads lazily (phone-number metadata of
# the regions it meets) is loaded before the heap is frozen.
WARM_UP_TEXTS = (
    "電話は090-1234-5678、メールは tanaka＠example.com です。LINEで連絡ください。",
    "Call me at +1 415 555 0100 or +44 20 7946 0958, or mail tanaka at gmail dot com.",
    "お世話になっております。ロゴ案を3パターン作成しましたのでご確認ください。",
)


def settle_heap(service: ChatService, young_threshold: int) -> None:
    """Keep the cyclic garbage collector from stalling the event loop.

    Everything alive after start-up (modules, the scanner's tables, phone-number metadata:
    a few hundred thousand objects) lives as long as the process, yet a full collection
    walks all of it: measured here, 30-110 ms with the loop stopped, several times a
    minute under load, which alone set the send-to-receive p99. :func:`gc.freeze` moves
    those objects out of the collector's sight. A young collection walks every tracked
    object made since the last one and still alive, and under load most of those are
    in flight - each connection's pending receive (coroutines, futures: about 16,000 objects
    with 1,000 connections) - so it costs 5-9 ms however often it runs: a high
    young-generation threshold (``gc_young_threshold``) makes it rare instead of every
    0.6 s, off the send-to-receive p99. The threshold counts allocations less
    deallocations, so it also bounds the cyclic garbage left waiting.
    """
    screener = service.screener
    scanner = getattr(screener, "scanner", None)
    if scanner is not None:
        for text in WARM_UP_TEXTS:
            scanner.scan(text)
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(young_threshold, g1, g2)


def build_app(settings: Settings) -> web.Application:
    """Build the application for ``settings`` (which must already carry a token key)."""
    node_id = settings.node_id or f"node-{secrets.token_hex(4)}"
    store = open_store(settings)
    fanout: FanOut
    presence: Presence
    if settings.redis_url:
        redis_fanout = RedisFanOut(settings.redis_url, prefix=settings.redis_prefix,
                                   node_id=node_id)
        fanout = redis_fanout
        presence = RedisPresence(redis_fanout._redis, prefix=settings.redis_prefix,
                                 node_id=node_id)
    else:
        fanout = LocalFanOut()
        presence = LocalPresence()
    verifier = TokenVerifier(settings)
    service = ChatService(settings, store, fanout)
    gateway = Gateway(settings, service, verifier, presence)
    api = HttpApi(settings, service, verifier)

    app = web.Application(middlewares=[errors_middleware],
                          client_max_size=settings.max_http_body_bytes)
    app[SETTINGS] = settings
    app[STORE] = store
    app[FANOUT] = fanout
    app[SERVICE] = service
    app[GATEWAY] = gateway

    async def resources(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        if settings.is_embedded:
            applied = await store.migrate()
            if applied:
                log.info("applied migrations %s", applied)
        else:
            version = await store.schema_version()
            if version == 0:
                raise ChatError("the database has no schema: run `tsunagu migrate` first")
        await fanout.start()
        await presence.start()
        log.info("node %s serving on %s, fan-out %s", node_id,
                 "sqlite" if settings.is_embedded else "postgresql", fanout.health()["backend"])
        yield
        await presence.stop()
        await fanout.stop()
        await store.close()

    async def on_shutdown(app: web.Application) -> None:
        await gateway.drain()

    async def healthz(request: web.Request) -> web.Response:
        try:
            await store.ping()
        except ChatError as exc:
            return json_response({"ok": False, "store": exc.message}, 503)
        fan = fanout.health()
        body = {"ok": True, "node": node_id, "store": "ok", "fanout": fan,
                "connections": len(gateway.connections), "draining": gateway.draining}
        return json_response(body, 200 if not gateway.draining else 503)

    async def metrics(request: web.Request) -> web.Response:
        api.identify(request)
        return web.Response(
            body=orjson.dumps({
                "connections": len(gateway.connections),
                "channels": len(fanout.hub),
                "group_commit": {"batches": service.committer.batches,
                                 "messages": service.committer.messages,
                                 # the store's fast path / the path that reads (or locks)
                                 "fast_batches": getattr(store, "fast_batches", None),
                                 "slow_batches": getattr(store, "slow_batches", None)},
                # SQLite: background checkpoints that copied WAL pages into the database
                "sqlite_checkpoints": getattr(store, "checkpoints", None),
                "fanout": fanout.health(),
            }),
            content_type="application/json",
        )

    if settings.moderation_enabled:
        from moderation.review import setup as setup_moderation

        setup_moderation(app, api, service)

    app.cleanup_ctx.append(resources)
    notifications.setup(app, settings, store, service, gateway, api.identify)
    evidence_http.setup(app, settings=settings, store=store, fanout=fanout,
                        identify=api.identify)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/ws", gateway.handle)
    app.router.add_routes(api.routes())
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
    if settings.demo:
        from .demo import setup_demo

        setup_demo(app, service, settings)

    if settings.gc_freeze:
        async def on_started(app: web.Application) -> None:  # after every resource is open
            settle_heap(service, settings.gc_young_threshold)

        app.on_startup.append(on_started)
    return app
