"""The index ledger in Redis: what every replica must agree on, for any number of `wikibot serve` processes.

The same facts as the SQLite ledger (`rag/knowledge.py` `Ledger`): which collection readers use and what built
it, the revision, each collection's pages (version and chunk ids), the collections still to drop, and the sync
history. A replica that starts with an empty data folder reads them here and serves the shared index at once.

Writes come only from the replica holding the sync lease (`rag/lease.py`), and each is fenced by it: the write
runs in a transaction that WATCHes the lease key and checks it still holds this writer's token, so a writer
that lost its lease (a pause, a partition) cannot switch or edit the index under the new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import redis

from rag.ports import LeaseLost, VectorStoreError
from rag.types import ActiveCollection, IndexedPage, IndexSummary, SyncReport

# The history is for status and health, not an audit log: keep it short (as the SQLite ledger does).
_SYNCS_KEPT = 200
_ACTIVE, _FINGERPRINT, _LAYOUT, _REVISION, _LAST_SUCCESS = (
    "active_collection",
    "active_fingerprint",
    "active_layout",
    "revision",
    "last_success_started_at",
)


class LedgerError(VectorStoreError):
    """Redis failed under the ledger: the sync stops (and says so) or a reader sees an error, never a guess."""


class RedisLedger:
    """Implements rag.ports.LedgerStore in Redis. `fence` names the lease key and returns the token this
    process writes under (None when it holds no lease: then every write raises LeaseLost)."""

    def __init__(
        self, client: redis.Redis, *, prefix: str, fence: tuple[str, Callable[[], str | None]] | None
    ) -> None:
        self._db = client
        self._prefix = prefix
        self._fence = fence

    def _key(self, *parts: str) -> str:
        return ":".join([self._prefix, *parts])

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise LedgerError(f"the index ledger in Redis failed: {type(exc).__name__}") from exc

    def _write(self, apply: Callable[[redis.client.Pipeline], object]) -> None:
        """One transaction, fenced by the lease when there is one."""
        with self._errors(), self._db.pipeline(transaction=True) as pipe:
            if self._fence is None:
                apply(pipe)
                pipe.execute()
                return
            lease_key, token_of = self._fence
            token = token_of()
            try:
                pipe.watch(lease_key)  # type: ignore[no-untyped-call]
                if token is None or pipe.get(lease_key) != token:
                    raise LeaseLost("this process no longer holds the sync lease: another replica writes")
                pipe.multi()
                apply(pipe)
                pipe.execute()
            except redis.WatchError:
                raise LeaseLost("the sync lease changed hands during a write") from None

    # -- the active collection -------------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        with self._errors():
            return {str(k): str(v) for k, v in self._db.hgetall(self._key("meta")).items()}

    def active_collection(self) -> ActiveCollection | None:
        meta = self._meta()  # one read: never the collection of one switch with the fingerprint of another
        name = meta.get(_ACTIVE)
        if not name:
            return None
        return ActiveCollection(
            name, meta.get(_FINGERPRINT, ""), meta.get(_LAYOUT, ""), int(meta.get(_REVISION, "0"))
        )

    def set_active(self, name: str, *, fingerprint: str, layout: str) -> None:
        """One atomic pointer update: every replica sees the old collection or the new one, with what built it."""

        def apply(pipe: redis.client.Pipeline) -> None:
            pipe.hset(self._key("meta"), mapping={_ACTIVE: name, _FINGERPRINT: fingerprint, _LAYOUT: layout})
            pipe.hincrby(self._key("meta"), _REVISION, 1)
            pipe.hdel(self._key("drops"), name)

        self._write(apply)

    def bump_revision(self) -> None:
        self._write(lambda pipe: pipe.hincrby(self._key("meta"), _REVISION, 1))

    # -- pages -----------------------------------------------------------------------------------------

    def pages(self, collection: str) -> dict[str, IndexedPage]:
        with self._errors():
            rows = self._db.hgetall(self._key("pages", collection))
        return {str(page_id): _page(str(page_id), str(row)) for page_id, row in rows.items()}

    def put_page(self, collection: str, page: IndexedPage) -> None:
        row = json.dumps([page.space, page.title, page.version, list(page.chunk_ids)])
        self._write(lambda pipe: pipe.hset(self._key("pages", collection), page.page_id, row))

    def remove_pages(self, collection: str, page_ids: Iterable[str]) -> None:
        ids = list(page_ids)
        if ids:
            self._write(lambda pipe: pipe.hdel(self._key("pages", collection), *ids))

    # -- collections to drop ---------------------------------------------------------------------------

    def doom(self, collection: str, reason: str) -> None:
        def apply(pipe: redis.client.Pipeline) -> None:
            pipe.delete(self._key("pages", collection))
            pipe.hset(self._key("drops"), collection, reason)

        self._write(apply)

    def doomed(self) -> list[str]:
        with self._errors():
            return sorted(str(name) for name in self._db.hkeys(self._key("drops")))

    def dropped(self, collection: str) -> None:
        self._write(lambda pipe: pipe.hdel(self._key("drops"), collection))

    # -- LedgerReader ----------------------------------------------------------------------------------

    def summary(self) -> IndexSummary:
        meta = self._meta()
        name = meta.get(_ACTIVE) or None
        pages = self.pages(name) if name else {}
        return IndexSummary(
            collection=name,
            fingerprint=meta.get(_FINGERPRINT),
            pages=len(pages),
            chunks=sum(len(p.chunk_ids) for p in pages.values()),
            spaces=tuple(sorted({p.space for p in pages.values()})),
        )

    def recent_syncs(self, n: int) -> list[dict[str, object]]:
        with self._errors():
            rows = self._db.lrange(self._key("syncs"), 0, max(n, 1) - 1)
        return [dict(json.loads(str(r))) for r in rows]

    def last_good_sync(self) -> dict[str, object] | None:
        with self._errors():
            row = self._db.get(self._key("last_good_sync"))
        return None if row is None else dict(json.loads(str(row)))

    def last_success(self) -> datetime | None:
        value = self._meta().get(_LAST_SUCCESS)
        return datetime.fromisoformat(value) if value else None

    def record_sync(self, report: SyncReport) -> None:
        row = json.dumps(report.as_dict())

        def apply(pipe: redis.client.Pipeline) -> None:
            pipe.lpush(self._key("syncs"), row)
            pipe.ltrim(self._key("syncs"), 0, _SYNCS_KEPT - 1)
            if report.ok:
                pipe.set(self._key("last_good_sync"), row)
                pipe.hset(self._key("meta"), _LAST_SUCCESS, report.started_at.isoformat())

        self._write(apply)

    def close(self) -> None:
        """The client belongs to the composition root, which closes it."""


def _page(page_id: str, row: str) -> IndexedPage:
    space, title, version, chunk_ids = json.loads(row)
    return IndexedPage(page_id, str(space), str(title), int(version), tuple(str(c) for c in chunk_ids))
