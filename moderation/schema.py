"""Moderation tables (component ``moderation``), applied by ``tsunagu migrate``.

* ``mod_withheld``: held and blocked messages; they never take a seq in their thread until
  a moderator releases them (then they are appended like any message).
* ``mod_items``: the review queue, one item per flagged, masked, held or blocked message.
* ``mod_audit``: every staff action and every staff read.
* ``mod_restrictions``: users whose messages are held for review.

Version 2: an item escalated to dispute staff keeps who escalated it and when
(``escalated_by``/``escalated_at``; its status is ``escalated`` until dispute staff decide),
and a decision may name the rules whose findings were wrong (``wrong_rules``, JSON list) for
per-rule precision; findings on the sender's earlier messages (a number split over
messages) come with those messages (``earlier_messages``, JSON: index, id, text).
"""

from __future__ import annotations

from chat.store.schema import Migration

WITHHELD = "mod_withheld"
ITEMS = "mod_items"
AUDIT = "mod_audit"
RESTRICTIONS = "mod_restrictions"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "moderation",
        1,
        "withheld messages, review queue, audit log, restrictions",
        (
            f"""CREATE TABLE {WITHHELD} (
                id TEXT PRIMARY KEY,
                thread_id TEXT NOT NULL REFERENCES threads (id),
                sender TEXT NOT NULL,
                client_msg_id TEXT,
                body TEXT NOT NULL,
                action TEXT NOT NULL,
                status TEXT NOT NULL,
                record TEXT NOT NULL,
                edit_of TEXT,
                created_at BIGINT NOT NULL,
                released_message_id TEXT
            )""",
            f"""CREATE UNIQUE INDEX {WITHHELD}_idempotency
                ON {WITHHELD} (thread_id, sender, client_msg_id)
                WHERE client_msg_id IS NOT NULL""",
            f"""CREATE TABLE {ITEMS} (
                id TEXT PRIMARY KEY,
                thread_id TEXT NOT NULL REFERENCES threads (id),
                message_id TEXT,
                withheld_id TEXT,
                sender TEXT NOT NULL,
                sender_role TEXT NOT NULL,
                stage TEXT NOT NULL,
                action TEXT NOT NULL,
                status TEXT NOT NULL,
                risk INTEGER NOT NULL,
                categories TEXT NOT NULL,
                findings TEXT NOT NULL,
                text TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                claimed_by TEXT,
                claimed_at BIGINT,
                decision TEXT,
                decided_by TEXT,
                decided_at BIGINT,
                note TEXT
            )""",
            f"CREATE INDEX {ITEMS}_open ON {ITEMS} (status, risk, created_at)",
            f"CREATE INDEX {ITEMS}_thread ON {ITEMS} (thread_id)",
            f"""CREATE TABLE {AUDIT} (
                id TEXT PRIMARY KEY,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT,
                thread_id TEXT,
                note TEXT,
                at BIGINT NOT NULL
            )""",
            f"CREATE INDEX {AUDIT}_by_thread ON {AUDIT} (thread_id, at)",
            f"""CREATE TABLE {RESTRICTIONS} (
                user_id TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                restricted_by TEXT NOT NULL,
                at BIGINT NOT NULL
            )""",
        ),
    ),
    Migration(
        "moderation",
        2,
        "escalated items, findings marked wrong by a decision",
        (
            f"ALTER TABLE {ITEMS} ADD COLUMN escalated_by TEXT",
            f"ALTER TABLE {ITEMS} ADD COLUMN escalated_at BIGINT",
            f"ALTER TABLE {ITEMS} ADD COLUMN wrong_rules TEXT",
            f"ALTER TABLE {ITEMS} ADD COLUMN earlier_messages TEXT",
        ),
    ),
    Migration(
        "moderation",
        3,
        "how many findings an item had when its record lists only some",
        (f"ALTER TABLE {ITEMS} ADD COLUMN findings_total INTEGER",),
    ),
)
