"""The dispute staff API and the public evidence endpoints; :func:`setup` wires them.

``/v1/disputes...`` answer only the ``dispute`` role (every other role: 403); each read
requires a ``reason`` (query parameter for GET, body field for POST), written to the access
audit log. ``GET /v1/evidence/keys`` and ``GET /v1/evidence/checkpoint`` are public: the
published keys and the latest signed checkpoint. ``GET /v1/evidence/threads/{id}`` gives a
participant (or the service role, e.g. when a contract closes) a fresh signed checkpoint
and the inclusion proof of the thread's head.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from chat.auth import Identity
from chat.config import Settings
from chat.errors import ChatError, Forbidden
from chat.fanout import FanOut
from chat.http_api import Body, Identify, json_response, path_id
from chat.store.base import Store

from . import tree
from .service import EvidenceService

log = logging.getLogger("tsunagu.evidence")

EVIDENCE = web.AppKey("evidence", EvidenceService)


class EvidenceApi:
    def __init__(self, service: EvidenceService, identify: Identify) -> None:
        self.service = service
        self._who = identify  # the node's bearer-token check and HTTP rate limit

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/disputes", self.open),
            web.get("/v1/disputes/{id}", self.get),
            web.get("/v1/disputes/{id}/log", self.read_log),
            web.get("/v1/disputes/{id}/access", self.access_log),
            web.get("/v1/disputes/{id}/export", self.export),
            web.post("/v1/disputes/{id}/close", self.close),
            web.get("/v1/evidence/keys", self.keys),
            web.get("/v1/evidence/checkpoint", self.latest),
            web.post("/v1/evidence/checkpoint", self.commit),
            web.get("/v1/evidence/threads/{id}", self.receipt),
        ]

    def staff(self, request: web.Request) -> Identity:
        who = self._who(request)
        if not who.has("dispute"):
            raise Forbidden("dispute endpoints need the dispute role")
        return who

    async def open(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        body = await Body.read(request)
        d, notice = await self.service.open(who.user_id, body.req_str("thread"),
                                            body.text("reason", max_chars=500) or "")
        return json_response({**notice, "dispute": d.to_json()}, 201)

    async def get(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        d = await self.service.read(who.user_id, path_id(request),
                                    request.query.get("reason", ""))
        return json_response({"dispute": d.to_json()})

    async def read_log(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        out = await self.service.read_log(who.user_id, path_id(request),
                                          request.query.get("reason", ""))
        return json_response(out)

    async def access_log(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        rows = await self.service.access_log(who.user_id, path_id(request),
                                             request.query.get("reason", ""))
        return json_response({"access": rows})

    async def export(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        did = path_id(request)
        data = await self.service.export(who.user_id, did, request.query.get("reason", ""))
        return web.Response(body=data, content_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="evidence-{did}.zip"'})

    async def close(self, request: web.Request) -> web.Response:
        who = self.staff(request)
        body = await Body.read(request)
        d = await self.service.close(who.user_id, path_id(request),
                                     body.text("reason", max_chars=500) or "",
                                     body.text("resolution", max_chars=2000, required=False))
        return json_response({"dispute": d.to_json()})

    async def keys(self, request: web.Request) -> web.Response:
        return json_response({"keys": await tree.public_keys(self.service.db),
                              "current": self.service.signer.key_id})

    async def latest(self, request: web.Request) -> web.Response:
        cp = await tree.latest(self.service.db)
        return json_response(cp.to_json() if cp else {"checkpoint": None})

    async def receipt(self, request: web.Request) -> web.Response:
        """For a participant (or the service): the signed checkpoint covering the thread."""
        who = self._who(request)
        tid = path_id(request)
        thread = await self.service.store.get_thread(tid)
        if thread is None or (thread.role_of(who.user_id) is None and not who.has("service")):
            raise Forbidden("you do not take part in this thread")
        return json_response(await self.service.receipt(tid))

    async def commit(self, request: web.Request) -> web.Response:
        who = self._who(request)
        if not who.has("dispute", "service"):
            raise Forbidden("committing a checkpoint needs the dispute or service role")
        return json_response((await self.service.checkpoint()).to_json())


def setup(app: web.Application, *, settings: Settings, store: Store, fanout: FanOut,
          identify: Identify) -> EvidenceService:
    """Add the evidence routes, the key registration and the periodic checkpoint task.

    Call once, after the cleanup context that opens ``store``.
    """
    service = EvidenceService(settings, store, fanout)
    app[EVIDENCE] = service
    app.router.add_routes(EvidenceApi(service, identify).routes())

    async def periodic() -> None:
        while True:
            await asyncio.sleep(settings.evidence_checkpoint_interval_s)
            try:
                await service.checkpoint()
            except ChatError as exc:
                log.warning("evidence checkpoint failed: %s", exc.message)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        task = asyncio.create_task(periodic(), name="evidence-checkpoints")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(ctx)
    return service
