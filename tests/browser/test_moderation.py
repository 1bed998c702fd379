"""Moderation seen in the browser, end to end against the real screener and review API.

A masked message looks masked to the recipient (and not to the sender); a held message
waits for a moderator, who releases it in the console, and then it appears in the
recipient's widget. With moderation disabled (no screener) the tests skip saying so.

The policy (an operator may change it) decides which texts are masked or held, so each test
first probes the running policy with candidate texts, per sender role, in a scratch thread
and uses the first one that gets the action it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chat.app import SERVICE
from tests.browser.pages import open_widgets, send, shown, wait_state, widget
from tests.support import Client, Node

NO_MODERATION = "moderation is not wired into chat (no screener; TSUNAGU_MODERATION_ENABLED off?)"
# (sender, role, text): sato is the worker, tanaka the client.
CANDIDATES = [
    ("sato", "worker", "お届け先のご住所と生年月日を教えてください"),
    ("tanaka", "client", "Add me on LINE so we can talk there"),
    ("tanaka", "client", "直接やり取りしましょう。メールは tanaka.shop@gmail.com です"),
    ("tanaka", "client", "振込先の口座番号を教えてください"),
    ("tanaka", "client", "LINE ID は tanaka_shop です。サイト外で続きを話しましょう"),
]


def require_moderation(node: Node) -> None:
    assert node.app is not None
    if node.app[SERVICE].screener is None:
        pytest.skip(NO_MODERATION)


async def probe(node: Node, action: str) -> tuple[str, str]:
    """The first (sender, text) the running policy answers with ``action`` (else skip)."""
    scratch = await node.create_thread(("probe-c", "client"), ("probe-w", "worker"),
                                       kind="inquiry", title="probe")
    clients = {"client": await Client(node.ws_url, node.token("probe-c", "client")).connect(),
               "worker": await Client(node.ws_url, node.token("probe-w", "worker")).connect()}
    try:
        for sender, role, text in CANDIDATES:
            ok = await clients[role].send(scratch["id"], text)
            if (ok.get("moderation") or {}).get("action") == action:
                return sender, text
    finally:
        for c in clients.values():
            await c.close()
    pytest.skip(f"the running policy gives '{action}' to none of the probe texts")


async def open_inquiry(browser: Any, node: Node) -> tuple[Any, str, dict[str, str]]:
    """A new inquiry between tanaka (client) and sato (worker), both widgets on one page:
    the page, the thread id and the two tokens."""
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tokens = {"tanaka": node.token("tanaka", "client"), "sato": node.token("sato", "worker")}
    page = await browser.new_page(viewport={"width": 1100, "height": 700}, locale="ja-JP")
    await open_widgets(page, node, thread["id"], tokens)
    return page, thread["id"], tokens


async def test_masked_message_looks_masked_to_the_recipient(
    browser: Any, node: Node, screenshots: Path
) -> None:
    from playwright.async_api import expect

    require_moderation(node)
    sender, text = await probe(node, "mask")
    recipient = "tanaka" if sender == "sato" else "sato"
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    page = await browser.new_page(viewport={"width": 1100, "height": 700}, locale="ja-JP")
    await open_widgets(page, node, thread["id"], {"tanaka": node.token("tanaka", "client"),
                                                  "sato": node.token("sato", "worker")})
    me, them = widget(page, sender), widget(page, recipient)
    await wait_state(me, "open")
    await wait_state(them, "open")
    await send(me, text)
    got = them.locator('.msg.theirs[data-masked="true"]')
    await expect(got).to_have_count(1)
    await expect(got.locator(".masked-note")).to_contain_text("一部を伏せて表示")
    await expect(got.locator(".masked-span").first).to_contain_text("●")
    assert await got.locator(".bubble").inner_text() != text
    await expect(got.locator(".warn")).to_contain_text("注意")  # the recipient's warning
    if recipient == "tanaka":  # a client: the warning speaks to a client, not to a worker
        await expect(got.locator(".warn")).not_to_contain_text("クライアントに")
        await expect(got.locator(".warn")).to_contain_text("ワーカー")
    # The sender sees the original, and is told that the recipient sees it masked.
    await expect(me.locator(".msg.mine .bubble")).to_have_text([text])
    await expect(me.locator(".msg.mine .masked-note")).to_contain_text("相手には")
    await page.screenshot(path=str(screenshots / "widget-masked-ja.png"))


async def test_moderator_releases_a_held_message_into_the_recipients_widget(
    browser: Any, node: Node
) -> None:
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    status, _ = await node.http("GET", "/v1/moderation/queue", mod)
    assert status == 200
    sender, text = await probe(node, "hold")
    assert sender == "tanaka"
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
    await expect(tanaka.locator(".msg.withheld .warn")).to_contain_text("確認待ち")
    await expect(sato.locator(".msg.theirs")).to_have_count(0)

    console = await context.new_page()
    await console.goto(f"{node.url}/static/console.html#locale=ja&token={mod}")
    item = console.locator(f'#queue li[data-thread="{tid}"]')
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text(text[:8])
    await item.click()
    await console.locator('input[data-decision="release"]').check()
    await console.locator("#note").fill("問題なしと判断し配信")
    await console.locator("#decide").click()
    await expect(console.locator("#notice")).to_contain_text("記録しました")

    await expect(sato.locator(".msg.theirs")).to_have_count(1)
    await expect(sato.locator(".msg.theirs .bubble")).to_have_text([text])
    await expect(tanaka.locator(".msg.withheld")).to_have_count(0)
    await expect(tanaka.locator(".msg.mine .bubble")).to_have_text([text])
    # The decision counts in the per-rule precision table.
    await console.locator("#tab-precision").click()
    await expect(console.locator("#precision-table tbody tr").first).to_be_visible()
    await context.close()


async def decide(node: Node, mod: str, withheld_id: str, decision: str) -> None:
    status, queue = await node.http("GET", "/v1/moderation/queue", mod)
    assert status == 200
    [item] = [i for i in queue["items"] if i["withheld_id"] == withheld_id]
    status, out = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod,
                                  {"decision": decision, "note": ""})
    assert status == 200, out


async def test_held_messages_survive_a_reload_until_a_moderator_decides(
    browser: Any, node: Node
) -> None:
    """The sender's held messages come back after a reload (GET /v1/threads/{id}/withheld);
    a release turns one into an ordinary message, a rejection marks it as not delivered,
    and the other participant never sees either before a release."""
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    sender, text = await probe(node, "hold")
    recipient = "tanaka" if sender == "sato" else "sato"
    page, tid, tokens = await open_inquiry(browser, node)
    me, them = widget(page, sender), widget(page, recipient)
    await wait_state(me, "open")
    await send(me, "よろしくお願いします。")
    await send(me, text)
    await send(me, text + "（再送）")
    await expect(me.locator(".msg.withheld")).to_have_count(2)

    held = me.locator(".msg.withheld")
    for _ in range(2):  # every reload brings them back, in place, marked as held for review
        await page.reload()
        me, them = widget(page, sender), widget(page, recipient)
        await wait_state(me, "open")
        await wait_state(them, "open")
        held = me.locator(".msg.withheld")
        await expect(held).to_have_count(2)
        await expect(held.locator(".bubble")).to_have_text([text, text + "（再送）"])
        await expect(held.first.locator(".warn")).to_contain_text("確認待ち")
        assert [s for s, _ in await shown(me)] == [1]
        await expect(them.locator(".msg.theirs")).to_have_count(1)
        await expect(them.locator(".msg.withheld")).to_have_count(0)

    status, rows = await node.http("GET", f"/v1/threads/{tid}/withheld", tokens[sender])
    assert status == 200
    first, second = (r["id"] for r in rows["withheld"])
    await decide(node, mod, first, "release")
    await decide(node, mod, second, "warn")  # confirmed: the held message is not delivered
    await expect(them.locator(".msg.theirs .bubble")).to_have_text(["よろしくお願いします。", text])
    await expect(me.locator(".msg.mine:not(.withheld):not(.blocked) .bubble")).to_have_text(
        ["よろしくお願いします。", text])
    await expect(me.locator(".msg.withheld")).to_have_count(0)
    rejected = me.locator(".msg.blocked")
    await expect(rejected).to_have_count(1)
    await expect(rejected.locator(".warn")).to_contain_text("届けられませんでした")

    await page.reload()  # after a reload: the released one is a message, the other not delivered
    me = widget(page, sender)
    await wait_state(me, "open")
    await expect(me.locator(".msg.blocked .bubble")).to_have_text([text + "（再送）"])
    await expect(me.locator(".msg.blocked .warn")).to_contain_text("届けられませんでした")
    await expect(me.locator(".msg.withheld")).to_have_count(0)
    assert [s for s, _ in await shown(me)] == [1, 2]


async def test_moderator_lifts_a_restriction_in_the_console(
    browser: Any, node: Node, screenshots: Path
) -> None:
    """The console lists restricted users (why, by whom) and lifts a restriction with a
    note; the user's next message is delivered instead of held."""
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    sender, text = await probe(node, "hold")
    assert sender == "tanaka"  # the client's off-site push is held
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tid = thread["id"]
    client = await Client(node.ws_url, node.token("tanaka", "client")).connect()
    try:
        ok = await client.send(tid, text)
        await decide(node, mod, ok["withheld"]["id"], "restrict")
        held = await client.send(tid, "進捗はいかがですか")
        assert held["withheld"]["status"] == "held"

        page = await browser.new_page(viewport={"width": 1100, "height": 700}, locale="en-US")
        await page.goto(f"{node.url}/static/console.html#locale=en&token={mod}")
        await page.locator("#tab-queue").focus()
        await page.keyboard.press("ArrowLeft")  # the tabs wrap around: queue → restrictions
        await expect(page.locator("#tab-restrictions")).to_have_attribute("aria-selected", "true")
        row = page.locator('#restrictions-table tbody tr[data-user="tanaka"]')
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("yamamoto")
        await page.screenshot(path=str(screenshots / "console-en-restrictions.png"))
        await row.locator("input.lift-note").fill("appeal accepted")
        await row.locator('button[data-lift="tanaka"]').click()
        await expect(page.locator("#notice")).to_contain_text("Restriction lifted")
        await expect(page.locator("#restrictions")).to_contain_text("No user is restricted")
        await page.select_option("#locale", "ja")  # the tab follows the language
        await expect(page.locator("#restrictions")).to_contain_text("制限中のユーザーはいません")

        after = await client.send(tid, "修正版をお送りします")
        assert "withheld" not in after and after["message"]["body"] == "修正版をお送りします"
        status, audit = await node.http("GET", "/v1/moderation/audit", mod)
        assert status == 200
        entry = next(e for e in audit["entries"] if e["action"] == "lift_restriction")
        assert (entry["target"], entry["note"]) == ("tanaka", "appeal accepted")
        await page.close()
    finally:
        await client.close()


async def test_a_held_edit_is_explained_to_its_sender_then_released(
    browser: Any, node: Node
) -> None:
    """An edit that moderation holds is not applied; the sender's widget says it waits for
    a moderator (instead of seeming to do nothing), and a release applies it everywhere."""
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    sender, text = await probe(node, "hold")
    assert sender == "tanaka"
    page, tid, tokens = await open_inquiry(browser, node)
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await send(tanaka, "ロゴの件でご相談です")
    await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text("ロゴの件でご相談です")
    own = tanaka.locator('.msg.mine[data-seq="1"]')
    await expect(own.locator(".state")).to_be_visible()  # acknowledged on the sender's side
    editing = tanaka.locator("#editing-label")
    await own.get_by_role("button", name="編集").click()
    await expect(editing).to_be_visible()  # the composer edits the message, not a new one
    await tanaka.locator("textarea").fill(text)
    await tanaka.locator("textarea").press("Enter")
    await expect(tanaka.locator(".banner")).to_contain_text("編集は確認待ちです")
    await expect(tanaka.locator('.msg.mine[data-seq="1"] .bubble')).to_have_text(
        "ロゴの件でご相談です")  # not applied
    await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text("ロゴの件でご相談です")
    pending = tanaka.locator('.msg.mine[data-seq="1"] .edit-pending')
    await expect(pending).to_contain_text("確認中")
    await page.reload()  # the pending edit is still shown after a reload
    tanaka, sato = widget(page, "tanaka"), widget(page, "sato")
    await wait_state(tanaka, "open")
    pending = tanaka.locator('.msg.mine[data-seq="1"] .edit-pending')
    await expect(pending).to_contain_text("確認中")

    status, rows = await node.http("GET", f"/v1/threads/{tid}/withheld", tokens["tanaka"])
    assert status == 200
    [held] = rows["withheld"]
    assert held["edit_of"] and held["body"] == text
    await decide(node, mod, held["id"], "release")
    await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text(text)
    await expect(tanaka.locator('.msg.mine[data-seq="1"] .bubble')).to_have_text(text)
    await expect(pending).to_have_count(0)
    await page.close()


async def test_a_new_review_item_does_not_wipe_the_moderators_decision_in_progress(
    browser: Any, node: Node
) -> None:
    """A `review` push refreshes the queue while a moderator is deciding another item: the
    chosen decision and the note being typed stay, the rows already listed stay the same
    nodes, and the new item is listed (before, every push rebuilt the decision form). A
    rebuild of the same item's pane (a language switch) keeps them as well."""
    from playwright.async_api import expect

    require_moderation(node)
    mod = node.token("yamamoto", "moderator", name="山本")
    sender, text = await probe(node, "hold")
    assert sender == "tanaka"
    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                      kind="inquiry", title="ロゴ制作のご相談")
    tid = thread["id"]
    tanaka = await Client(node.ws_url, node.token("tanaka", "client")).connect()
    try:
        await tanaka.send(tid, text)
        console = await browser.new_page(locale="ja-JP")
        await console.goto(f"{node.url}/static/console.html#locale=ja&token={mod}")
        items = console.locator(f'#queue li[data-thread="{tid}"]')
        await expect(items).to_have_count(1)
        await items.first.click()
        await console.locator('input[data-decision="release"]').check()
        await console.locator("#note").fill("確認中のメモ")
        selected = await console.locator('#queue li[aria-selected="true"]').element_handle()
        await tanaka.send(tid, text + " 再送")  # held too: a `review` push to the console
        await expect(items).to_have_count(2)
        await expect(console.locator("#notice")).to_contain_text("新しい")
        assert await selected.evaluate("el => el.isConnected"), "the listed row was replaced"
        assert await console.locator("#note").input_value() == "確認中のメモ"
        assert await console.locator('input[data-decision="release"]').is_checked()
        # the pane rebuilt for the same item (here: the language switched) keeps them too
        await console.locator("#locale").select_option("en")
        await expect(console.locator("#decide")).to_have_text("Record decision")
        assert await console.locator("#note").input_value() == "確認中のメモ"
        assert await console.locator('input[data-decision="release"]').is_checked()
        await console.locator("#decide").click()
        await expect(console.locator("#notice")).to_contain_text("Decision recorded")
        await expect(items).to_have_count(1)
    finally:
        await tanaka.close()
