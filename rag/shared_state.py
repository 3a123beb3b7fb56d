"""What replicas behind one load balancer must agree on about chats, in Redis: the default is in-process.

One module for all of it (redelivery dedupe, thread membership, turn order and reset generations) because
they share one policy: one asyncio client per event loop, the `wikibot:` key prefix of the session store,
short timeouts, and one mapping of Redis failures. Every call is `redis.asyncio` on the event loop, never a
thread: a turn lock waits for minutes, and 50 waiting conversations would starve the default executor.

What happens when Redis fails, by caller:
- dedupe (asked before Slack's ack): answers "new", logging one line. A duplicate answer is better than a
  lost question, and Slack retries a request we fail anyway.
- `follows` (asked before the ack too): answers "no". A missed follow-up costs the user a mention; a wrong
  "yes" would answer conversations between people in any thread.
- joining a thread: logged and skipped, as a lost membership costs a mention.
- turns, resets and generations: SessionStoreError, which the conversation maps like a failing history read
  (the history lives in the same Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockNotOwnedError, RedisError

from rag.sessions import SessionStoreError, glob_escape

log = logging.getLogger(__name__)

KEY_PREFIX = "wikibot:"
# Asked before a platform's ack (Slack gives 3 s for up to three such look-ups): one round trip each.
QUICK_TIMEOUT_S = 0.5
# A history write or a reset holds a session's write lock for a few store calls, never a model call.
WRITE_LOCK_TIMEOUT_S = 10.0
# How often a turn waiting for another replica's answer looks again.
_LOCK_POLL_S = 0.05
_SCAN_BATCH = 500


class RedisChatState:
    """The chat state replicas share: a rag.ports.Dedupe and Throttles, and the makers of the Participants and
    the gate."""

    def __init__(self, url: str, *, key_prefix: str = KEY_PREFIX, timeout_s: float = QUICK_TIMEOUT_S) -> None:
        self._url = url
        self._prefix = key_prefix
        self._timeout_s = timeout_s
        try:
            self._new_client()  # checks the URL now, while the settings are checked; connects nothing
        except ValueError:
            # The message of a bad URL must not repeat it: it may hold the password.
            raise SessionStoreError("REDIS_URL is not a valid redis://, rediss:// or unix:// URL") from None
        # An asyncio client belongs to the loop it first ran on; a CLI or a test may run the core under several.
        self._bound: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None

    def _new_client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self._url,
            socket_timeout=self._timeout_s,
            socket_connect_timeout=self._timeout_s,
            # One quick retry for a pooled connection the server dropped; the default backs off for seconds.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            self._bound = (loop, self._new_client())
        return self._bound[1]

    def key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    @property
    def quick_timeout_s(self) -> float:
        return self._timeout_s

    def throttle(self, name: str, *, per_minute: float, burst: int) -> RedisThrottle:
        return RedisThrottle(self, name=name, per_minute=per_minute, burst=burst)

    def seen_keys(self, name: str, *, ttl_s: float, max_size: int) -> RedisSeenKeys:
        """Redis expiry bounds the keys; `max_size` (the in-process cap) has nothing left to bound."""
        return RedisSeenKeys(self, name=name, ttl_s=ttl_s)

    def participants(self, *, idle_s: float, max_sessions_per_person: int = 100) -> RedisParticipants:
        return RedisParticipants(self, idle_s=idle_s, max_sessions_per_person=max_sessions_per_person)

    def gate(self, *, turn_timeout_s: float, idle_s: float) -> RedisSessionGate:
        return RedisSessionGate(self, turn_timeout_s=turn_timeout_s, idle_s=idle_s)

    async def aclose(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].aclose()


@contextlib.contextmanager
def _store_errors(what: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise SessionStoreError(f"Redis {what} failed: {type(exc).__name__}") from exc


# A token bucket in one atomic step, on Redis' own clock (replicas' clocks may differ): tokens refill at rate
# per second up to capacity; taking one when there is none answers how long until there will be.
_BUCKET_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(kept[1]) or capacity, tonumber(kept[2]) or t
tokens = math.min(capacity, tokens + math.max(0, t - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tostring(wait)
"""


class RedisThrottle:
    """rag.ports.Throttle shared by replicas: a user's bucket is one Redis hash, kept while it refills."""

    def __init__(self, state: RedisChatState, *, name: str, per_minute: float, burst: int) -> None:
        if not per_minute > 0 or burst < 1:
            raise ValueError("a throttle needs a positive rate and a burst of at least 1")
        self._state = state
        self._name = name
        self._capacity = float(burst)
        self._per_second = per_minute / 60.0
        # Past a full refill the bucket is full again: nothing to keep.
        self._ttl_ms = max(1000, math.ceil(self._capacity / self._per_second * 1000))

    async def take(self, key: str) -> float:
        try:
            async with asyncio.timeout(self._state.quick_timeout_s * 2):
                wait = await self._state.client().eval(
                    _BUCKET_SCRIPT,
                    1,
                    self._state.key(f"throttle:{self._name}", key),
                    repr(self._capacity),
                    repr(self._per_second),
                    str(self._ttl_ms),
                )
        except (RedisError, TimeoutError) as exc:
            log.warning("Redis rate limit failed (%s): %s allowed", type(exc).__name__, self._name)
            return 0.0
        return float(wait.decode() if isinstance(wait, bytes) else wait)


class RedisSeenKeys:
    """rag.ports.SeenKeys shared by replicas: `SET key 1 NX PX ttl`, one atomic round trip."""

    def __init__(self, state: RedisChatState, *, name: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self._state = state
        self._name = name
        self._ttl_ms = max(1, math.ceil(ttl_s * 1000))

    async def add_if_new(self, key: str) -> bool:
        try:
            async with asyncio.timeout(self._state.quick_timeout_s * 2):
                added = await self._state.client().set(
                    self._state.key(f"seen:{self._name}", key), "1", nx=True, px=self._ttl_ms
                )
        except (RedisError, TimeoutError) as exc:
            log.warning("Redis dedupe failed (%s): handling %s as new", type(exc).__name__, self._name)
            return True
        return bool(added)


class RedisParticipants:
    """rag.ports.Participants shared by replicas, bounded and expiring like the sessions themselves.

    A key per session the bot takes part in, expiring after the session idle time; per (place, user) a
    sorted set of their sessions by last question, capped in size and pruned of sessions idle past it.
    """

    def __init__(self, state: RedisChatState, *, idle_s: float, max_sessions_per_person: int) -> None:
        if not idle_s > 0 or max_sessions_per_person < 1:
            raise ValueError("idle_s must be > 0 and max_sessions_per_person >= 1")
        self._state = state
        self._idle_s = idle_s
        self._idle_ms = max(1, math.ceil(idle_s * 1000))
        self._max_per_person = max_sessions_per_person

    def _thread(self, session_key: str) -> str:
        return self._state.key("thread", session_key)

    def _person(self, place_key: str, user_id: str) -> str:
        # JSON keeps the two parts apart whatever characters a platform puts in them.
        return self._state.key("people", json.dumps([place_key, user_id]))

    async def join(self, *, session_key: str, place_key: str, user_id: str) -> None:
        person = self._person(place_key, user_id)
        # Replicas' clocks score the sets: a skew of seconds against an idle time of hours does not matter.
        now = time.time()
        try:
            pipe = self._state.client().pipeline(transaction=True)
            pipe.set(self._thread(session_key), "1", px=self._idle_ms)
            pipe.zadd(person, {session_key: now})
            pipe.zremrangebyscore(person, "-inf", now - self._idle_s)
            pipe.zremrangebyrank(person, 0, -(self._max_per_person + 1))
            pipe.pexpire(person, self._idle_ms)
            await pipe.execute()
        except RedisError as exc:
            log.warning("Redis: cannot record that the bot takes part in a thread: %s", type(exc).__name__)

    async def follows(self, session_key: str) -> bool:
        try:
            async with asyncio.timeout(self._state.quick_timeout_s * 2):
                found = await self._state.client().exists(self._thread(session_key))
        except (RedisError, TimeoutError) as exc:
            log.warning("Redis: cannot tell whether the bot follows a thread (%s): no", type(exc).__name__)
            return False
        return bool(found)

    async def sessions_of(self, *, place_key: str, user_id: str) -> tuple[str, ...]:
        person = self._person(place_key, user_id)
        with _store_errors("participants"):
            keys = await self._state.client().zrangebyscore(person, time.time() - self._idle_s, "+inf")
        return tuple(k.decode() if isinstance(k, bytes) else str(k) for k in keys)

    async def forget_person(self, *, place_key: str, user_id: str) -> None:
        with _store_errors("participants"):
            await self._state.client().delete(self._person(place_key, user_id))


class RedisSessionGate:
    """rag.ports.SessionGate shared by replicas: Redis locks for the turn and the writes, a counter per reset.

    Locks carry a token (redis-py's Lock), so only their holder releases them, and expire: a replica that
    dies holding a turn delays that session by `turn_timeout_s` at most.
    """

    def __init__(self, state: RedisChatState, *, turn_timeout_s: float, idle_s: float) -> None:
        self._state = state
        self._turn_timeout_s = turn_timeout_s
        # A generation must outlive any turn that read it: a counter that expired mid-answer would read 0.
        self._generation_ms = max(1, math.ceil(max(idle_s, 2 * turn_timeout_s) * 1000))

    @contextlib.asynccontextmanager
    async def turn(self, session_key: str) -> AsyncIterator[None]:
        lock = self._lock("turn", session_key, timeout_s=self._turn_timeout_s)
        with _store_errors("turn lock"):
            await lock.acquire(blocking_timeout=None)  # waits like asyncio.Lock: polling, on the loop
        try:
            yield
        finally:
            await _release(lock, session_key)

    @contextlib.asynccontextmanager
    async def writing(self, session_keys: Sequence[str]) -> AsyncIterator[None]:
        # Sorted: two resets of overlapping sessions on two replicas take their locks in one order.
        keys = sorted(set(session_keys))
        locks = [self._lock("write", key, timeout_s=WRITE_LOCK_TIMEOUT_S) for key in keys]
        held: list[tuple[Lock, str]] = []
        try:
            for key, lock in zip(keys, locks, strict=True):
                with _store_errors("write lock"):
                    if not await lock.acquire(blocking_timeout=WRITE_LOCK_TIMEOUT_S):
                        raise SessionStoreError("Redis write lock: timed out waiting for another replica")
                held.append((lock, key))
            yield
        finally:
            for lock, key in reversed(held):
                await _release(lock, key)

    async def generation(self, session_key: str) -> int:
        with _store_errors("generation"):
            value = await self._state.client().get(self._state.key("generation", session_key))
        return int(value) if value is not None else 0

    async def bump(self, session_keys: Sequence[str]) -> None:
        if not session_keys:
            return
        with _store_errors("generation"):
            pipe = self._state.client().pipeline(transaction=True)
            for key in session_keys:
                name = self._state.key("generation", key)
                pipe.incr(name)
                pipe.pexpire(name, self._generation_ms)
            await pipe.execute()

    async def live(self, prefix: str) -> list[str]:
        """Sessions under prefix whose turn is held on any replica: the answers a reset must void. A question
        still queued reads the generation after the reset, as in one process."""
        head = self._state.key("turn", "")
        pattern = glob_escape(head + prefix) + "*"
        keys: list[str] = []
        with _store_errors("scan"):
            # SCAN, never KEYS: KEYS blocks Redis for every other client while it walks the keyspace.
            async for raw in self._state.client().scan_iter(match=pattern, count=_SCAN_BATCH):
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                keys.append(name.removeprefix(head))
        return keys

    def _lock(self, kind: str, session_key: str, *, timeout_s: float) -> Lock:
        return self._state.client().lock(
            self._state.key(kind, session_key), timeout=timeout_s, sleep=_LOCK_POLL_S, thread_local=False
        )


async def _release(lock: Lock, session_key: str) -> None:
    """Never raises: a lock that cannot be released expires by itself."""
    try:
        await lock.release()
    except LockNotOwnedError:
        log.warning("Redis: a lock of session %s expired before its holder was done", session_key[:80])
    except RedisError as exc:
        log.warning("Redis: cannot release a lock of session %s: %s", session_key[:80], type(exc).__name__)
