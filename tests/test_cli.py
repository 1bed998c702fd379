"""The ``tsunagu`` command, run as a real process: token, migrate, errors, and serve."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from chat.auth import TokenVerifier
from chat.config import Secret, load_settings
from chat.store import open_store
from tests.conftest import create_pg_database, drop_pg_database, require_servers
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cli-test-secret-" + "z" * 32


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TSUNAGU_* variable, the worktree importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def tsunagu(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat.cli", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_is_verified_by_the_configured_secret(tmp_path: Path) -> None:
    code, out, err = await tsunagu("token", "--sub", "alice", "--role", "worker", "--role",
                                   "client", "--name", "Alice", "--ttl", "120",
                                   cwd=tmp_path, env=clean_env(TSUNAGU_JWT_SECRET=SECRET))
    assert code == 0, err
    settings = load_settings(env={"TSUNAGU_JWT_SECRET": SECRET})
    ident = TokenVerifier(settings).verify(out.strip())
    assert ident.user_id == "alice" and ident.roles == {"worker", "client"}
    assert ident.name == "Alice"
    other = load_settings(env={"TSUNAGU_JWT_SECRET": "o" * 40})
    with pytest.raises(Exception, match="invalid token"):
        TokenVerifier(other).verify(out.strip())
    assert not (tmp_path / "data").exists()  # a configured key writes no key file


async def test_token_without_configuration_uses_the_data_dir_key(tmp_path: Path) -> None:
    code, out, err = await tsunagu("token", "--sub", "bob", cwd=tmp_path, env=clean_env())
    assert code == 0, err
    key = (tmp_path / "data" / "jwt-secret").read_text().strip()
    settings = load_settings(env={}, jwt_secret=Secret(key))
    assert TokenVerifier(settings).verify(out.strip()).roles == {"client"}


async def test_migrate_sqlite(tmp_path: Path) -> None:
    env = clean_env(TSUNAGU_DATA_DIR=str(tmp_path / "d"))
    code, out, err = await tsunagu("migrate", cwd=tmp_path, env=env)
    assert code == 0, err
    assert "chat:1" in out
    assert (tmp_path / "d" / "tsunagu.db").is_file()
    code, out, _ = await tsunagu("migrate", cwd=tmp_path, env=env)
    assert code == 0 and out.strip() == "schema is up to date"


async def test_migrate_postgres(tmp_path: Path) -> None:
    require_servers("postgres")
    dsn = await create_pg_database()
    try:
        env = clean_env(TSUNAGU_DATABASE_URL=dsn, TSUNAGU_JWT_SECRET=SECRET)
        code, out, err = await tsunagu("migrate", cwd=tmp_path, env=env)
        assert code == 0, err
        assert "chat:1" in out
        store = open_store(load_settings(env={}, database_url=dsn))
        await store.open()
        try:
            assert await store.schema_version() >= 1
        finally:
            await store.close()
        code, out, _ = await tsunagu("migrate", cwd=tmp_path, env=env)
        assert code == 0 and out.strip() == "schema is up to date"
        # PostgreSQL without a key is a configuration error, not a generated key
        code, _, err = await tsunagu("migrate", cwd=tmp_path,
                                     env=clean_env(TSUNAGU_DATABASE_URL=dsn))
        assert code == 2 and "TSUNAGU_JWT_SECRET" in err
    finally:
        await drop_pg_database(dsn)


@pytest.mark.parametrize(("command", "env", "name"), [
    (["migrate"], {"TSUNAGU_PORT": "abc"}, "TSUNAGU_PORT"),
    (["serve"], {"TSUNAGU_PORT": "abc"}, "TSUNAGU_PORT"),
    (["token", "--sub", "x"], {"TSUNAGU_PORT": "abc"}, "TSUNAGU_PORT"),
    (["serve"], {"TSUNAGU_RATE_BURST": "-1"}, "TSUNAGU_RATE_BURST"),
    (["serve"], {"TSUNAGU_DATABASE_URL": "mysql://x"}, "TSUNAGU_DATABASE_URL"),
    (["migrate"], {"TSUNAGU_NO_SUCH_THING": "1"}, "TSUNAGU_NO_SUCH_THING"),
])
async def test_bad_setting_exits_2_with_one_line(tmp_path: Path, command: list[str],
                                                 env: dict[str, str], name: str) -> None:
    code, out, err = await tsunagu(*command, cwd=tmp_path, env=clean_env(**env))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], err
    assert out == ""
    assert not (tmp_path / "data").exists()


async def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("port = [1]\n", encoding="utf-8")
    code, _, err = await tsunagu("--config", str(cfg), "migrate", cwd=tmp_path, env=clean_env())
    assert code == 2 and len(err.strip().splitlines()) == 1 and "TSUNAGU_PORT" in err


async def test_serve_on_a_fresh_directory_serves_the_contract(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat.cli", "serve", "--port", str(port), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with http.get(f"{base}/healthz") as r:
                            if r.status == 200:
                                health = await r.json()
                                break
                    except aiohttp.ClientConnectionError:
                        assert proc.returncode is None, "serve exited"
                    await asyncio.sleep(0.1)
            assert health["ok"] is True and health["fanout"]["backend"] == "in-process"
            assert (tmp_path / "data" / "tsunagu.db").is_file()
            assert (tmp_path / "data" / "jwt-secret").is_file()

            async def token(sub: str, role: str) -> str:
                code, out, err = await tsunagu("token", "--sub", sub, "--role", role,
                                               cwd=tmp_path, env=env)
                assert code == 0, err
                return out.strip()

            service, alice, bob = (await token("platform", "service"),
                                   await token("alice", "client"), await token("bob", "worker"))
            async with http.post(
                f"{base}/v1/threads", headers={"Authorization": f"Bearer {service}"},
                json={"kind": "contract", "title": "ロゴ制作",
                      "participants": [{"user_id": "alice", "role": "client"},
                                       {"user_id": "bob", "role": "worker"}]},
            ) as r:
                assert r.status == 201, await r.text()
                thread = (await r.json())["thread"]
            assert thread["kind"] == "contract" and thread["title"] == "ロゴ制作"

            async with http.ws_connect(f"{base}/v1/ws") as wa, \
                    http.ws_connect(f"{base}/v1/ws") as wb:
                await wa.send_json({"type": "hello", "id": "h", "token": alice})
                assert (await wa.receive_json(timeout=10))["type"] == "ok"
                await wb.send_json({"type": "hello", "id": "h", "token": bob})
                hello_b = await wb.receive_json(timeout=10)
                assert hello_b["type"] == "ok" and hello_b["user"]["id"] == "bob"
                await wa.send_json({"type": "send", "id": "s1", "thread": thread["id"],
                                    "client_msg_id": "c1", "body": "はじめまして"})
                while True:
                    ack = await wa.receive_json(timeout=10)
                    if ack.get("re") == "s1":
                        break
                assert ack["type"] == "ok" and ack["message"]["seq"] == 1
                while True:
                    push = await wb.receive_json(timeout=10)
                    if push["type"] == "message":
                        break
                assert push["message"]["body"] == "はじめまして"
                assert push["message"]["sender"] == "alice" and push["message"]["seq"] == 1
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, err.decode()
    assert b"jwt-secret" in err  # the log says where the generated key is
