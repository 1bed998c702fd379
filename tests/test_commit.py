"""Group commit: concurrent appends share transactions; each caller gets its own result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat.commit import GroupCommitter
from chat.errors import NotFound, Unavailable
from chat.models import Appended, NewMessage
from chat.store import Store, open_store

T0 = 1_700_000_000_000_000


@pytest.fixture
async def store(store: Store) -> Store:
    """The shared store (tests/conftest.py) with the thread t1."""
    await store.create_thread(id="t1", kind="team", title="t", stage="inquiry", ref={},
                              participants=[("alice", "member")], at=T0)
    return store


def req(thread: str = "t1", cmid: str | None = None) -> NewMessage:
    return NewMessage(thread=thread, sender="alice", kind="user", body="b", client_msg_id=cmid)


async def test_concurrent_appends_share_batches(store: Store) -> None:
    gc = GroupCommitter(store, max_batch=64)
    out = await asyncio.gather(*(gc.append(req(cmid=f"c{i}")) for i in range(200)))
    assert sorted(r.message.seq for r in out) == list(range(1, 201))
    # each caller gets the message it asked for
    assert [r.message.client_msg_id for r in out] == [f"c{i}" for i in range(200)]
    assert gc.messages == 200
    assert 4 <= gc.batches < 200  # batched, and never more than max_batch at once


async def test_single_append_is_one_batch(store: Store) -> None:
    gc = GroupCommitter(store)
    r = await gc.append(req(cmid="solo"))
    assert r.created and r.message.seq == 1 and (gc.batches, gc.messages) == (1, 1)
    r2 = await gc.append(req(cmid="solo"))
    assert not r2.created and r2.message == r.message


async def test_errors_are_per_request(store: Store) -> None:
    gc = GroupCommitter(store)
    out = await asyncio.gather(gc.append(req(cmid="a")), gc.append(req("nope", cmid="b")),
                               gc.append(req(cmid="c")), return_exceptions=True)
    assert isinstance(out[0], Appended) and isinstance(out[2], Appended)
    assert isinstance(out[1], NotFound)
    assert (out[0].message.seq, out[2].message.seq) == (1, 2)
    assert gc.batches == 1


async def test_store_failure_fails_the_batch_and_recovers(settings_factory: Any) -> None:
    s = open_store(settings_factory())
    gc = GroupCommitter(s)
    out = await asyncio.gather(gc.append(req()), gc.append(req()), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in out)  # the store is not open
    await s.open()
    await s.migrate()
    try:
        await s.create_thread(id="t1", kind="team", title="t", stage="inquiry", ref={},
                              participants=[("alice", "member")], at=T0)
        assert (await gc.append(req())).message.seq == 1
    finally:
        await s.close()


async def test_drain_waits_for_queued_appends(store: Store) -> None:
    gc = GroupCommitter(store, max_batch=8)
    tasks = [asyncio.create_task(gc.append(req(cmid=f"c{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # let them enqueue
    await gc.drain()
    assert gc.messages == 50
    assert [m.seq for m in await store.history("t1")] == list(range(1, 51))
    await asyncio.gather(*tasks)
    await gc.drain()  # nothing queued: returns at once


async def test_cancelled_caller_does_not_lose_its_commit(store: Store) -> None:
    gc = GroupCommitter(store)
    task = asyncio.create_task(gc.append(req(cmid="gone")))
    await asyncio.sleep(0)
    task.cancel()
    await gc.drain()
    [m] = await store.history("t1")
    assert m.client_msg_id == "gone"
    # a retry of it answers with the stored message
    again = await gc.append(req(cmid="gone"))
    assert not again.created and again.message == m


async def test_linger_gathers_requests_only_under_load(store: Store) -> None:
    """After a quiet spell, or while requests come one at a time, a request is committed at
    once, however long the linger; right after a commit of several the flusher lingers, so
    requests that arrive close together share one."""
    patient = GroupCommitter(store, linger=30.0)
    first = await asyncio.wait_for(patient.append(req(cmid="quiet")), 5)  # not 30 s
    assert first.message.seq == 1 and patient.batches == 1
    # right after that commit of one: still not 30 s
    second = await asyncio.wait_for(patient.append(req(cmid="one at a time")), 5)
    assert second.message.seq == 2 and patient.batches == 2

    gc = GroupCommitter(store, linger=0.5)
    await asyncio.gather(gc.append(req(cmid="a1")), gc.append(req(cmid="a2")))
    assert (gc.batches, gc.messages) == (1, 2)  # a commit of two: under load
    b = asyncio.create_task(gc.append(req(cmid="b")))  # just after it: lingers
    await asyncio.sleep(0.05)
    assert not b.done()
    c = asyncio.create_task(gc.append(req(cmid="c")))
    rb, rc = await asyncio.gather(b, c)
    assert (rb.message.seq, rc.message.seq) == (5, 6)
    assert (gc.batches, gc.messages) == (2, 4)  # b and c shared a commit


class _Watched:
    """A store whose append_batch takes a while and records which threads are in flight."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.in_flight: list[set[str]] = []
        self.most = 0
        self.overlaps = 0  # a thread in two batches at once (must stay 0)

    async def append_batch(self, batch: list[NewMessage]) -> list[Any]:
        threads = {m.thread for m in batch}
        if any(threads & other for other in self.in_flight):
            self.overlaps += 1
        self.in_flight.append(threads)
        self.most = max(self.most, len(self.in_flight))
        try:
            await asyncio.sleep(0.01)
            return await self.store.append_batch(batch)
        finally:
            self.in_flight.remove(threads)


async def test_batches_in_flight_keep_each_thread_in_order(store: Store) -> None:
    """With several batches in flight, a thread is never in two at once: its requests get
    their seqs in the order they came, and other threads' batches overlap with it."""
    for t in ("t2", "t3", "t4"):
        await store.create_thread(id=t, kind="team", title="t", stage="inquiry", ref={},
                                  participants=[("alice", "member")], at=T0)
    watched = _Watched(store)
    gc = GroupCommitter(watched, max_batch=4, in_flight=3)  # type: ignore[arg-type]
    threads = ("t1", "t2", "t3", "t4")
    reqs = [req(threads[(i * 7) % 4 if i % 3 else 0], cmid=f"c{i}") for i in range(120)]
    tasks = []
    for r in reqs:
        tasks.append(asyncio.create_task(gc.append(r)))
        if len(tasks) % 10 == 0:
            await asyncio.sleep(0.003)  # requests keep coming while batches are in flight
    out = await asyncio.gather(*tasks)
    await gc.drain()
    assert watched.overlaps == 0
    assert watched.most > 1  # batches of different threads did overlap
    assert gc.messages == 120
    for t in threads:
        seqs = [o.message.seq for r, o in zip(reqs, out, strict=True) if r.thread == t]
        assert seqs == list(range(1, len(seqs) + 1))  # in request order, no gap
        assert [m.seq for m in await store.history(t, limit=200)] == seqs


async def test_batches_in_flight_fail_alone(store: Store) -> None:
    """A batch that fails (unknown thread) fails only its own requests; the others commit."""
    gc = GroupCommitter(store, max_batch=2, in_flight=2)
    out = await asyncio.gather(*(gc.append(req("t1" if i % 2 else "nope", cmid=f"c{i}"))
                                 for i in range(10)), return_exceptions=True)
    assert [isinstance(o, NotFound) for o in out] == [i % 2 == 0 for i in range(10)]
    assert [o.message.seq for o in out if isinstance(o, Appended)] == [1, 2, 3, 4, 5]
