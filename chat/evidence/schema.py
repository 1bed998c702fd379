"""Tables of the evidence component (portable DDL; hashes are lowercase hex TEXT).

The chain head of each thread (``log_seq``, ``log_head``, ``log_committed``) is kept in
its ``threads`` row. ``thread_log`` is append-only for the application: rows are only inserted, and the purge
job only clears ``payload`` (the content) while keeping ``content_hash`` and ``hash``.
"""

from __future__ import annotations

from chat.store.schema import Migration

LOG = "thread_log"
PENDING = "evidence_pending"
LEAVES = "evidence_leaves"
TREE = "evidence_tree"
CHECKPOINTS = "evidence_checkpoints"
KEYS = "evidence_keys"
DISPUTES = "disputes"
HOLDS = "legal_holds"
ACCESS = "evidence_access"
PURGES = "evidence_purges"
RECEIPTS = "evidence_receipts"

LOG_COLUMNS = "thread_id, log_seq, kind, actor, at, payload, content_hash, prev_hash, hash"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "evidence",
        1,
        "thread log, heads, Merkle tree, checkpoints, keys, disputes, holds, access, purges",
        (
            f"""CREATE TABLE {LOG} (
                thread_id TEXT NOT NULL,
                log_seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                actor TEXT NOT NULL,
                at BIGINT NOT NULL,
                payload TEXT,
                content_hash TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL,
                PRIMARY KEY (thread_id, log_seq)
            )""",
            # The chain head lives in the thread's row, which every append already updates
            # (no extra page written); log_committed is the log_seq last put in the tree.
            "ALTER TABLE threads ADD COLUMN log_seq BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE threads ADD COLUMN log_head TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE threads ADD COLUMN log_committed BIGINT NOT NULL DEFAULT 0",
            # Threads whose head moved since the last checkpoint (a row is written only on the
            # first append after a checkpoint; later ones find it there).
            f"CREATE TABLE {PENDING} (thread_id TEXT PRIMARY KEY)",
            f"""CREATE TABLE {LEAVES} (
                idx BIGINT PRIMARY KEY,
                thread_id TEXT NOT NULL,
                log_seq BIGINT NOT NULL,
                head TEXT NOT NULL,
                leaf_hash TEXT NOT NULL,
                at BIGINT NOT NULL
            )""",
            f"CREATE INDEX {LEAVES}_by_thread ON {LEAVES} (thread_id, log_seq)",
            f"""CREATE TABLE {TREE} (
                id INTEGER PRIMARY KEY,
                size BIGINT NOT NULL,
                frontier TEXT NOT NULL
            )""",
            f"INSERT INTO {TREE} (id, size, frontier) VALUES (1, 0, '[]')",
            f"""CREATE TABLE {CHECKPOINTS} (
                size BIGINT PRIMARY KEY,
                root TEXT NOT NULL,
                at BIGINT NOT NULL,
                key_id TEXT NOT NULL,
                body TEXT NOT NULL,
                signature TEXT NOT NULL
            )""",
            f"""CREATE TABLE {KEYS} (
                key_id TEXT PRIMARY KEY,
                public_key TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                retired_at BIGINT
            )""",
            f"""CREATE TABLE {DISPUTES} (
                id TEXT PRIMARY KEY,
                thread_id TEXT NOT NULL,
                opened_by TEXT NOT NULL,
                reason TEXT NOT NULL,
                opened_at BIGINT NOT NULL,
                closed_by TEXT,
                closed_at BIGINT,
                resolution TEXT
            )""",
            f"CREATE INDEX {DISPUTES}_by_thread ON {DISPUTES} (thread_id)",
            f"""CREATE TABLE {HOLDS} (
                thread_id TEXT NOT NULL,
                dispute_id TEXT NOT NULL,
                placed_at BIGINT NOT NULL,
                released_at BIGINT,
                PRIMARY KEY (thread_id, dispute_id)
            )""",
            f"""CREATE TABLE {ACCESS} (
                id TEXT PRIMARY KEY,
                at BIGINT NOT NULL,
                staff TEXT NOT NULL,
                action TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                dispute_id TEXT,
                reason TEXT NOT NULL
            )""",
            f"CREATE INDEX {ACCESS}_by_thread ON {ACCESS} (thread_id, at)",
            # Checkpoints handed to a thread's participants: bundles prove consistency with them.
            f"""CREATE TABLE {RECEIPTS} (
                thread_id TEXT NOT NULL,
                size BIGINT NOT NULL,
                at BIGINT NOT NULL,
                PRIMARY KEY (thread_id, size)
            )""",
            f"""CREATE TABLE {PURGES} (
                id TEXT PRIMARY KEY,
                at BIGINT NOT NULL,
                thread_id TEXT NOT NULL,
                through_seq BIGINT NOT NULL,
                entries INTEGER NOT NULL,
                messages INTEGER NOT NULL,
                policy TEXT NOT NULL
            )""",
        ),
    ),
)
