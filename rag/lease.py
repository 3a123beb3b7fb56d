"""The sync writer's lease in Redis: of any number of replicas, one runs the scheduled sync.

A replica takes the lease (`SET NX` with an expiry) when its sync tick finds it free, then keeps it, renewing
it well within its expiry, for as long as it lives; the others' ticks find it held and do nothing, so the
wiki is listed once per interval, not once per replica. A writer that dies stops renewing: the lease expires
and the next tick of another replica takes it over.

Each taking gets a fencing token: an ever-growing epoch (`INCR`) and the owner's name. The ledger's writes
check it in the same transaction (`rag/ledger_redis.py`), so a writer that lost the lease without noticing (a
long pause, a partition) cannot touch the index the new writer keeps.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid

import redis

from rag.ports import LeaseLost

# Compare-and-set scripts: only the holder of the token renews or releases (never someone else's lease).
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def owner_name() -> str:
    """Which replica holds the lease, for the logs and the admin's answer: host, process, and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RedisLease:
    """Implements rag.ports.SyncLease. Blocking (one short Redis call each): callers on the event loop use
    asyncio.to_thread."""

    def __init__(
        self, client: redis.Redis, *, key: str, ttl_s: float = 30.0, owner: str | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease's ttl must be positive")
        self._db = client
        self.key = key
        self._ttl_ms = int(ttl_s * 1000)
        self.owner = owner or owner_name()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def renew_every_s(self) -> float:
        """Three renewals fit in one expiry: one missed (a slow call, a blip) does not lose the lease."""
        return self._ttl_ms / 3000

    def token(self) -> str | None:
        """The fencing token this process writes under, or None when it does not hold the lease."""
        with self._lock:
            return self._token

    def acquire(self) -> bool:
        """Takes the lease when free, or keeps it when already ours; False while another replica holds it."""
        try:
            if self.token() is not None and self.renew():
                return True
            token = f"{self._db.incr(self.key + ':epoch')}:{self.owner}"
            if not self._db.set(self.key, token, nx=True, px=self._ttl_ms):
                return False
        except redis.RedisError as exc:
            raise LeaseLost(f"cannot reach Redis for the sync lease: {type(exc).__name__}") from exc
        with self._lock:
            self._token = token
        return True

    def renew(self) -> bool:
        """Extends the lease if still ours; False (and forgotten) once it expired or changed hands."""
        token = self.token()
        if token is None:
            return False
        try:
            kept = bool(self._renew(keys=[self.key], args=[token, self._ttl_ms]))
        except redis.RedisError:
            kept = False  # unknown: write as if lost; the fenced writes would refuse anyway
        if not kept:
            with self._lock:
                if self._token == token:
                    self._token = None
        return kept

    def release(self) -> None:
        """Lets another replica take over at once (a clean shutdown, a CLI ingest that is done)."""
        with self._lock:
            token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(redis.RedisError):  # it expires on its own
                self._release(keys=[self.key], args=[token])

    def request_sync(self, *, full: bool) -> None:
        """Leaves the writer a request (POST /admin/sync on a replica that is not the writer): the writer
        takes it at its next renewal, within seconds. A full request is not lowered by a later plain one."""
        key = self.key + ":request"
        try:
            if full:
                self._db.set(key, "full", ex=3600)
            else:
                self._db.set(key, "incremental", ex=3600, nx=True)
        except redis.RedisError as exc:
            raise LeaseLost(f"cannot reach Redis to ask the writer for a sync: {type(exc).__name__}") from exc

    def take_request(self) -> bool | None:
        """The request left for the writer (True: full), taken once; None when there is none."""
        try:
            value = self._db.getdel(self.key + ":request")
        except redis.RedisError:
            return None
        return None if value is None else value == "full"

    def holder(self) -> str | None:
        """Who holds it now (the owner part of the token), or None when it is free."""
        try:
            token = self._db.get(self.key)
        except redis.RedisError:
            return None
        return None if token is None else str(token).split(":", 1)[-1]
