"""The pure parts: rules, quiet hours, backoff, event parsing (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.errors import BadRequest, Conflict
from notifications.events import parse_event
from notifications.prefs import quiet_until
from notifications.rules import (
    HOUR_US,
    MINUTE_US,
    RuleConfig,
    apply_event,
    check_due,
    fire_payload,
    retry_delay_s,
)
from notifications.texts import notice_text
from tests.notifications.conftest import T0, iso


def ev(type_: str, **data: object) -> bytes:
    import orjson

    return orjson.dumps({"id": "e1", "type": type_, "thread": "t1", "data": data})


def test_concluded_schedules_only_reminders_still_ahead() -> None:
    e = parse_event(ev("contract.concluded", client="a", worker="b", amount=1,
                       deadline=iso(T0 + 30 * HOUR_US)))
    plan = apply_event(None, e, T0, RuleConfig())
    reminders = sorted(j.due_at for j in plan.jobs if j.kind == "deadline_reminder")
    assert reminders == [T0 + 6 * HOUR_US, T0 + 29 * HOUR_US]  # 72 h is already past
    with pytest.raises(Conflict):
        apply_event(plan.state, e, T0, RuleConfig())
    assert check_due("deadline_reminder", {"deadline": T0 + 30 * HOUR_US}, plan.state,
                     T0 + 31 * HOUR_US) == "stale: the deadline has passed"


def test_quiet_hours_wrap_midnight_in_the_users_zone() -> None:
    # T0 = 09:00 JST; 23:00 JST = T0 + 14 h
    assert quiet_until(T0, "Asia/Tokyo", "22:00", "08:00") is None
    assert quiet_until(T0 + 14 * HOUR_US, "Asia/Tokyo", "22:00", "08:00") == T0 + 23 * HOUR_US
    assert quiet_until(T0 + 20 * HOUR_US, "Asia/Tokyo", "22:00", "08:00") == T0 + 23 * HOUR_US
    # the same instant is 20:00 the day before in New York: not quiet there
    assert quiet_until(T0, "America/New_York", "22:00", "08:00") is None


@given(st.integers(1, 30), st.floats(0, 0.999))
def test_backoff_is_capped_and_jittered(attempt: int, rand: float) -> None:
    d = retry_delay_s(attempt, base_s=2, max_s=600, rand=rand)
    cap = min(600, 2 * 2 ** (attempt - 1))
    assert 0 <= d <= cap
    assert d == pytest.approx(cap * rand)  # full jitter: anywhere from 0 to the cap


def test_backoff_is_full_jitter_as_documented() -> None:
    assert retry_delay_s(3, base_s=2, max_s=600, rand=0.0) == 0
    assert retry_delay_s(3, base_s=2, max_s=600, rand=0.25) == 2
    assert retry_delay_s(10_000, base_s=2, max_s=600, rand=0.5) == 300


@given(st.binary(max_size=200))
def test_random_bodies_never_crash_the_decoder(body: bytes) -> None:
    try:
        parse_event(body)
    except BadRequest:
        pass


@pytest.mark.parametrize(("lead_h", "hold_min", "ja", "en"), [
    (24, 30, "納期まであと23時間", "23 h to the deadline"),
    (72, 50, "納期まであと71時間", "71 h to the deadline"),
    (72, 7 * 60, "納期まであと65時間", "65 h to the deadline"),
    (2, 5, "納期まであと1時間", "1 h to the deadline"),
    (2, 84, "納期まであと36分", "36 min to the deadline"),
])
def test_a_held_reminder_says_the_time_left_however_short_the_hold(
        lead_h: int, hold_min: int, ja: str, en: str) -> None:
    """A copy held for quiet hours (``held``) is worded with the time left when it is sent,
    rounded as a late reminder is (whole hours down; minutes under an hour), even when the
    hold is shorter than the lateness a reminder may have and still say its lead time."""
    e = parse_event(ev("contract.concluded", client="a", worker="b", amount=1,
                       deadline=iso(T0 + 100 * HOUR_US)))
    cfg = RuleConfig(deadline_offsets_us=(72 * HOUR_US, 24 * HOUR_US, 2 * HOUR_US))
    plan = apply_event(None, e, T0, cfg)
    [job] = [j for j in plan.jobs if j.kind == "deadline_reminder"
             and j.payload["lead_us"] == lead_h * HOUR_US]
    now = job.due_at + hold_min * MINUTE_US
    assert check_due(job.kind, job.payload, plan.state, now) is None
    # sent at once, or a scheduler a little behind: its own lead time
    assert fire_payload(job.kind, job.payload, plan.state, job.due_at + 1) is job.payload
    payload = fire_payload(job.kind, job.payload, plan.state, now, held=True)
    params = {**plan.state.params(), **payload}
    assert notice_text(job.kind, params, locale="ja", tz="Asia/Tokyo")[0].startswith(ja)
    assert notice_text(job.kind, params, locale="en", tz="Asia/Tokyo")[0].startswith(en)


@pytest.mark.parametrize(("late_min", "ja", "en"), [
    (0, "契約から24時間", "24 hours since the contract"),
    (30, "契約から24時間", "24 hours since the contract"),  # not yet a whole hour more
    (7 * 60, "契約から31時間", "31 hours since the contract"),  # held overnight
])
def test_a_deposit_reminder_sent_late_says_the_time_really_passed(
        late_min: int, ja: str, en: str) -> None:
    """"24 hours since the contract" sent at 08:00 after a night's hold would understate
    it: a "… since" notice says the whole hours really passed once they are more."""
    e = parse_event(ev("contract.concluded", client="a", worker="b", amount=1,
                       deadline=iso(T0 + 200 * HOUR_US)))
    plan = apply_event(None, e, T0, RuleConfig())
    [job] = [j for j in plan.jobs if j.kind == "deposit_unpaid"]
    assert job.payload["hours"] == 24
    payload = fire_payload(job.kind, job.payload, plan.state, job.due_at + late_min * MINUTE_US)
    assert (payload is job.payload) == (late_min < 60)
    params = {**plan.state.params(), **payload}
    assert ja in notice_text(job.kind, params, locale="ja", tz="Asia/Tokyo")[1]
    assert en in notice_text(job.kind, params, locale="en", tz="Asia/Tokyo")[1]


@pytest.mark.parametrize(("late_h", "ja", "en"), [
    (5, "納品から3日", "3 days since the delivery"),
    (25, "納品から4日", "4 days since the delivery"),
])
def test_a_review_reminder_sent_late_says_the_days_really_passed(
        late_h: int, ja: str, en: str) -> None:
    e = parse_event(ev("contract.concluded", client="a", worker="b", amount=1,
                       deadline=iso(T0 + 200 * HOUR_US)))
    state = apply_event(None, e, T0, RuleConfig()).state
    state = apply_event(state, parse_event(ev("deposit.paid")), T0 + HOUR_US, RuleConfig()).state
    plan = apply_event(state, parse_event(ev("delivery.submitted")), T0 + 2 * HOUR_US,
                       RuleConfig())
    [job] = [j for j in plan.jobs if j.kind == "review_reminder"]
    payload = fire_payload(job.kind, job.payload, plan.state, job.due_at + late_h * HOUR_US)
    params = {**plan.state.params(), **payload}
    assert ja in notice_text(job.kind, params, locale="ja", tz="Asia/Tokyo")[1]
    assert en in notice_text(job.kind, params, locale="en", tz="Asia/Tokyo")[1]
