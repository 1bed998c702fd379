"""Test support: a real node on a real port, and a WebSocket client that sorts frames.

``Node`` runs the real application (aiohttp ``AppRunner`` + ``TCPSite``) in the test's event
loop; ``Client`` is a real WebSocket client (aiohttp) that separates answers (``re``) from
pushes, so a test can wait for either.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from chat.app import GATEWAY, build_app
from chat.auth import mint_token
from chat.config import Settings
from chat.store import open_store

_ids = itertools.count(1)


async def migrate(settings: Settings) -> None:
    store = open_store(settings)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


STOP_LIMIT_S = 60.0  # drain (10 s) and the close of every socket fit well inside


class Node:
    """One tsunagu node serving on 127.0.0.1 and a free port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: web.Application | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.url}/v1/ws"

    async def start(self) -> Node:
        if not self.settings.is_embedded:
            await migrate(self.settings)
        self.app = build_app(self.settings)
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                    shutdown_timeout=self.settings.drain_timeout_s)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def gateway(self) -> Any:
        assert self.app is not None
        return self.app[GATEWAY]

    async def stop(self) -> None:
        """Graceful stop: drain (close 1001), then release resources.

        Bounded: a stop that has not ended after STOP_LIMIT_S fails the test with every
        task's stack (what it waits for), instead of hanging the suite."""
        if self.runner is not None:
            try:
                async with asyncio.timeout(STOP_LIMIT_S):
                    await self.runner.cleanup()
            except TimeoutError:
                out = io.StringIO()
                for task in asyncio.all_tasks():
                    task.print_stack(file=out)
                raise AssertionError(f"node stop hung; tasks:\n{out.getvalue()}") from None
            self.runner = None

    def token(self, sub: str, *roles: str, ttl: float = 3600, **claims: Any) -> str:
        return mint_token(self.settings, sub, list(roles) or ["client"], ttl=ttl, **claims)

    async def http(self, method: str, path: str, token: str | None = None,
                   json: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as s, s.request(
            method, self.url + path, json=json, headers=headers, **kw
        ) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body

    async def create_thread(self, *participants: tuple[str, str], kind: str = "contract",
                            title: str = "ロゴ制作 / Logo design", **extra: Any) -> dict[str, Any]:
        status, body = await self.http(
            "POST", "/v1/threads", self.token("platform", "service"),
            {"kind": kind, "title": title,
             "participants": [{"user_id": u, "role": r} for u, r in participants], **extra},
        )
        assert status == 201, body
        thread: dict[str, Any] = body["thread"]
        return thread


class Client:
    """A WebSocket client: ``request`` waits for its answer, pushes are kept in order."""

    def __init__(self, url: str, token: str, *, origin: str | None = None) -> None:
        self.url = url
        self.token = token
        self.origin = origin
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self.hello_ok: dict[str, Any] = {}

    async def connect(self, *, hello: bool = True, resume: dict[str, int] | None = None
                      ) -> Client:
        self.session = aiohttp.ClientSession()
        headers = {"Origin": self.origin} if self.origin else {}
        self.ws = await self.session.ws_connect(self.url, headers=headers, autoping=True,
                                                max_msg_size=0)
        self.reader = asyncio.create_task(self._read())
        if hello:
            frame: dict[str, Any] = {"type": "hello", "token": self.token}
            if resume is not None:
                frame["resume"] = resume
            self.hello_ok = await self.request(frame)
            assert self.hello_ok["type"] == "ok", self.hello_ok
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = msg.json()
                re = frame.get("re")
                if frame.get("type") in ("ok", "error") and re in self.answers:
                    fut = self.answers.pop(re)
                    if not fut.done():
                        fut.set_result(frame)
                else:
                    await self.pushes.put(frame)
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            for fut in self.answers.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"closed {self.close_code}"))
                    fut.exception()  # a caller that gave up waiting must not log it at exit

    async def send_raw(self, data: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(data)

    async def request(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        assert self.ws is not None
        rid = frame.setdefault("id", f"r{next(_ids)}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[rid] = fut
        await self.ws.send_json(frame)
        return await asyncio.wait_for(fut, timeout)

    async def send(self, thread: str, body: str, cmid: str | None = None) -> dict[str, Any]:
        return await self.request({"type": "send", "thread": thread,
                                   "client_msg_id": cmid or f"c{next(_ids)}", "body": body})

    async def push(self, type_: str | None = None, timeout: float = 5,
                   where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """The next push (of ``type_``, matching ``where``); others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.pushes.get()
                if (type_ is None or frame["type"] == type_) and (where is None or where(frame)):
                    return frame

    async def messages(self, n: int, timeout: float = 5) -> list[dict[str, Any]]:
        return [(await self.push("message", timeout))["message"] for _ in range(n)]

    def drain_pushes(self) -> list[dict[str, Any]]:
        out = []
        while not self.pushes.empty():
            out.append(self.pushes.get_nowait())
        return out

    async def wait_closed(self, timeout: float = 5) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self.reader is not None:
            try:
                await asyncio.wait_for(self.reader, 2)
            except (TimeoutError, ConnectionError):
                self.reader.cancel()
        if self.session is not None:
            await self.session.close()


class NoHistoryStore:
    """The part of a store a moderation screener reads, empty: no recent messages of the
    sender, no stored copy of an earlier piece (for screener unit tests)."""

    class db:  # stands for the store's ``db`` attribute
        @staticmethod
        async def fetchrow(*args: Any) -> None:
            return None

    async def history(self, thread: str, limit: int) -> list[Any]:
        return []


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)
