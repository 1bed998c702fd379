"""The service-wide Merkle tree of thread heads, and its signed checkpoints.

:func:`commit` appends one leaf per thread whose head moved since it was last committed -
leaf data is the RFC 8785 form of ``{"thread", "seq", "head"}`` - updates the frontier and
signs a checkpoint of the new size. It runs periodically (every
``evidence_checkpoint_interval_s``) and on demand (dispute opened, export). On PostgreSQL
the ``evidence_tree`` row is locked, so nodes commit one at a time, and the marked threads'
rows are locked (``FOR UPDATE``) so no append commits between reading a head and clearing
its mark.

Before signing, :func:`commit` checks that the stored tree extends what was signed before -
the latest stored checkpoint (its signature checked with a known key) and this node's own
last signed checkpoint (:class:`TreeState`, kept in memory and in
``<data_dir>/evidence-last-checkpoint.json``, out of the database's reach): the stored leaves
must reproduce their roots and the stored frontier. Otherwise it refuses to sign, logs an
error and raises :class:`TreeTampered` - an insider who rewrote already-checkpointed rows
cannot get the service to sign the rewritten history. The check is incremental: it starts
from the tree this node last verified or signed (its frontier is kept with the checkpoint)
and streams the leaves added since in chunks.

A retired key never signs: the checkpoint's ``at`` is taken, and the signer's key row checked
(locked), in the transaction that stores the checkpoint; :func:`register_key` takes the
retirement time after locking the same rows. A stored checkpoint signed after its key's
retirement is accepted within :data:`RETIRED_GRACE_US` (clock skew between nodes); beyond
it, it is reported (logged, ``read_log`` warning) but does not stop signing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chat.errors import ChatError
from chat.models import now_us
from chat.store.db import Db, Executor, Row, SqliteDb, _PgExec, pg_errors

from . import merkle
from .canonical import canonical
from .keys import Signer, checkpoint_body, key_id, load_public_key, public_pem, verify_signature
from .schema import CHECKPOINTS, KEYS, LEAVES, LOG, PENDING, RECEIPTS, TREE


@dataclass(frozen=True)
class Checkpoint:
    body: dict[str, Any]
    signature: str

    @property
    def size(self) -> int:
        return int(self.body["size"])

    @property
    def root(self) -> str:
        return str(self.body["root"])

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.body, "signature": self.signature}


log = logging.getLogger("tsunagu.evidence")

#: A stored checkpoint signed up to this long after its key's retirement (clock skew between
#: nodes) is valid; later ones are reported but do not stop signing (docs/disputes.md).
RETIRED_GRACE_US = 5 * 60 * 1_000_000
#: Leaves read per query when verifying the stored tree.
VERIFY_CHUNK = 5000


class TreeTampered(ChatError):
    """The stored tree does not extend what was signed before: the service refuses to sign.

    HTTP 500, code ``internal`` (the message says what failed)."""


class KeyRetired(ChatError):
    """The signing key was retired: it signs nothing new (HTTP 500, code ``internal``)."""


@dataclass
class TreeState:
    """What this node last signed and verified, kept outside the database.

    ``witness``: this node's last signed checkpoint (also written to ``path``, in the node's
    data directory, so a restart keeps it), with ``base``: its frontier, so verification
    after a restart or a refusal starts there. ``size``/``frontier``: the tree this node last
    verified, so a commit only re-reads the leaves added since.
    """

    path: Path | None = None
    witness: Checkpoint | None = None
    size: int = 0
    frontier: merkle.Frontier = field(default_factory=list)
    verified: bool = False
    base: merkle.Frontier | None = None

    @classmethod
    def load(cls, path: Path | None, *fallbacks: Path) -> TreeState:
        """The state saved at ``path`` (else at the first existing ``fallbacks``: where an
        earlier version kept it); it is written to ``path`` from then on."""
        state = cls(path)
        src = next((p for p in (path, *fallbacks) if p is not None and p.exists()), None)
        if src is not None:
            try:
                doc = orjson.loads(src.read_bytes())
                state.witness = Checkpoint(doc["checkpoint"], doc["signature"])
            except (OSError, ValueError, KeyError, TypeError):
                log.error("evidence: cannot read the last signed checkpoint %s", src)
                return state
            try:
                base = [(int(h), bytes.fromhex(x)) for h, x in doc.get("frontier") or []]
            except (ValueError, TypeError):
                base = []
            if base and sum(1 << h for h, _ in base) == state.witness.size \
                    and merkle.frontier_root(base).hex() == state.witness.root:
                state.base = base
        return state

    def to_json(self) -> dict[str, Any]:
        assert self.witness is not None
        return {**self.witness.to_json(),
                "frontier": [[h, x.hex()] for h, x in self.base or []]}

    def signed(self, cp: Checkpoint, frontier: merkle.Frontier) -> None:
        self.witness, self.size, self.frontier, self.verified = cp, cp.size, frontier, True
        self.base = list(frontier)
        if self.path is not None:
            # own temporary name: nodes sharing a directory must not interleave
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(orjson.dumps(self.to_json()))
                os.replace(tmp, self.path)
            except OSError as exc:  # e.g. a read-only data dir: memory only, say so once
                log.error("evidence: cannot keep the last signed checkpoint in %s (%s); it is "
                          "kept in memory only, so a restart trusts the database", self.path,
                          exc)
                self.path = None


def leaf_data(thread: str, seq: int, head: str) -> bytes:
    return canonical({"thread": thread, "seq": seq, "head": head})


async def register_key(db: Db, signer: Signer, at: int | None = None) -> bool:
    """Record ``signer``'s public key; a new key retires the previous one. True if new.

    The retirement time (``at``, default now) is taken after locking the unretired keys'
    rows, which a commit signing with one of them holds: the retirement is after every
    checkpoint that key signed on this clock."""
    async with db.transaction() as tx:
        lock = " FOR UPDATE" if db.dialect == "postgres" else ""
        await tx.fetch(f"SELECT key_id FROM {KEYS} WHERE retired_at IS NULL{lock}")
        row = await tx.fetchrow(f"SELECT retired_at FROM {KEYS} WHERE key_id = ?",
                                signer.key_id)
        at = now_us() if at is None else at
        if row is not None:
            if row[0] is not None:
                log.error("evidence: this node's signing key %s was retired at %s; it will "
                          "not sign (give it the current key)", signer.key_id, row[0])
            return False
        await tx.execute(f"UPDATE {KEYS} SET retired_at = ? WHERE retired_at IS NULL", at)
        await tx.execute(
            f"INSERT INTO {KEYS} (key_id, public_key, created_at) VALUES (?, ?, ?)",
            signer.key_id, public_pem(signer.public), at)
        return True


async def public_keys(db: Executor) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT key_id, public_key, created_at, retired_at FROM {KEYS} ORDER BY created_at")
    return [{"key_id": r[0], "public_key_pem": r[1], "created_at": r[2], "retired_at": r[3]}
            for r in rows]


async def latest(db: Executor) -> Checkpoint | None:
    row = await db.fetchrow(
        f"SELECT body, signature FROM {CHECKPOINTS} ORDER BY size DESC LIMIT 1")
    return None if row is None else Checkpoint(orjson.loads(row[0]), row[1])


async def _key(db: Executor, kid: Any, signer: Signer | None, at: Any
               ) -> tuple[Ed25519PublicKey | None, str]:
    """The key ``kid`` (this node's, or a registered one whose id matches its public key);
    and, if ``at`` is more than :data:`RETIRED_GRACE_US` after its retirement, why that is
    wrong (else "")."""
    if signer is not None and kid == signer.key_id:
        pub: Ed25519PublicKey | None = signer.public
        row = await db.fetchrow(f"SELECT retired_at FROM {KEYS} WHERE key_id = ?", kid)
        retired = None if row is None else row[0]
    else:
        row = await db.fetchrow(f"SELECT public_key, retired_at FROM {KEYS} WHERE key_id = ?",
                                kid)
        if row is None:
            return None, ""
        try:
            pub = load_public_key(str(row[0]).encode())
        except ValueError:
            return None, ""
        if key_id(pub) != kid:
            return None, ""
        retired = row[1]
    if retired is not None and isinstance(at, int) and at > int(retired) + RETIRED_GRACE_US:
        return pub, (f"signed at {at}, {(at - int(retired)) / 1e6:.0f} s after its key {kid} "
                     f"was retired at {retired} (more than the "
                     f"{RETIRED_GRACE_US // 60_000_000} min allowed for clock skew)")
    return pub, ""


@contextlib.asynccontextmanager
async def read_snapshot(db: Db) -> AsyncIterator[Executor]:
    """One consistent view of the database for several reads, which never holds a writer:
    a read-only REPEATABLE READ transaction on PostgreSQL; on SQLite, one read transaction
    (WAL: a snapshot, writes go on meanwhile) on a connection of its own for the duration -
    not the store's shared reader connection, whose other readers (chat history, resume)
    would otherwise read inside the staff snapshot and miss newer messages. An in-memory
    SQLite database has no second connection: there, the writer's transaction."""
    if db.dialect == "postgres":
        with pg_errors():
            async with db._pool().acquire() as conn, conn.transaction(  # type: ignore[attr-defined]
                    isolation="repeatable_read", readonly=True):
                yield _PgExec(conn)
        return
    path = await _sqlite_file(db) if isinstance(db, SqliteDb) else ""
    if not path:
        async with db.transaction() as tx:
            yield tx
        return
    assert isinstance(db, SqliteDb)
    pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-snap")
    try:
        conn = await db.call(pool, lambda: _snapshot_conn(path))
        try:
            await db.call(pool, lambda: conn.execute("BEGIN"))
            try:
                yield _SqliteSnapshot(db, pool, conn)
            finally:
                await db.call(pool, lambda: conn.execute("COMMIT"))
        finally:
            await db.call(pool, conn.close)
    finally:
        pool.shutdown(wait=False)


async def _sqlite_file(db: SqliteDb) -> str:
    """The main database's file ('' for an in-memory or temporary database)."""
    rows = await db.run_read(lambda c: c.execute("PRAGMA database_list").fetchall())
    return next((str(r[2] or "") for r in rows if r[1] == "main"), "")


def _snapshot_conn(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn


class _SqliteSnapshot(Executor):
    """Reads inside the snapshot's read transaction; writing through it is an error."""

    def __init__(self, db: SqliteDb, pool: ThreadPoolExecutor, conn: sqlite3.Connection
                 ) -> None:
        self.db = db
        self.pool = pool
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self.db.call(self.pool, lambda: self.conn.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> int:
        raise TypeError("a read snapshot does not write")

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise TypeError("a read snapshot does not write")


async def verify_stored(db: Executor, signer: Signer | None, state: TreeState | None = None,
                        *, size: int | None = None, frontier_json: str | None = None,
                        notes: list[str] | None = None) -> merkle.Frontier:
    """Check the stored tree against every checkpoint signed before; return its frontier.

    Raise :class:`TreeTampered` naming what is wrong: the latest stored checkpoint or this
    node's last signed one is not validly signed by a known key, is larger than the stored
    tree, or its root is not the root of the stored leaves' prefix of its size; or the
    stored frontier is not the one of the stored leaves. A checkpoint signed too long after
    its key's retirement is logged and added to ``notes``, not raised.

    Reads (in this order, so a concurrent commit cannot look like a removal): this node's
    witness, the latest stored checkpoint, the tree row (unless given), then the leaves from
    where this node last verified or signed, ``VERIFY_CHUNK`` at a time.
    """
    witness = state.witness if state is not None else None
    stored = await latest(db)
    if size is None or frontier_json is None:
        row = await db.fetchrow(f"SELECT size, frontier FROM {TREE} WHERE id = 1")
        assert row is not None
        size, frontier_json = int(row[0]), str(row[1])
    anchors: list[tuple[str, Checkpoint]] = []
    if stored is not None:
        anchors.append(("the latest stored checkpoint", stored))
    if witness is not None:
        anchors.append(("this node's last signed checkpoint", witness))
    for name, cp in anchors:
        key, late = await _key(db, cp.body.get("key_id"), signer, cp.body.get("at"))
        if key is None or not verify_signature(key, cp.body, cp.signature):
            raise TreeTampered(f"{name} (size {cp.size}) is not validly signed by a known "
                               "key")
        if late:
            log.error("evidence: %s (size %s) was %s; signing goes on", name, cp.size, late)
            if notes is not None:
                notes.append(f"{name} (size {cp.size}) was {late}")
        if cp.size > size:
            raise TreeTampered(f"the stored tree (size {size}) is smaller than {name} "
                               f"(size {cp.size}): leaves were removed")
    if stored is not None and witness is not None and stored.size < witness.size:
        raise TreeTampered(f"the latest stored checkpoint (size {stored.size}) is older than "
                           f"this node's last signed one (size {witness.size}): signed "
                           "checkpoints were removed")
    start, frontier = 0, []
    starts: list[tuple[int, merkle.Frontier]] = []
    if state is not None and state.verified:
        starts.append((state.size, state.frontier))
    if witness is not None and state is not None and state.base is not None:
        starts.append((witness.size, state.base))  # this node's own, signed, frontier
    for s, f in sorted(starts, key=lambda x: -x[0]):
        if s <= size and all(cp.size >= s for _, cp in anchors):
            start, frontier = s, list(f)
            break
    roots = {cp.size: (name, cp.root) for name, cp in anchors}
    if start in roots and merkle.frontier_root(frontier).hex() != roots[start][1]:
        raise TreeTampered(f"{roots[start][0]} (size {start}) is not the root of the stored "
                           "leaves: history was rewritten")
    i = start
    while i < size:
        rows = await db.fetch(f"SELECT idx, leaf_hash FROM {LEAVES} WHERE idx >= ? AND idx < ? "
                              "ORDER BY idx LIMIT ?", i, size, VERIFY_CHUNK)
        if not rows:
            raise TreeTampered(f"the stored leaves {i}..{size - 1} are not all present")
        for r in rows:
            if int(r[0]) != i:
                raise TreeTampered(f"the stored leaves {start}..{size - 1} are not all "
                                   "present")
            frontier = merkle.frontier_append(frontier, bytes.fromhex(r[1]))
            i += 1
            if i in roots and merkle.frontier_root(frontier).hex() != roots[i][1]:
                raise TreeTampered(f"{roots[i][0]} (size {i}) is not the root of the stored "
                                   "leaves: history was rewritten")
    if frontier != [(h, bytes.fromhex(x)) for h, x in orjson.loads(frontier_json)]:
        raise TreeTampered("the stored frontier is not the one of the stored leaves")
    if state is not None and (not state.verified or size >= state.size):
        state.size, state.frontier, state.verified = size, list(frontier), True
    return frontier


async def _check_extends_committed(db: Executor, threads: list[str]) -> None:
    """Each thread's last committed head is still the stored entry at its log_seq, so the
    head about to be committed extends it (the hash chain binds every entry before it).
    Raise :class:`TreeTampered` otherwise: a rewritten, already committed history."""
    for i in range(0, len(threads), 500):
        chunk = threads[i:i + 500]
        rows = await db.fetch(
            f"SELECT l.thread_id, l.log_seq, l.head, l.leaf_hash, g.hash FROM {LEAVES} l "
            f"LEFT JOIN {LOG} g ON g.thread_id = l.thread_id AND g.log_seq = l.log_seq "
            f"WHERE l.thread_id IN ({', '.join('?' * len(chunk))}) AND l.log_seq = "
            f"(SELECT max(m.log_seq) FROM {LEAVES} m WHERE m.thread_id = l.thread_id)",
            *chunk)
        for tid, seq, head, lh, stored in rows:
            if merkle.leaf_hash(leaf_data(tid, int(seq), head)).hex() != lh:
                raise TreeTampered(f"thread {tid}: the committed leaf of log_seq {seq} does "
                                   "not match its hash")
            if stored != head:
                raise TreeTampered(f"thread {tid}: the entry committed at log_seq {seq} was "
                                   "changed or removed: history was rewritten")


async def commit(db: Db, signer: Signer, at: int | None = None, state: TreeState | None = None
                 ) -> Checkpoint:
    """Commit every moved thread head; return the (new or unchanged) latest checkpoint.

    ``at`` (the checkpoint's time) defaults to now, taken inside the transaction once the
    tree row and the signer's key row are locked. Refuses (:class:`TreeTampered`, :class:`KeyRetired`) to sign a tree that does not extend
    the checkpoints signed before, or with a retired key; the error is logged.
    """
    try:
        cp, frontier = await _commit(db, signer, at, state)
    except (TreeTampered, KeyRetired) as exc:
        log.error("evidence: refusing to sign a checkpoint: %s", exc.message)
        if state is not None:
            state.verified = False
        raise
    if state is not None and frontier is not None:
        state.signed(cp, frontier)
    return cp


async def _commit(db: Db, signer: Signer, at: int | None, state: TreeState | None
                  ) -> tuple[Checkpoint, merkle.Frontier | None]:
    async with db.transaction() as tx:
        lock = " FOR UPDATE" if db.dialect == "postgres" else ""
        size, frontier_json = await tx.fetchrow(  # type: ignore[misc]
            f"SELECT size, frontier FROM {TREE} WHERE id = 1{lock}")
        size = int(size)
        # locked: a key registered meanwhile retires this one only after this commit
        retired = await tx.fetchrow(f"SELECT retired_at FROM {KEYS} WHERE key_id = ?{lock}",
                                    signer.key_id)
        if retired is not None and retired[0] is not None:
            raise KeyRetired(f"the signing key {signer.key_id} was retired; this node must "
                             "be given the current key (docs/disputes.md)")
        at = now_us() if at is None else at
        frontier = await verify_stored(tx, signer, state, size=size,
                                       frontier_json=frontier_json)
        marked = await tx.fetch(
            f"SELECT t.id, t.log_seq, t.log_head, t.log_committed FROM {PENDING} p "
            f"JOIN threads t ON t.id = p.thread_id ORDER BY t.id{' FOR UPDATE OF t' if lock else ''}")
        moved = [(tid, seq, head) for tid, seq, head, done in marked if seq > done]
        await tx.executemany(f"DELETE FROM {PENDING} WHERE thread_id = ?",
                             [(r[0],) for r in marked])
        await _check_extends_committed(tx, [tid for tid, _, _ in moved])
        if not moved:
            current = await latest(tx)
            if current is not None:
                return current, None
        leaves = []
        for i, (tid, seq, head) in enumerate(moved):
            lh = merkle.leaf_hash(leaf_data(tid, int(seq), head))
            frontier = merkle.frontier_append(frontier, lh)
            leaves.append((size + i, tid, seq, head, lh.hex(), at))
        size += len(moved)
        await tx.executemany(
            f"INSERT INTO {LEAVES} (idx, thread_id, log_seq, head, leaf_hash, at) "
            "VALUES (?, ?, ?, ?, ?, ?)", leaves)
        await tx.executemany("UPDATE threads SET log_committed = ? WHERE id = ?",
                             [(seq, tid) for tid, seq, _ in moved])
        await tx.execute(f"UPDATE {TREE} SET size = ?, frontier = ? WHERE id = 1", size,
                         orjson.dumps([[h, x.hex()] for h, x in frontier]).decode())
        body = checkpoint_body(size=size, root_hex=merkle.frontier_root(frontier).hex(), at=at,
                               kid=signer.key_id)
        cp = Checkpoint(body, signer.sign(body))
        await tx.execute(
            f"INSERT INTO {CHECKPOINTS} (size, root, at, key_id, body, signature) "
            "VALUES (?, ?, ?, ?, ?, ?)", size, body["root"], at, signer.key_id,
            orjson.dumps(body).decode(), cp.signature)
        return cp, frontier


async def thread_proofs(db: Executor, thread_id: str, cp: Checkpoint) -> list[dict[str, Any]]:
    """Inclusion proofs, against ``cp``, of every head of ``thread_id`` ever committed.

    Reads every leaf hash of the tree (O(tree size)); see docs/disputes.md.
    """
    all_leaves = [bytes.fromhex(r[0]) for r in await db.fetch(
        f"SELECT leaf_hash FROM {LEAVES} WHERE idx < ? ORDER BY idx", cp.size)]
    mine = await db.fetch(
        f"SELECT idx, log_seq, head FROM {LEAVES} WHERE thread_id = ? AND idx < ? ORDER BY idx",
        thread_id, cp.size)
    return [{"index": int(idx), "seq": int(seq), "head": head,
             "path": [p.hex() for p in merkle.inclusion_proof(int(idx), all_leaves)]}
            for idx, seq, head in mine]


async def at_size(db: Executor, size: int) -> Checkpoint | None:
    row = await db.fetchrow(f"SELECT body, signature FROM {CHECKPOINTS} WHERE size = ?", size)
    return None if row is None else Checkpoint(orjson.loads(row[0]), row[1])


async def note_receipt(db: Executor, thread_id: str, cp: Checkpoint, at: int) -> None:
    """Remember that ``cp`` was handed to ``thread_id``'s participants."""
    if cp.size > 0:
        await db.execute(f"INSERT INTO {RECEIPTS} (thread_id, size, at) VALUES (?, ?, ?) "
                         "ON CONFLICT DO NOTHING", thread_id, cp.size, at)


async def consistency(db: Executor, thread_id: str, cp: Checkpoint) -> list[dict[str, Any]]:
    """RFC 9162 consistency proofs from every checkpoint handed out for ``thread_id`` to
    ``cp``: the history the parties were shown is a prefix of the one exported."""
    sizes = [int(r[0]) for r in await db.fetch(
        f"SELECT size FROM {RECEIPTS} WHERE thread_id = ? AND size < ? ORDER BY size",
        thread_id, cp.size)]
    if not sizes:
        return []
    leaves = [bytes.fromhex(r[0]) for r in await db.fetch(
        f"SELECT leaf_hash FROM {LEAVES} WHERE idx < ? ORDER BY idx", cp.size)]
    out = []
    for size in sizes:
        old = await at_size(db, size)
        if old is not None:
            out.append({**old.to_json(),
                        "proof": [p.hex() for p in merkle.consistency_proof(size, leaves)]})
    return out
