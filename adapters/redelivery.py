"""What a channel already handled: Slack and the Bot Framework both redeliver what they think was lost.

A cache capped in size and time: losing it on a restart costs nothing within a platform's retry window,
which is far shorter than the TTL. Several replicas share their keys in Redis instead (rag.shared_state):
both implement rag.ports.SeenKeys, made by a rag.ports.Dedupe the composition root hands the adapter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RecentKeys:
    """A set that forgets: keys expire after `ttl_s`, and the oldest go first past `max_size`."""

    def __init__(self, *, ttl_s: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or max_size < 1:
            raise ValueError("ttl_s must be > 0 and max_size >= 1")
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    async def add_if_new(self, key: str) -> bool:
        """Records `key`; False when it was already there (a duplicate). Never waits: memory only."""
        now = self._clock()
        self._purge(now)
        if key in self._expiry:
            return False
        self._expiry[key] = now + self._ttl_s
        while len(self._expiry) > self._max_size:
            self._expiry.popitem(last=False)
        return True

    def __contains__(self, key: object) -> bool:
        self._purge(self._clock())
        return key in self._expiry

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        # Insertion order is expiry order, as every key gets the same TTL.
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[key]


class LocalDedupe:
    """rag.ports.Dedupe in one process's memory: the default without Redis."""

    def seen_keys(self, name: str, *, ttl_s: float, max_size: int) -> RecentKeys:
        return RecentKeys(ttl_s=ttl_s, max_size=max_size)
