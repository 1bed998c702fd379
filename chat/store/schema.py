"""Table names and versioned migrations, shared by both back ends (portable DDL).

Times are BIGINT microseconds since the epoch; JSON is TEXT (orjson). Each migration is
applied once, in order, inside a transaction, and recorded in ``schema_migrations``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

MIGRATIONS_TABLE = "schema_migrations"

# Columns of ``messages`` in the order every SELECT returns them (see message_from_row).
MESSAGE_COLUMNS = (
    "id, thread_id, seq, sender, kind, body, created_at, client_msg_id, data, "
    "edited_at, deleted_at, rev, thanks, masked, moderation"
)
THREAD_COLUMNS = "id, kind, title, stage, ref, last_seq, created_at, updated_at"


@dataclass(frozen=True)
class Migration:
    """One schema step of one component; applied once, recorded by (component, version)."""

    component: str
    version: int
    name: str
    statements: tuple[str, ...]


# Each component keeps its migrations in its own module, as a ``MIGRATIONS`` tuple; chat's
# come first (the others may refer to its tables).
COMPONENT_SCHEMAS = (
    "chat.store.schema",
    "moderation.schema",
    "notifications.schema",
    "chat.evidence.schema",
)


def all_migrations() -> list[Migration]:
    out: list[Migration] = []
    for name in COMPONENT_SCHEMAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # the component is not installed
            raise
        out.extend(sorted(module.MIGRATIONS, key=lambda m: m.version))
    return out


MIGRATIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (component TEXT NOT NULL, "
    "version INTEGER NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL, "
    "PRIMARY KEY (component, version))"
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "chat",
        1,
        "threads, participants, messages, revisions, thanks",
        (
            """CREATE TABLE threads (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                title TEXT NOT NULL,
                stage TEXT NOT NULL,
                ref TEXT NOT NULL DEFAULT '{}',
                last_seq BIGINT NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            """CREATE TABLE participants (
                thread_id TEXT NOT NULL REFERENCES threads (id),
                user_id TEXT NOT NULL,
                role TEXT NOT NULL,
                joined_at BIGINT NOT NULL,
                read_seq BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (thread_id, user_id)
            )""",
            "CREATE INDEX participants_by_user ON participants (user_id)",
            """CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                thread_id TEXT NOT NULL REFERENCES threads (id),
                seq BIGINT NOT NULL,
                sender TEXT NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                client_msg_id TEXT,
                data TEXT,
                edited_at BIGINT,
                deleted_at BIGINT,
                rev INTEGER NOT NULL DEFAULT 0,
                thanks INTEGER NOT NULL DEFAULT 0,
                masked TEXT,
                moderation TEXT,
                UNIQUE (thread_id, seq)
            )""",
            """CREATE UNIQUE INDEX messages_idempotency
                ON messages (thread_id, sender, client_msg_id)
                WHERE client_msg_id IS NOT NULL""",
            """CREATE TABLE message_revisions (
                message_id TEXT NOT NULL REFERENCES messages (id),
                rev INTEGER NOT NULL,
                action TEXT NOT NULL,
                body TEXT NOT NULL,
                masked TEXT,
                moderation TEXT,
                actor TEXT NOT NULL,
                at BIGINT NOT NULL,
                PRIMARY KEY (message_id, rev)
            )""",
            """CREATE TABLE thanks (
                message_id TEXT NOT NULL REFERENCES messages (id),
                user_id TEXT NOT NULL,
                recipient TEXT NOT NULL,
                at BIGINT NOT NULL,
                PRIMARY KEY (message_id, user_id)
            )""",
            "CREATE INDEX thanks_by_recipient ON thanks (recipient)",
            "CREATE INDEX thanks_by_user ON thanks (user_id)",
        ),
    ),
)
