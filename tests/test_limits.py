"""The per-user token bucket, driven by an injected clock."""

from __future__ import annotations

import pytest

from chat.limits import RateLimiter, TokenBucket


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
