"""The web server's own endpoints and the scheduled sync (issue 5), over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from bot.scheduler import SyncRunner, needs_startup_sync
from bot.server import RUNNER, build_web_app
from rag.index import ChromaStore, open_chroma
from tests.fakes.embedder import HashingEmbedder
from tests.support import make_core, settings_for

TOKEN = "s3cret-admin-token"


@pytest.fixture
def core(fake: ConfluenceFake, tmp_path: Path) -> Iterator[Core]:
    core = make_core(
        settings_for(fake, tmp_path / "data", admin_token=TOKEN, health_max_failed_syncs=2),
        embedder=HashingEmbedder(),
    )
    yield core
    core.close()


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[object, object]]:
    app = build_web_app(core, with_scheduler=False)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_healthz_reports_the_index_and_the_last_sync(
    core: Core, client: TestClient[object, object]
) -> None:
    await asyncio.to_thread(core.sync)
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ok"
    assert body["pages"] > 20 and body["chunks"] >= body["pages"]
    assert body["last_sync"]["ok"] is True and body["last_sync"]["added"] == body["pages"]


async def test_healthz_fails_after_repeated_failed_syncs(
    core: Core, fake: ConfluenceFake, client: TestClient[object, object]
) -> None:
    await asyncio.to_thread(core.sync)
    fake.fail(401, times=1000)
    await asyncio.to_thread(core.sync)
    assert (await client.get("/healthz")).status == 200, "one failure is not yet an outage"
    await asyncio.to_thread(core.sync)
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 503 and body["status"] == "failing"
    assert body["last_sync"]["errors"] == 1, "the public answer counts errors without naming anything"
    assert body["pages"] > 20, "the previous index is still there"
    admin = await (await client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})).json()
    assert "401" in admin["last_sync"]["errors"][0]


async def test_readyz_is_503_until_the_index_is_in_the_store_and_again_when_it_is_lost(
    core: Core, client: TestClient[object, object]
) -> None:
    empty = await client.get("/readyz")
    assert empty.status == 503 and (await empty.json())["ready"] is False
    await asyncio.to_thread(core.sync)
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["ready"] and body["stored_chunks"] == body["chunks"] > 0
    # The live collection dropped by someone else: the ledger still says it is there, the store does not.
    await asyncio.to_thread(ChromaStore(open_chroma(path=core.settings.chroma_path)).drop, body["collection"])
    lost = await client.get("/readyz")
    assert lost.status == 503 and "missing" in (await lost.json())["reason"]
    health = await client.get("/healthz")
    body = await health.json()
    assert health.status == 503 and body["status"] == "failing" and body["ready"] is False


async def test_admin_sync_needs_the_bearer_token(client: TestClient[object, object]) -> None:
    assert (await client.post("/admin/sync")).status == 401
    assert (await client.post("/admin/sync", headers={"Authorization": "Bearer wrong"})).status == 401


async def test_admin_sync_runs_a_sync_and_refuses_an_overlapping_one(
    core: Core, client: TestClient[object, object]
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = await client.post("/admin/sync", headers=headers)
    second = await client.post("/admin/sync", headers=headers)
    assert first.status == 202 and second.status == 409
    runner = client.server.app[RUNNER]
    for _ in range(200):
        if not runner.running:
            break
        await asyncio.sleep(0.05)
    assert len(core.kb.recent_syncs(10)) == 1
    assert core.kb.recent_syncs(1)[0]["ok"] is True


async def test_admin_sync_is_off_without_a_token(fake: ConfluenceFake, tmp_path: Path) -> None:
    core = make_core(settings_for(fake, tmp_path / "d"), embedder=HashingEmbedder())
    try:
        async with TestClient(TestServer(build_web_app(core, with_scheduler=False))) as client:
            assert (await client.post("/admin/sync", headers={"Authorization": "Bearer "})).status == 404
    finally:
        core.close()


async def test_two_overlapping_triggers_make_one_run(core: Core, fake: ConfluenceFake) -> None:
    runner = SyncRunner(core)
    first, second = await asyncio.gather(runner.run(), runner.run())
    assert [r is None for r in (first, second)].count(True) == 1
    assert len(core.kb.recent_syncs(10)) == 1


def test_a_second_process_cannot_sync_the_same_data_folder(core: Core) -> None:
    from filelock import FileLock

    from bot.runtime import SyncBusy

    with FileLock(str(core.settings.data_dir / "sync.lock")), pytest.raises(SyncBusy):
        core.sync()


async def test_the_scheduler_syncs_at_start_and_on_its_interval(core: Core, fake: ConfluenceFake) -> None:
    assert needs_startup_sync(core, datetime.now(UTC))
    app = build_web_app(core, with_scheduler=True, interval_s=0.5)
    async with TestClient(TestServer(app)):
        for _ in range(100):
            if len(core.kb.recent_syncs(10)) >= 3:
                break
            await asyncio.sleep(0.1)
    syncs = core.kb.recent_syncs(10)
    assert len(syncs) >= 3
    assert syncs[-1]["added"] > 20 and all(s["added"] == 0 for s in syncs[:-1])


async def test_the_scheduler_sweeps_idle_sessions(fake: ConfluenceFake, tmp_path: Path) -> None:
    from bot.app import build_core
    from bot.scheduler import _purge_sessions, build_scheduler
    from rag.sessions import SqliteSessionStore
    from rag.types import Turn

    store = SqliteSessionStore(tmp_path / "s.sqlite3", max_turns=5, idle_seconds=0.01)
    core = build_core(settings_for(fake, tmp_path / "d"), embedder=HashingEmbedder(), sessions=store)
    try:
        scheduler = build_scheduler(core, SyncRunner(core), start_now=False)
        assert scheduler.get_job("session-purge") is not None
        store.append("old", [Turn("user", "q"), Turn("assistant", "a")])
        await asyncio.sleep(0.05)
        await _purge_sessions(core)
        assert store.purge_expired() == 0, "the job had already swept the idle session"
    finally:
        core.close()
