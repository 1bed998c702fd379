"""Older history in the widget: the "load earlier messages" button (keyboard) and scrolling
to the top page back through ``GET /v1/threads/{id}/messages?before_seq=&limit=`` until the
start of the thread, keeping what is on screen in place and showing each message once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.browser.pages import open_widgets, send, shown, wait_state, widget
from tests.support import Client, Node

TOTAL = 32
PAGE = 10


async def top_of(w: Any, seq: int) -> float:
    """Where message ``seq`` is on the page (px)."""
    return float(await w.locator(f'.msg[data-seq="{seq}"]').evaluate(
        "e => e.getBoundingClientRect().top"))


async def settled_top_of(w: Any, seq: int, near: float) -> float:
    """Where message ``seq`` is once the widget has restored the scroll position.

    The page's messages are in the DOM one frame before the widget puts the view back, so
    read the position until it is near ``near`` (or two seconds have passed), then return it.
    """
    top = await top_of(w, seq)
    for _ in range(40):
        if abs(top - near) < 3:
            break
        await asyncio.sleep(0.05)
        top = await top_of(w, seq)
    return top


async def test_earlier_messages_load_by_keyboard_and_by_scrolling_up(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      title="ロゴ制作：長いやり取り")
    tid = thread["id"]
    people = {"tanaka": await Client(node.ws_url, node.token("tanaka", "client")).connect(),
              "sato": await Client(node.ws_url, node.token("sato", "worker")).connect()}
    try:
        for i in range(1, TOTAL + 1):
            who = "tanaka" if i % 2 else "sato"
            ok = await people[who].send(tid, f"{i}件目：デザイン案についての相談です。")
            assert ok["message"]["seq"] == i
    finally:
        for c in people.values():
            await c.close()

    page = await browser.new_page(viewport={"width": 560, "height": 640}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    history: list[str] = []
    page.on("request", lambda r: history.append(r.url) if "/messages" in r.url else None)
    await open_widgets(page, node, tid, {"tanaka": node.token("tanaka", "client")},
                       page_size=PAGE)
    tanaka = widget(page, "tanaka")
    await wait_state(tanaka, "open")
    await expect(tanaka.locator(".msg[data-seq]")).to_have_count(PAGE)
    assert [s for s, _ in await shown(tanaka)] == list(range(TOTAL - PAGE + 1, TOTAL + 1))
    log = tanaka.get_by_role("log", name="メッセージ一覧")

    # By keyboard: the button has a name, Enter loads the page before; what was at the top
    # of the view stays where it was, and the button keeps the focus.
    button = tanaka.get_by_role("button", name="以前のメッセージを読み込む")
    await button.focus()
    await expect(button).to_be_focused()
    await page.screenshot(path=str(screenshots / "widget-history-ja.png"))
    anchor = TOTAL - PAGE + 1  # 23
    y = await top_of(tanaka, anchor)
    await page.keyboard.press("Enter")
    await expect(tanaka.locator(".msg[data-seq]")).to_have_count(2 * PAGE)
    assert abs(await settled_top_of(tanaka, anchor, y) - y) < 3
    await expect(button).to_be_focused()
    assert [s for s, _ in await shown(tanaka)] == list(range(TOTAL - 2 * PAGE + 1, TOTAL + 1))

    # By scrolling: the user scrolls up to the top and the next page comes, in place.
    anchor = TOTAL - 2 * PAGE + 1  # 13
    await log.hover()
    await page.mouse.wheel(0, -200)
    await page.wait_for_timeout(100)
    y = await top_of(tanaka, anchor)
    await page.mouse.wheel(0, -5000)
    await expect(tanaka.locator(".msg[data-seq]")).to_have_count(3 * PAGE)
    await page.wait_for_timeout(300)  # let the wheel's own scrolling settle
    await expect(tanaka.locator(".msg[data-seq]")).to_have_count(3 * PAGE)
    # The view did not jump to the new top: the old first message is still in view.
    assert await top_of(tanaka, anchor) > y - 5

    # The last page by keyboard again: the start of the thread; the button goes, focus stays
    # in the message list, and nothing is shown twice.
    await button.focus()
    await page.keyboard.press("Enter")
    await expect(tanaka.locator(".start")).to_have_text("ここから会話が始まりました")
    await expect(button).to_have_count(0)
    await expect(log).to_be_focused()
    assert [s for s, _ in await shown(tanaka)] == list(range(1, TOTAL + 1))
    befores = [u for u in history if "before_seq=" in u]
    assert len(befores) == 3, history
    assert all(f"limit={PAGE}" in u for u in befores), befores
    assert any("before_seq=23" in u for u in befores), befores
    # Scrolling up again at the start asks for nothing more.
    await log.hover()
    await page.mouse.wheel(0, -3000)
    await page.wait_for_timeout(300)
    assert len([u for u in history if "before_seq=" in u]) == 3

    # Live messages still arrive after the loaded pages, once.
    await send(tanaka, "最新のメッセージです")
    await expect(tanaka.locator(f'.msg[data-seq="{TOTAL + 1}"]')).to_have_count(1)
    assert [s for s, _ in await shown(tanaka)] == list(range(1, TOTAL + 2))
    assert errors == []
