"""<tsunagu-chat> keeps its state right: after a reconnect (edits, deletions and read positions
made while the socket was down), with a token whose time zone is not a zone, and for screen
readers (a state change patches its row in place instead of re-inserting it)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from tests.browser.pages import open_widgets, send, wait_state, widget
from tests.support import Client, Node

# Records what a widget's live regions go through: rows added to or removed from the list,
# and any change to the banner's or the typing line's text.
WATCH = """el => {
  const root = el.shadowRoot;
  const seen = { list: [], banner: 0, typing: 0 };
  const list = root.querySelector('.list');
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) seen.list.push('+' + (n._key || n.nodeName));
      for (const n of r.removedNodes) seen.list.push('-' + (n._key || n.nodeName));
    }
  }).observe(list, { childList: true });
  for (const part of ['banner', 'typing']) {
    new MutationObserver((records) => { seen[part] += records.length; })
      .observe(root.querySelector('.' + part), { childList: true, characterData: true, subtree: true });
  }
  el._seen = seen;
}"""


async def cut_user(node: Node, user: str) -> None:
    """Close ``user``'s sockets from the server side and refuse their new ones (as if that
    user's network were down: 4029 before the hello is answered); the others stay
    connected and can act. ``restore_user`` lets them in again."""
    presence = node.gateway.presence
    real = type(presence).connections
    presence.connections = lambda who: 10**6 if who == user else real(presence, who)
    for conn in list(node.gateway.connections):
        if conn.user == user:
            with contextlib.suppress(Exception):
                await conn.socket.close(code=1012, message=b"test: network cut")


def restore_user(node: Node) -> None:
    del node.gateway.presence.connections


async def test_reconnect_rereads_edits_deletions_and_read_positions(browser: Any, node: Node
                                                                     ) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    tanaka = await Client(node.ws_url, node.token("tanaka", "client")).connect(
        resume={tid: 0})
    page = await browser.new_page(locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        first = (await tanaka.send(tid, "最初のメッセージ"))["message"]
        second = (await tanaka.send(tid, "あとで消すメッセージ"))["message"]
        await open_widgets(page, node, tid, {"sato": node.token("sato", "worker")},
                           backoff_cap_ms=800)
        sato = widget(page, "sato")
        await wait_state(sato, "open")
        await send(sato, "佐藤の返信")
        await expect(sato.locator(".msg .bubble")).to_have_text(
            ["最初のメッセージ", "あとで消すメッセージ", "佐藤の返信"])
        reply = sato.locator('.msg.mine[data-seq="3"] .state')
        await expect(reply).to_have_text("✓ 送信済み")

        # --- sato's socket is cut; tanaka edits, deletes, thanks and reads meanwhile.
        await cut_user(node, "sato")
        await expect(sato.locator(".banner")).to_contain_text("再接続しています")
        ok = await tanaka.request({"type": "edit", "thread": tid, "message": first["id"],
                                   "body": "最初のメッセージ（訂正済み）"})
        assert ok["type"] == "ok", ok
        ok = await tanaka.request({"type": "delete", "thread": tid, "message": second["id"]})
        assert ok["type"] == "ok", ok
        ok = await tanaka.request({"type": "read", "thread": tid, "seq": 3})
        assert ok["type"] == "ok", ok
        # Nothing of this reached the widget (updates and receipts are not replayed).
        await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text("最初のメッセージ")
        await expect(reply).to_have_text("✓ 送信済み")

        # --- restored: the widget reads the loaded messages and read positions again.
        restore_user(node)
        await wait_state(sato, "open")
        await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text(
            "最初のメッセージ（訂正済み）")
        await expect(sato.locator('.msg[data-seq="1"] .meta')).to_contain_text("編集済み")
        await expect(sato.locator('.msg[data-seq="2"] .bubble')).to_have_text(
            "このメッセージは削除されました")
        await expect(sato.locator('.msg[data-seq="2"] .bubble')).to_have_class("bubble deleted")
        await expect(reply).to_have_text("✓✓ 既読")
        await expect(sato.locator("[data-seq]")).to_have_count(3)

        # A live edit after the reconnect still wins over nothing older.
        ok = await tanaka.request({"type": "edit", "thread": tid, "message": first["id"],
                                   "body": "三度目の正直"})
        assert ok["type"] == "ok", ok
        await expect(sato.locator('.msg[data-seq="1"] .bubble')).to_have_text("三度目の正直")
        assert errors == []
    finally:
        await tanaka.close()


async def test_a_time_zone_that_is_not_a_zone_falls_back_to_tokyo(browser: Any, node: Node
                                                                  ) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    status, body = await node.http("POST", f"/v1/threads/{tid}/system",
                                   node.token("platform", "service"),
                                   {"body": "契約が成立しました"})
    assert status == 201
    created = body["message"]["created_at"]
    page = await browser.new_page(locale="ja-JP")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    # The server takes any string as the tz claim.
    token = node.token("tanaka", "client", tz="UTC+9")
    await open_widgets(page, node, tid, {"tanaka": token})
    tanaka = widget(page, "tanaka")
    await wait_state(tanaka, "open")
    assert await tanaka.evaluate("el => el.client.user.tz") == "UTC+9"
    await expect(tanaka.locator(".system")).to_contain_text("契約が成立しました")
    await send(tanaka, "よろしくお願いします")
    await expect(tanaka.locator(".msg.mine .bubble")).to_have_text("よろしくお願いします")
    # Dates and times are those of Asia/Tokyo.
    want = await page.evaluate(
        """at => [
          new Intl.DateTimeFormat('en-CA', {year: 'numeric', month: '2-digit', day: '2-digit',
                                             timeZone: 'Asia/Tokyo'}).format(new Date(at)),
          new Intl.DateTimeFormat('ja-JP', {hour: '2-digit', minute: '2-digit',
                                             timeZone: 'Asia/Tokyo'}).format(new Date(at))]""",
        created)
    await expect(tanaka.locator(".day").first).to_have_attribute("data-day", want[0])
    await expect(tanaka.locator(".system .meta")).to_have_text(want[1])
    assert errors == [] and not [c for c in console if "RangeError" in c], console


async def test_state_changes_patch_rows_in_place(browser: Any, node: Node) -> None:
    """A Sent → Read flip, a thanks count, a re-render: the row stays the same element (a
    live region does not read the whole message again), and the banner and typing line are
    not re-set when their text did not change."""
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    sato = await Client(node.ws_url, node.token("sato", "worker")).connect(resume={tid: 0})
    page = await browser.new_page(locale="ja-JP")
    try:
        await open_widgets(page, node, tid, {"tanaka": node.token("tanaka", "client")})
        tanaka = widget(page, "tanaka")
        await wait_state(tanaka, "open")
        await send(tanaka, "見積もりをお願いします")
        row = tanaka.locator('.msg.mine[data-seq="1"]')
        await expect(row.locator(".state")).to_have_text("✓ 送信済み")
        await tanaka.evaluate(WATCH)
        await row.evaluate("el => { el._probe = 'kept'; }")
        mid = await row.get_attribute("data-id")

        assert (await sato.request({"type": "read", "thread": tid, "seq": 1}))["type"] == "ok"
        await expect(row.locator(".state")).to_have_text("✓✓ 既読")
        ok = await sato.request({"type": "thanks", "thread": tid, "message": mid})
        assert ok["type"] == "ok", ok
        await expect(row.locator(".meta")).to_contain_text("ありがとう（1件）")
        await tanaka.evaluate("el => { el.render(); el.render(); }")
        assert await row.evaluate("el => el._probe") == "kept"
        assert await tanaka.evaluate("el => el._seen.list") == []

        # A new message adds its row (and only that); the others stay.
        await sato.send(tid, "承知しました")
        await expect(tanaka.locator(".msg.theirs .bubble")).to_have_text("承知しました")
        added = await tanaka.evaluate("el => el._seen.list")
        assert added and all(k.startswith("+msg:") for k in added), added
        assert await row.evaluate("el => el._probe") == "kept"

        # Typing line and banner: their text is set when it changes, not at every render.
        await tanaka.locator("textarea").fill("あ" * 10001)
        await tanaka.locator("textarea").press("Enter")
        await expect(tanaka.locator(".banner")).to_have_text(
            "メッセージが長すぎます（10000文字まで）。")
        await sato.send_raw(json.dumps({"type": "typing", "thread": tid}))
        await expect(tanaka.locator(".typing")).to_have_text("佐藤さんが入力中…")
        before = await tanaka.evaluate("el => [el._seen.banner, el._seen.typing]")
        await tanaka.evaluate("el => { el.render(); el.render(); el.render(); }")
        assert await tanaka.evaluate("el => [el._seen.banner, el._seen.typing]") == before
    finally:
        await sato.close()
