"""Node-level tuning: the heap frozen at start-up, and the group-commit counters."""

from __future__ import annotations

import asyncio
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


async def test_metrics_count_group_commit_batches(settings_factory: Any) -> None:
    """/metrics reports the group committer's work, and which path of the store wrote it."""
    node = await Node(settings_factory()).start()
    try:
        thread = await node.create_thread(("alice", "client"), ("bob", "worker"))
        alice = Client(node.ws_url, node.token("alice", "client"))
        await alice.connect()
        for i in range(3):
            await alice.send(thread["id"], f"メッセージ {i}", cmid=f"m{i}")
        await alice.close()
        status, body = await node.http("GET", "/metrics", node.token("ops", "admin"))
        assert status == 200
        gc_ = body["group_commit"]
        assert gc_["messages"] >= 3 and 1 <= gc_["batches"] <= gc_["messages"]
        # the first batch of a thread reads it (PostgreSQL: locks it); the next ones take
        # the fast path
        assert gc_["slow_batches"] >= 1 and gc_["fast_batches"] >= 1
        if node.settings.is_embedded:
            # the background checkpointer copies the WAL's pages in within its interval
            for _ in range(100):
                _, body = await node.http("GET", "/metrics", node.token("ops", "admin"))
                if body["sqlite_checkpoints"]:
                    break
                await asyncio.sleep(0.05)
            assert body["sqlite_checkpoints"] >= 1
        else:
            assert body["sqlite_checkpoints"] is None
    finally:
        await node.stop()
