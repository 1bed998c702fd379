"""Errors in the Japanese <tsunagu-chat>: the server's (and the SDK's) English messages are
replaced by texts in the widget's language, chosen by the error code; the raw message stays
in a title attribute for support."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.pages import open_widgets, send, wait_state, widget
from tests.conftest import Backend, make_settings
from tests.support import Node

MAX_BODY = 40
# What the server says (chat/frames.py, chat/gateway.py) and the SDK (tsunagu.js), in English.
ENGLISH = ("longer than", "slow down", "too many", "not connected", "connection closed")


@pytest.fixture
async def strict_node(tmp_path: Path) -> AsyncIterator[Node]:
    """A node with short messages and a rate of one send or edit per 50 s (after one)."""
    backend = Backend("embedded", f"sqlite:///{tmp_path / 'tsunagu.db'}", "", "tsunagu")
    n = await Node(make_settings(backend, tmp_path, max_body_chars=MAX_BODY, rate_burst=1,
                                 rate_per_s=0.02)).start()
    try:
        yield n
    finally:
        await n.stop()


async def test_server_and_sdk_errors_are_shown_in_japanese(browser: Any, strict_node: Node
                                                           ) -> None:
    from playwright.async_api import expect

    node = strict_node
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    page = await browser.new_page(viewport={"width": 800, "height": 800}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await open_widgets(page, node, thread["id"], {"tanaka": node.token("tanaka", "client")})
    tanaka = widget(page, "tanaka")
    await wait_state(tanaka, "open")

    # Too long: refused by the widget itself, by hello's max_body_chars (the server would
    # answer bad_frame), with the text kept to be shortened; nothing reaches the server.
    box = tanaka.locator("textarea")
    counter = tanaka.locator(".counter")
    await box.fill("あ" * (MAX_BODY - 9))  # under 80 % of the limit
    await expect(counter).to_be_hidden()
    await box.fill("あ" * MAX_BODY)
    await expect(counter).to_have_text(f"{MAX_BODY} / {MAX_BODY}文字")
    await expect(box).not_to_have_attribute("aria-invalid", "true")
    await send(tanaka, "あ" * (MAX_BODY + 1))
    await expect(counter).to_have_text(f"{MAX_BODY + 1} / {MAX_BODY}文字")
    await expect(counter).to_have_class(re.compile(r"\bover\b"))
    await expect(box).to_have_attribute("aria-invalid", "true")
    banner = tanaka.locator(".banner")
    await expect(banner).to_have_text(f"メッセージが長すぎます（{MAX_BODY}文字まで）。")
    await expect(box).to_have_value("あ" * (MAX_BODY + 1))
    await expect(tanaka.locator(".msg")).to_have_count(0)
    assert await tanaka.evaluate("el => el.client.pending(el.thread).length") == 0
    status, body = await node.http("GET", f"/v1/threads/{thread['id']}/messages",
                                   node.token("tanaka", "client"))
    assert status == 200 and body["messages"] == []
    # A message over the limit that reaches the server anyway (an old outbox, another
    # client) is still shown as refused, in Japanese, with the server's words kept.
    await tanaka.evaluate(f"el => el.client.send(el.thread, 'い'.repeat({MAX_BODY + 1}))")
    failed = tanaka.locator('.msg[data-status="failed"] .state.failed')
    await expect(failed).to_have_text(f"送信できませんでした: メッセージが長すぎます（{MAX_BODY}文字まで）。")
    await expect(failed).to_have_attribute("data-error-code", "bad_frame")
    # The server's own words are kept for support, out of the text.
    assert "longer than" in (await failed.get_attribute("title") or "")
    await tanaka.locator('.msg[data-status="failed"]').get_by_role("button", name="取り消す").click()
    await box.fill("")

    # Rate limited: the one send of the bucket is used, so an edit is refused for ~50 s.
    await send(tanaka, "よろしくお願いします")
    await expect(tanaka.locator('.msg.mine[data-seq="1"] .state')).to_have_text("✓ 送信済み")
    await tanaka.locator('.msg.mine[data-seq="1"]').get_by_role("button", name="編集").click()
    await tanaka.locator("textarea").fill("よろしくお願いいたします")
    await tanaka.locator("textarea").press("Enter")
    await expect(banner).to_have_attribute("data-error-code", "rate_limited")
    await expect(banner).to_contain_text("操作が続いたため制限中です。")
    await expect(banner).to_contain_text(
        re.compile(r"(49|50)秒ほど待ってからもう一度お試しください"))
    assert (await banner.get_attribute("title") or "").startswith("rate_limited: ")
    await expect(tanaka.locator('.msg[data-seq="1"] .bubble')).to_have_text("よろしくお願いします")
    # The failed edit is not lost: still being edited, with the edited text, to save again.
    await expect(tanaka.locator("textarea")).to_have_value("よろしくお願いいたします")
    await expect(tanaka.locator(".editing-label")).to_be_visible()
    await expect(tanaka.locator("form button[type=submit]")).to_have_text("保存")
    await tanaka.get_by_role("button", name="キャンセル").click()
    await expect(tanaka.locator("textarea")).to_have_value("")

    # The SDK's own error (a request without a connection: "not connected").
    await tanaka.evaluate("el => el.client.close()")
    delete = tanaka.locator('.msg.mine[data-seq="1"] .actions button').nth(1)
    await delete.click()
    await delete.click()  # the second press confirms
    await expect(banner).to_have_attribute("data-error-code", "disconnected")
    await expect(banner).to_contain_text("接続が切れています。再接続してからもう一度お試しください。")

    shown = await tanaka.evaluate("el => el.shadowRoot.querySelector('.root').innerText")
    for english in ENGLISH:
        assert english not in shown, (english, shown)
    assert errors == []
