"""Several WebSocket text frames in one write.

A connection's writer often has more than one frame ready at once: the ``ok`` for a send and
the ``message`` push of the same message to the sender's own connection, or several pushes
of one group-committed batch. aiohttp writes every frame with its own ``transport.write``
(one ``send`` system call each, the largest single cost of a push); it has no public call
for several frames. :func:`send_frames` frames them itself (RFC 6455 §5.2: FIN, opcode 1,
unmasked as a server must send, no extension) and hands them to the transport together,
keeping aiohttp's flow control (the writer's output count and the protocol's drain).

It needs four attributes of aiohttp's ``WebSocketWriter`` that are not public. If they are
missing (another aiohttp version, a test double) or the writer compresses, it sends frame by
frame through ``send_str`` as before: slower, never wrong. ``tests/test_wswrite.py`` checks
that the installed aiohttp takes the fast path, so an upgrade that breaks it is noticed.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack
_FIN_TEXT = 0x81

fast_writes = 0  # writes of several frames at once (see tests)


class TextSocket(Protocol):
    async def send_str(self, data: str) -> None: ...


def frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed, final text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return _LEN2(_FIN_TEXT, 126, n) + payload
    return _LEN3(_FIN_TEXT, 127, n) + payload


def _writer(socket: Any) -> Any:
    """aiohttp's frame writer behind ``socket`` if the fast path can use it, else None."""
    writer = getattr(socket, "_writer", None)
    if writer is None or getattr(writer, "compress", True) or getattr(writer, "use_mask", True):
        return None
    if getattr(writer, "_closing", True) or not hasattr(writer, "_output_size"):
        return None
    protocol = getattr(writer, "protocol", None)
    if not hasattr(protocol, "_drain_helper") or not hasattr(writer, "_limit"):
        return None
    return writer


def fast_writer(socket: Any) -> Any:
    """aiohttp's frame writer behind ``socket`` if frames can be written to its transport
    directly (:func:`write_now`), else None (another aiohttp, a test double, compression)."""
    return _writer(socket)


def write_now(writer: Any, frames: list[str]) -> bool:
    """Write ``frames`` to ``writer``'s transport at once, without waiting; True if the
    client reads too slowly and the caller must wait for :func:`drain` before writing more.

    aiohttp's own flow control (WebSocketWriter.send_frame): past the writer's limit, a
    sender waits while the transport is paused."""
    global fast_writes
    data = b"".join([frame(text.encode()) for text in frames])
    writer.transport.write(data)
    fast_writes += 1
    writer._output_size += len(data)
    if writer._output_size > writer._limit:
        writer._output_size = 0
        return bool(writer.protocol._paused)
    return False


async def drain(writer: Any) -> None:
    """Wait until the transport behind ``writer`` takes data again."""
    if writer.protocol._paused:
        await writer.protocol._drain_helper()


async def send_frames(socket: TextSocket, frames: list[str]) -> None:
    """Send ``frames`` (JSON texts) in order, in one transport write when possible."""
    writer = _writer(socket) if len(frames) > 1 else None
    if writer is None or writer.transport.is_closing():
        for text in frames:
            await socket.send_str(text)
        return
    if write_now(writer, frames):
        await drain(writer)
