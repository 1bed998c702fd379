"""Tables of the notifications component (portable DDL; times are BIGINT microseconds).

    notify_events       every accepted event, by its id (a retry returns the stored result)
    notify_contracts    the contract state the rules read (deposit, deadline, status)
    notify_users        locale, time zone, e-mail address, quiet hours, display name
    notify_prefs        per user, category and channel: on or off
    notify_jobs         the durable schedule: one row per notice to decide at ``due_at``
                        (``failed`` ones can be retried by an operator)
    notify_inbox        the in-app inbox (seen / read / archived)
    notify_deliveries   one row per notice, channel and target; retried, then dead-lettered
    notify_delivery_log what happened to each delivery (queued, sent, failed, dead, skipped)
    notify_webpush      Web Push subscriptions (endpoint, keys)
    notify_devices      FCM and APNs device tokens
"""

from __future__ import annotations

from chat.store.schema import Migration

EVENTS = "notify_events"
CONTRACTS = "notify_contracts"
USERS = "notify_users"
PREFS = "notify_prefs"
JOBS = "notify_jobs"
INBOX = "notify_inbox"
DELIVERIES = "notify_deliveries"
DELIVERY_LOG = "notify_delivery_log"
WEBPUSH = "notify_webpush"
DEVICES = "notify_devices"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "notifications",
        1,
        "events, contracts, schedule, inbox, deliveries, subscriptions",
        (
            f"""CREATE TABLE {EVENTS} (
                id TEXT PRIMARY KEY,
                type TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                digest TEXT NOT NULL,
                result TEXT NOT NULL,
                received_at BIGINT NOT NULL
            )""",
            f"""CREATE TABLE {CONTRACTS} (
                thread_id TEXT PRIMARY KEY,
                client TEXT NOT NULL,
                worker TEXT NOT NULL,
                title TEXT NOT NULL,
                amount BIGINT NOT NULL,
                currency TEXT NOT NULL,
                deadline BIGINT NOT NULL,
                deposit TEXT NOT NULL,
                status TEXT NOT NULL,
                stage TEXT NOT NULL,
                concluded_at BIGINT NOT NULL,
                delivered_at BIGINT,
                updated_at BIGINT NOT NULL
            )""",
            f"""CREATE TABLE {USERS} (
                user_id TEXT PRIMARY KEY,
                name TEXT,
                locale TEXT,
                tz TEXT,
                email TEXT,
                quiet_start TEXT,
                quiet_end TEXT,
                updated_at BIGINT NOT NULL
            )""",
            f"""CREATE TABLE {PREFS} (
                user_id TEXT NOT NULL,
                category TEXT NOT NULL,
                channel TEXT NOT NULL,
                enabled INTEGER NOT NULL,
                PRIMARY KEY (user_id, category, channel)
            )""",
            f"""CREATE TABLE {JOBS} (
                id TEXT PRIMARY KEY,
                dedupe_key TEXT NOT NULL UNIQUE,
                group_key TEXT,
                kind TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                due_at BIGINT NOT NULL,
                state TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                fired_at BIGINT,
                outcome TEXT
            )""",
            f"CREATE INDEX {JOBS}_due ON {JOBS} (state, due_at)",
            f"CREATE INDEX {JOBS}_thread ON {JOBS} (thread_id, state)",
            f"CREATE INDEX {JOBS}_group ON {JOBS} (group_key, state)",
            f"""CREATE TABLE {INBOX} (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                job_id TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                category TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                data TEXT NOT NULL,
                urgent INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                seen_at BIGINT,
                read_at BIGINT,
                archived_at BIGINT
            )""",
            f"CREATE INDEX {INBOX}_user ON {INBOX} (user_id, created_at)",
            f"""CREATE TABLE {DELIVERIES} (
                id TEXT PRIMARY KEY,
                notice_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                target TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at BIGINT NOT NULL,
                lease_until BIGINT,
                last_error TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (notice_id, channel, target)
            )""",
            f"CREATE INDEX {DELIVERIES}_due ON {DELIVERIES} (state, next_at)",
            f"""CREATE TABLE {DELIVERY_LOG} (
                id TEXT PRIMARY KEY,
                delivery_id TEXT NOT NULL,
                notice_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                state TEXT NOT NULL,
                detail TEXT,
                at BIGINT NOT NULL
            )""",
            f"CREATE INDEX {DELIVERY_LOG}_notice ON {DELIVERY_LOG} (notice_id, at)",
            f"""CREATE TABLE {WEBPUSH} (
                endpoint TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                p256dh TEXT NOT NULL,
                auth TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            f"CREATE INDEX {WEBPUSH}_user ON {WEBPUSH} (user_id)",
            f"""CREATE TABLE {DEVICES} (
                token TEXT NOT NULL,
                platform TEXT NOT NULL,
                user_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (platform, token)
            )""",
            f"CREATE INDEX {DEVICES}_user ON {DEVICES} (user_id)",
        ),
    ),
    Migration(
        "notifications",
        2,
        "the node (claim) that leases a delivery",
        (f"ALTER TABLE {DELIVERIES} ADD COLUMN lease_owner TEXT",),
    ),
    Migration(
        "notifications",
        3,
        "held chat alerts claimed together by user, channel and target; a digest's count "
        "and members kept on its delivery",
        (f"CREATE INDEX {DELIVERIES}_group ON {DELIVERIES} "
         "(user_id, channel, target, state, next_at)",
         f"ALTER TABLE {DELIVERIES} ADD COLUMN coalesced TEXT"),
    ),
    Migration(
        "notifications",
        4,
        "failed jobs for operators: a job's failed attempts, when an operator last retried "
        "it, and the failed jobs by when they failed",
        # attempts is NULL (unknown) for the jobs that failed before it was counted
        (f"ALTER TABLE {JOBS} ADD COLUMN attempts INTEGER DEFAULT 0",
         f"UPDATE {JOBS} SET attempts = NULL WHERE state = 'failed'",
         f"ALTER TABLE {JOBS} ADD COLUMN retried_at BIGINT",
         f"CREATE INDEX {JOBS}_failed ON {JOBS} (fired_at, id) WHERE state = 'failed'"),
    ),
)
