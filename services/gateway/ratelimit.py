"""A token bucket per caller, so one client cannot starve the others."""

import time
from dataclasses import dataclass

# Buckets untouched this long are dropped, so the table stays small.
IDLE_SECONDS = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = time.monotonic()

    def take(self, key: str) -> float:
        """0 when the call may go ahead; otherwise seconds until it may."""
        now = time.monotonic()
        self._sweep(now)
        bucket = self._buckets.setdefault(key, _Bucket(self._burst, now))
        bucket.tokens = min(
            self._burst, bucket.tokens + (now - bucket.updated) * self._rate
        )
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < IDLE_SECONDS:
            return
        self._last_sweep = now
        stale = [k for k, b in self._buckets.items() if now - b.updated > IDLE_SECONDS]
        for key in stale:
            del self._buckets[key]
