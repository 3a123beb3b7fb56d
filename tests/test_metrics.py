"""`GET /metrics` (issue 15) after real syncs and questions, read back with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Core
from bot.demo.confluence_fake import ConfluenceFake
from bot.server import RUNNER, build_web_app
from rag.llm import ChatModelError
from rag.types import Feedback, IncomingMessage, Rating
from tests.fakes.embedder import HashingEmbedder
from tests.support import make_core, settings_for

QUESTION = "How do I connect to the VPN from home?"


class DownModel:
    """A chat model whose provider is down, as rag.llm reports it: every answer falls back to passages."""

    def warm(self) -> None:
        pass

    async def complete(self, *, messages: Sequence[dict[str, str]]) -> str:
        raise ChatModelError("the model provider answered 503")


@pytest.fixture
def core(fake: ConfluenceFake, tmp_path: Path) -> Iterator[Core]:
    # No reranker: its model costs seconds to load and changes no count here.
    settings = settings_for(fake, tmp_path / "data", retrieval_rerank=False)
    core = make_core(settings, embedder=HashingEmbedder(), chat_model=DownModel())
    yield core
    core.close()


@pytest.fixture
def app(core: Core) -> web.Application:
    return build_web_app(core, with_scheduler=False)


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(app)) as client:
        yield client


async def _scrape(
    client: TestClient[object, object],
) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = await response.text()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_count_questions_syncs_and_the_index(
    core: Core, app: web.Application, client: TestClient[object, object]
) -> None:
    _, before = await _scrape(client)
    assert _value(before, "wikibot_index_pages") == 0
    assert _value(before, "wikibot_last_good_sync_timestamp_seconds") is None, "absent until a sync succeeds"
    assert _value(before, "wikibot_sync_runs_total", outcome="failed") == 0, "series exist from the start"

    report = await app[RUNNER].run()
    assert report is not None and report.ok
    answered = await core.assistant.ask(IncomingMessage(session_key="s1", text=QUESTION, platform="slack"))
    helped = await core.assistant.ask(IncomingMessage(session_key="s2", text="help", platform="teams"))
    assert answered.mode == "extractive" and answered.sources, "the model is down: passages answer"
    assert helped.mode == "refusal"

    text, samples = await _scrape(client)
    assert _value(samples, "wikibot_questions_total", platform="slack", outcome="extractive") == 1
    assert _value(samples, "wikibot_questions_total", platform="teams", outcome="notice") == 1
    assert _value(samples, "wikibot_answer_seconds_count", outcome="extractive") == 1
    assert _value(samples, "wikibot_answer_seconds_count", outcome="notice") == 1
    assert _value(samples, "wikibot_answer_seconds_count", outcome="not_found") == 0
    assert _value(samples, "wikibot_retrieval_seconds_count") == 1, "help searches nothing"
    assert _value(samples, "wikibot_model_errors_total", stage="answer") == 1
    assert _value(samples, "wikibot_model_errors_total", stage="condense") == 0
    assert _value(samples, "wikibot_model_fallbacks_total") == 1
    assert _value(samples, "wikibot_sync_runs_total", outcome="ok") == 1
    assert _value(samples, "wikibot_sync_duration_seconds_count", outcome="ok") == 1
    summary = core.kb.summary()
    assert summary.pages > 20
    assert _value(samples, "wikibot_index_pages") == summary.pages
    assert _value(samples, "wikibot_index_chunks") == summary.chunks
    last = core.kb.last_success()
    assert last is not None
    assert _value(samples, "wikibot_last_good_sync_timestamp_seconds") == pytest.approx(last.timestamp())
    # Public: counts only; nothing of a question, a page or an answer.
    assert "VPN" not in text and "LUMEN" not in text and QUESTION not in text


async def test_a_failed_sync_is_counted_and_leaves_the_last_good_time(
    core: Core, fake: ConfluenceFake, app: web.Application, client: TestClient[object, object]
) -> None:
    assert (await app[RUNNER].run()) is not None
    last = core.kb.last_success()
    assert last is not None
    fake.fail(401, times=1000)
    failed = await app[RUNNER].run()
    assert failed is not None and not failed.ok
    _, samples = await _scrape(client)
    assert _value(samples, "wikibot_sync_runs_total", outcome="ok") == 1
    assert _value(samples, "wikibot_sync_runs_total", outcome="failed") == 1
    assert _value(samples, "wikibot_sync_duration_seconds_count", outcome="failed") == 1
    assert _value(samples, "wikibot_last_good_sync_timestamp_seconds") == pytest.approx(last.timestamp())


async def test_two_cores_in_one_process_count_apart(fake: ConfluenceFake, tmp_path: Path, core: Core) -> None:
    # Each core has its own registry: no "Duplicated timeseries" from prometheus-client's global one, and
    # no count leaking from one to the other.
    other = make_core(
        settings_for(fake, tmp_path / "other", retrieval_rerank=False), embedder=HashingEmbedder()
    )
    try:
        await other.assistant.ask(IncomingMessage(session_key="s", text="help", platform="teams"))
        mine = core.metrics.exposition().decode()
        theirs = other.metrics.exposition().decode()
    finally:
        other.close()
    assert 'wikibot_questions_total{outcome="notice",platform="teams"} 1.0' in theirs
    assert "wikibot_questions_total{" not in mine


class StreamingModel:
    """A chat model that writes its answer in pieces, citing the first passage."""

    def warm(self) -> None:
        pass

    async def complete(self, *, messages: Sequence[dict[str, str]]) -> str:
        return "Use the VPN client [1] from home."

    async def stream(self, *, messages: Sequence[dict[str, str]]) -> AsyncIterator[str]:
        for piece in ("Use ", "the ", "VPN ", "client ", "[1] ", "from ", "home."):
            yield piece


class Shown:
    def __init__(self) -> None:
        self.drafts: list[str] = []

    async def working(self) -> None:
        pass

    async def draft(self, text: str) -> None:
        self.drafts.append(text)


async def test_streamed_answers_time_their_first_text_and_ratings_are_counted(
    fake: ConfluenceFake, tmp_path: Path
) -> None:
    settings = settings_for(fake, tmp_path / "data", retrieval_rerank=False)
    core = make_core(settings, embedder=HashingEmbedder(), chat_model=StreamingModel())
    try:
        assert core.sync().ok
        shown = Shown()
        reply = await core.assistant.ask(
            IncomingMessage(session_key="s1", text=QUESTION, platform="slack"), progress=shown
        )
        assert shown.drafts and reply.answer_id
        await core.assistant.feedback(Feedback(reply.answer_id, Rating.DOWN, user_id="U1", platform="slack"))
        await core.assistant.feedback(Feedback("unknown", Rating.UP, user_id="U1", platform="slack"))
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(core.metrics.exposition().decode())
            for s in family.samples
        }
    finally:
        core.close()
    assert _value(samples, "wikibot_first_text_seconds_count", platform="slack") == 1
    assert _value(samples, "wikibot_feedback_total", platform="slack", rating="down") == 1
    assert _value(samples, "wikibot_feedback_total", platform="slack", rating="up") is None
