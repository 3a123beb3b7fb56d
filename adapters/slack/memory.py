"""Bounded in-process memory of the adapter: what was already handled, which threads the bot is part of.

Everything here is a cache, capped in size and time: losing it on a restart costs at most a mention (see the
README), never a double answer within Slack's retry window, which is far shorter than the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable


class RecentKeys:
    """A set that forgets: keys expire after `ttl_s`, and the oldest go first past `max_size`."""

    def __init__(self, *, ttl_s: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or max_size < 1:
            raise ValueError("ttl_s must be > 0 and max_size >= 1")
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def add_if_new(self, key: str) -> bool:
        """Records `key`; False when it was already there (a duplicate)."""
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


class ThreadMemory:
    """Channel threads the bot answered in, and who took part in which: both least-recently-used, capped."""

    def __init__(
        self, *, max_threads: int = 20_000, max_people: int = 5_000, max_threads_per_person: int = 100
    ) -> None:
        self._max_threads = max_threads
        self._max_people = max_people
        self._max_per_person = max_threads_per_person
        self._threads: OrderedDict[str, None] = OrderedDict()
        self._people: OrderedDict[tuple[str, str, str], OrderedDict[str, None]] = OrderedDict()

    def remember(self, *, session_key: str, team_id: str, channel_id: str, user_id: str) -> None:
        _touch(self._threads, session_key, self._max_threads)
        person = (team_id, channel_id, user_id)
        keys = self._people.get(person)
        if keys is None:
            keys = OrderedDict()
            self._people[person] = keys
        self._people.move_to_end(person)
        while len(self._people) > self._max_people:
            self._people.popitem(last=False)
        _touch(keys, session_key, self._max_per_person)

    def is_known(self, session_key: str) -> bool:
        return session_key in self._threads

    def threads_of(self, *, team_id: str, channel_id: str, user_id: str) -> tuple[str, ...]:
        keys = self._people.get((team_id, channel_id, user_id))
        return tuple(keys) if keys else ()

    def forget_person(self, *, team_id: str, channel_id: str, user_id: str) -> None:
        self._people.pop((team_id, channel_id, user_id), None)


def _touch(entries: OrderedDict[str, None], key: str, limit: int) -> None:
    entries[key] = None
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)


class KeyedLocks:
    """One lock per session key, alive only while someone holds or awaits it (so never more than in flight)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
