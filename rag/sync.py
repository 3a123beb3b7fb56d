"""One sync of Confluence into the index: a plain function of its ports that the scheduler merely calls.

Incremental: a cheap listing (ids, versions, ancestors, restrictions; no bodies) says what changed and
what is gone; only changed pages are fetched with bodies (CQL `lastmodified` since the last good sync,
then by id for any the poll missed) and re-embedded. Three stages overlap: fetching and chunking run in a
producer thread (a bounded queue keeps memory flat), a group of pages is embedded while the group before
it is written to the index, and the index writes stay in this thread, in page order.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rag.chunking import ChunkedPage, embedding_text
from rag.ports import Embedder, IndexWriter, PageSource, PageSourceError, SyncTarget
from rag.types import Chunk, IndexedPage, Page, PageRef, SyncReport

log = logging.getLogger(__name__)

# Chunks a page within its limits (rag.chunking.chunk_bounded with the settings' sizes and limits).
Chunker = Callable[[Page], ChunkedPage]
Progress = Callable[[int, int], None]
_Group = list[tuple[Page, list[Chunk]]]

# Pages are embedded in groups of about this many chunks: big batches for the model and for Chroma.
_GROUP_CHUNKS = 256
_QUEUE_PAGES = 64


def restricted_ids(refs: Sequence[PageRef]) -> set[str]:
    """Pages restricted themselves or through an ancestor (Confluence read restrictions inherit)."""
    own = {r.page_id for r in refs if r.restricted}
    return {r.page_id for r in refs if r.page_id in own or own.intersection(r.ancestor_ids)}


@dataclass
class _Run:
    """Counters of one run; frozen into a SyncReport at the end."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    skipped_restricted: int = 0
    pages_cut: int = 0
    chunks_embedded: int = 0
    errors: list[str] = field(default_factory=list)
    fatal: bool = False
    fetch_s: float = 0.0
    chunk_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0


# The run's counters and timings that the report carries as they are.
_REPORTED = (
    "added",
    "updated",
    "removed",
    "unchanged",
    "skipped",
    "chunks_embedded",
    "fetch_s",
    "chunk_s",
    "embed_s",
    "write_s",
    "pages_cut",
    "skipped_restricted",
)
_DONE = object()


class SyncAborted(Exception):
    """Stops a run: the embedder or the index failed, or the process is shutting down."""


def sync_once(
    *,
    source: PageSource,
    index: IndexWriter,
    embedder: Embedder,
    chunker: Chunker,
    include_restricted: bool = False,
    full: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncReport:
    """One sync. Never raises: whatever happens is in the report, and readers keep a whole index.

    `ok` is False when the run itself failed (Confluence unreadable, the embedder or the index failing,
    a shutdown): then a rebuild is thrown away and the next run starts from the same point. A page that
    cannot be parsed is skipped and listed in `errors` without failing the run; as it is not recorded as
    indexed, every later run tries it again.
    """
    started = now()
    run = _Run()
    truncated_before = embedder.truncated
    target: SyncTarget | None = None
    try:
        # Confluence first: an unreachable or refusing wiki fails at once, before a model is loaded.
        refs = _list_pages(source, run)
        target = index.begin(fingerprint=embedder.fingerprint, full=full)
        _sync(refs, source, target, index, embedder, chunker, include_restricted, run, progress, stop)
    except SyncAborted as exc:
        run.errors.append(str(exc))
        run.fatal = True
    except Exception as exc:
        # The contract is a report, not a raise; the traceback goes to the log, where a bug shows.
        log.exception("sync failed")
        run.errors.append(f"sync aborted: {type(exc).__name__}: {str(exc)[:300]}")
        run.fatal = True

    ok = not run.fatal
    if target is not None:
        index.finish(target, ok=ok, changed=bool(run.added or run.updated or run.removed))
    summary = index.summary()
    report = SyncReport(
        started_at=started,
        finished_at=now(),
        ok=ok,
        full=full if target is None else target.rebuild,
        **{name: getattr(run, name) for name in _REPORTED},
        chunks_total=summary.chunks,
        chunks_truncated=embedder.truncated - truncated_before,
        # The reason a run failed is its last error, and stays in the report however many pages failed.
        errors=tuple(run.errors[:50])
        if len(run.errors) <= 50 or not run.fatal
        else (*run.errors[:49], run.errors[-1]),
    )
    index.record_sync(report)
    log.info(
        "sync ok=%s full=%s added=%d updated=%d removed=%d unchanged=%d skipped=%d "
        "skipped_restricted=%d pages_cut=%d chunks_embedded=%d pages=%d chunks=%d duration_s=%.2f errors=%d",
        report.ok,
        report.full,
        report.added,
        report.updated,
        report.removed,
        report.unchanged,
        report.skipped,
        report.skipped_restricted,
        report.pages_cut,
        report.chunks_embedded,
        summary.pages,
        summary.chunks,
        report.duration_s,
        len(report.errors),
    )
    for error in report.errors[:10]:
        log.warning("sync error: %s", error)
    return report


def _list_pages(source: PageSource, run: _Run) -> list[PageRef]:
    try:
        t0 = time.perf_counter()
        refs = source.list_pages()
        run.fetch_s += time.perf_counter() - t0
    except PageSourceError as exc:
        raise SyncAborted(f"listing pages: {exc}") from exc
    return refs


def _sync(
    refs: list[PageRef],
    source: PageSource,
    target: SyncTarget,
    index: IndexWriter,
    embedder: Embedder,
    chunker: Chunker,
    include_restricted: bool,
    run: _Run,
    progress: Progress | None,
    stop: threading.Event | None,
) -> None:
    known = index.indexed_pages(target)

    hidden = set() if include_restricted else restricted_ids(refs)
    wanted = {r.page_id: r for r in refs if r.page_id not in hidden}
    # Counted on every run, not only when they change: a summary says what the index leaves out.
    run.skipped_restricted = sum(1 for r in refs if r.page_id in hidden)
    changed = {pid for pid, r in wanted.items() if pid not in known or known[pid].version != r.version}
    run.unchanged = len(wanted) - len(changed)
    if changed:
        since = None if target.rebuild else index.last_success()
        _ingest_changed(
            source,
            target,
            index,
            embedder,
            chunker,
            changed,
            known,
            since,
            include_restricted,
            run,
            progress,
            stop,
        )
    gone = [pid for pid in known if pid not in wanted]
    _remove(target, index, [known[pid] for pid in gone], run)


def _fetch(
    source: PageSource,
    changed: set[str],
    since: datetime | None,
    run: _Run,
) -> Iterator[Page | str]:
    """Changed pages with bodies; yields a page id (str) for a changed page that is now gone."""
    pending = set(changed)
    for page in source.pages_modified_since(since):
        if page.page_id in pending:
            pending.discard(page.page_id)
            yield page
    # The poll may miss pages (time zones, moves into the space, restored pages): fetch those by id.
    for page_id in sorted(pending):
        fetched = source.get_page(page_id)
        yield fetched if fetched is not None else page_id


def _ingest_changed(
    source: PageSource,
    target: SyncTarget,
    index: IndexWriter,
    embedder: Embedder,
    chunker: Chunker,
    changed: set[str],
    known: dict[str, IndexedPage],
    since: datetime | None,
    include_restricted: bool,
    run: _Run,
    progress: Progress | None,
    shutdown: threading.Event | None,
) -> None:
    work: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_PAGES)
    stop = threading.Event()
    # What stopped the producer thread, handed to this one: a source failure ends the run with a message,
    # anything else is a bug and is raised here, so its traceback reaches the log.
    fetch_failed: list[Exception] = []

    def produce() -> None:
        try:
            it = _fetch(source, changed, since, run)
            while not stop.is_set():
                t0 = time.perf_counter()
                item = next(it, _DONE)
                run.fetch_s += time.perf_counter() - t0
                if item is _DONE:
                    break
                if isinstance(item, Page):
                    if item.restricted and not include_restricted:
                        # Restricted since the listing: dropped like a page that is gone.
                        run.skipped_restricted += 1
                        work.put(item.page_id)
                        continue
                    t0 = time.perf_counter()
                    try:
                        chunked = chunker(item)
                    except Exception as exc:
                        # One bad page never blocks the others; its traceback is logged, as a bug's would be.
                        log.warning("page %s cannot be chunked", item.page_id, exc_info=True)
                        run.errors.append(f"page {item.page_id} ({item.title[:80]}): cannot parse: {exc}")
                        run.skipped += 1
                        continue
                    finally:
                        run.chunk_s += time.perf_counter() - t0
                    if chunked.cut:
                        # Indexed up to the limits all the same: a page that big is an accident or an attack.
                        run.pages_cut += 1
                        log.warning(
                            "page %s (%r) cut: %s", item.page_id, item.title[:80], "; ".join(chunked.cut)
                        )
                    work.put((item, chunked.chunks))
                else:
                    work.put(item)
        except Exception as exc:
            fetch_failed.append(exc)
        finally:
            work.put(_DONE)

    producer = threading.Thread(target=produce, name="wikibot-fetch", daemon=True)
    producer.start()
    # One group embeds while the previous one is written: the embedder's cores would idle during writes.
    embedding = ThreadPoolExecutor(1, thread_name_prefix="wikibot-embed-group")
    pending: tuple[_Group, Future[list[list[float]]]] | None = None
    done = 0

    def write_pending() -> None:
        nonlocal pending, done
        if pending is None:
            return
        previous, future = pending
        pending = None
        done += _write_group(target, index, previous, _vectors(future), known, run)
        if progress:
            progress(done, len(changed))

    def submit(group: _Group) -> None:
        nonlocal pending
        if not group:
            return
        future = embedding.submit(_embed_group, embedder, group, run)
        write_pending()
        pending = (group, future)

    group: _Group = []
    try:
        while True:
            item = work.get()
            if item is _DONE:
                break
            if isinstance(item, str):
                if item in known:
                    _remove(target, index, [known[item]], run)
                continue
            assert isinstance(item, tuple)
            if shutdown is not None and shutdown.is_set():
                raise SyncAborted("stopped: the service is shutting down")
            group.append(item)
            if sum(len(c) for _, c in group) >= _GROUP_CHUNKS:
                submit(group)
                group = []
        submit(group)
        write_pending()
        if fetch_failed:
            # Pages written so far stay (each is whole); the rest wait for the next run.
            failure = fetch_failed[0]
            if isinstance(failure, PageSourceError):
                raise SyncAborted(f"fetching pages: {failure}") from failure
            raise failure
    finally:
        stop.set()
        # A group still embedding is finished (not written) before the run returns.
        embedding.shutdown(wait=True, cancel_futures=True)
        while producer.is_alive():
            with contextlib.suppress(queue.Empty):
                work.get(timeout=0.1)
        producer.join()


def _embed_group(embedder: Embedder, group: _Group, run: _Run) -> list[list[float]]:
    texts = [embedding_text(c.text) for _, chunks in group for c in chunks]
    t0 = time.perf_counter()
    vectors = embedder.embed_documents(texts) if texts else []
    run.embed_s += time.perf_counter() - t0
    run.chunks_embedded += len(texts)
    return vectors


def _vectors(future: Future[list[list[float]]]) -> list[list[float]]:
    try:
        return future.result()
    except Exception as exc:
        # The model failing is not one bad page: stop, so a rebuild is never activated half-empty.
        log.error("embedding failed", exc_info=exc)
        raise SyncAborted(f"embedding failed: {type(exc).__name__}: {str(exc)[:300]}") from exc


def _write_group(
    target: SyncTarget,
    index: IndexWriter,
    group: _Group,
    vectors: list[list[float]],
    known: dict[str, IndexedPage],
    run: _Run,
) -> int:
    t0 = time.perf_counter()
    all_chunks = [c for _, chunks in group for c in chunks]
    target.vectors.upsert(all_chunks, vectors)
    for page, chunks in group:
        new_ids = tuple(c.chunk_id for c in chunks)
        old = known.get(page.page_id)
        if old is not None:
            stale = [cid for cid in old.chunk_ids if cid not in set(new_ids)]
            target.vectors.delete(stale)
            run.updated += 1
        else:
            run.added += 1
        record = IndexedPage(page.page_id, page.space, page.title, page.version, new_ids)
        index.put_page(target, record)
        known[page.page_id] = record
    run.write_s += time.perf_counter() - t0
    return len(group)


def _remove(target: SyncTarget, index: IndexWriter, pages: list[IndexedPage], run: _Run) -> None:
    if not pages:
        return
    target.vectors.delete([cid for p in pages for cid in p.chunk_ids])
    index.remove_pages(target, [p.page_id for p in pages])
    for page in pages:
        run.removed += 1
        log.info("removed page %s (%s) from the index", page.page_id, page.title[:80])
