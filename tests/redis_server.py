"""A private ``redis-server`` on a free port, to kill and restart in outage tests.

The shared Redis on 6379 is never restarted or flushed (colleagues use it); a test that needs
Redis to go away starts one of these instead.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """``start()`` / ``kill()`` / ``start(extra)`` again on the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            why = "redis-server is not installed (needed by the Redis outage tests)"
            if IN_CI:
                pytest.fail(f"CI is set: {why}")
            pytest.skip(why)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    async def start(self, *extra: str) -> None:
        """Start (again) on the same port; wait until it accepts connections."""
        assert self.proc is None
        self.proc = self._spawn(extra)
        for _ in range(500):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}") from None
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
