"""Delivery batches at scale and when things go wrong: held chat alerts of many groups are
claimed with a bounded number of statements; leases are short, renewed while a batch works,
released on a graceful stop; a coalesced digest keeps its count across retries and names the
alerts it stood for when dead-lettered; one malformed row fails alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson

from notifications.channels import SENT, Outgoing, Result
from notifications.delivery import DeliveryConfig, DeliveryWorker
from tests.notifications.conftest import NotifyNode


class Sender:
    """Answers each send with ``answers`` in turn (the last one repeated); ``block`` makes
    every send after the first ``block`` ones wait forever."""

    def __init__(self, *answers: Result, block: int | None = None) -> None:
        self.answers = list(answers) or [SENT]
        self.block = block
        self.sent: list[Outgoing] = []
        self.waiting = 0

    async def send(self, out: Outgoing) -> Result:
        if self.block is not None and len(self.sent) >= self.block:
            self.waiting += 1
            await asyncio.Event().wait()
        self.sent.append(out)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def close(self) -> None:
        pass


class CountingDb:
    """The database, counting the statements run in its transactions."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.db.transaction() as tx:
            outer = self

            class Tx:
                def __getattr__(self, name: str) -> Any:
                    fn = getattr(tx, name)

                    async def call(sql: str, *args: Any) -> Any:
                        outer.statements.append(sql)
                        return await fn(sql, *args)
                    return call
            yield Tx()


def worker(node: NotifyNode, sender: Sender, db: Any = None, **cfg: Any) -> DeliveryWorker:
    conf = {"batch": 500, "lease_s": 60, "concurrency": 2, "send_timeout_s": 10, **cfg}
    return DeliveryWorker(cast(Any, db or node.n.store.db), {"fcm": sender}, node.clock,
                          DeliveryConfig(**conf))


async def chat_alerts(node: NotifyNode, threads: int, per_thread: int, *, user: str = "bob",
                      payload: Any = None) -> list[str]:
    """``per_thread`` held chat alerts (fcm) in each of ``threads`` threads, due now; the
    first of each thread is due earliest. Returns the delivery ids."""
    db = node.n.store.db
    now = node.clock.now_us()
    await db.execute("INSERT INTO notify_devices VALUES (?, 'fcm', ?, ?)", f"tok-{user}", user,
                     now)
    ids = []
    for t in range(threads):
        for k in range(per_thread):
            n = f"{user}-{t}-{k}"
            data = payload if payload is not None else orjson.dumps(
                {"count": 1, "sender": "田中", "last_seq": k + 1, "title": "ロゴ制作"}).decode()
            await db.execute(
                "INSERT INTO notify_jobs (id, dedupe_key, group_key, kind, thread_id, user_id, "
                "due_at, state, payload, created_at) VALUES (?, ?, ?, 'chat', ?, ?, ?, 'fired', "
                "?, ?)", f"j-{n}", f"chat:j-{n}", f"g-{n}", f"th-{t}", user, now, data, now + k)
            await db.execute(
                "INSERT INTO notify_inbox (id, user_id, job_id, kind, category, thread_id, "
                "title, body, data, urgent, created_at) VALUES (?, ?, ?, 'chat', 'chat', ?, "
                "'田中さんから新しいメッセージ', 'ロゴ制作', '{}', 0, ?)",
                f"n-{n}", user, f"j-{n}", f"th-{t}", now + k)
            await db.execute(
                "INSERT INTO notify_deliveries (id, notice_id, user_id, channel, target, state, "
                "attempts, next_at, created_at, updated_at) VALUES (?, ?, ?, 'fcm', ?, 'queued', "
                "0, ?, ?, ?)", f"d-{n}", f"n-{n}", user, f"tok-{user}", now - 1000 + k, now, now)
            ids.append(f"d-{n}")
    return ids


async def states(node: NotifyNode) -> dict[str, int]:
    rows = await node.n.store.db.fetch(
        "SELECT state, count(*) FROM notify_deliveries GROUP BY state")
    return {r[0]: int(r[1]) for r in rows}


async def test_many_held_chat_groups_are_claimed_with_few_statements(node: NotifyNode) -> None:
    """At 08:00 the held alerts of 60 threads are due: the claim takes the first of each
    (the batch) and the later ones of the same groups with one statement, not one each."""
    await chat_alerts(node, 60, 3)
    counting = CountingDb(node.n.store.db)
    sender = Sender()
    w = worker(node, sender, counting, batch=60)
    assert await w.tick() == 180
    # 2 claims (the batch, the rest of its groups), 2 fetches, 1 update; then the record
    # (the old claim ran one statement per group: 60 more)
    assert len(counting.statements) <= 10, counting.statements
    assert len(sender.sent) == 60
    assert {o.title for o in sender.sent} == {"田中さんから3件の新しいメッセージ"}
    assert await states(node) == {"sent": 60, "skipped": 120}


async def test_a_crashed_batch_is_taken_over_after_a_short_lease(node: NotifyNode) -> None:
    """A node that claimed a batch and died holds its rows for ``lease_s`` only, however
    large the batch (the lease was stretched to cover the whole batch: minutes)."""
    await chat_alerts(node, 200, 1)
    first = worker(node, Sender())
    assert len(await first._claim(node.clock.now_us(), "lease-dead")) == 200
    node.clock.advance(61)
    other = Sender()
    assert await worker(node, other).tick() == 200
    assert len(other.sent) == 200


async def test_the_lease_is_renewed_while_a_slow_batch_works(node: NotifyNode) -> None:
    await chat_alerts(node, 6, 1)
    other = Sender()
    b = worker(node, other)
    a: DeliveryWorker

    async def slow() -> Result:
        for _ in range(3):  # 150 s in all, renewed every 50 s
            node.clock.advance(50)
            assert await a.renew_leases() == 6
            assert await b.tick() == 0
        return SENT

    class Slow(Sender):
        async def send(self, out: Outgoing) -> Result:
            if not self.sent:
                await slow()
            self.sent.append(out)
            return SENT

    first = Slow()
    a = worker(node, first)
    assert await a.tick() == 6
    assert other.sent == [] and len(first.sent) == 6
    assert await states(node) == {"sent": 6}


async def test_a_graceful_stop_releases_the_rows_not_sent(node: NotifyNode) -> None:
    """The service stops mid-batch: what was sent is recorded, the rest is queued again,
    due at once, the interrupted attempt not counted; another node sends it right away."""
    await chat_alerts(node, 6, 1)
    sender = Sender(block=2)
    a = worker(node, sender, tick_s=3600)
    a.start()
    for _ in range(500):
        if sender.waiting:
            break
        await asyncio.sleep(0.01)
    assert len(sender.sent) == 2 and sender.waiting
    await a.stop()
    assert await states(node) == {"sent": 2, "queued": 4}
    rows = await node.n.store.db.fetch(
        "SELECT attempts, next_at, lease_owner FROM notify_deliveries WHERE state = 'queued'")
    assert all(r[0] == 0 and r[1] <= node.clock.now_us() and r[2] is None for r in rows)
    other = Sender()
    assert await worker(node, other).tick() == 4


async def test_a_retried_digest_keeps_its_count_and_a_dead_one_names_its_alerts(
        node: NotifyNode) -> None:
    await chat_alerts(node, 1, 3)
    sender = Sender(Result(False, "http 503", retry=True))
    w = worker(node, sender, max_attempts=2, retry_base_s=1, retry_max_s=1)
    assert await w.tick() == 3
    assert [o.title for o in sender.sent] == ["田中さんから3件の新しいメッセージ"]
    node.clock.advance(5)
    assert await w.tick() == 1  # the kept copy alone: its digest is stored with it
    assert [o.title for o in sender.sent] == ["田中さんから3件の新しいメッセージ"] * 2
    db = node.n.store.db
    assert await db.fetchval("SELECT state FROM notify_deliveries WHERE id = 'd-bob-0-2'"
                             ) == "dead"
    stored = orjson.loads(await db.fetchval(
        "SELECT coalesced FROM notify_deliveries WHERE id = 'd-bob-0-2'"))
    assert stored["count"] == 3
    assert sorted(m[0] for m in stored["members"]) == ["d-bob-0-0", "d-bob-0-1"]
    log = await db.fetch("SELECT delivery_id, detail FROM notify_delivery_log "
                         "WHERE state = 'dead' ORDER BY delivery_id")
    assert [r[0] for r in log] == ["d-bob-0-0", "d-bob-0-1", "d-bob-0-2"]
    assert all("covered by digest delivery d-bob-0-2" in r[1] for r in log[:2])
    errs = await db.fetch("SELECT last_error FROM notify_deliveries WHERE state = 'skipped'")
    assert len(errs) == 2 and all("dead-lettered" in r[0] for r in errs)


async def test_a_digest_retried_with_new_alerts_counts_them_all(node: NotifyNode) -> None:
    await chat_alerts(node, 1, 2)
    sender = Sender(Result(False, "http 503", retry=True), SENT)
    w = worker(node, sender, retry_base_s=1, retry_max_s=1)
    assert await w.tick() == 2
    node.clock.advance(5)
    db = node.n.store.db
    now = node.clock.now_us()
    await db.execute("UPDATE notify_deliveries SET state = 'queued', next_at = ? "
                     "WHERE id = 'd-bob-0-1'", now)  # still the newest of the group
    await db.execute(
        "INSERT INTO notify_jobs (id, dedupe_key, group_key, kind, thread_id, user_id, due_at, "
        "state, payload, created_at) VALUES ('j-x', 'chat:j-x', 'g-x', 'chat', 'th-0', 'bob', "
        "?, 'fired', ?, ?)", now, orjson.dumps({"count": 4, "sender": "田中", "last_seq": 9,
                                                 "title": "ロゴ制作"}).decode(), now)
    await db.execute(
        "INSERT INTO notify_inbox (id, user_id, job_id, kind, category, thread_id, title, body, "
        "data, urgent, created_at) VALUES ('n-x', 'bob', 'j-x', 'chat', 'chat', 'th-0', 't', "
        "'b', '{}', 0, ?)", now)
    await db.execute(
        "INSERT INTO notify_deliveries (id, notice_id, user_id, channel, target, state, "
        "attempts, next_at, created_at, updated_at) VALUES ('d-x', 'n-x', 'bob', 'fcm', "
        "'tok-bob', 'queued', 0, ?, ?, ?)", now, now, now)
    assert await w.tick() == 2
    assert sender.sent[-1].delivery_id == "d-x"
    assert sender.sent[-1].title == "田中さんから6件の新しいメッセージ"  # 2 + 4


async def test_a_malformed_row_fails_alone(node: NotifyNode) -> None:
    """A row that cannot be checked or coalesced is dead-lettered with the reason; the rest
    of the batch is sent (the whole batch failed again at every lease expiry)."""
    await chat_alerts(node, 3, 2)
    db = node.n.store.db
    await db.execute("UPDATE notify_jobs SET payload = ? WHERE id = 'j-bob-0-0'",
                     '{"count": 1, "last_seq": "x"}')
    await db.execute("UPDATE notify_jobs SET payload = 'not json' WHERE id = 'j-bob-1-1'")
    await db.execute("UPDATE notify_jobs SET payload = '[1]' WHERE id = 'j-bob-2-0'")
    sender = Sender()
    assert await worker(node, sender).tick() == 6
    rows = dict(await db.fetch("SELECT id, state FROM notify_deliveries"))
    assert rows == {"d-bob-0-0": "dead", "d-bob-0-1": "sent", "d-bob-1-0": "sent",
                    "d-bob-1-1": "dead", "d-bob-2-0": "dead", "d-bob-2-1": "sent"}
    errs = dict(await db.fetch("SELECT id, last_error FROM notify_deliveries "
                               "WHERE state = 'dead'"))
    assert "ValueError" in errs["d-bob-0-0"] and "malformed" in errs["d-bob-1-1"]
    assert len(sender.sent) == 3
