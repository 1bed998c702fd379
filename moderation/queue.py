"""The review queue, withheld messages, restrictions and the staff audit log, in storage.

Written once in portable SQL (:mod:`chat.store.db`), so it runs on SQLite and PostgreSQL.
Decisions that change state elsewhere (release a held message, warn, restrict) are made in
:mod:`moderation.review`; this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from chat.errors import Conflict, NotFound
from chat.evidence.log import record as log_entry
from chat.models import Message, new_id, now_us, rfc3339
from chat.store.base import message_from_row
from chat.store.db import Db, Executor, Row
from chat.store.schema import MESSAGE_COLUMNS

from .schema import AUDIT, ITEMS, RESTRICTIONS, WITHHELD

DECISIONS = ("dismiss", "warn", "restrict", "release", "reject", "escalate")
# Per-rule precision (see `ReviewQueue.precision` and docs/moderation.md): a rule's hit in a
# decided item is confirmed when the decision confirms the item (warn, restrict, reject)
# and the moderator did not list the rule in ``wrong_rules``; it is a false positive when
# the item was dismissed or the rule is in ``wrong_rules``. A release without
# ``wrong_rules`` judges no rule (a held message may be fine to deliver although the finding
# was right, e.g. an off-platform wording after the contract); an escalated item counts once
# dispute staff have decided it.
CONFIRMING = frozenset({"warn", "restrict", "reject"})
REFUTING = frozenset({"dismiss"})

_ITEM_COLS = (
    "id, thread_id, message_id, withheld_id, sender, sender_role, stage, action, status, risk, "
    "categories, findings, text, created_at, claimed_by, claimed_at, decision, decided_by, "
    "decided_at, note, escalated_by, escalated_at, wrong_rules, earlier_messages, findings_total"
)
_WITHHELD_COLS = (
    "id, thread_id, sender, client_msg_id, body, action, status, record, edit_of, created_at, "
    "released_message_id"
)


def _item(row: Row) -> dict[str, Any]:
    findings = orjson.loads(row[11])
    return {
        "id": row[0],
        "thread": row[1],
        "message_id": row[2],
        "withheld_id": row[3],
        "sender": row[4],
        "sender_role": row[5],
        "stage": row[6],
        "action": row[7],
        "status": row[8],
        "risk": row[9],
        "categories": orjson.loads(row[10]),
        "findings": findings,
        "text": row[12],
        "created_at": rfc3339(row[13]),
        "claimed_by": row[14],
        "claimed_at": rfc3339(row[15]),
        "decision": row[16],
        "decided_by": row[17],
        "decided_at": rfc3339(row[18]),
        "note": row[19],
        "escalated_by": row[20],
        "escalated_at": rfc3339(row[21]),
        "wrong_rules": orjson.loads(row[22]) if row[22] else [],
        "earlier_messages": orjson.loads(row[23]) if row[23] else [],
        # all of the scan's findings; more than ``findings`` lists when the record was capped
        "findings_total": row[24] if row[24] is not None else len(findings),
    }


def _total(record: dict[str, Any]) -> dict[str, Any]:
    """``findings_total`` for a log entry, when the record lists only some findings."""
    total = record.get("findings_total")
    return {} if total is None else {"findings_total": total}


def _withheld(row: Row) -> dict[str, Any]:
    return {
        "id": row[0],
        "thread": row[1],
        "sender": row[2],
        "client_msg_id": row[3],
        "body": row[4],
        "action": row[5],
        "status": row[6],
        "record": orjson.loads(row[7]),
        "edit_of": row[8],
        "created_at": rfc3339(row[9]),
        "released_message_id": row[10],
    }


_RESTRICTION_COLS = "user_id, reason, restricted_by, at"


def _restriction(row: Row) -> dict[str, Any]:
    return {"user": row[0], "reason": row[1], "by": row[2], "at": rfc3339(row[3])}


class ReviewQueue:
    def __init__(self, db: Db) -> None:
        self.db = db

    # --- withheld messages
    async def withhold(
        self, *, id: str, thread: str, sender: str, client_msg_id: str | None, body: str,
        action: str, record: dict[str, Any], edit_of: str | None, at: int,
    ) -> tuple[dict[str, Any], bool] | Message:
        """Keep a held or blocked message; return it and whether this call kept it.

        A retry (same thread, sender and client_msg_id) keeps nothing: it returns what the
        first attempt left - the stored message if that one was delivered (or a moderator
        released it), else its withheld record.
        """
        status = "held" if action == "hold" else "blocked"
        async with self.db.transaction() as tx:
            if client_msg_id is not None:
                if self.db.dialect == "postgres":
                    # Under the thread's row lock, as appends are (chat.store.base): an
                    # append of this key committed before (found below), or it waits and
                    # then finds this row. (SQLite: one writer, serialised anyway.)
                    await tx.execute("SELECT 1 FROM threads WHERE id = ? FOR UPDATE", thread)
                stored = await tx.fetchrow(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages "
                    "WHERE thread_id = ? AND sender = ? AND client_msg_id = ?",
                    thread, sender, client_msg_id,
                )
                if stored is not None:
                    return message_from_row(stored)
                row = await tx.fetchrow(
                    f"SELECT {_WITHHELD_COLS} FROM {WITHHELD} "
                    "WHERE thread_id = ? AND sender = ? AND client_msg_id = ?",
                    thread, sender, client_msg_id,
                )
                if row is not None:
                    return _withheld(row), False
            await tx.execute(
                f"INSERT INTO {WITHHELD} ({_WITHHELD_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
                id, thread, sender, client_msg_id, body, action, status,
                orjson.dumps(record).decode(), edit_of, at,
            )
            # The attempt belongs to the thread's dispute log, delivered or not.
            await log_entry(tx, thread, f"moderation.{status}", sender, {
                "withheld": id, "client_msg_id": client_msg_id, "body": body,
                "edit_of": edit_of, "action": action,
                "categories": record.get("categories", []),
                "findings": record.get("findings", []),
                **_total(record),
            }, at)
            row = await tx.fetchrow(f"SELECT {_WITHHELD_COLS} FROM {WITHHELD} WHERE id = ?", id)
            assert row is not None
            return _withheld(row), True

    async def get_withheld(self, id: str, tx: Executor | None = None) -> dict[str, Any]:
        row = await (tx or self.db).fetchrow(
            f"SELECT {_WITHHELD_COLS} FROM {WITHHELD} WHERE id = ?", id
        )
        if row is None:
            raise NotFound(f"withheld message {id!r} does not exist")
        return _withheld(row)

    async def set_withheld_status(self, id: str, status: str, message_id: str | None = None
                                  ) -> None:
        await self.db.execute(
            f"UPDATE {WITHHELD} SET status = ?, released_message_id = ? WHERE id = ?",
            status, message_id, id,
        )

    async def thread_withheld(self, thread: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_WITHHELD_COLS} FROM {WITHHELD} WHERE thread_id = ? ORDER BY created_at",
            thread,
        )
        return [_withheld(r) for r in rows]

    # --- masks on stored messages (moderation's own view change, not an edit)
    async def change_mask(
        self, thread: str, message_id: str,
        change: Callable[[Message], tuple[str | None, dict[str, Any]] | None],
    ) -> Message | None:
        """Change a stored message's ``masked`` text and ``moderation`` record atomically.

        ``change`` gets the message as stored, read in the transaction with its row locked
        (PostgreSQL: ``FOR UPDATE``, as edits lock it; SQLite: the one writer), and returns
        the new ``(masked, moderation)`` or None to leave it. The body and the revisions are
        not touched (recipients' view changes, the text does not), but ``rev`` is raised so
        clients order the ``update`` after any they have. Returns the changed message."""
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND thread_id = ?{lock}",
                message_id, thread,
            )
            if row is None:
                return None
            msg = message_from_row(row)
            changed = change(msg)
            if changed is None:
                return None
            masked, moderation = changed
            n = await tx.execute(
                "UPDATE messages SET masked = ?, moderation = ?, rev = rev + 1 "
                "WHERE id = ? AND rev = ?",
                masked, orjson.dumps(moderation).decode(), msg.id, msg.rev,
            )
            if n != 1:  # cannot happen under the lock; never write over a newer state
                return None
            return replace(msg, masked=masked, moderation=moderation, rev=msg.rev + 1)

    async def note_earlier_masked(self, item_id: str, masked_ids: list[str]) -> None:
        """Record in the item which of its earlier messages its finding masked."""
        async with self.db.transaction() as tx:
            item = await self.get_item(item_id, tx)
            earlier = [{**e, "masked": e.get("message_id") in masked_ids}
                       for e in item["earlier_messages"]]
            await tx.execute(f"UPDATE {ITEMS} SET earlier_messages = ? WHERE id = ?",
                             orjson.dumps(earlier).decode(), item_id)

    # --- review items
    async def add_item(
        self, *, thread: str, message_id: str | None, withheld_id: str | None, sender: str,
        sender_role: str, stage: str, action: str, record: dict[str, Any], text: str,
    ) -> dict[str, Any]:
        item_id = new_id("q")
        at = now_us()
        async with self.db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO {ITEMS} ({_ITEM_COLS}) VALUES "
                "(?,?,?,?,?,?,?,?,'open',?,?,?,?,?,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,?,?)",
                item_id, thread, message_id, withheld_id, sender, sender_role, stage, action,
                int(record.get("risk", 0)), orjson.dumps(record.get("categories", [])).decode(),
                orjson.dumps(record.get("findings", [])).decode(), text, at,
                orjson.dumps(record["earlier_messages"]).decode()
                if record.get("earlier_messages") else None,
                record.get("findings_total"),
            )
            if message_id is not None:  # withheld attempts were logged with their findings
                await log_entry(tx, thread, "moderation.finding", sender, {
                    "item": item_id, "message": message_id, "action": action,
                    "categories": record.get("categories", []),
                    "findings": record.get("findings", []),
                    **_total(record),
                }, at)
            return await self.get_item(item_id, tx)

    async def get_item(self, item_id: str, tx: Executor | None = None) -> dict[str, Any]:
        row = await (tx or self.db).fetchrow(
            f"SELECT {_ITEM_COLS} FROM {ITEMS} WHERE id = ?", item_id
        )
        if row is None:
            raise NotFound(f"review item {item_id!r} does not exist")
        return _item(row)

    async def list_items(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Items by risk (highest first), then oldest first. ``status=None``: open+claimed
        (an escalated item waits for dispute staff: ``status=escalated``)."""
        if status is None:
            rows = await self.db.fetch(
                f"SELECT {_ITEM_COLS} FROM {ITEMS} WHERE status IN ('open', 'claimed') "
                "ORDER BY risk DESC, created_at, id LIMIT ?",
                limit,
            )
        else:
            rows = await self.db.fetch(
                f"SELECT {_ITEM_COLS} FROM {ITEMS} WHERE status = ? "
                "ORDER BY risk DESC, created_at, id LIMIT ?",
                status, limit,
            )
        return [_item(r) for r in rows]

    async def seq_before(self, item_id: str) -> int:
        """The seq of the last message of the item's thread stored before the item (0 if
        none): where a withheld message would have been."""
        row = await self.db.fetchrow(
            f"SELECT max(m.seq) FROM messages m, {ITEMS} i WHERE i.id = ? "
            "AND m.thread_id = i.thread_id AND m.created_at <= i.created_at",
            item_id,
        )
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def list_threads(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Flagged threads, highest risk first: per thread the number of items, their
        highest risk, the oldest item's time, the categories and the item ids (no texts)."""
        where = "status IN ('open', 'claimed')" if status is None else "status = ?"
        args: tuple[Any, ...] = () if status is None else (status,)
        rows = await self.db.fetch(
            f"SELECT thread_id, count(*), max(risk), min(created_at) FROM {ITEMS} "
            f"WHERE {where} GROUP BY thread_id "
            "ORDER BY max(risk) DESC, min(created_at), thread_id LIMIT ?",
            *args, limit,
        )
        out = []
        for thread_id, count, risk, oldest in rows:
            items = await self.db.fetch(
                f"SELECT id, categories FROM {ITEMS} WHERE thread_id = ? AND {where} "
                "ORDER BY risk DESC, created_at, id",
                thread_id, *args,
            )
            cats = sorted({c for _, raw in items for c in orjson.loads(raw)})
            out.append({"thread": thread_id, "count": int(count), "max_risk": int(risk),
                        "oldest": rfc3339(oldest), "categories": cats,
                        "items": [i for i, _ in items]})
        return out

    async def thread_items(self, thread: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_ITEM_COLS} FROM {ITEMS} WHERE thread_id = ? ORDER BY created_at", thread
        )
        return [_item(r) for r in rows]

    async def claim(self, item_id: str, moderator: str) -> dict[str, Any]:
        """Take an item. An escalated item stays ``escalated`` (only its claimer changes)."""
        async with self.db.transaction() as tx:
            item = await self.get_item(item_id, tx)
            if item["status"] == "decided":
                raise Conflict("this item has already been decided")
            if item["claimed_by"] not in (None, moderator):
                raise Conflict(f"this item is claimed by {item['claimed_by']}")
            status = "escalated" if item["status"] == "escalated" else "claimed"
            await tx.execute(
                f"UPDATE {ITEMS} SET status = ?, claimed_by = ?, claimed_at = ? WHERE id = ?",
                status, moderator, now_us(), item_id,
            )
            return await self.get_item(item_id, tx)

    async def decide(self, item_id: str, moderator: str, decision: str, note: str,
                     wrong_rules: list[str] | None = None) -> dict[str, Any]:
        """Record a decision (claiming the item if nobody has). Conflict if decided.

        ``escalate`` does not decide: the item becomes ``escalated`` (unclaimed, for dispute
        staff, who decide it later); a held message stays held. ``wrong_rules``: rules of
        the item's findings that the decider marks as wrong (per-rule precision)."""
        async with self.db.transaction() as tx:
            item = await self.get_item(item_id, tx)
            if item["status"] == "decided":
                raise Conflict("this item has already been decided")
            if item["claimed_by"] not in (None, moderator):
                raise Conflict(f"this item is claimed by {item['claimed_by']}")
            at = now_us()
            wrong = orjson.dumps(sorted(set(wrong_rules or ()))).decode() if wrong_rules else None
            if decision == "escalate":
                if item["status"] == "escalated":
                    raise Conflict("this item has already been escalated")
                await tx.execute(
                    f"UPDATE {ITEMS} SET status = 'escalated', escalated_by = ?, "
                    "escalated_at = ?, note = ?, wrong_rules = ?, claimed_by = NULL, "
                    "claimed_at = NULL WHERE id = ?",
                    moderator, at, note, wrong, item_id,
                )
            else:
                await tx.execute(
                    f"UPDATE {ITEMS} SET status = 'decided', decision = ?, decided_by = ?, "
                    "decided_at = ?, note = ?, wrong_rules = coalesce(?, wrong_rules), "
                    "claimed_by = coalesce(claimed_by, ?), "
                    "claimed_at = coalesce(claimed_at, ?) WHERE id = ?",
                    decision, moderator, at, note, wrong, moderator, at, item_id,
                )
            await log_entry(tx, item["thread"], "moderation.decision", moderator, {
                "item": item_id, "decision": decision, "note": note,
                "message": item["message_id"], "withheld": item["withheld_id"],
                **({"wrong_rules": orjson.loads(wrong)} if wrong else {}),
            }, at)
            return await self.get_item(item_id, tx)

    async def precision(self) -> list[dict[str, Any]]:
        """Per rule: how often moderators confirmed its hits or judged them false.

        One hit is one rule firing in one decided item (the spans of one rule in one item,
        such as the pieces of a number split over messages, are one hit). It is
        ``dismissed`` (a false positive) when the item was dismissed or the decider listed
        the rule in ``wrong_rules``; ``confirmed`` when the decision confirms the item
        (warn, restrict, reject) and the rule is not in ``wrong_rules``; ``other`` (not
        judged) otherwise, e.g. a release that names no wrong rule.
        ``precision = confirmed / (confirmed + dismissed)``."""
        rows = await self.db.fetch(
            f"SELECT findings, decision, wrong_rules FROM {ITEMS} WHERE status = 'decided'"
        )
        stats: dict[str, dict[str, int]] = {}
        for findings, decision, wrong_raw in rows:
            rules = {f["rule"] for f in orjson.loads(findings)}
            wrong = set(orjson.loads(wrong_raw)) if wrong_raw else set()
            for rule in rules:
                s = stats.setdefault(rule, {"confirmed": 0, "dismissed": 0, "other": 0})
                if decision in REFUTING or rule in wrong:
                    s["dismissed"] += 1
                elif decision in CONFIRMING:
                    s["confirmed"] += 1
                else:
                    s["other"] += 1
        out = []
        for rule, s in sorted(stats.items()):
            judged = s["confirmed"] + s["dismissed"]
            out.append({"rule": rule, **s,
                        "precision": round(s["confirmed"] / judged, 4) if judged else None})
        return out

    # --- restrictions
    async def restricted_users(self) -> list[str]:
        return [r[0] for r in await self.db.fetch(f"SELECT user_id FROM {RESTRICTIONS}")]

    async def restrictions(self) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_RESTRICTION_COLS} FROM {RESTRICTIONS} ORDER BY at DESC, user_id")
        return [_restriction(r) for r in rows]

    async def lift(self, user: str) -> dict[str, Any]:
        """Lift ``user``'s restriction; return it as it was (NotFound if there is none)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                f"SELECT {_RESTRICTION_COLS} FROM {RESTRICTIONS} WHERE user_id = ?", user)
            if row is None:
                raise NotFound(f"user {user!r} is not restricted")
            await tx.execute(f"DELETE FROM {RESTRICTIONS} WHERE user_id = ?", user)
        return _restriction(row)

    async def restrict(self, user: str, reason: str, by: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(f"DELETE FROM {RESTRICTIONS} WHERE user_id = ?", user)
            await tx.execute(
                f"INSERT INTO {RESTRICTIONS} (user_id, reason, restricted_by, at) "
                "VALUES (?, ?, ?, ?)",
                user, reason, by, now_us(),
            )

    # --- audit
    async def audit(self, actor: str, action: str, *, target: str | None = None,
                    thread: str | None = None, note: str | None = None) -> None:
        await self.db.execute(
            f"INSERT INTO {AUDIT} (id, actor, action, target, thread_id, note, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            new_id("a"), actor, action, target, thread, note, now_us(),
        )

    async def audit_log(self, *, thread: str | None, limit: int) -> list[dict[str, Any]]:
        cols = "id, actor, action, target, thread_id, note, at"
        if thread is None:
            rows = await self.db.fetch(
                f"SELECT {cols} FROM {AUDIT} ORDER BY at DESC, id LIMIT ?", limit)
        else:
            rows = await self.db.fetch(
                f"SELECT {cols} FROM {AUDIT} WHERE thread_id = ? ORDER BY at DESC, id LIMIT ?",
                thread, limit,
            )
        return [
            {"id": r[0], "actor": r[1], "action": r[2], "target": r[3], "thread": r[4],
             "note": r[5], "at": rfc3339(r[6])}
            for r in rows
        ]
