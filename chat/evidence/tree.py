"""The service-wide Merkle tree of thread heads, and its signed checkpoints.

:func:`commit` appends one leaf per thread whose head moved since it was last committed -
leaf data is the RFC 8785 form of ``{"thread", "seq", "head"}`` - updates the frontier and
signs a checkpoint of the new size. It runs periodically (every
``evidence_checkpoint_interval_s``) and on demand (dispute opened, export). On PostgreSQL
the ``evidence_tree`` row is locked, so nodes commit one at a time, and the marked threads'
rows are locked (``FOR UPDATE``) so no append commits between reading a head and clearing
its mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from chat.store.db import Db, Executor

from . import merkle
from .canonical import canonical
from .keys import Signer, checkpoint_body, public_pem
from .schema import CHECKPOINTS, KEYS, LEAVES, PENDING, RECEIPTS, TREE


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


def leaf_data(thread: str, seq: int, head: str) -> bytes:
    return canonical({"thread": thread, "seq": seq, "head": head})


async def register_key(db: Db, signer: Signer, at: int) -> bool:
    """Record ``signer``'s public key; a new key retires the previous one. True if new."""
    async with db.transaction() as tx:
        if await tx.fetchval(f"SELECT 1 FROM {KEYS} WHERE key_id = ?", signer.key_id):
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


async def commit(db: Db, signer: Signer, at: int) -> Checkpoint:
    """Commit every moved thread head; return the (new or unchanged) latest checkpoint."""
    async with db.transaction() as tx:
        lock = " FOR UPDATE" if db.dialect == "postgres" else ""
        size, frontier_json = await tx.fetchrow(  # type: ignore[misc]
            f"SELECT size, frontier FROM {TREE} WHERE id = 1{lock}")
        marked = await tx.fetch(
            f"SELECT t.id, t.log_seq, t.log_head, t.log_committed FROM {PENDING} p "
            f"JOIN threads t ON t.id = p.thread_id ORDER BY t.id{' FOR UPDATE OF t' if lock else ''}")
        moved = [(tid, seq, head) for tid, seq, head, done in marked if seq > done]
        await tx.executemany(f"DELETE FROM {PENDING} WHERE thread_id = ?",
                             [(r[0],) for r in marked])
        if not moved:
            current = await latest(tx)
            if current is not None:
                return current
        frontier: merkle.Frontier = [(h, bytes.fromhex(x)) for h, x in orjson.loads(frontier_json)]
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
        return cp


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
