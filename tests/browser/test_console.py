"""The moderator console in a real browser, on fixed review data.

``/v1/moderation/*`` is answered inside the browser with items in the review API's shapes,
so the rendering cases are exact and stable: a finding that points into the sender's earlier
message, code-point spans after an emoji, release offered only for held messages, the
precision table's order and its low-precision rows. The page, the SDK, the WebSocket and
the node are real. ``test_moderation.py`` runs the console against the real review API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import Node

TEXT = "😀 連絡は tanaka.shop@gmail.com か LINE でお願いします"


def span(text: str, part: str) -> tuple[int, int]:
    start = text.index(part)  # Python counts code points, as the server does
    return start, start + len(part)


def queue_items(thread: str) -> list[dict[str, Any]]:
    e0, e1 = span(TEXT, "tanaka.shop@gmail.com")
    l0, l1 = span(TEXT, "LINE")
    return [
        {"id": "rv_low", "thread": thread, "message_id": "m_2", "withheld_id": None, "status": "open", "risk": 25, "action": "flag",
         "categories": ["expense_demand"], "text": "登録料 3,000円 を先に振り込んでください",
         "sender": "tanaka", "created_at": "2026-11-23T01:00:00Z",
         "findings": [{"category": "expense_demand", "rule": "expense.upfront_fee", "start": 0,
                       "end": 10, "severity": "medium",
                       "explanation": {"ja": "前払いの費用の要求", "en": "Upfront fee"}}]},
        {"id": "rv_high", "thread": thread, "message_id": None, "withheld_id": "w_1",
         "status": "open", "risk": 70, "action": "hold",
         "categories": ["contact_exchange"], "text": TEXT, "sender": "tanaka",
         "created_at": "2026-11-23T02:00:00Z",
         "findings": [
             {"category": "contact_exchange", "rule": "contact.email", "start": e0, "end": e1,
              "severity": "high", "message_index": 2,
              "explanation": {"ja": "メールアドレス", "en": "E-mail address"}},
             {"category": "contact_exchange", "rule": "contact.phone", "start": 4, "end": 12,
              "severity": "high", "message_index": 1,
              "explanation": {"ja": "電話番号（前のメッセージから続く）", "en": "Phone number"}},
             {"category": "contact_exchange", "rule": "contact.messenger", "start": l0,
              "end": l1, "severity": "medium", "message_index": 2,
              "explanation": {"ja": "外部メッセンジャー", "en": "Outside messenger"}}]},
    ]


async def test_console_queue_findings_decision_and_precision(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    items = queue_items(tid)
    posts: list[tuple[str, Any]] = []
    log = [
        {"id": "m_1", "thread": tid, "seq": 1, "sender": "system", "kind": "system",
         "body": "契約が成立しました", "created_at": "2026-11-23T00:00:00Z"},
        {"id": "m_2", "thread": tid, "seq": 2, "sender": "tanaka", "kind": "user",
         "body": items[0]["text"], "created_at": "2026-11-23T01:00:00Z",
         "moderation": {"action": "flag", "findings": items[0]["findings"]}},
    ]

    async def api(route: Any) -> None:
        req = route.request
        path = req.url.split("/v1/moderation", 1)[1]
        body: Any
        if req.method == "POST":
            posts.append((path, json.loads(req.post_data or "{}")))
            if path.endswith("/decide"):
                items[:] = [i for i in items if i["id"] != path.split("/")[2]]
            body = {"item": {"claimed_by": "yamamoto"}} if path.endswith("/claim") else {}
        elif path == "/queue":
            body = {"items": items}
        elif path.startswith("/threads/"):
            body = {"thread": {"id": tid}, "messages": log}
        elif path == "/precision":
            body = {"rules": [
                {"rule": "contact.email", "confirmed": 41, "dismissed": 1, "other": 2,
                 "precision": 0.9762},
                {"rule": "contact.messenger", "confirmed": 12, "dismissed": 9, "other": 0,
                 "precision": 0.5714},
                {"rule": "expense.upfront_fee", "confirmed": 7, "dismissed": 0, "other": 1,
                 "precision": 1.0}]}
        else:
            body = {"error": {"code": "not_found", "message": path}}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = await browser.new_page(viewport={"width": 1200, "height": 860}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.route("**/v1/moderation/**", api)
    token = node.token("yamamoto", "moderator", name="山本")
    await page.goto(f"{node.url}/static/console.html#locale=ja&token={token}")
    await expect(page.locator("#conn")).to_have_text("接続中")  # the WebSocket is real
    queue = page.locator("#queue li")
    await expect(queue).to_have_count(2)
    assert await queue.first.get_attribute("data-id") == "rv_high"  # highest risk first

    await queue.first.click()
    await expect(page.locator("#item-text mark")).to_have_text(["tanaka.shop@gmail.com", "LINE"])
    # A finding in the sender's earlier message is listed but not highlighted here.
    await expect(page.locator("#findings tbody tr")).to_have_count(3)
    await expect(page.locator("#findings tbody tr").nth(1)).to_contain_text("前のメッセージ")
    await expect(page.locator("#findings")).to_contain_text("メールアドレス")
    await expect(page.locator(".log .m")).to_have_count(2)
    await page.screenshot(path=str(screenshots / "console-ja.png"))

    await page.locator("#claim").click()
    await expect(page.locator("#detail h2")).to_contain_text("あなたが担当しています")
    await page.locator('input[data-decision="release"]').check()
    await page.locator("#note").fill("取引の連絡先ではなく、納品物の署名でした")
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_contain_text("保留中のメッセージを配信する")
    assert posts == [
        ("/items/rv_high/claim", {}),
        ("/items/rv_high/decide",
         {"decision": "release", "note": "取引の連絡先ではなく、納品物の署名でした"}),
    ]
    await expect(queue).to_have_count(1)

    # Keyboard: the remaining item is reachable and opens with Enter.
    await queue.first.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#item-text mark")).to_have_text(["登録料 3,000円"])
    # Release is only offered for a held message.
    await expect(page.locator('input[data-decision="release"]')).to_be_disabled()
    await expect(page.locator('.log .m.focus')).to_contain_text("登録料")

    # Per-rule precision, worst first, in English.
    await page.locator("#locale").select_option("en")
    await page.locator("#tab-precision").click()
    rows = page.locator("#precision-table tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_have_attribute("data-rule", "contact.messenger")
    await expect(rows.first).to_have_class("low")
    await expect(rows.first.locator("td").last).to_have_text("57.1%")
    await page.screenshot(path=str(screenshots / "console-en-precision.png"))
    assert errors == []


async def test_console_says_when_the_review_api_is_missing(browser: Any, node: Node) -> None:
    from playwright.async_api import expect

    page = await browser.new_page()
    status, _ = await node.http("GET", "/v1/moderation/queue",
                                node.token("yamamoto", "moderator"))
    token = node.token("yamamoto", "moderator", locale="en")
    await page.goto(f"{node.url}/static/console.html#token={token}")
    if status == 404:
        await expect(page.locator("#notice")).to_contain_text("no review API")
    else:
        await expect(page.locator("#queue li").first).to_be_visible()
        await expect(page.locator("#notice")).to_be_hidden()
