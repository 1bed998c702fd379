"""Two <tsunagu-chat> widgets in a real browser (Debian's chromium) against a real node."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from chat.demo import THREAD_ID
from tests.browser.pages import open_widgets, send, shown, wait_state, widget
from tests.support import Client, Node


async def test_demo_widgets_exchange_messages_with_states_thanks_edit_delete(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 1100, "height": 900}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{node.url}/demo")
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    # The demo thread opens with its contract events, on both sides.
    await expect(sato.locator(".system")).to_have_count(2)
    await expect(sato.locator('.system[data-event="contract.concluded"]')).to_contain_text(
        "契約が成立しました")
    await expect(tanaka.locator('.system[data-event="deposit.paid"]')).to_contain_text(
        "仮払いが完了しました")
    await expect(tanaka.locator(".day")).to_have_count(1)

    await send(tanaka, "佐藤さん、ロゴの初稿を金曜までにお願いできますか？")
    await expect(sato.locator(".msg.theirs .bubble")).to_have_text(
        ["佐藤さん、ロゴの初稿を金曜までにお願いできますか？"])
    # sato's widget is visible, so it reads the message: tanaka sees 既読.
    await expect(tanaka.locator('.msg.mine[data-seq="3"] .state')).to_contain_text("既読")

    await sato.locator("textarea").fill("承知しました。A案とB案をお送りします。")
    await sato.get_by_role("button", name="送信").click()
    await expect(tanaka.locator(".msg.theirs .bubble")).to_have_text(
        ["承知しました。A案とB案をお送りします。"])

    # ありがとう from tanaka reaches sato's message on both sides.
    await tanaka.locator('.msg.theirs[data-seq="4"] button.thanks').click()
    await expect(sato.locator('.msg.mine[data-seq="4"] .meta')).to_contain_text("ありがとう（1件）")

    # Typing shows on the other side.
    await tanaka.locator("textarea").press_sequentially("よろ", delay=20)
    await expect(sato.locator(".typing")).to_contain_text("田中さんが入力中")
    await tanaka.locator("textarea").fill("")

    # Edit, then delete, an own message; the other side follows.
    await send(tanaka, "修正前のメッセージ")
    await expect(sato.locator('.msg[data-seq="5"] .bubble')).to_have_text("修正前のメッセージ")
    await tanaka.locator('.msg.mine[data-seq="5"]').get_by_role("button", name="編集").click()
    await tanaka.locator("textarea").fill("修正後のメッセージ")
    await tanaka.locator("textarea").press("Enter")
    await expect(sato.locator('.msg[data-seq="5"] .bubble')).to_have_text("修正後のメッセージ")
    await expect(sato.locator('.msg[data-seq="5"] .meta')).to_contain_text("編集済み")
    delete = tanaka.locator('.msg.mine[data-seq="5"] .actions button').nth(1)
    await delete.click()
    await delete.click()  # the second press confirms
    await expect(sato.locator('.msg[data-seq="5"] .bubble')).to_have_text(
        "このメッセージは削除されました")

    await send(sato, "よろしくお願いいたします。")
    await expect(tanaka.locator('.msg[data-seq="6"] .bubble')).to_have_text(
        "よろしくお願いいたします。")
    for w in (tanaka, sato):
        assert [s for s, _ in await shown(w)] == [1, 2, 3, 4, 5, 6]
    # The notifications service is on: each widget has its inbox.
    await expect(tanaka.locator("button.bell")).to_be_visible()
    await expect(sato.locator("button.bell")).to_be_visible()
    await page.screenshot(path=str(screenshots / "demo-ja.png"))
    assert (screenshots / "demo-ja.png").stat().st_size > 10_000
    assert errors == []


async def test_english_widget_at_phone_width_is_keyboard_usable(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      title="Logo design")
    await node.http("POST", f"/v1/threads/{thread['id']}/system",
                    node.token("platform", "service"),
                    {"body": "The contract has started. The deposit is paid."})
    sato = await Client(node.ws_url, node.token("sato", "worker")).connect()
    try:
        await sato.send(thread["id"], "Thank you for the order! I will start with the sketches.")
        await sato.send(thread["id"], "Could you send me the brief when you have a moment?")
    finally:
        await sato.close()
    page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US",
                                  has_touch=True, is_mobile=True)
    await open_widgets(page, node, thread["id"],
                       {"tanaka": node.token("tanaka", "client", name="Tanaka", locale="en")},
                       locale="en", page_size=2, names={"sato": "Sato"})
    await page.add_style_tag(content="tsunagu-chat { height: calc(100vh - 16px); }")
    tanaka = widget(page, "tanaka")
    await wait_state(tanaka, "open")
    await expect(tanaka.get_by_role("log", name="Messages")).to_be_visible()
    # Only the latest page is loaded; the earlier messages are a button away.
    await expect(tanaka.get_by_role("button", name="Load earlier messages")).to_be_visible()
    await expect(tanaka.locator(".system")).to_have_count(0)
    box = tanaka.get_by_role("textbox", name="Write a message")
    await box.focus()
    await page.keyboard.type("Hello Sato, here is the brief for the logo.")
    await page.keyboard.press("Enter")
    await expect(tanaka.locator('.msg.mine[data-seq="4"] .state')).to_have_text("✓ Sent")
    # Shift+Enter makes a new line instead of sending.
    await page.keyboard.type("Line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("Line two")
    await page.keyboard.press("Enter")
    await expect(tanaka.locator('.msg[data-seq="5"] .bubble')).to_have_text("Line one\nLine two")
    # Reachable by Tab: the composer's send button and the message actions have names.
    await expect(tanaka.get_by_role("button", name="Send")).to_be_visible()
    await expect(tanaka.locator('.msg[data-seq="5"]').get_by_role("button", name="Edit: Line one")).to_be_visible()
    # The own message just sent is scrolled into view, though it is two lines tall.
    gap = await tanaka.evaluate(
        "el => { const l = el.shadowRoot.querySelector('.list');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight; }")
    assert gap < 2
    # The earlier messages are still a button away (screenshot), at the top of the list.
    await expect(tanaka.get_by_role("button", name="Load earlier messages")).to_be_in_viewport()
    # Nothing overflows the phone's width.
    width = await tanaka.evaluate("el => el.shadowRoot.querySelector('.root').scrollWidth")
    assert width <= 390
    await page.screenshot(path=str(screenshots / "widget-en-phone.png"))
    assert (screenshots / "widget-en-phone.png").stat().st_size > 5_000


async def test_demo_thread_is_created_once(node: Node) -> None:
    from chat.app import SERVICE
    from chat.demo import ensure_demo_thread

    assert node.app is not None
    status, first = await node.http("GET", f"/v1/threads/{THREAD_ID}/messages",
                                    node.token("tanaka", "client"))
    await ensure_demo_thread(node.app[SERVICE], node.app)  # a second start changes nothing
    status, body = await node.http("GET", f"/v1/threads/{THREAD_ID}/messages",
                                   node.token("tanaka", "client"))
    assert status == 200 and body["messages"] == first["messages"]
    # The contract events went through the notifications intake: two system messages.
    assert [m["data"]["event"] for m in body["messages"]] == ["contract.concluded",
                                                                "deposit.paid"]
    status, thread = await node.http("GET", f"/v1/threads/{THREAD_ID}",
                                     node.token("tanaka", "client"))
    assert thread["thread"]["stage"] == "in_progress"
    async with aiohttp.ClientSession() as s, s.get(f"{node.url}/demo?locale=en") as r:
        page = await r.text()
    assert r.status == 200 and page.count("<tsunagu-chat") == 2
    assert "moderator console" in page and "#locale=en&amp;token=" in page


async def test_moderation_outcomes_are_shown_clearly(
    browser: Any, node: Node, screenshots: Path
) -> None:
    """How the widget shows masked, warned and withheld messages, on fixed frames.

    The frames are fed to the widget's own SDK client as if they came from the socket (the
    shapes of ``Message.view`` and of the ``ok`` with ``withheld``), so the rendering is
    checked exactly, whatever the running policy decides; test_moderation.py covers the real
    thing end to end.
    """
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tid = thread["id"]
    page = await browser.new_page(viewport={"width": 1100, "height": 760}, locale="ja-JP")
    await open_widgets(page, node, tid, {"tanaka": node.token("tanaka", "client"),
                                         "sato": node.token("sato", "worker")})
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await send(tanaka, "はじめまして。ロゴ制作の件でご相談です。")
    await expect(sato.locator('.msg[data-seq="1"]')).to_have_count(1)
    # Stamped now, so that the fixed frames sort with the real messages around them.
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    masked = {"id": "m_masked", "thread": tid, "seq": 2, "sender": "tanaka", "kind": "user",
              "body": "詳しくはメール ●●●●●●●●●●●● までお願いします", "created_at": now,
              "masked": True, "moderation": {
                  "action": "mask", "categories": ["contact_exchange"],
                  "warning": {"ja": "支払いはすべてサイト上で行われます。サイト外での連絡や"
                                    "直接の取引には応じないでください。",
                              "en": "All payments go through the platform."}}}
    await sato.evaluate(
        "(el, m) => el.client._frame(JSON.stringify({type: 'message', message: m}), el.client._ws)",
        masked)
    got = sato.locator('.msg[data-seq="2"]')
    await expect(got.locator(".masked-span")).to_have_text(["●●●●●●●●●●●●"])
    await expect(got.locator(".masked-span")).to_have_attribute("aria-label", "伏せ字")
    await expect(got.locator(".masked-note")).to_contain_text("一部を伏せて表示")
    await expect(got.locator(".warn")).to_contain_text("サイト外での連絡")
    # The worker asks the client for personal data: the server sends what the policy decides
    # for a worker's message (the client-side text); the widget shows it as sent.
    from moderation.findings import Finding
    from moderation.policy import Policy

    finding = Finding("personal_data_request", "pdr.test", 0, 4, 0, "medium",
                      {"ja": "x", "en": "x"})  # type: ignore[arg-type]
    decided = Policy.load().decide([finding], stage="in_progress", sender_role="worker")
    policy_text = decided.recipient_warning
    assert policy_text is not None and policy_text["audience"] == "client"
    asked = {"id": "m_pii", "thread": tid, "seq": 2, "sender": "sato", "kind": "user",
             "body": "納品物の送付先として ●●●● と ●●●●● を教えてください", "created_at": now,
             "masked": True, "moderation": {"action": "mask",
                                            "categories": ["personal_data_request"],
                                            "warning": {**policy_text, "text": policy_text["ja"]}}}
    await tanaka.evaluate(
        "(el, m) => el.client._frame(JSON.stringify({type: 'message', message: m}), el.client._ws)",
        asked)
    warn = tanaka.locator('.msg[data-seq="2"] .warn')
    await expect(warn).to_contain_text("個人情報をワーカーに伝える必要はありません")
    await expect(warn).not_to_contain_text("クライアントに")
    await tanaka.evaluate("el => el.setAttribute('locale', 'en')")
    await expect(warn).to_contain_text("You never need to give a worker your address")
    await expect(warn).not_to_contain_text("to a client")
    await tanaka.evaluate("el => el.setAttribute('locale', 'ja')")
    # A client's message to a worker (sato) carries the worker-side text, shown as sent.
    to_worker = Policy.load().decide([finding], stage="in_progress", sender_role="client")
    assert to_worker.recipient_warning is not None
    worker_text = to_worker.recipient_warning
    asked_worker = {**asked, "id": "m_pii_w", "seq": 3, "sender": "tanaka",
                    "moderation": {**asked["moderation"], "warning": worker_text}}
    await sato.evaluate(
        "(el, m) => el.client._frame(JSON.stringify({type: 'message', message: m}), el.client._ws)",
        asked_worker)
    await expect(sato.locator('.msg[data-seq="3"] .warn')).to_contain_text(worker_text["ja"])
    # The sender's side: a held message, not delivered, with the reason.
    await tanaka.evaluate(
        """(el, tid) => el.client.emit('withheld', {
             item: {client_msg_id: 'c-held', thread: tid, created_at: new Date().toISOString(),
                    body: '振込先の口座番号を教えてください'},
             withheld: {action: 'hold'},
             moderation: {action: 'hold', categories: ['personal_data_request'],
                          warning: {ja: '口座番号などの個人情報は、この取引には必要ありません。'}}})""",
        tid)
    held = tanaka.locator(".msg.withheld")
    await expect(held.locator(".warn")).to_contain_text("確認待ち")
    await expect(held.locator(".warn")).to_contain_text("個人情報")
    await page.screenshot(path=str(screenshots / "widget-moderation-ja.png"))


async def test_notification_inbox_badge_and_mark_read(browser: Any, node: Node) -> None:
    """The inbox against the real notifications service: a contract event tells both users;
    the notice arrives live (``notification`` frame), the badge counts it, marking it read
    goes to the server."""
    from playwright.async_api import expect

    thread = await node.create_thread(("suzuki", "client"), ("kato", "worker"))
    page = await browser.new_page(locale="ja-JP")
    await open_widgets(page, node, thread["id"], {"suzuki": node.token("suzuki", "client")})
    suzuki = widget(page, "suzuki")  # not a demo user: an empty inbox
    await wait_state(suzuki, "open")
    await expect(suzuki.locator("button.bell")).to_be_visible()
    await expect(suzuki.locator("button.bell .badge")).to_have_count(0)
    status, _ = await node.http("POST", "/v1/events", node.token("platform", "service"), {
        "id": "evt-inbox-1", "type": "contract.concluded", "thread": thread["id"],
        "data": {"client": "suzuki", "worker": "kato", "amount": 30000,
                 "deadline": "2030-01-31T18:00:00+09:00", "title": "ロゴ制作"}})
    assert status == 200
    bell = suzuki.get_by_role("button", name="お知らせ（未読 1件）")
    await expect(bell.locator(".badge")).to_have_text("1", timeout=15000)
    # The system message of the event arrived in the thread too.
    await expect(suzuki.locator(".system")).to_contain_text("契約が成立しました")
    await bell.focus()
    await page.keyboard.press("Enter")
    panel = suzuki.get_by_role("dialog", name="お知らせ")
    await expect(panel.locator("li.unread")).to_have_count(1)
    await panel.locator("li").first.get_by_role("button", name="既読にする").click()
    await expect(suzuki.locator(".bell .badge")).to_have_count(0)
    await expect(suzuki.get_by_role("button", name="お知らせ")).to_be_visible()

    async def unread() -> int:
        _, body = await node.http("GET", "/v1/notifications", node.token("suzuki", "client"))
        return int(body["unread"])

    for _ in range(50):  # the POST from the page may still be in flight
        if await unread() == 0:
            break
        await page.wait_for_timeout(100)
    assert await unread() == 0
    await page.keyboard.press("Escape")
    await expect(panel).to_have_count(0)


async def test_a_click_that_spans_a_render_is_not_lost(browser: Any, node: Node) -> None:
    """Rows that did not change stay the same DOM nodes when the widget renders: a button
    pressed just before a message arrives (which renders the list) is still the button
    released on, so the click happens. Before, the list was rebuilt on every render and
    such a click (press, render, release) went nowhere."""
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 1100, "height": 900}, locale="ja-JP")
    await page.goto(f"{node.url}/demo")
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await send(tanaka, "見積もりを送ります")
    own = tanaka.locator('.msg.mine[data-seq="3"]')
    await expect(own.locator(".state")).to_contain_text("既読")  # settled: sent and read
    row = await own.element_handle()
    edit = own.get_by_role("button", name="編集")
    await edit.hover()
    await page.mouse.down()
    await send(sato, "ありがとうございます")  # arrives in tanaka's widget: a render
    await expect(tanaka.locator('.msg.theirs[data-seq="4"] .bubble')).to_have_text(
        "ありがとうございます")
    assert await row.evaluate("el => el.isConnected"), "the unchanged row was replaced"
    await edit.hover()
    await page.mouse.up()
    await expect(tanaka.locator("#editing-label")).to_be_visible()
    assert await tanaka.locator("textarea").input_value() == "見積もりを送ります"
    # the header too: the bell pressed before a message arrives opens the inbox
    bell = tanaka.locator("button.bell")
    await bell.hover()
    await page.mouse.down()
    await send(sato, "もう一件お願いします")
    await expect(tanaka.locator('.msg.theirs[data-seq="5"] .bubble')).to_have_text(
        "もう一件お願いします")
    await bell.hover()
    await page.mouse.up()
    await expect(tanaka.locator(".inbox")).to_be_visible()
