"""The contract's happy path on both back ends: thread, hello, send, push, retry, read."""

from __future__ import annotations

from typing import Any

from tests.support import Client, Node


async def test_send_reaches_both_participants_once(settings_factory: Any) -> None:
    node = await Node(settings_factory()).start()
    try:
        thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
        a = await Client(node.ws_url, node.token("alice", "client")).connect()
        b = await Client(node.ws_url, node.token("bob", "worker")).connect()
        ok = await a.send(thread["id"], "こんにちは", cmid="c-1")
        assert ok["type"] == "ok" and ok["message"]["seq"] == 1
        [got] = await b.messages(1)
        assert got["body"] == "こんにちは" and got["sender"] == "alice" and got["seq"] == 1
        again = await a.send(thread["id"], "こんにちは", cmid="c-1")
        assert again["message"]["id"] == ok["message"]["id"] and again["duplicate"] is True
        read = await b.request({"type": "read", "thread": thread["id"], "seq": 1})
        assert read["seq"] == 1
        receipt = await a.push("receipt")
        assert receipt == {"type": "receipt", "thread": thread["id"], "user": "bob", "seq": 1}
        assert [f for f in b.drain_pushes() if f["type"] == "message"] == []
        await a.close()
        await b.close()
    finally:
        await node.stop()
