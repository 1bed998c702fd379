"""The pure parts: rules, quiet hours, backoff, event parsing (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.errors import BadRequest, Conflict
from notifications.events import parse_event
from notifications.prefs import quiet_until
from notifications.rules import HOUR_US, RuleConfig, apply_event, check_due, retry_delay_s
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
