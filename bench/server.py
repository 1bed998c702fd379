"""Start and stop the servers under test (tsunagu on either back end, the bare relay).

Every server is a child process pinned to one CPU with ``taskset -c``; its settings come
from ``TSUNAGU_*`` variables (the service reads nothing else). A production server gets a
fresh PostgreSQL database (dropped afterwards) and its own Redis prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("TSUNAGU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TSUNAGU_BENCH_REDIS", "redis://127.0.0.1:6379/0")

# Limits raised so the benchmark measures the service, not its abuse protection.
BENCH_ENV = {
    "TSUNAGU_LOG_LEVEL": "WARNING",
    "TSUNAGU_RATE_PER_S": "100000",
    "TSUNAGU_RATE_BURST": "100000",
    "TSUNAGU_HTTP_RATE_PER_S": "100000",
    "TSUNAGU_HTTP_RATE_BURST": "100000",
    "TSUNAGU_MAX_CONNECTIONS_PER_USER": "64",
}
# Extra server settings for an experiment, e.g. TSUNAGU_BENCH_SERVER_ENV="SQLITE_SYNCHRONOUS=NORMAL"
# (names without the TSUNAGU_ prefix, comma-separated).
for _pair in filter(None, os.environ.get("TSUNAGU_BENCH_SERVER_ENV", "").split(",")):
    _name, _, _value = _pair.partition("=")
    BENCH_ENV["TSUNAGU_" + _name.strip().upper()] = _value.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout}s")


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    name = f"tsunagu_bench_{secrets.token_hex(5)}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Server:
    kind: str  # embedded | production | relay
    url: str
    proc: subprocess.Popen[bytes]
    secret: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid


def _raise_nofile() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextlib.contextmanager
def running(kind: str, *, cpu: int | None = 1, extra_env: dict[str, str] | None = None,
            log_dir: Path | None = None, cprofile: str | None = None) -> Iterator[Server]:
    """Run one server for the duration of the ``with`` block; ``cprofile``: under cProfile,
    which writes its statistics (the event loop's thread only) to that file at exit."""
    secret = secrets.token_urlsafe(36)
    port = free_port()
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["PYTHONPATH"] = str(ROOT)
    tmp = tempfile.mkdtemp(prefix=f"tsunagu-bench-{kind}-")
    dsn = ""
    log_path = (log_dir or Path(tmp)) / f"{kind}-{port}.log"
    if kind == "relay":
        cmd = [*pin, sys.executable, "-m", "bench.relay", "--port", str(port)]
    else:
        env.update(BENCH_ENV)
        env.update(extra_env or {})
        env["TSUNAGU_DATA_DIR"] = tmp
        env["TSUNAGU_JWT_SECRET"] = secret
        if kind == "production":
            dsn = create_pg_database()
            env["TSUNAGU_DATABASE_URL"] = dsn
            env["TSUNAGU_REDIS_URL"] = REDIS_URL
            env["TSUNAGU_REDIS_PREFIX"] = f"tsunagu-bench-{secrets.token_hex(4)}"
            subprocess.run([sys.executable, "-m", "chat.cli", "migrate"], env=env, cwd=ROOT,
                           check=True, stdout=subprocess.DEVNULL)
        else:
            env["TSUNAGU_DATABASE_URL"] = f"sqlite:///{tmp}/tsunagu.db"
        variant = env.pop("TSUNAGU_BENCH_EVIDENCE", "on")  # see bench/serve_variant.py
        entry = ["-m", "chat.cli"] if variant == "on" else ["-m", "bench.serve_variant", variant]
        if cprofile:
            entry = ["-m", "cProfile", "-o", cprofile, *entry]
        cmd = [*pin, sys.executable, *entry, "serve", "--port", str(port)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_raise_nofile)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield Server(kind, url, proc, secret, env)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if log_dir is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if dsn:
            with contextlib.suppress(Exception):
                drop_pg_database(dsn)
        # Write back what this server left dirty now, not during the next server's first
        # step (the kernel's writeback of a previous run can delay a commit's fsync).
        os.sync()
