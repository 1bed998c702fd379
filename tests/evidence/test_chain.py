"""The chain and its verification, without a database: each kind of tampering is named."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from chat.evidence.chain import (
    GENESIS,
    LogEntry,
    Pending,
    content_hash,
    extend,
    verify_chain,
)


def chain(n: int, thread: str = "t1") -> list[LogEntry]:
    entries, heads = extend({}, [Pending(thread, "message", "alice", {"body": f"m{i}", "i": i},
                                         1000 + i) for i in range(1, n + 1)])
    assert heads[thread][0] == n
    return entries


def kinds(entries: list[LogEntry]) -> list[tuple[str, int | None]]:
    return [(p.kind, p.seq) for p in verify_chain(entries, thread="t1")]


def renumber(e: LogEntry, seq: int) -> LogEntry:
    return replace(e, seq=seq)


def test_untouched_chain_verifies_and_links() -> None:
    es = chain(6)
    assert kinds(es) == []
    assert es[0].prev == GENESIS and all(es[i].prev == es[i - 1].hash for i in range(1, 6))
    more, heads = extend({"t1": (6, es[-1].hash)}, [Pending("t1", "read", "bob", {"seq": 6}, 9)])
    assert more[0].seq == 7 and more[0].prev == es[-1].hash and heads["t1"] == (7, more[0].hash)
    assert kinds([*es, *more]) == []


def test_altered_content() -> None:
    es = chain(5)
    es[2] = replace(es[2], payload={"body": "changed", "i": 3})
    assert kinds(es) == [("altered", 3)]


def test_altered_header() -> None:
    es = chain(5)
    es[1] = replace(es[1], actor="mallory")
    assert kinds(es) == [("altered", 2)]


def test_rewritten_entry_with_fresh_hashes_breaks_the_link() -> None:
    es = chain(5)
    payload = {"body": "forged", "i": 3}
    ch = content_hash(payload)
    forged = replace(es[2], payload=payload, content_hash=ch)
    es[2] = replace(forged, hash=forged.rehash())
    assert kinds(es) == [("chain", 4)]


def test_removed_entry() -> None:
    es = chain(5)
    del es[2]
    assert kinds(es) == [("removed", 3)]


def test_removed_and_renumbered() -> None:
    es = chain(6)
    del es[2]
    es = [e if e.seq < 3 else renumber(e, e.seq - 1) for e in es]
    assert kinds(es) == [("removed", 3)]


def test_swapped_rows() -> None:
    es = chain(6)
    a, b = es[1], es[4]
    es[1], es[4] = renumber(b, 2), renumber(a, 5)
    assert kinds(es) == [("reordered", 2)]
    es = chain(6)
    es[2], es[3] = renumber(es[3], 3), renumber(es[2], 4)
    assert kinds(es) == [("reordered", 3)]


def test_inserted_and_renumbered() -> None:
    es = chain(5)
    fake = LogEntry("t1", 3, "message", "mallory", 1002, {"body": "x"},
                    content_hash({"body": "x"}), es[1].hash, "f" * 64)
    es = [*es[:2], fake, *(renumber(e, e.seq + 1) for e in es[2:])]
    assert kinds(es) == [("inserted", 3)]


def test_inserted_duplicate_seq_and_listed_out_of_order() -> None:
    es = chain(4)
    assert ("inserted", 2) in kinds([*es, es[1]])
    assert ("reordered", 2) in kinds([es[0], es[2], es[1], es[3]])


def purged_chain(n: int, through: int) -> list[LogEntry]:
    es = chain(n)
    more, _ = extend({"t1": (n, es[-1].hash)},
                     [Pending("t1", "purged", "system", {"through_seq": through, "entries": n,
                                                        "policy": "p"}, 5000)])
    return [*es, *more]


def test_purged_content_still_verifies() -> None:
    es = purged_chain(5, 5)
    es = [replace(e, payload=None) if e.seq <= 5 else e for e in es]
    assert kinds(es) == []


def test_nulled_content_without_a_purge_record_is_altered() -> None:
    es = [replace(e, payload=None) if e.seq == 3 else e for e in chain(5)]
    assert kinds(es) == [("altered", 3)]
    # A purge record covers only the entries it names, and only those before it.
    es = purged_chain(5, 2)
    es = [replace(e, payload=None) if e.seq in (2, 4) else e for e in es]
    assert kinds(es) == [("altered", 4)]
    # Nulling the purge record itself leaves what it covered uncovered.
    es = [replace(e, payload=None) for e in purged_chain(3, 3)]
    assert kinds(es) == [("altered", 1), ("altered", 2), ("altered", 3), ("altered", 4)]


@given(st.integers(3, 30), st.sampled_from(["alter", "remove", "swap", "insert", "renumber"]),
       st.data())
def test_any_tampering_is_reported_with_its_kind(n: int, op: str, data: st.DataObject) -> None:
    es = chain(n)
    i = data.draw(st.integers(0, n - 2))
    expected = {"alter": "altered", "remove": "removed", "swap": "reordered",
                "insert": "inserted", "renumber": "removed"}[op]
    if op == "alter":
        es[i] = replace(es[i], payload={"body": "x", "i": -1})
    elif op == "remove":
        del es[i]
    elif op == "renumber":
        del es[i]
        es = [e if e.seq <= i else renumber(e, e.seq - 1) for e in es]
    elif op == "swap":
        j = data.draw(st.integers(i + 1, n - 1))
        es[i], es[j] = renumber(es[j], i + 1), renumber(es[i], j + 1)
    else:
        fake = LogEntry("t1", i + 1, "message", "m", 1, {"b": 1}, content_hash({"b": 1}),
                        es[i - 1].hash if i else GENESIS, "e" * 64)
        es = [*es[:i], fake, *(renumber(e, e.seq + 1) for e in es[i:])]
    found = kinds(es)
    assert found, op
    assert expected in {k for k, _ in found}, (op, found)


def test_junk_appended_at_the_end_is_inserted() -> None:
    es = chain(5)
    junk = LogEntry("t1", 6, "message", "m", 2000, {"b": 1}, "0" * 64, "1" * 64, "2" * 64)
    assert kinds([*es, junk]) == [("inserted", 6)]
    # Changing a field of the last entry is still an alteration (it links).
    assert kinds([*es[:-1], replace(es[-1], actor="mallory")]) == [("altered", 5)]


def test_time_going_backwards_is_named() -> None:
    from chat.evidence.chain import time_warnings

    entries, _ = extend({}, [Pending("t1", "message", "a", {"i": i}, at)
                             for i, at in enumerate((10**9, 2 * 10**9, 10**9 - 61 * 10**6), 1)])
    assert [(w.kind, w.seq) for w in time_warnings(entries)] == [("time", 3)]
    assert kinds(entries) == []  # a warning: times are the writer's word, not evidence
    # A few milliseconds (concurrent writers) are tolerated.
    entries, _ = extend({}, [Pending("t1", "message", "a", {"i": i}, at)
                             for i, at in enumerate((10**9, 10**9 - 5000), 1)])
    assert time_warnings(entries) == []
