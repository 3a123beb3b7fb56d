"""How much one user may ask: a token bucket per user (rag.ports.Throttle), in this process unless the
composition root hands in a shared one (Redis: replicas then count together)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

# Users are authenticated, so their number is the deployment's; the bound only caps a misbehaving proxy.
_MAX_USERS = 10_000


class LocalThrottles:
    """rag.ports.Throttles in this process: each replica keeps its own buckets (with REDIS_URL they are shared)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def throttle(self, name: str, *, per_minute: float, burst: int) -> LocalThrottle:
        return LocalThrottle(per_minute=per_minute, burst=burst, clock=self._clock)


class LocalThrottle:
    """Each user's bucket holds up to `burst` requests and refills at `per_minute`."""

    def __init__(self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(burst)
        self._per_second = per_minute / 60.0
        self._clock = clock
        # user → (tokens left, when they were counted); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, user: str) -> float:
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
