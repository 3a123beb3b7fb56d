"""Which sessions the bot takes part in, and whose they are: what a reset of a whole channel needs.

In-process and bounded (least recently used first out): losing it on a restart costs a mention to pick a
thread up again and makes a channel-wide reset say there is nothing to reset, never a wrong answer. Several
replicas share it in Redis instead (rag.shared_state.RedisParticipants).
"""

from __future__ import annotations

from collections import OrderedDict


class MemoryParticipants:
    """rag.ports.Participants in one process's memory: the default without Redis."""

    def __init__(
        self, *, max_sessions: int = 20_000, max_people: int = 5_000, max_sessions_per_person: int = 100
    ) -> None:
        self._max_sessions = max_sessions
        self._max_people = max_people
        self._max_per_person = max_sessions_per_person
        self._sessions: OrderedDict[str, None] = OrderedDict()
        self._people: OrderedDict[tuple[str, str], OrderedDict[str, None]] = OrderedDict()

    async def join(self, *, session_key: str, place_key: str, user_id: str) -> None:
        """The user spoke to the bot in this session of this place."""
        _touch(self._sessions, session_key, self._max_sessions)
        person = (place_key, user_id)
        keys = self._people.get(person)
        if keys is None:
            keys = OrderedDict()
            self._people[person] = keys
        self._people.move_to_end(person)
        while len(self._people) > self._max_people:
            self._people.popitem(last=False)
        _touch(keys, session_key, self._max_per_person)

    async def follows(self, session_key: str) -> bool:
        return session_key in self._sessions

    async def sessions_of(self, *, place_key: str, user_id: str) -> tuple[str, ...]:
        keys = self._people.get((place_key, user_id))
        return tuple(keys) if keys else ()

    async def forget_person(self, *, place_key: str, user_id: str) -> None:
        self._people.pop((place_key, user_id), None)


def _touch(entries: OrderedDict[str, None], key: str, limit: int) -> None:
    entries[key] = None
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)
