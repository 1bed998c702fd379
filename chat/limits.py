"""Per-user rate limiting: a token bucket (rate per second, burst), no I/O.

Limits are per node; with N nodes a user spread over all of them could send N times the
rate (documented in docs/threat-model.md). Buckets idle for a minute are forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._swept = clock()

    def check(self, key: str) -> float:
        """0 if ``key`` may act now, else how many seconds to wait (``retry_after``)."""
        now = self._clock()
        if now - self._swept > 60:
            self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [k for k, b in self._buckets.items() if now - b.stamp > 60]
        for k in idle:
            del self._buckets[k]
