"""Scheduler wiring: APScheduler calls the sync on its interval; one run at a time, whoever triggers it."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import Core
from bot.metrics import SYNC_BUSY, SYNC_ERROR
from bot.runtime import SyncBusy
from rag.types import SyncReport

log = logging.getLogger(__name__)


class SyncRunner:
    """Runs `Core.sync` off the event loop; a trigger during a run is dropped, not queued."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[SyncReport | None]] = set()
        # A running sync is in a worker thread that cancel() cannot reach: it checks this between batches.
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def run(self, *, full: bool = False) -> SyncReport | None:
        if self._lock.locked():
            log.info("a sync is already running; this trigger is dropped")
            return None
        async with self._lock:
            metrics = self._core.metrics
            try:
                report = await asyncio.to_thread(self._core.sync, full=full, stop=self._stop)
            except SyncBusy as exc:
                log.info("%s", exc)
                metrics.sync_not_run(SYNC_BUSY)
                return None
            except Exception:
                # Settings or a bug: logged, and the next tick tries again; the server keeps running.
                log.exception("sync failed")
                metrics.sync_not_run(SYNC_ERROR)
                return None
            metrics.sync_run(report)
            return report

    def trigger(self, *, full: bool = False) -> bool:
        """Starts a sync in the background; False when one is already running."""
        if self._lock.locked():
            return False
        task = asyncio.get_running_loop().create_task(self.run(full=full))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def close(self) -> None:
        self._stop.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def needs_startup_sync(core: Core, now: datetime) -> bool:
    """An empty index, one older than an interval, or one built by another embedding model is synced at
    start-up rather than after a tick. Blocking (it may load the model): call it from a thread."""
    # No index at all is known without loading the model for its fingerprint.
    if core.kb.summary().collection is None or core.kb.needs_rebuild(fingerprint=core.embedder.fingerprint):
        return True
    last = core.kb.last_success()
    interval = timedelta(minutes=core.settings.sync_interval_minutes)
    return last is None or now - last > interval


def build_scheduler(
    core: Core, runner: SyncRunner, *, start_now: bool, interval_s: float | None = None
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    seconds = interval_s if interval_s is not None else core.settings.sync_interval_minutes * 60.0
    scheduler.add_job(
        runner.run,
        IntervalTrigger(seconds=seconds, timezone=UTC),
        id="confluence-sync",
        name="Confluence sync",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=int(max(seconds, 1)),
        next_run_time=now if start_now else now + timedelta(seconds=seconds),
    )
    # Idle sessions expire when read; those never read again are swept here, so the store stays bounded.
    scheduler.add_job(
        _purge_sessions,
        IntervalTrigger(hours=1, timezone=UTC),
        args=[core],
        id="session-purge",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


async def _purge_sessions(core: Core) -> None:
    try:
        purged = await asyncio.to_thread(core.sessions.purge_expired)
    except Exception:
        log.exception("purging idle sessions failed")
        return
    if purged:
        log.info("purged %d idle sessions", purged)
    questions = core.questions
    if questions is None:
        return
    # Past QUESTION_LOG_RETENTION_DAYS, a question is forgotten: within the hour, whatever the traffic.
    try:
        forgotten = await asyncio.to_thread(questions.purge_expired)
    except Exception:
        log.exception("purging the question log failed")
        return
    if forgotten:
        log.info("forgot %d questions past the retention", forgotten)
