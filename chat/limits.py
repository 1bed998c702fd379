"""Per-user rate limiting: a token bucket (rate per second, burst), no I/O.

Limits are per node; with N nodes a user spread over all of them could send N times the
rate (documented in docs/threat-model.md). Buckets idle for a minute are forgotten.

Idempotent retries (a ``send`` resent with the same ``client_msg_id`` after a reconnect)
must not cost budget: :meth:`RateLimiter.admit` remembers the last ``burst`` items (at
most ``PAID_MEMORY``) a key paid for, as hashes, and lets a retry of one of them through
once when the bucket is empty, and :meth:`RateLimiter.refund` gives back the token of an
action that turned out to be a retry (answered ``duplicate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

# At most this many paid-for items are remembered per key, whatever the burst: a client's
# outbox holds only a few unacknowledged sends, and a raised burst (the benchmarks use
# 100,000) must not grow a dict per user without bound.
PAID_MEMORY = 256


class TokenBucket:
    __slots__ = ("burst", "paid", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now
        # hashes of the items paid for lately, oldest first (None until the first admit),
        # each with whether a retry of it was refunded already (once per item)
        self.paid: dict[int, bool] | None = None

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

    def admit(self, key: str, item: Hashable) -> tuple[float, bool]:
        """Like :meth:`check` for an idempotent action (``item``: its idempotency key).

        Returns ``(wait, charged)``. With a token, the token is taken and ``item`` is
        remembered as paid for (the last ``burst`` items per key). Without one, a remembered
        item passes once more without a token (``(0.0, False)``: a retry of what was already
        paid for); anything else waits (``(wait, False)``, nothing taken). A hash collision
        at worst lets one action through without a token.
        """
        wait = self.check(key)
        bucket = self._buckets[key]
        h = hash(item)
        paid = bucket.paid
        if wait > 0:
            if paid is not None and h in paid:
                del paid[h]  # once: a retry that keeps coming back waits like any other
                return 0.0, False
            return wait, False
        refunded = False
        if paid is None:
            paid = bucket.paid = {}
        else:
            refunded = paid.pop(h, False)  # to the newest end, keeping its refund
            if len(paid) >= max(1, min(self.burst, PAID_MEMORY)):
                del paid[next(iter(paid))]
        paid[h] = refunded
        return 0.0, True

    def refund(self, key: str, item: Hashable) -> None:
        """Give back the token just taken for ``item`` (it turned out to be a retry) - once
        per item: a client resending one stored message in a loop is charged from the
        second retry on, so retries cannot flood the node for free."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.paid is None:
            return
        h = hash(item)
        if bucket.paid.get(h) is False:
            bucket.paid[h] = True
            bucket.tokens = min(bucket.burst, bucket.tokens + 1.0)

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [k for k, b in self._buckets.items() if now - b.stamp > 60]
        for k in idle:
            del self._buckets[k]
