"""Prometheus metrics (issue 15): rag.ports.Telemetry implemented with prometheus-client, plus the sync runs
and what the index holds. Counts and timings only, never a question's or a page's text: `/metrics` is public.

Each Metrics owns its CollectorRegistry (never prometheus-client's global one): two cores in one process, as
in tests, never share or collide on a metric.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rag.ports import LedgerReader
from rag.telemetry import OUTCOMES
from rag.types import SyncReport

# A reply waits on retrieval, the reranker (~1 s on two cores) and, with a model, its generation.
_ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 180.0)
_RETRIEVAL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# An incremental run takes seconds; a full rebuild of a large wiki, tens of minutes.
_SYNC_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)

# What a sync run ended as: a report's ok, or the runner's own outcomes when no report came back.
SYNC_OK, SYNC_FAILED, SYNC_BUSY, SYNC_ERROR = "ok", "failed", "busy", "error"


class Metrics:
    """Implements rag.ports.Telemetry; the runner records sync runs here too."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._questions = Counter(
            "wikibot_questions",
            "Messages handled, by platform and outcome (answer, extractive, not_found, notice, error, timeout).",
            ["platform", "outcome"],
            registry=registry,
        )
        self._answer_seconds = Histogram(
            "wikibot_answer_seconds",
            "Time from a message's receipt to its reply, by outcome.",
            ["outcome"],
            buckets=_ANSWER_BUCKETS,
            registry=registry,
        )
        self._retrieval_seconds = Histogram(
            "wikibot_retrieval_seconds",
            "Time of one search of the index (dense, lexical, fusion, reranking).",
            buckets=_RETRIEVAL_BUCKETS,
            registry=registry,
        )
        self._model_errors = Counter(
            "wikibot_model_errors",
            "Chat model failures, by stage (answer, condense).",
            ["stage"],
            registry=registry,
        )
        self._model_fallbacks = Counter(
            "wikibot_model_fallbacks",
            "Answers given from passages alone because the chat model failed.",
            registry=registry,
        )
        self._first_text_seconds = Histogram(
            "wikibot_first_text_seconds",
            "Time from a message's receipt to the first text of its streamed answer shown, by platform.",
            ["platform"],
            buckets=_ANSWER_BUCKETS,
            registry=registry,
        )
        self._feedback = Counter(
            "wikibot_feedback",
            "Ratings recorded on answers, by platform and rating (up, down).",
            ["platform", "rating"],
            registry=registry,
        )
        self._sync_runs = Counter(
            "wikibot_sync_runs",
            "Sync runs, by outcome (ok, failed, busy: another process was syncing, error: a bug or settings).",
            ["outcome"],
            registry=registry,
        )
        self._sync_seconds = Histogram(
            "wikibot_sync_duration_seconds",
            "Duration of the sync runs that produced a report, by outcome (ok, failed).",
            ["outcome"],
            buckets=_SYNC_BUCKETS,
            registry=registry,
        )
        # Every series exists from the start at zero: a rate over a series that appears late misses its first
        # increment, and an alert on a missing series never fires.
        for outcome in OUTCOMES:
            self._answer_seconds.labels(outcome=outcome)
        for stage in ("answer", "condense"):
            self._model_errors.labels(stage=stage)
        for outcome in (SYNC_OK, SYNC_FAILED, SYNC_BUSY, SYNC_ERROR):
            self._sync_runs.labels(outcome=outcome)
        for outcome in (SYNC_OK, SYNC_FAILED):
            self._sync_seconds.labels(outcome=outcome)

    # ---- rag.ports.Telemetry

    def question(self, *, platform: str, outcome: str, seconds: float) -> None:
        self._questions.labels(platform=platform, outcome=outcome).inc()
        self._answer_seconds.labels(outcome=outcome).observe(seconds)

    def retrieval(self, *, seconds: float) -> None:
        self._retrieval_seconds.observe(seconds)

    def model_error(self, *, stage: str) -> None:
        self._model_errors.labels(stage=stage).inc()

    def model_fallback(self) -> None:
        self._model_fallbacks.inc()

    def first_text(self, *, platform: str, seconds: float) -> None:
        self._first_text_seconds.labels(platform=platform).observe(seconds)

    def feedback(self, *, platform: str, rating: str) -> None:
        self._feedback.labels(platform=platform, rating=rating).inc()

    # ---- syncs

    def sync_run(self, report: SyncReport) -> None:
        outcome = SYNC_OK if report.ok else SYNC_FAILED
        self._sync_runs.labels(outcome=outcome).inc()
        self._sync_seconds.labels(outcome=outcome).observe(report.duration_s)

    def sync_not_run(self, outcome: str) -> None:
        """A run that produced no report: SYNC_BUSY or SYNC_ERROR."""
        self._sync_runs.labels(outcome=outcome).inc()

    def exposition(self) -> bytes:
        """The text exposition format. Reads the ledger (IndexCollector): call it off the event loop."""
        return generate_latest(self.registry)


class IndexCollector(Collector):
    """What the index holds and when a sync last succeeded, read from the ledger at each scrape.

    Read rather than kept in gauges: another process (`wikibot ingest` against a shared Chroma server, a
    restart) changes the index without this process seeing a sync.
    """

    def __init__(self, ledger: LedgerReader) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily]:
        summary = self._ledger.summary()
        yield GaugeMetricFamily("wikibot_index_pages", "Pages in the active index.", value=summary.pages)
        yield GaugeMetricFamily("wikibot_index_chunks", "Chunks in the active index.", value=summary.chunks)
        last = self._ledger.last_success()
        if last is not None:
            # Absent until a sync succeeds: an alert on its age then reads "absent", not 1970.
            yield GaugeMetricFamily(
                "wikibot_last_good_sync_timestamp_seconds",
                "Unix time when the last successful sync started.",
                value=last.timestamp(),
            )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering must not read the ledger (prometheus-client calls collect() when describe is missing).
        return iter(())


def build_metrics(ledger: LedgerReader) -> Metrics:
    registry = CollectorRegistry()
    registry.register(IndexCollector(ledger))
    return Metrics(registry)
