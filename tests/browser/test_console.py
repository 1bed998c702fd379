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


async def until(ok: Any, timeout: float = 5) -> None:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        if ok():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_console_asks_for_a_decision_ignores_stale_queues_and_says_errors_in_japanese(
    browser: Any, node: Node
) -> None:
    """No decision is chosen in advance (Submit alone decides nothing); an older queue answer
    arriving after a newer one is ignored; a refused decision is put into Japanese by its
    code, the server's English kept in a title; times follow the token's zone."""
    import asyncio

    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    items = queue_items(tid)
    posts: list[tuple[str, Any]] = []
    queue_answers: list[list[dict[str, Any]]] = []
    slow_first = asyncio.Event()

    async def api(route: Any) -> None:
        req = route.request
        path = req.url.split("/v1/moderation", 1)[1].split("?")[0]
        if req.method == "POST":
            posts.append((path, json.loads(req.post_data or "{}")))
            await route.fulfill(status=409, content_type="application/json", body=json.dumps(
                {"error": {"code": "conflict", "message": "this item has already been decided"}}))
            return
        if path == "/queue":
            n = len(queue_answers)
            answer = [dict(i) for i in items]
            if n == 1:  # the second request is answered late, with what it read then
                answer = answer[:1]
                queue_answers.append(answer)
                await slow_first.wait()
            else:
                queue_answers.append(answer)
            body: Any = {"items": answer}
        elif path.startswith("/threads/"):
            body = {"thread": {"id": tid}, "messages": []}
        else:
            body = {"error": {"code": "not_found", "message": path}}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = await browser.new_page(viewport={"width": 1200, "height": 860}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.route("**/v1/moderation/**", api)
    token = node.token("yamamoto", "moderator", tz="America/New_York")
    await page.goto(f"{node.url}/static/console.html#locale=ja&token={token}")
    queue = page.locator("#queue li")
    await expect(queue).to_have_count(2)

    # Times in the token's zone (America/New_York), not Tokyo.
    want = await page.evaluate(
        """at => new Intl.DateTimeFormat('ja-JP', {month: 'short', day: 'numeric', hour: '2-digit',
              minute: '2-digit', timeZone: 'America/New_York'}).format(new Date(at))""",
        "2026-11-23T02:00:00Z")
    await expect(queue.first.locator(".top").first).to_contain_text(want)

    # A slow answer (one item) comes back after a newer one (two items): it is ignored.
    await page.locator("#refresh").click()  # request 2: held back
    await until(lambda: len(queue_answers) == 2)
    await page.locator("#refresh").click()  # request 3: answered at once
    await until(lambda: len(queue_answers) == 3)
    slow_first.set()
    await page.wait_for_timeout(300)
    await expect(queue).to_have_count(2)

    # Nothing is pre-selected: Submit without a choice records nothing.
    await queue.first.click()
    await expect(page.locator("input[data-decision]")).to_have_count(5)
    assert await page.locator("input[data-decision]:checked").count() == 0
    await page.locator("#note").fill("メモ")
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_have_text("判定を選んでください。")
    await expect(page.locator(".decide fieldset")).to_have_attribute("aria-invalid", "true")
    assert posts == []
    await expect(page.locator("input[data-decision]").first).to_be_focused()

    # The server refuses (409 conflict, in English): the moderator reads Japanese.
    await page.locator('input[data-decision="warn"]').check()
    await page.locator("#decide").click()
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("この項目の状態が変わったため操作できません")
    await expect(notice).to_have_attribute("title", "conflict: this item has already been decided")
    await expect(notice).to_have_attribute("data-error-code", "conflict")
    assert "already been decided" not in await notice.inner_text()
    assert posts == [("/items/rv_high/decide", {"decision": "warn", "note": "メモ"})]
    assert errors == []


async def test_console_time_zone_falls_back_to_tokyo(browser: Any, node: Node) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    items = queue_items(thread["id"])

    async def api(route: Any) -> None:
        body = {"items": items} if "/queue" in route.request.url else {"messages": []}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = await browser.new_page(locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.route("**/v1/moderation/**", api)
    token = node.token("yamamoto", "moderator", tz="UTC+9")
    await page.goto(f"{node.url}/static/console.html#locale=ja&token={token}")
    queue = page.locator("#queue li")
    await expect(queue).to_have_count(2)
    want = await page.evaluate(
        """at => new Intl.DateTimeFormat('ja-JP', {month: 'short', day: 'numeric', hour: '2-digit',
              minute: '2-digit', timeZone: 'Asia/Tokyo'}).format(new Date(at))""",
        "2026-11-23T02:00:00Z")
    await expect(queue.first.locator(".top").first).to_contain_text(want)
    await queue.first.click()
    await expect(page.locator("#detail table").first).to_contain_text("2026")
    assert errors == []


async def test_console_pages_the_thread_log_back_to_the_flagged_message(
    browser: Any, node: Node
) -> None:
    """The flagged message is older than the latest 200: the console reads earlier pages
    (before_seq) until it is shown; against a server that ignores before_seq it asks for
    the largest page (limit=1000) instead."""
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    log = [{"id": f"m_{n}", "thread": tid, "seq": n, "sender": "tanaka", "kind": "user",
            "body": f"メッセージ {n}", "created_at": "2026-11-23T00:00:00Z"} for n in range(1, 451)]
    item = dict(queue_items(tid)[0], message_id="m_5", text="メッセージ 5", findings=[])
    asked: list[str] = []
    pages_back = {"on": True}

    async def api(route: Any) -> None:
        url = route.request.url
        if "/queue" in url:
            body: Any = {"items": [item]}
        else:
            q = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
            asked.append("&".join(f"{k}={v}" for k, v in sorted(q.items())))
            limit = int(q.get("limit", 200))
            before = int(q["before_seq"]) if pages_back["on"] and "before_seq" in q else None
            older = [m for m in log if before is None or m["seq"] < before]
            body = {"thread": {"id": tid}, "messages": older[-limit:]}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = await browser.new_page(viewport={"width": 1200, "height": 860}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.route("**/v1/moderation/**", api)
    token = node.token("yamamoto", "moderator")
    await page.goto(f"{node.url}/static/console.html#locale=ja&token={token}")
    await page.locator("#queue li").first.click()
    await expect(page.locator(".log .m.focus")).to_contain_text("メッセージ 5")
    assert asked == ["limit=200", "before_seq=251&limit=200", "before_seq=51&limit=200"]
    await expect(page.locator(".log .m")).to_have_count(450)
    await expect(page.locator(".log .log-start")).to_be_visible()

    # A server without before_seq: the latest page again, so the console asks for 1000.
    pages_back["on"] = False
    asked.clear()
    await page.locator("#refresh").click()
    await page.evaluate("() => window.tsunaguConsole.select(window.tsunaguConsole.items[0])")
    await expect(page.locator(".log .m.focus")).to_contain_text("メッセージ 5")
    assert asked == ["limit=200", "before_seq=251&limit=200", "limit=1000"]
    assert errors == []
