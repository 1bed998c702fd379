"""The HTTP API (``/v1/...``): threads, participants, system messages, history, thanks.

Every error is JSON ``{"error": {"code", "message"}}`` with its status (see
:mod:`chat.errors`); bodies, path ids and query parameters are validated here, at the edge.
``docs/openapi.yaml`` is the whole contract.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .auth import Identity, TokenVerifier
from .config import Settings
from .errors import BadRequest, ChatError, Forbidden, NotFound, RateLimited, Unauthorized
from .evidence.canonical import NotCanonicalizable, check_numbers
from .frames import MAX_ID_CHARS
from .limits import RateLimiter
from .service import WITHHELD_STATUSES, ChatService

log = logging.getLogger("tsunagu.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = None
    if "retry_after" in extra:
        headers = {"Retry-After": str(max(1, int(extra["retry_after"] + 0.999)))}
    return json_response({"error": {"code": code, "message": message, **extra}}, status, headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               429: "rate_limited", 503: "unavailable"}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ChatError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        reason = exc.reason if exc.status != 413 else "request body too large"
        resp = error_response(exc.status, _HTTP_CODES.get(exc.status, "error"), reason)
        allow = exc.headers.get("Allow")
        if allow is not None:  # a 405 names the allowed methods (RFC 9110, 15.5.6)
            resp.headers["Allow"] = allow
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error")


# How a component's HTTP API authenticates a request: ``HttpApi.identify``.
Identify = Callable[[web.Request], Identity]


class Body:
    """Typed access to a JSON request body; every failure is a 400 naming the field."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        self.data: dict[str, Any] = data

    @classmethod
    async def read(cls, request: web.Request) -> Body:
        raw = await request.read()
        try:
            return cls(orjson.loads(raw or b"{}"))
        except orjson.JSONDecodeError:
            raise BadRequest("body is not valid JSON") from None

    def text(self, name: str, *, max_chars: int = 128, required: bool = True,
            allow_empty: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise BadRequest(f"missing field '{name}'")
            return None
        if not isinstance(value, str):
            raise BadRequest(f"field '{name}' must be a string")
        return checked_text(value, f"field '{name}'", max_chars=max_chars,
                            allow_empty=allow_empty)

    def req_str(self, name: str, *, max_chars: int = 128) -> str:
        value = self.text(name, max_chars=max_chars)
        assert value is not None
        return value

    def obj(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadRequest(f"field '{name}' must be an object")
        if len(orjson.dumps(value)) > 16384:
            raise BadRequest(f"field '{name}' is larger than 16 KiB")
        return value


def query_int(request: web.Request, name: str, *, default: int | None = None,
              lo: int = 0, hi: int = 2**62) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer") from None
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter '{name}' must be between {lo} and {hi}")
    return value


def checked_text(value: str, what: str, *, max_chars: int, allow_empty: bool = False) -> str:
    """``value`` if it is a text the storage takes (non-empty unless allowed, at most
    ``max_chars`` characters, no NUL), else 400 ``bad_request`` naming ``what``."""
    if not value and not allow_empty:
        raise BadRequest(f"{what} must not be empty")
    if len(value) > max_chars:
        raise BadRequest(f"{what} is longer than {max_chars} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise BadRequest(f"{what} must not contain NUL characters")
    return value


def path_id(request: web.Request, name: str = "id") -> str:
    """A path parameter that is an id (thread, message, user): the rules of ids in frames
    and bodies (non-empty, at most 128 characters, no NUL), else 400 ``bad_request``."""
    return checked_text(request.match_info[name], f"path parameter '{name}'",
                        max_chars=MAX_ID_CHARS)


# ``GET /v1/threads`` pages with an opaque cursor: the sort key ``(updated_at, id)`` of the
# last thread of a page, as ``<updated_at>.<id>``.
def thread_cursor(updated_at: int, thread_id: str) -> str:
    return f"{updated_at}.{thread_id}"


def parse_thread_cursor(raw: str) -> tuple[int, str]:
    stamp, dot, tid = raw.partition(".")
    if (not dot or not stamp.isascii() or not stamp.isdigit() or len(stamp) > 19
            or int(stamp) >= 2**63 or not tid or len(tid) > MAX_ID_CHARS or "\x00" in tid):
        raise BadRequest("query parameter 'before' is not a cursor from 'next'")
    return int(stamp), tid


class HttpApi:
    def __init__(self, settings: Settings, service: ChatService, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.service = service
        self.verifier = verifier
        self.limiter = RateLimiter(settings.http_rate_per_s, settings.http_rate_burst)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/me", self.me),
            web.post("/v1/threads", self.create_thread),
            web.get("/v1/threads", self.list_threads),
            web.get("/v1/threads/{id}", self.get_thread),
            web.patch("/v1/threads/{id}", self.update_thread),
            web.post("/v1/threads/{id}/participants", self.add_participant),
            web.post("/v1/threads/{id}/system", self.post_system),
            web.get("/v1/threads/{id}/messages", self.history),
            web.get("/v1/threads/{id}/messages/{mid}/thanks", self.message_thanks),
            web.get("/v1/threads/{id}/withheld", self.own_withheld),
            web.get("/v1/users/{id}/thanks", self.user_thanks),
        ]

    def identify(self, request: web.Request) -> Identity:
        """The caller of ``request`` (bearer JWT), counted against the node's per-user HTTP
        rate limit unless it has the service role. Every component's HTTP API authenticates
        through this one method (``Identify``)."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing 'Authorization: Bearer <token>' header")
        who = self.verifier.verify(token.strip())
        if not who.has("service"):
            wait = self.limiter.check(who.user_id)
            if wait > 0:
                raise RateLimited("too many requests; slow down", retry_after=wait)
        return who

    def service_role(self, request: web.Request) -> Identity:
        who = self.identify(request)
        if not who.has("service", "admin"):
            raise Forbidden("this call needs the service role")
        return who

    async def me(self, request: web.Request) -> web.Response:
        return json_response({"user": self.identify(request).to_json()})

    async def create_thread(self, request: web.Request) -> web.Response:
        self.service_role(request)
        body = await Body.read(request)
        kind = body.req_str("kind", max_chars=16)
        title = body.req_str("title", max_chars=self.settings.max_title_chars)
        raw_parts = body.data.get("participants")
        if not isinstance(raw_parts, list) or not raw_parts:
            raise BadRequest("field 'participants' must be a non-empty list")
        parts: list[tuple[str, str]] = []
        for p in raw_parts:
            pb = Body(p)
            parts.append((pb.req_str("user_id"), pb.req_str("role", max_chars=16)))
        ref = body.obj("ref") or {}
        for key, value in ref.items():
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise BadRequest(f"ref.{key} must be a string or an integer")
        thread = await self.service.create_thread(
            kind=kind, title=title, participants=parts, ref=ref,
            stage=body.text("stage", max_chars=32, required=False),
            thread_id=body.text("id", required=False),
        )
        return json_response({"thread": thread.to_json()}, 201)

    async def list_threads(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        limit = query_int(request, "limit", default=100, lo=1, hi=1000)
        assert limit is not None
        raw = request.query.get("before")
        before = parse_thread_cursor(raw) if raw is not None else None  # "" is no cursor
        # One more than asked: whether there is a next page, without an empty last page.
        rows = await self.service.store.user_threads(who.user_id, limit=limit + 1,
                                                     before=before)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = thread_cursor(rows[-1].thread.updated_at, rows[-1].thread.id) if more else None
        return json_response({"threads": [r.to_json() for r in rows], "next": nxt})

    async def get_thread(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        thread = await self.service.participant_thread(who, path_id(request))
        return json_response({"thread": thread.to_json()})

    async def update_thread(self, request: web.Request) -> web.Response:
        self.service_role(request)
        tid = path_id(request)
        body = await Body.read(request)
        stage = body.text("stage", max_chars=32, required=False)
        title = body.text("title", max_chars=self.settings.max_title_chars, required=False)
        if stage is None and title is None:
            raise BadRequest("give 'stage' or 'title'")
        thread = await self.service.update_thread(tid, stage=stage, title=title)
        return json_response({"thread": thread.to_json()})

    async def add_participant(self, request: web.Request) -> web.Response:
        self.service_role(request)
        tid = path_id(request)
        body = await Body.read(request)
        thread = await self.service.add_participant(
            tid, body.req_str("user_id"), body.req_str("role", max_chars=16)
        )
        return json_response({"thread": thread.to_json()})

    async def post_system(self, request: web.Request) -> web.Response:
        self.service_role(request)
        tid = path_id(request)
        body = await Body.read(request)
        text = body.req_str("body", max_chars=self.settings.max_body_chars)
        data = body.obj("data")
        if data is not None:
            # Logged as evidence (RFC 8785): a number beyond ±(2^53-1) has no stable form,
            # and refused inside the group commit it would fail the whole batch.
            try:
                check_numbers(data, "data")
            except NotCanonicalizable as exc:
                raise BadRequest(str(exc)) from None
        appended = await self.service.post_system(
            tid, text, data,
            client_msg_id=body.text("client_msg_id", required=False),
        )
        return json_response({"message": appended.message.view(None)},
                             201 if appended.created else 200)

    async def history(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        thread = await self.service.participant_thread(who, path_id(request))
        limit = query_int(request, "limit", default=100, lo=1,
                          hi=self.settings.history_max_limit)
        assert limit is not None
        after = query_int(request, "after_seq")
        before = query_int(request, "before_seq")
        msgs = await self.service.store.history(thread.id, after_seq=after, before_seq=before,
                                                limit=limit)
        viewer = None if who.has("service", "admin") else who.user_id
        out = [m.view(viewer) for m in msgs]
        first = out[0]["seq"] if out else None
        last = out[-1]["seq"] if out else None
        return json_response({"messages": out, "last_seq": thread.last_seq,
                              "first": first, "last": last})

    async def own_withheld(self, request: web.Request) -> web.Response:
        """The caller's own messages held or refused by moderation in this thread."""
        who = self.identify(request)
        thread = await self.service.participant_thread(who, path_id(request))
        raw = request.query.get("status") or "held,rejected,blocked"
        statuses = [s for s in raw.split(",") if s]
        bad = [s for s in statuses if s not in WITHHELD_STATUSES]
        if bad or not statuses:
            raise BadRequest(f"status must be a comma-separated list of "
                             f"{', '.join(WITHHELD_STATUSES)}")
        limit = query_int(request, "limit", default=100, lo=1, hi=500)
        assert limit is not None
        rows = await self.service.own_withheld(who, thread.id, statuses=statuses, limit=limit)
        return json_response({"withheld": rows})

    async def message_thanks(self, request: web.Request) -> web.Response:
        who = self.identify(request)
        tid, mid = path_id(request), path_id(request, "mid")
        thread = await self.service.participant_thread(who, tid)
        msg = await self.service.store.get_message(thread.id, mid)
        if msg is None:
            raise NotFound(f"message {mid!r} does not exist in this thread")
        return json_response({"message": msg.id, "thanks": msg.thanks})

    async def user_thanks(self, request: web.Request) -> web.Response:
        self.identify(request)
        user = path_id(request)
        summary = await self.service.store.thanks_summary(user)
        return json_response({"user": user, **summary})
