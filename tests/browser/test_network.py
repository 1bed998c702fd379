"""The network is cut and restored: nothing is lost or duplicated, the outbox included.

The server closes every socket and refuses new ones (as a restarting node would) while the
client keeps writing; one page is even reloaded during the outage, so its unsent messages
must come back from localStorage. When the node takes connections again, both widgets must
show every message exactly once and in seq order, and storage must hold each message once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tests.browser.pages import open_widgets, send, shown, wait_state, widget
from tests.support import Node


async def cut(node: Node) -> None:
    """Refuse new sockets and close the open ones from the server side."""
    node.gateway.draining = True
    for conn in list(node.gateway.connections):
        with contextlib.suppress(Exception):
            await conn.socket.close(code=1012, message=b"test: network cut")


async def test_cut_and_restore_loses_and_duplicates_nothing(browser: Any, node: Node) -> None:
    from playwright.async_api import expect

    thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"))
    tid = thread["id"]
    context = await browser.new_context(locale="ja-JP")
    page_t = await context.new_page()
    page_s = await context.new_page()
    await open_widgets(page_t, node, tid, {"tanaka": node.token("tanaka", "client")},
                       backoff_cap_ms=800)
    await open_widgets(page_s, node, tid, {"sato": node.token("sato", "worker")},
                       backoff_cap_ms=800)
    tanaka, sato = widget(page_t, "tanaka"), widget(page_s, "sato")
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")

    await send(tanaka, "m1 接続中に送信")
    await expect(sato.locator(".msg .bubble")).to_have_text(["m1 接続中に送信"])
    await send(sato, "m2 返信")
    await expect(tanaka.locator(".msg .bubble")).to_have_text(["m1 接続中に送信", "m2 返信"])

    # --- the cut
    await cut(node)
    await expect(tanaka.locator(".banner")).to_contain_text("再接続しています")
    await expect(sato.locator(".banner")).to_contain_text("再接続しています")
    await send(tanaka, "m3 切断中に書いた")
    await send(tanaka, "m4 これも切断中")
    await expect(tanaka.locator('.msg[data-status="pending"]')).to_have_count(2)
    await expect(tanaka.locator(".banner")).to_contain_text("未送信 2件")
    stored = await page_t.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('tsunagu.outbox'))"
        ".map(k => localStorage.getItem(k)).join('')")
    assert "m3 切断中に書いた" in stored and "m4 これも切断中" in stored
    # The platform posts a system message meanwhile (HTTP still works).
    status, _ = await node.http("POST", f"/v1/threads/{tid}/system",
                                node.token("platform", "service"),
                                {"body": "m5 仮払いが確認されました"})
    assert status == 201
    # tanaka's page is reloaded during the outage: the outbox comes back from localStorage.
    await page_t.reload()
    tanaka = widget(page_t, "tanaka")
    await expect(tanaka.locator('.msg[data-status="pending"] .bubble')).to_have_text(
        ["m3 切断中に書いた", "m4 これも切断中"])
    assert len(node.gateway.connections) == 0

    # --- restored
    node.gateway.draining = False
    await wait_state(tanaka, "open")
    await wait_state(sato, "open")
    await expect(tanaka.locator('.msg[data-status="pending"]')).to_have_count(0)
    # The system message was stored during the outage, before the outbox was flushed.
    want = ["m1 接続中に送信", "m2 返信", "m5 仮払いが確認されました", "m3 切断中に書いた",
            "m4 これも切断中"]
    for w in (tanaka, sato):
        await expect(w.locator("[data-seq]")).to_have_count(5)
        rows = await shown(w)
        assert [s for s, _ in rows] == [1, 2, 3, 4, 5]
        assert [next((x for x in want if x in t), t) for _, t in rows] == want
    # Sent messages are now stored once each, and the outbox is empty.
    status, body = await node.http("GET", f"/v1/threads/{tid}/messages?after_seq=0",
                                   node.token("tanaka", "client"))
    bodies = [m["body"] for m in body["messages"]]
    assert status == 200 and bodies == want
    # No unsent item is left (a live tab's heartbeat and the sent tombstones may stay).
    left = await page_t.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('tsunagu.outbox')"
        " && !k.includes(':alive:') && !k.endsWith(':sent'))"
        ".map(k => JSON.parse(localStorage.getItem(k) || '[]')).flat().length")
    assert left == 0

    # A second cut right after a send: the message is delivered once whichever side of the
    # cut its answer fell on (a retry reuses its client_msg_id).
    await send(sato, "m6 送信直後に切断")
    await cut(node)
    node.gateway.draining = False
    await wait_state(sato, "open")
    await expect(tanaka.locator('.msg[data-seq="6"] .bubble')).to_have_text("m6 送信直後に切断")
    await expect(sato.locator('.msg[data-status="pending"]')).to_have_count(0)
    status, body = await node.http("GET", f"/v1/threads/{tid}/messages?after_seq=0",
                                   node.token("tanaka", "client"))
    assert [m["body"] for m in body["messages"]].count("m6 送信直後に切断") == 1
    for w in (tanaka, sato):
        assert [s for s, _ in await shown(w)] == [1, 2, 3, 4, 5, 6]
    await context.close()
