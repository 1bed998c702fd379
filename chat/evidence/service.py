"""Disputes: open (legal hold), read the full log, export a bundle, close. Every staff
read is written to the access audit log with who, when and why.

Callers (the HTTP layer) check the ``dispute`` role; this layer validates, stores, audits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat.config import Settings
from chat.errors import BadRequest, Conflict, NotFound
from chat.fanout import Event, FanOut, user_channel
from chat.models import new_id, now_us, rfc3339
from chat.store.base import Store

from . import bundle, merkle, transcript, tree
from .chain import LogEntry, Problem, time_warnings, verify_chain
from .keys import Signer
from .log import DISPUTE_CLOSED, DISPUTE_OPENED, record
from .schema import ACCESS, DISPUTES, HOLDS, LEAVES, LOG, LOG_COLUMNS

log = logging.getLogger("tsunagu.evidence")


def key_path(settings: Settings) -> Path:
    """The signing key: ``evidence_key_file``, or ``<data_dir>/evidence-ed25519.pem``."""
    return Path(settings.evidence_key_file or Path(settings.data_dir) / "evidence-ed25519.pem")


def witness_path(settings: Settings) -> Path:
    """Where a node keeps the last checkpoint it signed (and its frontier): in its data
    directory, ``<data_dir>/evidence-last-checkpoint.json`` - writable in the reference
    deployment, unlike the key's directory (docs/operations.md)."""
    return Path(settings.data_dir) / "evidence-last-checkpoint.json"


def legacy_witness_path(settings: Settings) -> Path:
    """Where versions before 2026-12-07's fix kept it: beside the key (read, never written)."""
    path = key_path(settings)
    return path.with_name(path.name + ".last-checkpoint.json")


def warn_node_local_key(settings: Settings) -> bool:
    """Warn (True) when a PostgreSQL deployment signs with a key of this node's data dir.

    PostgreSQL is how tsunagu runs several nodes, and they must sign with one key: a node
    that generates its own in ``<data_dir>`` signs checkpoints with it and registers it at
    start-up, which retires every key registered before (``tree.register_key``) while the
    other nodes go on signing with theirs. Only a warning: one node on PostgreSQL is fine.
    """
    if settings.evidence_key_file or settings.is_embedded:
        return False
    path = key_path(settings)
    log.warning(
        "evidence signing key %s is this node's own (%s): with several nodes on one database "
        "each signs checkpoints with its own key and registering one retires the others'. "
        "Set TSUNAGU_EVIDENCE_KEY_FILE to the same Ed25519 key file on every node "
        "(docs/disputes.md)",
        path, "existing" if path.exists() else "generated now")
    return True


MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    thread: str
    opened_by: str
    reason: str
    opened_at: int
    closed_by: str | None
    closed_at: int | None
    resolution: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "thread": self.thread, "opened_by": self.opened_by,
                "reason": self.reason, "opened_at": rfc3339(self.opened_at),
                "closed_by": self.closed_by, "closed_at": rfc3339(self.closed_at),
                "resolution": self.resolution, "open": self.closed_at is None}


def check_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise BadRequest("a 'reason' is required: every staff access is audited")
    if len(reason) > MAX_REASON:
        raise BadRequest(f"'reason' is longer than {MAX_REASON} characters")
    return reason.strip()


class EvidenceService:
    def __init__(self, settings: Settings, store: Store, fanout: FanOut,
                 signer: Signer | None = None) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self._signer = signer
        # This node's last signed checkpoint, in its data dir (none for a given signer).
        self.tree_state = tree.TreeState.load(
            None if signer is not None else witness_path(settings),
            *(() if signer is not None else (legacy_witness_path(settings),)))

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer.load_or_create(key_path(self.settings))
        return self._signer

    @property
    def db(self) -> Any:
        return self.store.db

    async def start(self) -> None:
        """Load (or create) the signing key and record it; call once the store is open."""
        if self._signer is None:
            warn_node_local_key(self.settings)
        if await tree.register_key(self.db, self.signer):
            log.info("evidence signing key %s registered", self.signer.key_id)

    async def checkpoint(self) -> tree.Checkpoint:
        return await tree.commit(self.db, self.signer, None, self.tree_state)

    async def _audit(self, staff: str, action: str, thread: str, dispute: str | None,
                     reason: str) -> None:
        await self.db.execute(
            f"INSERT INTO {ACCESS} (id, at, staff, action, thread_id, dispute_id, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", new_id("ax"), now_us(), staff, action, thread,
            dispute, reason)

    async def get(self, dispute_id: str) -> Dispute:
        row = await self.db.fetchrow(
            f"SELECT id, thread_id, opened_by, reason, opened_at, closed_by, closed_at, "
            f"resolution FROM {DISPUTES} WHERE id = ?", dispute_id)
        if row is None:
            raise NotFound(f"dispute {dispute_id!r} does not exist")
        return Dispute(*row)

    async def receipt(self, thread_id: str) -> dict[str, Any]:
        """A fresh signed checkpoint and the inclusion proof of the thread's head: what a
        participant keeps (e.g. when a contract closes) to hold the service to its record."""
        cp = await self.checkpoint()
        proofs = await tree.thread_proofs(self.db, thread_id, cp)
        await tree.note_receipt(self.db, thread_id, cp, now_us())
        return {"thread": thread_id, **cp.to_json(), "proof": proofs[-1] if proofs else None}

    async def read(self, staff: str, dispute_id: str, reason: str) -> Dispute:
        """The dispute, for staff (audited like every other read)."""
        reason = check_reason(reason)
        d = await self.get(dispute_id)
        await self._audit(staff, "read", d.thread, d.id, reason)
        return d

    async def open(self, staff: str, thread_id: str, reason: str) -> tuple[Dispute, dict[str, Any]]:
        """Open a dispute: legal hold, log entry, fresh checkpoint pushed to participants."""
        reason = check_reason(reason)
        thread = await self.store.get_thread(thread_id)
        if thread is None:
            raise NotFound(f"thread {thread_id!r} does not exist")
        at = now_us()
        d = Dispute(new_id("d"), thread_id, staff, reason, at, None, None, None)
        async with self.db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO {DISPUTES} (id, thread_id, opened_by, reason, opened_at) "
                "VALUES (?, ?, ?, ?, ?)", d.id, thread_id, staff, reason, at)
            await tx.execute(f"INSERT INTO {HOLDS} (thread_id, dispute_id, placed_at) "
                             "VALUES (?, ?, ?)", thread_id, d.id, at)
            await record(tx, thread_id, DISPUTE_OPENED, staff, {"dispute": d.id}, at)
        await self._audit(staff, "open", thread_id, d.id, reason)
        notice = {**await self.receipt(thread_id), "dispute": d.id}
        for p in thread.participants:
            self.fanout.publish(Event(user_channel(p.user_id), "evidence_checkpoint", notice))
        return d, notice

    async def close(self, staff: str, dispute_id: str, reason: str, resolution: str | None
                    ) -> Dispute:
        reason = check_reason(reason)
        d = await self.get(dispute_id)
        if d.closed_at is not None:
            raise Conflict(f"dispute {dispute_id!r} is already closed")
        at = now_us()
        async with self.db.transaction() as tx:
            await tx.execute(
                f"UPDATE {DISPUTES} SET closed_by = ?, closed_at = ?, resolution = ? "
                "WHERE id = ?", staff, at, resolution, dispute_id)
            await tx.execute(f"UPDATE {HOLDS} SET released_at = ? WHERE dispute_id = ?", at,
                             dispute_id)
            await record(tx, d.thread, DISPUTE_CLOSED, staff,
                         {"dispute": d.id, "resolution": resolution}, at)
        await self._audit(staff, "close", d.thread, d.id, reason)
        return await self.get(dispute_id)

    async def entries(self, thread_id: str, through: int | None = None,
                      db: Any = None) -> list[LogEntry]:
        hi = 2**62 if through is None else through
        rows = await (db or self.db).fetch(
            f"SELECT {LOG_COLUMNS} FROM {LOG} WHERE thread_id = ? AND log_seq <= ? "
            "ORDER BY log_seq", thread_id, hi)
        return [LogEntry.from_row(r) for r in rows]

    async def read_log(self, staff: str, dispute_id: str, reason: str) -> dict[str, Any]:
        """The whole history: every entry with revisions, findings, receipts; and a check."""
        reason = check_reason(reason)
        d = await self.get(dispute_id)
        await self._audit(staff, "read_log", d.thread, d.id, reason)
        notes: list[str] = []
        # What this node signed, taken before the snapshot: never newer than what it sees.
        st = self.tree_state
        mine = tree.TreeState(None, st.witness, st.size, list(st.frontier), st.verified,
                              st.base)
        # entries, tree and leaves in one snapshot (a concurrent commit is no false alarm),
        # which holds no writer: chat writes go on while a large log is read
        async with tree.read_snapshot(self.db) as snap:
            entries = await self.entries(d.thread, db=snap)
            problems = verify_chain(entries, thread=d.thread)
            problems += await self.check_heads(d.thread, entries, db=snap, state=mine,
                                               notes=notes)
        warnings = [w.to_json() for w in time_warnings(entries)]
        warnings += [Problem("key", n).to_json() for n in notes]
        return {"dispute": d.to_json(), "entries": [e.to_json() for e in entries],
                "chain_ok": not problems, "problems": [p.to_json() for p in problems],
                "warnings": warnings}

    async def check_heads(self, thread_id: str, entries: list[LogEntry], *, db: Any = None,
                          state: tree.TreeState | None = None,
                          notes: list[str] | None = None) -> list[Problem]:
        """The stored tree against what was signed, and the thread's committed heads against
        its entries: what ``read_log`` adds to the chain check so staff see a forgery.
        ``db``: the snapshot ``entries`` were read in."""
        db = db or self.db
        problems: list[Problem] = []
        try:
            await tree.verify_stored(db, self.signer, state or self.tree_state, notes=notes)
        except tree.TreeTampered as exc:
            log.error("evidence: the stored tree fails verification: %s", exc.message)
            problems.append(Problem("consistency", exc.message))
        by_seq = {e.seq: e for e in entries}
        for seq, head, lh in await db.fetch(
                f"SELECT log_seq, head, leaf_hash FROM {LEAVES} WHERE thread_id = ? "
                "ORDER BY idx", thread_id):
            entry = by_seq.get(int(seq))
            if merkle.leaf_hash(tree.leaf_data(thread_id, int(seq), head)).hex() != lh:
                problems.append(Problem("head", "the committed head's leaf does not match "
                                                "its hash in the tree", int(seq)))
            elif entry is None or entry.hash != head:
                problems.append(Problem("head", "this entry is not the one committed to the "
                                                "signed tree", int(seq)))
        return problems

    async def access_log(self, staff: str, dispute_id: str, reason: str) -> list[dict[str, Any]]:
        reason = check_reason(reason)
        d = await self.get(dispute_id)
        await self._audit(staff, "read_access_log", d.thread, d.id, reason)
        rows = await self.db.fetch(
            f"SELECT at, staff, action, dispute_id, reason FROM {ACCESS} WHERE thread_id = ? "
            "ORDER BY at, id", d.thread)
        return [{"at": rfc3339(r[0]), "staff": r[1], "action": r[2], "dispute": r[3],
                 "reason": r[4]} for r in rows]

    async def export(self, staff: str, dispute_id: str, reason: str) -> bytes:
        """A zip evidence bundle of the dispute's thread, against a fresh checkpoint."""
        reason = check_reason(reason)
        d = await self.get(dispute_id)
        await self._audit(staff, "export", d.thread, d.id, reason)
        return bundle.to_zip(await self.bundle_files(d.thread, dispute=d.id, exported_by=staff))

    async def bundle_files(self, thread_id: str, *, dispute: str | None, exported_by: str
                           ) -> dict[str, bytes]:
        cp = await self.checkpoint()
        # the reads in one snapshot, which holds no writer: chat goes on during an export
        async with tree.read_snapshot(self.db) as snap:
            proofs = await tree.thread_proofs(snap, thread_id, cp)
            through = max((p["seq"] for p in proofs), default=0)
            entries = await self.entries(thread_id, through, db=snap)
            consistency = await tree.consistency(snap, thread_id, cp)
            keys = await tree.public_keys(snap)
        at = now_us()
        html = transcript.render(thread_id, entries, checkpoint=cp.body, exported_at=at,
                                 exported_by=exported_by)
        return bundle.build(thread=thread_id, dispute=dispute, entries=entries,
                            checkpoint=cp.to_json(), proofs=proofs, consistency=consistency,
                            keys=keys, transcript=html,
                            exported_by=exported_by, exported_at=at, signer=self.signer)
