"""chat.wswrite: several text frames in one transport write, read back by a real client."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chat import wswrite
from chat.wswrite import frame, send_frames


def test_frame_header_lengths_follow_rfc_6455() -> None:
    assert frame(b"hi") == b"\x81\x02hi"
    assert frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"  # 16-bit length
    assert frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")  # 64-bit


async def round_trip(batches: list[list[str]], *, compress: bool) -> tuple[list[str], int]:
    """A real aiohttp server sends each of ``batches`` with send_frames; a real client reads
    every frame. Returns what the client read and how many one-write sends were made."""
    count = sum(len(b) for b in batches)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compress)
        await ws.prepare(request)
        for frames in batches:
            await send_frames(ws, frames)
        await ws.receive()  # the client's close
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    before = wswrite.fast_writes
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/ws", max_msg_size=0, compress=15 if compress else 0)
        got = [(await ws.receive()).data for _ in range(count)]
        await ws.close()
    return got, wswrite.fast_writes - before


async def test_frames_written_together_arrive_intact_and_in_order() -> None:
    frames = ["短い", "x" * 200, "日本語" * 30_000, '{"type":"ok"}']  # 2-, 4- and 10-byte headers
    got, fast = await round_trip([frames, ["last"]], compress=False)  # "last": plain send_str
    assert got == [*frames, "last"]
    assert fast == 1  # the installed aiohttp takes the one-write path


async def test_a_socket_without_aiohttp_internals_gets_frame_by_frame() -> None:
    class Fake:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send_str(self, data: str) -> None:
            self.sent.append(data)

    fake = Fake()
    before = wswrite.fast_writes
    await send_frames(fake, ["a", "b", "c"])
    assert fake.sent == ["a", "b", "c"] and wswrite.fast_writes == before


async def test_a_compressing_socket_is_not_written_raw() -> None:
    got, fast = await round_trip([["one", "two"]], compress=True)
    assert got == ["one", "two"]
    assert fast == 0  # permessage-deflate: aiohttp frames it
