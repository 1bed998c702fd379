"""Start-up settles the heap: what is alive then is frozen out of the garbage collector."""

from __future__ import annotations

import gc
from typing import Any

from tests.support import Client, Node


async def test_start_up_freezes_the_heap_and_raises_the_young_threshold(
    settings_factory: Any,
) -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    node = await Node(settings_factory(gc_freeze=True, gc_young_threshold=12_345)).start()
    try:
        # modules, the scanner's tables and the phone-number metadata the warm-up loaded
        assert gc.get_freeze_count() > 50_000
        assert gc.get_threshold()[0] == 12_345
        # the node still serves (the scanner was only warmed up, not changed)
        thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
        alice = Client(node.ws_url, node.token("alice", "client"))
        await alice.connect()
        ok = await alice.send(thread["id"], "こんにちは", cmid="h1")
        assert ok["type"] == "ok" and ok["message"]["seq"] == 1
        await alice.close()
    finally:
        await node.stop()
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_gc_freeze_can_be_turned_off(settings_factory: Any) -> None:
    gc.unfreeze()
    node = await Node(settings_factory(gc_freeze=False)).start()
    try:
        assert gc.get_freeze_count() == 0
    finally:
        await node.stop()
