"""Log entries, their hashes, the per-thread chain, and its verification. No I/O.

An entry's ``content_hash`` is SHA-256 over the RFC 8785 form of its payload; its ``hash``
is SHA-256 over the RFC 8785 form of its header - version, thread, log_seq, kind, actor,
time, content hash and the previous entry's hash (:data:`GENESIS` for log_seq 1)::

    {"actor":..,"at":..,"content":<content_hash>,"kind":..,"prev":<hash of seq-1>,
     "seq":<log_seq>,"thread":..,"v":1}

So the chain can be checked after the purge job has removed the content: only the content
hash is needed. :func:`verify_chain` reports each problem with the log_seq it concerns and
a kind (:class:`Problem`): ``altered`` (content or fields do not match the hashes),
``removed``, ``inserted``, ``reordered`` (an entry stored under a log_seq it was not written
with), ``chain`` (an entry that does not link to its predecessor: rewritten with fresh
hashes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import orjson

from .canonical import MAX_SAFE, NotCanonicalizable, canonical, check_numbers, sha256_hex

GENESIS = "0" * 64
VERSION = 1
PURGED = "purged"  # the kind of a purge record (chat.evidence.log.PURGED)

Head = tuple[int, str]  # (log_seq, hash) of a thread's last entry


def content_hash(payload: Any) -> str:
    return sha256_hex(canonical(payload))


def _big_ints_as_floats(value: Any) -> Any:
    """``value`` with integers beyond 2**53 read back as the floats they were written from
    (entries logged before payload numbers were limited: ``1e16`` was stored as the JCS
    form ``10000000000000000``, which reads back as an integer)."""
    if type(value) is int and abs(value) > MAX_SAFE:
        return float(value)
    if isinstance(value, dict):
        return {k: _big_ints_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_floats(v) for v in value]
    return value


def _content_ok(e: LogEntry) -> bool:
    try:
        return content_hash(e.payload) == e.content_hash
    except NotCanonicalizable:
        try:
            return content_hash(_big_ints_as_floats(e.payload)) == e.content_hash
        except NotCanonicalizable:
            return False


_HEADER_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def entry_hash(*, thread: str, seq: int, kind: str, actor: str, at: int, content: str,
               prev: str) -> str:
    # The header has fixed ASCII keys and only string and integer values, for which sorted
    # orjson output is exactly RFC 8785 (see chat.evidence.canonical); STRICT_INTEGER
    # refuses integers JSON numbers cannot carry.
    return sha256_hex(orjson.dumps({"v": VERSION, "thread": thread, "seq": seq, "kind": kind,
                                    "actor": actor, "at": at, "content": content,
                                    "prev": prev}, option=_HEADER_OPTS))


@dataclass(slots=True)  # not frozen: see chat.models.Message
class Pending:
    """An entry to append: the log assigns its log_seq and hashes."""

    thread: str
    kind: str
    actor: str
    payload: dict[str, Any]
    at: int


@dataclass(slots=True)  # not frozen: see chat.models.Message
class LogEntry:
    thread: str
    seq: int
    kind: str
    actor: str
    at: int
    payload: dict[str, Any] | None  # None once purged
    content_hash: str
    prev: str
    hash: str
    text: str | None = field(default=None, compare=False)  # payload as stored, if known

    def row(self) -> tuple[Any, ...]:
        """The row in :data:`~chat.evidence.schema.LOG_COLUMNS` order."""
        text = self.text
        if text is None and self.payload is not None:
            text = orjson.dumps(self.payload).decode()
        return (self.thread, self.seq, self.kind, self.actor, self.at, text,
                self.content_hash, self.prev, self.hash)

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> LogEntry:
        return cls(r[0], int(r[1]), r[2], r[3], int(r[4]),
                   None if r[5] is None else orjson.loads(r[5]), r[6], r[7], r[8])

    def to_json(self) -> dict[str, Any]:
        return {"thread": self.thread, "seq": self.seq, "kind": self.kind,
                "actor": self.actor, "at": self.at, "payload": self.payload,
                "content_hash": self.content_hash, "prev": self.prev, "hash": self.hash}

    @classmethod
    def from_json(cls, d: Any) -> LogEntry:
        """Parse one bundle line; raise ValueError naming what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("an entry must be a JSON object")
        types = {"thread": str, "seq": int, "kind": str, "actor": str, "at": int,
                 "content_hash": str, "prev": str, "hash": str}
        for name, typ in types.items():
            if not isinstance(d.get(name), typ) or isinstance(d.get(name), bool):
                raise ValueError(f"field {name!r} is missing or not a {typ.__name__}")
        payload = d.get("payload")
        if payload is not None and not isinstance(payload, dict):
            raise ValueError("field 'payload' must be an object or null")
        return cls(d["thread"], d["seq"], d["kind"], d["actor"], d["at"], payload,
                   d["content_hash"], d["prev"], d["hash"])

    def rehash(self, seq: int | None = None) -> str:
        return entry_hash(thread=self.thread, seq=self.seq if seq is None else seq,
                          kind=self.kind, actor=self.actor, at=self.at,
                          content=self.content_hash, prev=self.prev)


def _fast_safe(value: Any) -> bool:
    """True for the usual payload: a flat object of strings, bools, nulls, safe integers."""
    for v in value.values():
        t = type(v)
        if t is str or t is bool or v is None or (t is int and -MAX_SAFE <= v <= MAX_SAFE):
            continue
        return False
    return True


def extend(heads: Mapping[str, Head], pending: Sequence[Pending]
           ) -> tuple[list[LogEntry], dict[str, Head]]:
    """Chain ``pending`` onto ``heads``; return the entries and every changed head."""
    current = dict(heads)
    out: list[LogEntry] = []
    changed: dict[str, Head] = {}
    for p in pending:
        seq, prev = current.get(p.thread, (0, GENESIS))
        seq += 1
        if not _fast_safe(p.payload):
            check_numbers(p.payload, "payload")  # the stored form must read back the same
        form = canonical(p.payload)  # hashed, and stored as the payload's text
        ch = sha256_hex(form)
        h = entry_hash(thread=p.thread, seq=seq, kind=p.kind, actor=p.actor, at=p.at,
                       content=ch, prev=prev)
        out.append(LogEntry(p.thread, seq, p.kind, p.actor, p.at, p.payload, ch, prev, h,
                            form.decode()))
        current[p.thread] = changed[p.thread] = (seq, h)
    return out, changed


@dataclass(frozen=True, slots=True)
class Problem:
    """One verification failure. ``kind`` is one of :data:`PROBLEM_KINDS`."""

    kind: str
    detail: str
    seq: int | None = None

    def __str__(self) -> str:
        where = f" at log_seq {self.seq}" if self.seq is not None else ""
        return f"{self.kind}{where}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "detail": self.detail}


PROBLEM_KINDS = ("format", "manifest", "altered", "removed", "inserted", "reordered", "chain",
                 "head", "inclusion", "consistency", "signature", "key")

# Entries are timed by their writer (before it takes the thread's lock; some writes carry
# the caller's time), so concurrent writes may log a little out of order. A larger step
# back is reported by :func:`time_warnings` - a warning, not a verification failure: times
# are the server's word, hashed but not independently attested.
CLOCK_TOLERANCE_US = 60 * 1_000_000


def time_warnings(entries: Sequence[LogEntry]) -> list[Problem]:
    """Entries (log_seq order) logged more than a minute before their predecessor."""
    out = []
    rows = sorted(entries, key=lambda e: e.seq)
    for pred, e in pairwise(rows):
        if e.seq == pred.seq + 1 and e.at < pred.at - CLOCK_TOLERANCE_US:
            out.append(Problem("time", f"logged {(pred.at - e.at) / 1e6:.0f} s before log_seq "
                                       f"{pred.seq} (time goes backwards)", e.seq))
    return out


def purge_coverage(entries: Sequence[LogEntry]) -> int:
    """The highest log_seq a purge record in ``entries`` covers (0: none).

    A purge record is a ``purged`` entry whose (kept) payload names ``through_seq``; it
    covers the entries before it up to that log_seq. An entry whose payload is null is
    legitimate only when covered.
    """
    cover = 0
    for e in entries:
        if e.kind == PURGED and e.payload is not None:
            through = e.payload.get("through_seq")
            if isinstance(through, int) and not isinstance(through, bool):
                cover = max(cover, min(through, e.seq - 1))
    return cover


def _written_seq(e: LogEntry, by_hash: Mapping[str, LogEntry]) -> int | None:
    """The log_seq ``e`` was hashed with, if one nearby (or after its predecessor) fits."""
    candidates = [e.seq - 1, e.seq + 1]
    pred = by_hash.get(e.prev)
    if pred is not None:
        candidates.insert(0, pred.seq + 1)
    if e.prev == GENESIS:
        candidates.insert(0, 1)
    for c in candidates:
        if c >= 1 and c != e.seq and e.rehash(c) == e.hash:
            return c
    return None


def verify_chain(entries: Sequence[LogEntry], *, thread: str) -> list[Problem]:
    """Check a thread's entries (as exported, log_seq order expected); list every problem."""
    problems: list[Problem] = []
    for i in range(1, len(entries)):
        if entries[i].seq < entries[i - 1].seq:
            problems.append(Problem("reordered", f"listed after log_seq {entries[i - 1].seq}",
                                    entries[i].seq))
    rows = sorted(entries, key=lambda e: e.seq)
    for e in rows:
        if e.thread != thread:
            problems.append(Problem("format", f"entry belongs to thread {e.thread!r}", e.seq))
    seqs = [e.seq for e in rows]
    seen: set[int] = set()
    for s in seqs:
        if s in seen:
            problems.append(Problem("inserted", "two entries claim this log_seq", s))
        seen.add(s)
    if seqs:
        for s in range(1, seqs[-1] + 1):
            if s not in seen:
                problems.append(Problem("removed", "no entry has this log_seq", s))

    flagged: set[int] = set()
    content_bad: set[int] = set()
    missing: set[int] = set()
    covered = purge_coverage(rows)
    for e in rows:
        if e.payload is None:
            if e.seq > covered:
                missing.add(e.seq)
            continue
        if not _content_ok(e):
            content_bad.add(e.seq)
    by_hash = {e.hash: e for e in rows}
    written: dict[int, int | None] = {}
    for e in rows:
        if e.rehash() != e.hash:
            written[e.seq] = _written_seq(e, by_hash)
    by_seq = {e.seq: e for e in rows}

    # Swapped pairs first, then renumbered runs (insertions and removals), then the rest.
    for s, w in sorted(written.items()):
        if w is not None and s < w and written.get(w) == s:
            problems.append(Problem("reordered", f"entries at log_seq {s} and {w} are swapped",
                                    s))
            flagged.update((s, w))
    for s, w in sorted(written.items()):
        if s in flagged or w is None or abs(w - s) != 1:
            continue
        off = w - s
        run = [s]
        nxt = s + 1
        while written.get(nxt) == nxt + off and nxt not in flagged:
            run.append(nxt)
            nxt += 1
        if off == -1:
            problems.append(Problem(
                "inserted", f"an entry was inserted here; the {len(run)} entries after it "
                "were renumbered", s - 1))
            flagged.add(s - 1)
        else:
            problems.append(Problem(
                "removed", f"an entry was removed before this one; the {len(run)} entries "
                "from here were renumbered", s))
        flagged.update(run)
    last_seq = rows[-1].seq if rows else 0
    tail = by_seq.get(last_seq)
    if tail is not None and last_seq > 1 and tail.seq not in flagged \
            and sum(1 for e in rows if e.seq == last_seq) == 1:
        pred = by_seq.get(last_seq - 1)
        if pred is not None and tail.prev != pred.hash and (
                last_seq in written or tail.seq in content_bad):
            # Appended by hand: neither its own hash nor its link holds.
            problems.append(Problem("inserted", "an entry was appended that the log did not "
                                                "write (its hash and link do not hold)",
                                    last_seq))
            flagged.add(last_seq)
            content_bad.discard(last_seq)
    for s, w in sorted(written.items()):
        if s in flagged:
            continue
        flagged.add(s)
        if s in content_bad:
            continue  # reported below, more precisely
        if w is None:
            problems.append(Problem("altered", "the entry's fields do not match its hash", s))
        else:
            problems.append(Problem("reordered", f"stored here but written as log_seq {w}", s))
    for s in sorted(content_bad):
        problems.append(Problem("altered", "the content does not match its content hash", s))
        flagged.add(s)
    for s in sorted(missing - flagged):
        problems.append(Problem("altered", "the content is missing and no purge record "
                                           "covers this entry", s))
        flagged.add(s)

    for e in rows:
        if e.seq in flagged:
            continue
        if e.seq == 1:
            if e.prev != GENESIS:
                problems.append(Problem("chain", "the first entry does not start the chain", 1))
            continue
        pred = by_seq.get(e.seq - 1)
        if pred is None or pred.seq in flagged:
            continue
        if e.prev != pred.hash:
            problems.append(Problem(
                "chain", f"does not link to log_seq {pred.seq} (one of them was rewritten)",
                e.seq))
    return problems
