"""Helpers for browser tests: pages with widgets served from the node's origin, and readers
that take the messages a widget shows out of its shadow DOM."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.support import Node

NAMES = {"tanaka": "田中", "sato": "佐藤"}


async def open_widgets(page: Any, node: Node, thread: str, users: dict[str, str], *,
                       locale: str = "ja", backoff_cap_ms: int = 1500,
                       page_size: int | None = None, names: dict[str, str] | None = None) -> None:
    """Open chat/static/example.html with one widget per user (user id -> token).

    The page is served by the node itself: Chromium blocks a page from elsewhere (even one
    faked with page.route) from opening a WebSocket to 127.0.0.1.
    """
    q = [("thread", thread), ("locale", locale), ("backoff_cap", str(backoff_cap_ms)),
         ("names", json.dumps(names or NAMES, ensure_ascii=False))]
    if page_size is not None:
        q.append(("page_size", str(page_size)))
    q += [("token", tok) for tok in users.values()]
    await page.goto(f"{node.url}/static/example.html#{urlencode(q)}")
    for user in users:
        await page.locator(f'tsunagu-chat[data-user="{user}"]').wait_for(state="attached")


def widget(page: Any, user: str) -> Any:
    return page.locator(f'tsunagu-chat[data-user="{user}"]')


async def shown(w: Any) -> list[tuple[int, str]]:
    """(seq, text) of every stored message the widget shows, in DOM order."""
    rows: list[list[Any]] = await w.locator("[data-seq]").evaluate_all(
        """els => els.map(e => [Number(e.dataset.seq),
              (e.querySelector('.bubble') || e.firstChild).textContent])"""
    )
    return [(int(s), str(t)) for s, t in rows]


async def wait_state(w: Any, state: str, timeout: float = 15000) -> None:
    await w.evaluate_handle(
        """(el, [state, timeout]) => new Promise((resolve, reject) => {
            const end = Date.now() + timeout;
            const tick = () => {
              if (el.client && el.client.state === state) return resolve(true);
              if (Date.now() > end) return reject(new Error('state ' + (el.client && el.client.state)));
              setTimeout(tick, 20);
            };
            tick();
        })""",
        [state, timeout],
    )


async def send(w: Any, text: str) -> None:
    box = w.locator("textarea")
    await box.fill(text)
    await box.press("Enter")
