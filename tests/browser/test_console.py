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

from tests.browser.test_moderation import probe, require_moderation
from tests.support import Client, Node

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


async def open_console(browser: Any, node: Node, token: str, locale: str = "ja", *,
                       api: Any = None, height: int = 900) -> Any:
    """The console in a new page (its script errors in ``page.errors``); ``api``: a route
    handler standing in for the review API."""
    page = await browser.new_page(viewport={"width": 1200, "height": height}, locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    if api is not None:
        await page.route("**/v1/moderation/**", api)
    await page.goto(f"{node.url}/static/console.html#locale={locale}&token={token}")
    return page


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

    token = node.token("yamamoto", "moderator", name="山本")
    page = await open_console(browser, node, token, api=api, height=860)
    errors = page.errors
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


async def local_time(page: Any, at: str, zone: str) -> str:
    """How the browser writes ``at`` in ``zone`` the way the console lists times (ja)."""
    text: str = await page.evaluate(
        """([at, zone]) => new Intl.DateTimeFormat('ja-JP', {month: 'short', day: 'numeric',
              hour: '2-digit', minute: '2-digit', timeZone: zone}).format(new Date(at))""",
        [at, zone])
    return text


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

    token = node.token("yamamoto", "moderator", tz="America/New_York")
    page = await open_console(browser, node, token, api=api)
    errors = page.errors
    queue = page.locator("#queue li")
    await expect(queue).to_have_count(2)

    # Times in the token's zone (America/New_York), not Tokyo.
    want = await local_time(page, "2026-11-23T02:00:00Z", "America/New_York")
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
    await expect(page.locator("input[data-decision]")).to_have_count(6)
    assert await page.locator("input[data-decision]:checked").count() == 0
    await page.locator("#note").fill("メモ")
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_have_text("判定を選んでください。")
    await expect(page.locator(".decide fieldset.decisions")).to_have_attribute("aria-invalid", "true")
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

    token = node.token("yamamoto", "moderator", tz="UTC+9")
    page = await open_console(browser, node, token, api=api)
    errors = page.errors
    queue = page.locator("#queue li")
    await expect(queue).to_have_count(2)
    want = await local_time(page, "2026-11-23T02:00:00Z", "Asia/Tokyo")
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

    token = node.token("yamamoto", "moderator")
    page = await open_console(browser, node, token, api=api)
    errors = page.errors
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


async def test_console_shows_earlier_pieces_of_a_split_finding_with_their_own_spans(
    browser: Any, node: Node
) -> None:
    """A contact detail split over messages: the earlier pieces are shown in the item pane,
    each highlighted with its own spans (code points, after an emoji), and their spans are
    never applied to the current message's text."""
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    first, second, current = "😀 番号は 090", "🎉-1234", "-5678 です"
    item = {
        "id": "rv_split", "thread": tid, "message_id": "m_3", "withheld_id": None,
        "status": "open", "risk": 60, "action": "flag", "categories": ["contact_exchange"],
        "text": current, "sender": "tanaka", "created_at": "2026-11-23T02:00:00Z",
        "findings": [
            {"category": "contact_exchange", "rule": "contact.phone", "severity": "high",
             "start": span(first, "090")[0], "end": span(first, "090")[1],
             "message_index": 0, "current": False, "message_id": "m_1"},
            {"category": "contact_exchange", "rule": "contact.phone", "severity": "high",
             "start": span(second, "-1234")[0], "end": span(second, "-1234")[1],
             "message_index": 1, "current": False, "message_id": "m_2"},
            {"category": "contact_exchange", "rule": "contact.phone", "severity": "high",
             "start": 0, "end": 5, "message_index": 2, "current": True}],
        "earlier_messages": [
            {"message_index": 0, "message_id": "m_1", "text": first},
            {"message_index": 1, "message_id": "m_2", "text": second}],
    }

    async def api(route: Any) -> None:
        body = {"items": [item]} if "/queue" in route.request.url else {"messages": []}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    token = node.token("yamamoto", "moderator")
    page = await open_console(browser, node, token, api=api)
    errors = page.errors
    await page.locator("#queue li").first.click()
    await expect(page.locator("#item-text mark")).to_have_text(["-5678"])
    pieces = page.locator("#earlier-messages .earlier-piece")
    await expect(pieces).to_have_count(2)
    await expect(pieces.nth(0).locator(".piece-text")).to_have_text(first)
    await expect(pieces.nth(0).locator("mark")).to_have_text(["090"])
    await expect(pieces.nth(1).locator("mark")).to_have_text(["-1234"])
    await expect(page.locator("#earlier-messages h3")).to_contain_text("前のメッセージ")
    # One wrong-rule checkbox per rule of the item's findings.
    await expect(page.locator("input[data-wrong-rule]")).to_have_count(1)
    await page.locator("#locale").select_option("en")
    await expect(page.locator("#earlier-messages h3")).to_contain_text("earlier messages")
    await expect(page.locator(".wrong-rules")).to_contain_text("This rule was wrong")
    assert errors == []


async def test_console_says_when_an_item_lists_only_some_of_its_findings(
    browser: Any, node: Node
) -> None:
    """An item whose record was capped (`findings_total` above the findings listed) says
    how many it shows of how many, in Japanese and English; a whole one says nothing."""
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    finding = {"category": "contact_exchange", "rule": "contact.messenger", "severity": "medium",
               "start": 3, "end": 7, "message_index": 0, "current": True}
    base = {"thread": thread["id"], "message_id": None, "withheld_id": "w_1", "status": "open",
            "risk": 60, "action": "hold", "categories": ["contact_exchange"],
            "text": "my LINE is kotaro " * 3, "sender": "tanaka",
            "created_at": "2026-11-23T02:00:00Z", "earlier_messages": []}
    items = [{**base, "id": "rv_capped", "findings": [finding] * 2, "findings_total": 1110},
             {**base, "id": "rv_whole", "findings": [finding], "findings_total": 1}]

    async def api(route: Any) -> None:
        body = {"items": items} if "/queue" in route.request.url else {"messages": []}
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = await open_console(browser, node, node.token("yamamoto", "moderator"), api=api)
    errors = page.errors
    await page.locator("#queue li").first.click()
    await expect(page.locator("#more-findings")).to_contain_text("1110 件のうち最初の 2 件")
    await page.locator("#locale").select_option("en")
    await expect(page.locator("#more-findings")).to_contain_text("first 2 of 1110 findings")
    await page.locator("#queue li").nth(1).click()
    await expect(page.locator("#findings tbody tr")).to_have_count(1)
    await expect(page.locator("#more-findings")).to_have_count(0)
    assert errors == []


# --- against the real review API: a held message seeded through the screener


async def held_item(node: Node) -> tuple[str, str, str, dict[str, Any]]:
    """A thread where tanaka's message was held: (thread id, text, moderator token, item)."""
    require_moderation(node)
    sender, text = await probe(node, "hold")
    assert sender == "tanaka"
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tid = thread["id"]
    tanaka = await Client(node.ws_url, node.token("tanaka", "client")).connect()
    try:
        ok = await tanaka.send(tid, text)
    finally:
        await tanaka.close()
    assert ok["withheld"]["status"] == "held"
    mod = node.token("yamamoto", "moderator", name="山本")
    status, queue = await node.http("GET", "/v1/moderation/queue", mod)
    assert status == 200
    [item] = [i for i in queue["items"] if i["thread"] == tid]
    return tid, text, mod, item




async def withheld_status(node: Node, tid: str) -> str:
    """The status of the thread's one withheld message (held, released, rejected)."""
    status, view = await node.http("GET", f"/v1/moderation/threads/{tid}",
                                   node.token("admin", "admin"))
    assert status == 200, view
    [row] = view["withheld"]
    return str(row["status"])


async def test_console_rejects_a_held_message(browser: Any, node: Node) -> None:
    from playwright.async_api import expect

    tid, _, mod, item = await held_item(node)
    page = await open_console(browser, node, mod)
    await page.locator(f'#queue li[data-id="{item["id"]}"]').click()
    reject = page.locator('input[data-decision="reject"]')
    await expect(reject).to_be_enabled()
    await expect(reject.locator("xpath=..")).to_contain_text("配信しない")
    await reject.check()
    await page.locator("#note").fill("サイト外への誘導")
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_contain_text("判定を記録しました")
    await expect(page.locator(f'#queue li[data-id="{item["id"]}"]')).to_have_count(0)

    status, decided = await node.http("GET", "/v1/moderation/queue?status=decided", mod)
    assert status == 200
    [got] = [i for i in decided["items"] if i["id"] == item["id"]]
    assert got["decision"] == "reject" and got["note"] == "サイト外への誘導"
    assert got["wrong_rules"] == []  # nothing marked: none sent
    assert await withheld_status(node, tid) == "rejected"
    assert page.errors == []


async def test_console_escalates_and_dispute_staff_decide_the_escalated_item(
    browser: Any, node: Node
) -> None:
    """A moderator escalates a held item: it leaves the default queue, is listed with the
    status filter `escalated` with its status label, and the moderator can no longer claim
    or decide it (the API answers 403); dispute staff see it and reject it."""
    from playwright.async_api import expect

    tid, _, mod, item = await held_item(node)
    page = await open_console(browser, node, mod)
    row = page.locator(f'#queue li[data-id="{item["id"]}"]')
    await row.click()
    await page.locator('input[data-decision="escalate"]').check()
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_contain_text("紛争担当へエスカレーション")
    await expect(row).to_have_count(0)
    assert await withheld_status(node, tid) == "held"  # still held: dispute staff decide

    await page.locator("#status-filter").select_option("escalated")
    await expect(row).to_have_count(1)
    await expect(row.locator(".status")).to_contain_text("エスカレーション済み")
    await row.click()
    await expect(page.locator("#item-status")).to_have_attribute("data-status", "escalated")
    await expect(page.locator("#item-status")).to_contain_text("エスカレーション済み（紛争担当）")
    await expect(page.locator("#detail")).to_contain_text("yamamoto")  # escalated by
    await expect(page.locator("#decide-blocked")).to_contain_text("紛争担当または管理者")
    await expect(page.locator("input[data-decision]:enabled")).to_have_count(0)
    await expect(page.locator("#decide")).to_be_disabled()
    await expect(page.locator("#claim")).to_be_disabled()
    await page.locator("#locale").select_option("en")
    await expect(page.locator("#item-status")).to_contain_text("escalated (dispute staff)")
    assert page.errors == []

    # Dispute staff: the console starts on the escalated items and offers their decisions.
    dispute = await open_console(browser, node, node.token("suzuki", "dispute"))
    drow = dispute.locator(f'#queue li[data-id="{item["id"]}"]')
    await expect(drow).to_have_count(1)
    await expect(dispute.locator("#status-filter")).to_have_value("escalated")
    await drow.click()
    await expect(dispute.locator('input[data-decision="escalate"]')).to_be_disabled()
    await expect(dispute.locator('input[data-decision="release"]')).to_be_enabled()
    await expect(dispute.locator(".log .m")).to_have_count(0)  # the item's context, no 403
    await expect(dispute.locator("#notice")).to_be_hidden()
    await dispute.locator('input[data-decision="reject"]').check()
    await dispute.locator("#decide").click()
    await expect(dispute.locator("#notice")).to_contain_text("判定を記録しました")
    await expect(drow).to_have_count(0)
    assert await withheld_status(node, tid) == "rejected"
    assert dispute.errors == []


async def test_console_sends_wrong_rules_and_the_precision_counts_them(
    browser: Any, node: Node
) -> None:
    """A release that marks one rule as wrong: the API records wrong_rules, the rule counts
    as a false positive in the per-rule precision (the others are not judged)."""
    from playwright.async_api import expect

    tid, _, mod, item = await held_item(node)
    rules = sorted({f["rule"] for f in item["findings"]})
    wrong = rules[0]
    page = await open_console(browser, node, mod)
    await page.locator(f'#queue li[data-id="{item["id"]}"]').click()
    boxes = page.locator("input[data-wrong-rule]")
    await expect(boxes).to_have_count(len(rules))
    await page.locator(f'input[data-wrong-rule="{wrong}"]').check()
    await page.locator('input[data-decision="release"]').check()
    await page.locator("#decide").click()
    await expect(page.locator("#notice")).to_contain_text("判定を記録しました")
    assert await withheld_status(node, tid) == "released"

    status, decided = await node.http("GET", "/v1/moderation/queue?status=decided", mod)
    assert status == 200
    [got] = [i for i in decided["items"] if i["id"] == item["id"]]
    assert got["wrong_rules"] == [wrong]
    status, precision = await node.http("GET", "/v1/moderation/precision", mod)
    assert status == 200
    by_rule = {r["rule"]: r for r in precision["rules"]}
    assert by_rule[wrong]["dismissed"] == 1 and by_rule[wrong]["precision"] == 0
    for rule in rules[1:]:
        assert by_rule[rule]["other"] == 1 and by_rule[rule]["precision"] is None

    await page.locator("#tab-precision").click()
    row = page.locator(f'#precision-table tbody tr[data-rule="{wrong}"]')
    await expect(row.locator("td")).to_have_text([wrong, "0", "1", "0", "0.0%"])
    await expect(page.locator("#precision-table thead")).to_contain_text("誤検知")
    assert page.errors == []
