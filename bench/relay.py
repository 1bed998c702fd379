"""A bare aiohttp WebSocket relay: the ceiling for bench/loadgen.py.

It speaks the same frame shapes as tsunagu's ``/v1/ws`` but stores nothing and checks
nothing: ``POST /v1/threads`` remembers the participants in memory, ``hello`` reads ``sub``
from the token without verifying it, and ``send`` gives the message the thread's next seq,
pushes ``message`` to every connection of the thread (the sender's too, as tsunagu does) and
answers ``ok`` with the message. No queue per connection, no auth, no rate limit, no
moderation, no presence.

    python -m bench.relay --port 8090
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import time
from datetime import UTC, datetime

import orjson
from aiohttp import WSMsgType, web

_ids = itertools.count(1)


def _sub(token: str) -> str:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return str(orjson.loads(base64.urlsafe_b64decode(payload))["sub"])


class Relay:
    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {}  # thread -> users
        self.user_threads: dict[str, list[str]] = {}
        self.seqs: dict[str, int] = {}
        self.conns: dict[str, set[web.WebSocketResponse]] = {}  # thread -> sockets

    async def create_thread(self, request: web.Request) -> web.Response:
        body = await request.json(loads=orjson.loads)
        tid = f"t_{next(_ids)}"
        users = [p["user_id"] for p in body["participants"]]
        self.members[tid] = users
        self.seqs[tid] = 0
        for u in users:
            self.user_threads.setdefault(u, []).append(tid)
        thread = {"id": tid, "kind": body["kind"], "title": body["title"],
                  "participants": body["participants"], "last_seq": 0}
        return web.Response(body=orjson.dumps({"thread": thread}), status=201,
                            content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=65536, compress=False)
        await ws.prepare(request)
        msg = await ws.receive(timeout=10)
        if msg.type != WSMsgType.TEXT:
            await ws.close(code=4001)
            return ws
        hello = orjson.loads(msg.data)
        user = _sub(hello["token"])
        threads = self.user_threads.get(user, [])
        for t in threads:
            self.conns.setdefault(t, set()).add(ws)
        await ws.send_str(orjson.dumps({"type": "ok", "re": hello.get("id"),
                                              "user": {"id": user}}).decode())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = orjson.loads(msg.data)
                if frame.get("type") != "send":
                    await ws.send_str(orjson.dumps({"type": "ok", "re": frame.get("id")}).decode())
                    continue
                tid = frame["thread"]
                seq = self.seqs[tid] = self.seqs.get(tid, 0) + 1
                now = time.time()
                message = {"id": f"m_{next(_ids)}", "thread": tid, "seq": seq, "sender": user,
                           "kind": "user", "body": frame["body"],
                           "created_at": datetime.fromtimestamp(now, UTC).isoformat()}
                push = orjson.dumps({"type": "message", "message": message}).decode()
                for peer in tuple(self.conns.get(tid, ())):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await peer.send_str(push)
                message["client_msg_id"] = frame["client_msg_id"]
                await ws.send_str(orjson.dumps({"type": "ok", "re": frame.get("id"),
                                                      "message": message,
                                                      "duplicate": False}).decode())
        finally:
            for t in threads:
                self.conns.get(t, set()).discard(ws)
        return ws


def build_app() -> web.Application:
    relay = Relay()
    app = web.Application()
    app.router.add_post("/v1/threads", relay.create_thread)
    app.router.add_get("/healthz", relay.healthz)
    app.router.add_get("/v1/ws", relay.ws)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description="bare WebSocket relay (benchmark ceiling)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    a = p.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    web.run_app(build_app(), host=a.host, port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
