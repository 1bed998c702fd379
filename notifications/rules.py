"""The rules: from a contract event and the contract's state to a plan of notices. No I/O.

Theory of operation:

* :func:`apply_event` takes the stored :class:`ContractState` (or None before
  ``contract.concluded``), one validated event and the time, and returns a :class:`Plan`: the
  new state, the thread's new stage, which pending notices of the thread no longer apply
  (``cancel``) and which to schedule (``jobs``; "now" notices are jobs due now). The caller
  writes all of it in ONE transaction with the event's record, so a cancellation and the
  state change that causes it cannot be separated.
* When a job comes due, :func:`still_applies` looks at the state again (is the deposit still
  unpaid? is this reminder for the current deadline, and is that deadline still ahead? has
  the notice been overtaken by a later event?) and says fire or drop, with the reason; the
  scheduler asks it when a job fires (first fire or retry), the delivery worker again before
  each push or e-mail copy is sent. Stale reminders are dropped, not sent.

The default rules (each number is a setting, see docs/notifications.md):

    contract.concluded   now: client "please pay the deposit", worker "do not start yet";
                         +deposit_reminder_h if still unpaid: client reminder + worker
                         "do not start yet"; deadline reminders; overdue at the deadline
    deposit.requested    now: client "please pay"
    deposit.paid         cancels the unpaid reminders; now: worker "you can start"
    deposit.refunded     cancels everything; now: both
    deadline.changed     cancels deadline reminders and overdue, schedules them again; now: both
    delivery.submitted   cancels deadline reminders and overdue; now: client "please review";
                         +review_reminder_d if still not reviewed: client reminder
    correction.requested cancels the review reminder; deadline reminders again; now: worker
    contract.accepted    cancels everything; now: worker "payment released"
    contract.cancelled   cancels everything; now: both
    review.requested     now: both "please rate"
    deadline reminders   worker, at deadline - h for h in deadline_reminders_h (72, 24, 1),
                         only those still ahead when scheduled; one that fires late (more
                         than late_tolerance_us after its time, e.g. after downtime) is
                         dropped if the next shorter one is due too, else worded with the
                         time really left
    overdue              both, at the deadline, if not delivered by then
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from chat.errors import Conflict

from .events import ContractEvent

HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000
DAY_US = 24 * HOUR_US

CATEGORIES = ("contract", "deadline", "review", "chat")
CATEGORY: dict[str, str] = {
    "contract_concluded_client": "contract", "contract_concluded_worker": "contract",
    "deposit_requested": "contract", "deposit_unpaid": "contract", "deposit_wait": "contract",
    "deposit_paid": "contract", "deposit_refunded": "contract",
    "deadline_reminder": "deadline", "overdue": "deadline", "deadline_changed": "deadline",
    "review_request": "review", "review_reminder": "review", "rating_request": "review",
    "correction_requested": "contract", "payment_released": "contract",
    "contract_cancelled": "contract", "chat": "chat",
}
DEPOSIT_KINDS = ("deposit_unpaid", "deposit_wait")
DEADLINE_KINDS = ("deadline_reminder", "overdue")
ALL = ("*",)

STAGE_OF: dict[str, str | None] = {
    "contract.concluded": "deposit_pending", "deposit.requested": "deposit_pending",
    "deposit.paid": "in_progress", "deposit.refunded": "closed", "deadline.changed": None,
    "delivery.submitted": "delivered", "correction.requested": "in_progress",
    "contract.accepted": "closed", "contract.cancelled": "closed", "review.requested": None,
}


@dataclass(frozen=True, slots=True)
class RuleConfig:
    deposit_reminder_us: int = 24 * HOUR_US
    deadline_offsets_us: tuple[int, ...] = (72 * HOUR_US, 24 * HOUR_US, HOUR_US)
    review_reminder_us: int = 3 * DAY_US
    chat_digest_us: int = 60_000_000


@dataclass(frozen=True, slots=True)
class ContractState:
    thread_id: str
    client: str
    worker: str
    title: str
    amount: int
    currency: str
    deadline: int
    deposit: str  # requested | paid | refunded
    status: str  # active | delivered | accepted | cancelled
    stage: str
    concluded_at: int
    delivered_at: int | None = None

    def params(self) -> dict[str, Any]:
        return {"title": self.title, "amount": self.amount, "currency": self.currency,
                "deadline": self.deadline}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One notice to decide at ``due_at`` for ``user``; ``payload`` is what the check needs."""

    kind: str
    user: str
    due_at: int
    payload: dict[str, Any] = field(default_factory=dict)
    slot: str = ""  # distinguishes jobs of the same kind and user within one event

    @property
    def category(self) -> str:
        return CATEGORY[self.kind]


@dataclass(frozen=True, slots=True)
class Plan:
    state: ContractState
    stage: str | None
    cancel: tuple[str, ...]  # kinds of pending jobs of the thread to cancel; ("*",) for all
    jobs: tuple[JobSpec, ...]


def _hours(us: int) -> int | float:
    hours = round(us / HOUR_US, 1)
    return int(hours) if hours == int(hours) else hours


def _deadline_jobs(s: ContractState, now: int, cfg: RuleConfig) -> list[JobSpec]:
    jobs = []
    for offset in cfg.deadline_offsets_us:
        due = s.deadline - offset
        if due > now:
            # the next (shorter) reminder: when it is due too, this one is stale
            shorter = [o for o in cfg.deadline_offsets_us if o < offset]
            payload: dict[str, Any] = {"deadline": s.deadline, "hours": _hours(offset),
                                       "lead_us": offset}
            if shorter:
                payload["next_lead_us"] = max(shorter)
            jobs.append(JobSpec("deadline_reminder", s.worker, due, payload,
                                slot=str(offset)))
    if s.deadline > now:
        for user in (s.client, s.worker):
            jobs.append(JobSpec("overdue", user, s.deadline, {"deadline": s.deadline}))
    return jobs


def _need(state: ContractState | None, ev: ContractEvent) -> ContractState:
    if state is None:
        raise Conflict(f"{ev.type}: no concluded contract for thread {ev.thread!r}")
    return state


def apply_event(state: ContractState | None, ev: ContractEvent, now: int,
                cfg: RuleConfig) -> Plan:
    """The plan for ``ev``; raise Conflict when the event does not fit the contract's state."""
    t = ev.type
    if t == "contract.concluded":
        if state is not None:
            raise Conflict(f"thread {ev.thread!r} already has a concluded contract")
        s = ContractState(
            thread_id=ev.thread, client=ev.data["client"], worker=ev.data["worker"],
            title=ev.text("title"), amount=ev.data["amount"],
            currency=ev.text("currency", "JPY"), deadline=ev.time("deadline"),
            deposit="requested", status="active", stage="deposit_pending", concluded_at=now,
        )
        due = now + cfg.deposit_reminder_us
        hours = round(cfg.deposit_reminder_us / HOUR_US, 1)
        hours_v: float | int = int(hours) if hours == int(hours) else hours
        jobs = [
            JobSpec("contract_concluded_client", s.client, now, {}),
            JobSpec("contract_concluded_worker", s.worker, now, {}),
            JobSpec("deposit_unpaid", s.client, due, {"hours": hours_v}),
            JobSpec("deposit_wait", s.worker, due, {"hours": hours_v}),
            *_deadline_jobs(s, now, cfg),
        ]
        return Plan(s, "deposit_pending", (), tuple(jobs))

    s = _need(state, ev)
    closed = s.status in ("accepted", "cancelled")
    if closed and t != "review.requested":
        raise Conflict(f"{t}: the contract is already {s.status}")
    both = (s.client, s.worker)
    if t == "deposit.requested":
        if s.deposit == "paid":
            raise Conflict("deposit.requested: the deposit is already paid")
        return Plan(s, STAGE_OF[t], (), (JobSpec("deposit_requested", s.client, now),))
    if t == "deposit.paid":
        if s.deposit == "paid":
            raise Conflict("deposit.paid: the deposit is already paid")
        s = replace(s, deposit="paid", stage="in_progress")
        return Plan(s, STAGE_OF[t], DEPOSIT_KINDS, (JobSpec("deposit_paid", s.worker, now),))
    if t == "deposit.refunded":
        if s.deposit != "paid":
            raise Conflict("deposit.refunded: the deposit was not paid")
        s = replace(s, deposit="refunded", status="cancelled", stage="closed")
        return Plan(s, STAGE_OF[t], ALL,
                    tuple(JobSpec("deposit_refunded", u, now) for u in both))
    if t == "deadline.changed":
        s = replace(s, deadline=ev.time("deadline"))
        jobs = [JobSpec("deadline_changed", u, now, {"deadline": s.deadline}) for u in both]
        if s.status == "active":
            jobs.extend(_deadline_jobs(s, now, cfg))
        return Plan(s, None, DEADLINE_KINDS, tuple(jobs))
    if t == "delivery.submitted":
        if s.status != "active":
            raise Conflict(f"delivery.submitted: the contract is {s.status}")
        if s.deposit != "paid":
            raise Conflict("delivery.submitted: the deposit is not paid")
        s = replace(s, status="delivered", stage="delivered", delivered_at=now)
        days = round(cfg.review_reminder_us / DAY_US, 1)
        review = (JobSpec("review_request", s.client, now),
                  JobSpec("review_reminder", s.client, now + cfg.review_reminder_us,
                          {"delivered_at": now,
                           "days": int(days) if days == int(days) else days}))
        return Plan(s, STAGE_OF[t], (*DEADLINE_KINDS, "review_reminder"), review)
    if t == "correction.requested":
        if s.status != "delivered":
            raise Conflict("correction.requested: nothing has been delivered")
        s = replace(s, status="active", stage="in_progress", delivered_at=None)
        jobs = [JobSpec("correction_requested", s.worker, now), *_deadline_jobs(s, now, cfg)]
        return Plan(s, STAGE_OF[t], (*DEADLINE_KINDS, "review_reminder"), tuple(jobs))
    if t == "contract.accepted":
        if s.status != "delivered":
            raise Conflict("contract.accepted: nothing has been delivered")
        s = replace(s, status="accepted", stage="closed")
        return Plan(s, STAGE_OF[t], ALL, (JobSpec("payment_released", s.worker, now),))
    if t == "contract.cancelled":
        s = replace(s, status="cancelled", stage="closed")
        return Plan(s, STAGE_OF[t], ALL,
                    tuple(JobSpec("contract_cancelled", u, now) for u in both))
    if t == "review.requested":
        if s.status != "accepted":
            raise Conflict("review.requested: the contract is not accepted yet")
        return Plan(s, None, (), tuple(JobSpec("rating_request", u, now) for u in both))
    raise Conflict(f"no rule for {t}")  # pragma: no cover - parse_event knows every type


URGENT_KINDS = ("overdue", "contract_cancelled")


def is_urgent(kind: str, payload: dict[str, Any]) -> bool:
    """Urgent notices are not deferred by quiet hours."""
    if kind in URGENT_KINDS:
        return True
    return kind == "deadline_reminder" and float(payload.get("hours", 99)) <= 1


def check_due(kind: str, payload: dict[str, Any], state: ContractState | None,
              now: int) -> str | None:
    """At fire time: None to send, or the reason the notice no longer applies."""
    if kind == "chat":
        return None
    if state is None:
        return "no contract"
    if kind in DEPOSIT_KINDS:
        if state.deposit != "requested":
            return f"deposit is {state.deposit}"
        if state.status != "active":
            return f"contract is {state.status}"
    elif kind == "deposit_paid":
        if state.deposit != "paid":
            return f"deposit is {state.deposit}"
    elif kind in DEADLINE_KINDS:
        if state.status != "active":
            return f"contract is {state.status}"
        if payload.get("deadline") != state.deadline:
            return "deadline changed"
        if kind == "deadline_reminder" and now >= state.deadline:
            return "stale: the deadline has passed"
        if kind == "deadline_reminder" and _late(payload, state.deadline, now):
            nxt = payload.get("next_lead_us")
            if isinstance(nxt, int) and now >= state.deadline - nxt:
                return (f"stale: the {payload.get('hours')} h reminder is late and the "
                        f"{_hours(nxt)} h one is due")
    elif kind == "review_reminder":
        if state.status != "delivered" or state.delivered_at != payload.get("delivered_at"):
            return f"contract is {state.status}"
    elif state.status == "cancelled" and kind not in ("contract_cancelled", "deposit_refunded"):
        return "contract is cancelled"
    return None


def _lead_us(payload: dict[str, Any]) -> int:
    lead = payload.get("lead_us")
    if isinstance(lead, int):
        return lead
    return int(float(payload.get("hours", 0)) * HOUR_US)


def late_tolerance_us(lead_us: int) -> int:
    """How late a deadline reminder may fire and still say its own lead time: a tenth of
    it, between 5 minutes and an hour."""
    return min(HOUR_US, max(5 * 60_000_000, lead_us // 10))


def _late(payload: dict[str, Any], deadline: int, now: int) -> bool:
    lead = _lead_us(payload)
    return now - (deadline - lead) > late_tolerance_us(lead)


def fire_payload(kind: str, payload: dict[str, Any], state: ContractState | None,
                 now: int, *, held: bool = False) -> dict[str, Any]:
    """The payload a notice is worded with when it fires: a deadline reminder firing late
    (after downtime) says the time really left, not its own lead time. So does a copy that
    was ``held`` (deferred by quiet hours) however short the hold: it is sent later than
    planned by design, not by a scheduler running a little behind."""
    if kind in _SINCE and state is not None:
        return _since_payload(kind, payload, state, now)
    if kind != "deadline_reminder" or state is None or now >= state.deadline or \
            not (held or _late(payload, state.deadline, now)):
        return payload
    left = state.deadline - now
    if left >= HOUR_US:
        return {**payload, "hours": int(left // HOUR_US), "late": True}
    # Under an hour: worded in whole minutes ("37 min"), which a tenth of an hour is not.
    return {**payload, "hours": max(0.1, round(left / HOUR_US, 1)),
            "minutes": max(1, left // MINUTE_US), "late": True}


# Notices that say how long ago something happened ("24 hours since the contract", "3 days
# since the delivery"): the field, its unit, and the time it counts from.
_SINCE: dict[str, tuple[str, int]] = {"deposit_unpaid": ("hours", HOUR_US),
                                      "review_reminder": ("days", DAY_US)}


def _since_payload(kind: str, payload: dict[str, Any], state: ContractState,
                   now: int) -> dict[str, Any]:
    """A "… since" notice sent later than planned (held for quiet hours, fired after
    downtime, retried) says the time really passed, in whole units, once that is more than
    it planned to say: "31 hours since the contract", not "24"."""
    field, unit = _SINCE[kind]
    start = state.concluded_at if kind == "deposit_unpaid" else (
        state.delivered_at if state.delivered_at is not None
        else payload.get("delivered_at"))
    planned = payload.get(field)
    if not isinstance(start, int) or not isinstance(planned, (int, float)):
        return payload
    passed = (now - start) // unit
    return payload if passed <= planned else {**payload, field: int(passed), "late": True}


# Notices that only make sense while the deposit is still awaited.
_BEFORE_DEPOSIT = ("contract_concluded_client", "contract_concluded_worker", "deposit_requested")


def still_applies(kind: str, payload: dict[str, Any], state: ContractState | None,
                  now: int) -> str | None:
    """At send time (a push or e-mail copy held for quiet hours or a retry): None to send,
    or why the notice has been overtaken since it fired."""
    if kind == "chat":
        return None
    why = check_due(kind, payload, state, now)
    if why is not None or state is None:
        return why
    if kind in _BEFORE_DEPOSIT and state.deposit != "requested":
        return f"deposit is {state.deposit}"
    if kind == "deadline_changed" and payload.get("deadline") not in (None, state.deadline):
        return "the deadline changed again"
    if kind == "review_request" and state.status != "delivered":
        return f"contract is {state.status}"
    if kind == "correction_requested" and state.status != "active":
        return f"contract is {state.status}"
    return None


def retry_delay_s(attempt: int, *, base_s: float, max_s: float, rand: float) -> float:
    """Exponential backoff with full jitter: ``rand`` in [0, 1); attempt counts from 1."""
    cap = min(max_s, base_s * (2 ** min(attempt - 1, 60)))
    return float(cap * rand)
