"""Moderation seen in the browser — PENDING until issue 3 (moderation) is merged.

Written against the planned behaviour: a masked message looks masked to the recipient (and
not to the sender); a held message waits for a moderator, who releases it in the console,
and then it appears in the recipient's widget. Until the chat service has a screener and the
review API answers, these tests skip with a reason that says so.

The policy decides which texts are masked or held, so each test first probes the running
policy with a few candidate texts in a scratch thread and uses the first one that gets the
action it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chat.app import SERVICE
from tests.browser.pages import open_widgets, send, wait_state, widget
from tests.support import Client, Node

PENDING = "PENDING issue 3: moderation is not wired into chat yet (no screener)"
CANDIDATES = [
    "直接やり取りしましょう。メールは tanaka.shop@gmail.com です",
    "連絡先: ０９０－１２３４－５６７８ に電話してください",
    "LINE ID は tanaka_shop です。サイト外で続きを話しましょう",
    "Let's continue off the site: email me at tanaka.shop@gmail.com",
    "口座番号と暗証番号を教えてください",
]


def require_moderation(node: Node) -> None:
    assert node.app is not None
    if node.app[SERVICE].screener is None:
        pytest.skip(PENDING)


async def probe(node: Node, action: str) -> str:
    """The first candidate text the running policy answers with ``action`` (else skip)."""
    scratch = await node.create_thread(("probe-c", "client"), ("probe-w", "worker"),
                                       kind="inquiry", title="probe")
    c = await Client(node.ws_url, node.token("probe-c", "client")).connect()
    try:
        for text in CANDIDATES:
            ok = await c.send(scratch["id"], text)
            got = (ok.get("moderation") or {}).get("action")
            if got == action:
                return text
    finally:
        await c.close()
    pytest.skip(f"{PENDING}: the policy gives '{action}' to none of the probe texts")


async def test_masked_message_looks_masked_to_the_recipient(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    require_moderation(node)
    text = await probe(node, "mask")
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    page = await browser.new_page(viewport={"width": 1100, "height": 700}, locale="ja-JP")
    await open_widgets(page, node, thread["id"], {"tanaka": node.token("tanaka", "client"),
                                                  "sato": node.token("sato", "worker")})
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await send(tanaka, text)
    got = sato.locator('.msg.theirs[data-masked="true"]')
    await expect(got).to_have_count(1)
    await expect(got.locator(".masked-note")).to_contain_text("一部を伏せて表示")
    assert await got.locator(".bubble").inner_text() != text
    # The sender sees the original, and is told that the recipient sees it masked.
    await expect(tanaka.locator(".msg.mine .bubble")).to_have_text([text])
    await expect(tanaka.locator(".msg.mine .masked-note")).to_contain_text("相手には")
    await page.screenshot(path=str(screenshots / "widget-masked-ja.png"))


async def test_moderator_releases_a_held_message_into_the_recipients_widget(
    browser: Any, node: Node
) -> None:
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    status, _ = await node.http("GET", "/v1/moderation/queue", mod)
    if status == 404:
        pytest.skip("PENDING issue 3: the review queue API is not there yet")
    text = await probe(node, "hold")
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tid = thread["id"]
    context = await browser.new_context(locale="ja-JP")
    chat = await context.new_page()
    await open_widgets(chat, node, tid, {"tanaka": node.token("tanaka", "client"),
                                         "sato": node.token("sato", "worker")})
    tanaka, sato = widget(chat, "tanaka"), widget(chat, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await send(tanaka, text)
    await expect(tanaka.locator(".msg.withheld")).to_have_count(1)
    await expect(tanaka.locator(".msg.withheld .warn")).to_contain_text("保留中")
    await expect(sato.locator(".msg.theirs")).to_have_count(0)

    console = await context.new_page()
    await console.goto(f"{node.url}/static/console.html#locale=ja&token={mod}")
    item = console.locator("#queue li").filter(has_text=text[:8])
    await expect(item).to_have_count(1)
    await item.click()
    await console.locator('input[data-decision="release"]').check()
    await console.locator("#note").fill("問題なしと判断し配信")
    await console.locator("#decide").click()
    await expect(console.locator("#notice")).to_contain_text("記録しました")

    await expect(sato.locator(".msg.theirs")).to_have_count(1)
    await expect(tanaka.locator(".msg.withheld")).to_have_count(0)
    await context.close()
