"""The documentation keeps up with the code: every setting is in docs/configuration.md."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from chat.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    missing = [f.name for f in fields(Settings)
               if f"`TSUNAGU_{f.name.upper()}`" not in text or f"`{f.name}`" not in text]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"


def test_configuration_table_is_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_config_doc.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_http_route_is_in_openapi() -> None:
    from chat.config import Secret, Settings
    from chat.http_api import HttpApi

    api = HttpApi(Settings(jwt_secret=Secret("x" * 32)), None, None)  # type: ignore[arg-type]
    text = (ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8")
    paths = {route.path for route in api.routes()} | {"/healthz", "/metrics"}
    missing = sorted(p for p in paths if f"\n  {p}:\n" not in text)
    assert missing == [], f"paths missing from docs/openapi.yaml: {missing}"


def test_every_client_frame_is_in_asyncapi_and_protocol() -> None:
    from chat import frames

    types = [cls.__name__.lower() for cls in frames.Frame.__args__]  # type: ignore[attr-defined]
    asyncapi = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = [t for t in types if f"type: {{const: {t}}}" not in asyncapi
               or f"| `{t}` |" not in protocol]
    assert missing == [], f"frames missing from the docs: {missing}"
