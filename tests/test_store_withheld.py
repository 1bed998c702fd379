"""The store answers a screened send whose key moderation withheld with the withheld record
(chat.store.base), on both back ends and on both of each one's paths (remembered thread
state and the path that reads or locks)."""

from __future__ import annotations

import orjson
import pytest

from chat.models import Appended, NewMessage
from chat.store import Store
from chat.store.base import WITHHELD_TABLE, ScreenedMessage, Withheld

T0 = 1_700_000_000_000_000


@pytest.fixture
async def store(store: Store) -> Store:
    """The shared store (tests/conftest.py) with the thread t1."""
    await store.create_thread(id="t1", kind="contract", title="ロゴ", stage="inquiry", ref={},
                              participants=[("alice", "client"), ("bob", "worker")], at=T0)
    return store


def screened(cmid: str, body: str = "hi") -> ScreenedMessage:
    return ScreenedMessage(thread="t1", sender="alice", kind="user", body=body,
                           client_msg_id=cmid)


async def withhold(store: Store, cmid: str, status: str = "held") -> str:
    wid = f"w_{cmid}"
    record = {"action": "hold", "categories": ["off_platform_deal"], "findings": []}
    await store.db.execute(
        f"INSERT INTO {WITHHELD_TABLE} (id, thread_id, sender, client_msg_id, body, action, "
        "status, record, edit_of, created_at, released_message_id) "
        "VALUES (?, 't1', 'alice', ?, 'hi', 'hold', ?, ?, NULL, ?, NULL)",
        wid, cmid, status, orjson.dumps(record).decode(), T0)
    return wid


def forget_threads(store: Store) -> None:
    """The next batch takes the path that reads (SQLite) or locks (PostgreSQL) its threads."""
    store._state.clear()  # type: ignore[attr-defined]


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "read"])
async def test_a_screened_retry_of_a_withheld_key_is_answered_with_the_record(
        store: Store, remembered: bool) -> None:
    [first] = await store.append_batch([screened("n0")])  # the thread's state is remembered
    assert isinstance(first, Appended) and first.message.seq == 1
    wid = await withhold(store, "w1")
    if not remembered:
        forget_threads(store)
    fast = store.fast_batches  # type: ignore[attr-defined]
    out = await store.append_batch([screened("w1"), screened("n1"), screened("w1")])
    assert [type(r) for r in out] == [Withheld, Appended, Withheld], out
    assert store.fast_batches == fast + remembered  # type: ignore[attr-defined]
    held = out[0]
    assert isinstance(held, Withheld)
    assert (held.id, held.status, held.action) == (wid, "held", "hold")
    assert held.record["categories"] == ["off_platform_deal"]
    assert held.view() == {"id": wid, "status": "held", "action": "hold"}
    assert isinstance(out[1], Appended) and out[1].message.seq == 2, "no seq was taken"
    history = await store.history("t1")
    assert [m.client_msg_id for m in history] == ["n0", "n1"]
    # only withheld keys are answered so: every request of a batch that has none is stored
    out = await store.append_batch([screened("n2"), screened("n3")])
    assert [r.message.seq for r in out if isinstance(r, Appended)] == [3, 4]


async def test_a_stored_key_wins_and_an_unscreened_request_is_stored(store: Store) -> None:
    """A moderator's release appends the withheld key (not screened): it is stored, and a
    retry of the send then answers the stored message."""
    await withhold(store, "w1")
    [released] = await store.append_batch([NewMessage(thread="t1", sender="alice",
                                                      kind="user", body="hi",
                                                      client_msg_id="w1")])
    assert isinstance(released, Appended) and released.created
    for forget in ("nothing", "keys", "threads"):
        if forget == "keys":  # as after a restart: the key is found withheld, then stored
            store.forget_message(None)
            getattr(store, "_recent_keys", {}).clear()
        if forget == "threads":
            forget_threads(store)
        [retry] = await store.append_batch([screened("w1")])
        assert isinstance(retry, Appended) and not retry.created, forget
        assert retry.message.id == released.message.id


async def test_no_withheld_table_is_needed_without_screened_requests(store: Store) -> None:
    """Without moderation nothing is screened, and the table may not exist."""
    await store.db.execute(f"DROP TABLE {WITHHELD_TABLE}")
    for remembered in (True, False):
        if not remembered:
            forget_threads(store)
        [a, b] = await store.append_batch([
            NewMessage(thread="t1", sender="alice", kind="user", body="hi",
                       client_msg_id=f"k{remembered}"),
            NewMessage(thread="t1", sender="alice", kind="user", body="hi",
                       client_msg_id=f"k{remembered}")])
        assert isinstance(a, Appended) and a.created
        assert isinstance(b, Appended) and not b.created
