"""The per-user token bucket, driven by an injected clock."""

from __future__ import annotations

import pytest

from chat.limits import PAID_MEMORY, RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_retry_after() -> None:
    clock = Clock()
    rl = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [rl.check("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.check("alice") == pytest.approx(0.5)  # one token at 2/s
    assert rl.check("bob") == 0.0  # buckets are per key
    clock.now += 0.25
    assert rl.check("alice") == pytest.approx(0.25)
    clock.now += 0.25
    assert rl.check("alice") == 0.0
    assert rl.check("alice") == pytest.approx(0.5)


def test_refill_is_capped_at_burst() -> None:
    clock = Clock()
    rl = RateLimiter(rate=10.0, burst=5, clock=clock)
    for _ in range(5):
        assert rl.check("u") == 0.0
    clock.now += 3600  # a long idle time refills only up to the burst
    assert [rl.check("u") for _ in range(5)] == [0.0] * 5
    assert rl.check("u") > 0


def test_refused_attempts_do_not_consume() -> None:
    b = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert b.take(0.0) == 0.0
    assert b.take(0.1) == pytest.approx(0.9)
    assert b.take(0.2) == pytest.approx(0.8)
    assert b.take(1.0) == 0.0


def test_fractional_rate_retry_after() -> None:
    b = TokenBucket(rate=0.1, burst=1, now=0.0)
    assert b.take(0.0) == 0.0
    assert b.take(0.0) == pytest.approx(10.0)
    assert b.take(5.0) == pytest.approx(5.0)


def test_idle_buckets_are_swept() -> None:
    clock = Clock()
    rl = RateLimiter(rate=1.0, burst=2, clock=clock)
    rl.check("idle")
    rl.check("idle")
    clock.now += 30
    rl.check("busy")
    clock.now += 31  # idle: 61 s untouched; busy: 31 s
    rl.check("busy")
    assert "idle" not in rl._buckets and "busy" in rl._buckets
    assert rl.check("idle") == 0.0  # a forgotten bucket starts full again


def test_admit_lets_a_paid_item_retry_once_when_the_bucket_is_empty() -> None:
    clock = Clock()
    rl = RateLimiter(rate=0.01, burst=2, clock=clock)
    assert rl.admit("u", ("t", "a")) == (0.0, True)
    assert rl.admit("u", ("t", "b")) == (0.0, True)
    wait, charged = rl.admit("u", ("t", "c"))  # new: waits, nothing taken
    assert wait > 0 and not charged
    assert rl.admit("u", ("t", "a")) == (0.0, False)  # a retry of a paid item: free
    assert rl.admit("u", ("t", "a"))[0] > 0  # once: the next retry waits like any other
    assert rl.admit("u", ("t", "b")) == (0.0, False)
    assert rl.admit("v", ("t", "a"))[1]  # per key: another user pays for its own


def test_admit_remembers_the_last_burst_items() -> None:
    clock = Clock()
    rl = RateLimiter(rate=1.0, burst=2, clock=clock)
    for item in ("a", "b", "c"):
        assert rl.admit("u", item) == (0.0, True)
        clock.now += 1
    rl.check("u")
    rl.check("u")  # empty now
    assert rl.admit("u", "a")[0] > 0  # forgotten (only the last 2 are kept)
    assert rl.admit("u", "c") == (0.0, False)
    assert rl.admit("u", "b") == (0.0, False)


def test_refund_gives_a_token_back_up_to_the_burst() -> None:
    clock = Clock()
    rl = RateLimiter(rate=0.01, burst=2, clock=clock)
    rl.refund("nobody", "a")  # no bucket: nothing to do
    assert "nobody" not in rl._buckets
    assert rl.admit("u", "a") == (0.0, True)
    rl.refund("u", "a")
    rl.refund("u", "b")  # never paid for: nothing given back
    assert [rl.check("u") for _ in range(2)] == [0.0, 0.0]  # capped at the burst
    assert rl.check("u") > 0


def test_a_retry_is_refunded_once_per_item_so_a_resend_loop_is_charged() -> None:
    rl = RateLimiter(rate=0.001, burst=3, clock=Clock())
    assert rl.admit("u", "a") == (0.0, True)  # the message itself
    assert rl.admit("u", "a") == (0.0, True)  # its first retry: charged ...
    rl.refund("u", "a")  # ... and refunded (answered duplicate)
    for _ in range(2):  # later retries of the same item are charged and stay charged
        assert rl.admit("u", "a") == (0.0, True)
        rl.refund("u", "a")
    wait, charged = rl.admit("u", "new")
    assert wait > 0 and not charged, "the resend loop used up the budget"


def test_admit_remembers_at_most_paid_memory_items_whatever_the_burst() -> None:
    rl = RateLimiter(rate=1.0, burst=100_000, clock=Clock())
    for i in range(PAID_MEMORY * 3):
        assert rl.admit("u", i) == (0.0, True)
    paid = rl._buckets["u"].paid
    assert paid is not None and len(paid) == PAID_MEMORY
    assert hash(PAID_MEMORY * 3 - 1) in paid and hash(0) not in paid  # the newest are kept
