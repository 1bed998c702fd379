"""Browser test fixtures: Debian's chromium driven by Playwright, and a node on the embedded
back end (SQLite + in-process fan-out) with the demo enabled.

Playwright cannot download browsers here: it drives ``/usr/bin/chromium`` (``apt-get install
chromium``; ``.ci/run`` installs it). Without chromium the tests skip with the reason; with
``CI`` set they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Backend, make_settings
from tests.support import Node

CHROMIUM = os.environ.get("TSUNAGU_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def chromium_present() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI is set but {what}")
    pytest.skip(what)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _need(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)",
          chromium_present())
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _need("playwright is not installed (pip install playwright)", False)
        raise
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A demo-enabled node on SQLite with in-process fan-out."""
    backend = Backend("embedded", f"sqlite:///{tmp_path / 'tsunagu.db'}", "", "tsunagu")
    n = await Node(make_settings(backend, tmp_path, demo=True)).start()
    try:
        yield n
    finally:
        await n.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/screenshots/ with TSUNAGU_TEST_SCREENSHOTS=1, else tmp."""
    if os.environ.get("TSUNAGU_TEST_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    out = tmp_path / "screenshots"
    out.mkdir()
    return out
