"""Events in: one validated contract event -> state, schedule, system message, stage.

Order of work, so that nothing is half-applied and a retry does nothing new:

1. The event is parsed and validated (:func:`events.parse_event`) and its thread must
   exist - any 4xx happens before anything is written.
2. ONE transaction: look the id up in ``notify_events`` (same id and same content: a retry,
   answered with the stored result; same id, other content: 409), apply the rules to the
   locked contract state, write the new state, cancel what no longer applies, schedule the
   new jobs and record the event with its result. A rule refusal (409) rolls all of it back.
3. After the commit: post the system message into the thread with ``client_msg_id`` = the
   event id (idempotent) and bring the thread's stage to the contract's CURRENT stored
   stage (not the event's own): every attempt does it, a duplicate retry too, so a retry
   repairs an attempt that died between 2 and 3, and two close events finishing out of
   order cannot leave an older stage behind (each re-reads the stored stage after writing
   and writes again if it moved meanwhile).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chat.errors import Conflict
from chat.service import ChatService
from chat.store.db import Db

from . import repo
from .events import ContractEvent
from .rules import RuleConfig, apply_event
from .texts import system_text

log = logging.getLogger("tsunagu.notify.intake")


@dataclass(frozen=True, slots=True)
class Outcome:
    result: dict[str, Any]
    duplicate: bool


class Intake:
    def __init__(self, db: Db, service: ChatService, rules: RuleConfig, *, default_tz: str
                 ) -> None:
        self.db = db
        self.service = service
        self.rules = rules
        self.default_tz = default_tz

    async def handle(self, ev: ContractEvent, now: int) -> Outcome:
        await self.service.get_thread(ev.thread)  # 404 before any write
        duplicate = False
        try:
            result = await self._apply(ev, now)
        except Conflict:
            prior = await repo.get_event(self.db, ev.id)
            if prior is None:
                raise
            result = self._same(ev, prior)
            duplicate = True
        if result.get("duplicate"):
            duplicate = True
            result = {k: v for k, v in result.items() if k != "duplicate"}
        await self._publish(ev, result)
        return Outcome(result, duplicate)

    @staticmethod
    def _same(ev: ContractEvent, prior: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        digest, result = prior
        if digest != ev.digest:
            raise Conflict(f"event id {ev.id!r} was already used for a different event")
        return result

    async def _apply(self, ev: ContractEvent, now: int) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            prior = await repo.get_event(tx, ev.id)
            if prior is not None:
                return {**self._same(ev, prior), "duplicate": True}
            state = await repo.load_contract(tx, ev.thread, lock=True, dialect=self.db.dialect)
            plan = apply_event(state, ev, now, self.rules)
            if state is None:
                if not await repo.insert_contract(tx, plan.state, now):
                    raise Conflict(f"thread {ev.thread!r} already has a concluded contract")
            else:
                await repo.save_contract(tx, plan.state, now)
            cancelled = await repo.cancel_jobs(tx, ev.thread, plan.cancel, now,
                                               f"cancelled by {ev.type} {ev.id}")
            scheduled = await repo.insert_jobs(tx, ev.thread, ev.id, plan.jobs, now)
            if ev.type == "contract.concluded":
                for role in ("client", "worker"):
                    name = ev.data.get(f"{role}_name")
                    await repo.upsert_user(tx, ev.data[role], now, name=name)
            texts = system_text(ev.type, {**plan.state.params(), **ev.data},
                                tz=self.default_tz)
            result = {"event": ev.id, "type": ev.type, "thread": ev.thread,
                      "stage": plan.stage or plan.state.stage, "set_stage": plan.stage,
                      "scheduled": scheduled, "cancelled": cancelled, "system": texts}
            await repo.insert_event(tx, ev.id, ev.type, ev.thread, ev.digest, result, now)
        return result

    async def _publish(self, ev: ContractEvent, result: dict[str, Any]) -> None:
        texts = result["system"]
        await self.service.post_system(
            ev.thread, texts["ja"],
            {"event": ev.type, "event_id": ev.id, "ja": texts["ja"], "en": texts["en"]},
            client_msg_id=ev.id,
        )
        await self.sync_stage(ev.thread)

    async def sync_stage(self, thread_id: str) -> None:
        """Set the thread's stage to the contract's stored stage (idempotent)."""
        written: str | None = None
        for _ in range(5):
            stage = await repo.contract_stage(self.db, thread_id)
            if stage is None or stage == written:
                return
            thread = await self.service.get_thread(thread_id)
            if thread.stage != stage:
                await self.service.update_thread(thread_id, stage=stage)
            written = stage
