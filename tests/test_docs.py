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
