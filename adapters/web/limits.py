"""How much one user may ask: a token bucket per user, in this process."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from adapters.web.config import RateLimit

# Users are authenticated, so their number is the deployment's; the bound only caps a misbehaving proxy.
_MAX_USERS = 10_000


class RateLimiter:
    """Each user's bucket holds up to `burst` requests and refills at `per_minute`. Several replicas each
    keep their own buckets: a user behind a round-robin balancer gets up to that many times the limit,
    which still stops a runaway script."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(limit.burst)
        self._per_second = limit.per_minute / 60.0
        self._clock = clock
        # user → (tokens left, when they were counted); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, user: str) -> float:
        """Takes one request from the user's bucket: 0.0 when allowed, else the seconds until it would be."""
        now = self._clock()
        tokens, then = self._buckets.pop(user, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - then) * self._per_second)
        allowed = tokens >= 1.0
        self._buckets[user] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > _MAX_USERS:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self._per_second


def retry_after(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 for a refusal."""
    return str(max(1, math.ceil(seconds)))
