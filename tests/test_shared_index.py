"""Replicas sharing one index: the ledger in Redis, one writer by lease, fenced writes (issue 12, items 1-2).

A real `redis-server` and a real `chroma run` on loopback, the real Confluence client against its fake; each
"replica" is a core of its own with its own empty data folder, as containers have.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Core, build_index_state
from bot.config import SettingsError, load_settings
from bot.demo.confluence_fake import ConfluenceFake
from bot.runtime import SyncBusy
from bot.server import RUNNER, build_web_app, writer_duties
from rag.index import ChromaStore, open_chroma
from rag.knowledge import Ledger
from rag.lease import RedisLease
from rag.ledger_redis import RedisLedger
from rag.ports import LeaseLost, LedgerStore
from rag.types import IndexedPage, SyncReport
from tests.fakes.embedder import HashingEmbedder
from tests.support import PASSWORD, USER, make_core, settings_for

TOKEN = "an-admin-token-for-replicas"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    db = redis.Redis.from_url(redis_url, decode_responses=True)
    yield db
    db.close()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"  # one deployment per test on the session's Redis


# ---- the ledger: one contract, SQLite and Redis


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        sqlite = Ledger(tmp_path / "state.sqlite3")
        yield sqlite
        sqlite.close()
        return
    db = redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    yield RedisLedger(db, prefix=f"wikibot:index:{prefix}", fence=None)
    db.close()


def _report(*, ok: bool, at: int) -> SyncReport:
    when = datetime(2026, 1, 1, at, tzinfo=UTC)
    return SyncReport(started_at=when, finished_at=when, ok=ok, full=False)


def test_the_ledger_switch_pages_drops_and_history(ledger: LedgerStore) -> None:
    assert ledger.active_collection() is None and ledger.summary().collection is None
    ledger.put_page("c1", IndexedPage("1", "ENG", "VPN", 3, ("1:0", "1:1")))
    ledger.put_page("c1", IndexedPage("2", "OPS", "MFA", 1, ("2:0",)))
    ledger.doom("c1", "rebuild in progress")  # forgets its pages, lists it for dropping
    assert ledger.pages("c1") == {} and ledger.doomed() == ["c1"]
    ledger.put_page("c1", IndexedPage("1", "ENG", "VPN", 3, ("1:0", "1:1")))
    ledger.set_active("c1", fingerprint="model/8", layout="v3")
    active = ledger.active_collection()
    assert active is not None and (active.name, active.fingerprint, active.layout) == ("c1", "model/8", "v3")
    assert ledger.doomed() == [], "activating a collection takes it off the drop list"
    ledger.bump_revision()
    again = ledger.active_collection()
    assert again is not None and again.revision == active.revision + 1
    summary = ledger.summary()
    assert (summary.pages, summary.chunks, summary.spaces) == (1, 2, ("ENG",))
    ledger.remove_pages("c1", ["1", "missing"])
    assert ledger.pages("c1") == {}
    ledger.record_sync(_report(ok=True, at=1))
    ledger.record_sync(_report(ok=False, at=2))
    assert [r["ok"] for r in ledger.recent_syncs(5)] == [False, True]
    good = ledger.last_good_sync()
    assert good is not None and good["ok"] is True
    assert ledger.last_success() == datetime(2026, 1, 1, 1, tzinfo=UTC)


# ---- the lease and the fence


def test_one_lease_holder_at_a_time_and_a_dead_one_expires(client: redis.Redis, prefix: str) -> None:
    a = RedisLease(client, key=f"{prefix}:lease", ttl_s=0.5, owner="replica-a")
    b = RedisLease(client, key=f"{prefix}:lease", ttl_s=0.5, owner="replica-b")
    assert a.acquire() and not b.acquire()
    assert b.holder() == "replica-a" and a.acquire(), "the holder keeps it"
    time.sleep(0.8)  # replica-a died: it renews no more
    assert b.acquire() and b.holder() == "replica-b"
    assert not a.renew() and a.token() is None, "the old holder learns it lost the lease"
    b.release()
    assert a.acquire(), "a clean release lets another take over at once"


@pytest.mark.parametrize(
    ("minutes", "ttl_s"), [("0.05", 3.0), ("0.1", 3.0), ("0.5", 15.0), ("1", 30.0), ("60", 30.0)]
)
def test_the_writers_lease_follows_the_sync_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, minutes: str, ttl_s: float
) -> None:
    # Half an interval, 3 s to 30 s, renewed every third: a dead writer is replaced within about one interval.
    monkeypatch.setenv("SYNC_INTERVAL_MINUTES", minutes)
    state = build_index_state(load_settings(data_dir=tmp_path, redis_url=redis_url))
    try:
        assert state.lease is not None and state.lease.renew_every_s == pytest.approx(ttl_s / 3)
    finally:
        state.close()


@pytest.mark.parametrize("minutes", ["0.04", "0", "-1", "soon"])
def test_a_sync_interval_under_3_seconds_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, minutes: str
) -> None:
    monkeypatch.setenv("SYNC_INTERVAL_MINUTES", minutes)
    with pytest.raises(SettingsError, match=r"^SYNC_INTERVAL_MINUTES: "):
        load_settings()


def test_a_writer_that_lost_its_lease_cannot_touch_the_ledger(client: redis.Redis, prefix: str) -> None:
    key = f"wikibot:index:{prefix}"
    old = RedisLease(client, key=f"{key}:lease", ttl_s=0.3, owner="old")
    new = RedisLease(client, key=f"{key}:lease", ttl_s=5, owner="new")
    old_writer = RedisLedger(client, prefix=key, fence=(old.key, old.token))
    with pytest.raises(LeaseLost):
        old_writer.put_page("c1", IndexedPage("1", "ENG", "VPN", 1, ("1:0",)))  # never held it
    assert old.acquire()
    old_writer.set_active("c1", fingerprint="model/8", layout="v3")
    time.sleep(0.5)  # a long pause: the lease expired and another replica took it
    assert new.acquire()
    with pytest.raises(LeaseLost):
        old_writer.set_active("c2", fingerprint="model/8", layout="v3")
    reader = RedisLedger(client, prefix=key, fence=None)
    active = reader.active_collection()
    assert active is not None and active.name == "c1", "the switch of a writer without the lease never lands"


# ---- replicas


@pytest.fixture
def wiki() -> Iterator[ConfluenceFake]:
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        yield fake


@pytest.fixture
def replicas(
    wiki: ConfluenceFake, tmp_path: Path, redis_url: str, chroma_server: tuple[str, int], prefix: str
) -> Iterator[list[Core]]:
    host, port = chroma_server
    cores = [
        make_core(
            settings_for(
                wiki,
                tmp_path / f"replica-{n}",  # each its own empty data folder
                redis_url=redis_url,
                chroma_host=host,
                chroma_port=port,
                chroma_collection=prefix,
                admin_token=TOKEN,
            ),
            embedder=HashingEmbedder(),
        )
        for n in range(2)
    ]
    yield cores
    for core in cores:
        core.close()


def _found(core: Core, query: str) -> set[str]:
    return {h.chunk.title for h in core.retriever.search(query, k=5).hits}


def test_a_new_replica_serves_the_shared_index_at_once_and_only_the_writer_syncs(
    replicas: list[Core], wiki: ConfluenceFake
) -> None:
    writer, other = replicas
    assert writer.sync().ok
    wiki.clear_requests()

    # The new replica, its data folder empty, answers from the index the writer built: nothing fetched.
    assert "VPN Access" in _found(other, "connect to the VPN from home")
    assert other.kb.summary().chunks == writer.kb.summary().chunks > 0 and other.kb.readiness().ready
    with pytest.raises(SyncBusy, match="writer"):
        other.sync()
    assert wiki.requests == [], "a replica that is not the writer lists nothing"

    writer.close()  # its lease released: the other takes over, incrementally, on the same index
    report = other.sync()
    assert report.ok and not report.full and report.chunks_embedded == 0 and wiki.body_requests() == 0


def test_an_edit_synced_by_the_writer_is_served_by_every_replica(
    replicas: list[Core], wiki: ConfluenceFake
) -> None:
    writer, other = replicas
    wiki.add_page(
        page_id="9001", title="Badge printer", body="<p>The badge printer is in room zebracorn.</p>"
    )
    assert writer.sync().ok
    assert "Badge printer" in _found(other, "zebracorn")
    wiki.edit_page("9001", body="<p>The badge printer moved to the quokkaroom.</p>")
    assert writer.sync().updated == 1
    assert "Badge printer" in _found(other, "quokkaroom")
    assert not any("zebracorn" in h.chunk.text for h in other.retriever.search("zebracorn", k=5).hits)


def test_a_collection_no_ledger_knows_is_dropped_by_the_next_writer(replicas: list[Core]) -> None:
    writer, _ = replicas
    settings = writer.settings
    store = ChromaStore(
        open_chroma(path=Path("unused"), host=settings.chroma_host, port=settings.chroma_port)
    )
    orphan = f"{writer.settings.chroma_collection}-0badf00d-20260101t000000000000"
    store.open(orphan)  # a replica's own copy from before the shared ledger, or a dead writer's rebuild
    assert writer.sync().ok
    assert orphan not in store.names()


async def test_admin_sync_on_a_replica_that_is_not_the_writer_reaches_the_writer(
    replicas: list[Core], wiki: ConfluenceFake
) -> None:
    writer, other = replicas
    assert writer.sync().ok  # the writer holds the lease from now on
    writer_app, other_app = (
        build_web_app(writer, with_scheduler=False),
        build_web_app(other, with_scheduler=False),
    )
    async with TestClient(TestServer(writer_app)) as _, TestClient(TestServer(other_app)) as http:
        response = await http.post("/admin/sync", headers={"Authorization": f"Bearer {TOKEN}"})
        body = await response.json()
        assert response.status == 202 and body["queued_for"] == writer.lease.owner  # type: ignore[union-attr]
        wiki.clear_requests()
        await writer_duties(writer, writer_app[RUNNER])  # the writer's next renewal takes the request
        for _ in range(200):
            if not writer_app[RUNNER].running and wiki.requests:
                break
            await asyncio.sleep(0.05)
        assert wiki.requests, "the writer ran the sync asked through the other replica"
        assert not other_app[RUNNER].running
