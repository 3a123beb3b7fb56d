"""The gap report a wiki owner reads: questions the wiki could not answer (grouped), answers people disliked
with their sources, the pages answers cite, per space; from `wikibot report` and GET /admin/report."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot.app
from bot.app import Core
from bot.cli import main
from bot.demo.confluence_fake import ConfluenceFake
from bot.report import report_of
from bot.server import build_web_app
from rag.report import ReportQuery, build_report, group_similar
from rag.types import Feedback, IncomingMessage, LoggedQuestion, Outcome, Rating, Source
from tests.fakes.embedder import HashingEmbedder
from tests.support import PASSWORD, USER, make_core, settings_for

TOKEN = "report-admin-token"
UNANSWERABLE = "How do I frobnicate the zorp reactor?"


@pytest.fixture
def core(fake: ConfluenceFake, tmp_path: Path) -> Iterator[Core]:
    core = make_core(settings_for(fake, tmp_path / "data", admin_token=TOKEN), embedder=HashingEmbedder())
    assert core.sync().ok
    yield core
    core.close()


async def _ask(core: Core, text: str, user: str = "U1") -> str:
    reply = await core.assistant.ask(
        IncomingMessage(
            session_key=f"slack:T1:C1:{user}:{text[:20]}", text=text, user_id=user, platform="slack"
        )
    )
    return reply.answer_id


async def _traffic(core: Core) -> None:
    disliked = await _ask(core, "How do I connect to the VPN?")
    await core.assistant.feedback(
        Feedback(disliked, Rating.DOWN, user_id="U2", platform="slack", comment="the portal moved")
    )
    liked = await _ask(core, "How do I connect to the VPN from home?", user="U3")
    await core.assistant.feedback(Feedback(liked, Rating.UP, user_id="U3", platform="slack"))
    for user, text in (
        ("U4", UNANSWERABLE),
        ("U5", "how do i frobnicate the ZORP reactor"),
        ("U6", UNANSWERABLE),
    ):
        await _ask(core, text, user=user)


async def test_the_report_lists_a_disliked_answer_and_an_unanswered_question(core: Core) -> None:
    await _traffic(core)
    assert core.questions is not None
    report = report_of(core.questions, ReportQuery(days=30), lambda: core.embedder)
    assert report["questions"] == 5 and report["answered"] == 2 and report["not_found"] == 3
    assert report["feedback"] == {"up": 1, "down": 1}
    [gap] = report["unanswered"]
    assert gap["count"] == 3 and gap["askers"] == 3 and gap["question"] == UNANSWERABLE
    assert gap["also_asked_as"] == ["how do i frobnicate the ZORP reactor"]
    [disliked] = report["disliked"]
    assert disliked["question"] == "How do I connect to the VPN?"
    assert disliked["comments"] == ["the portal moved"]
    assert disliked["answer"] and disliked["sources"][0]["url"].startswith("http")
    assert disliked["sources"][0]["version"] >= 1
    top = report["top_pages"][0]
    assert top["citations"] >= 1 and top["space"] == "LUMEN"
    assert report["spaces"][0]["space"] == "LUMEN"
    assert sum(day["questions"] for day in report["by_day"]) == 5
    assert report["by_day"][-1]["day"] == datetime.now(UTC).date().isoformat()


def _logged(
    answer_id: str, space: str, outcome: Outcome, *, down: int = 0, days_ago: int = 0
) -> LoggedQuestion:
    return LoggedQuestion(
        answer_id=answer_id,
        asked_at=datetime.now(UTC) - timedelta(days=days_ago),
        question=f"question {answer_id}",
        outcome=outcome,
        platform="teams",
        sources=(Source(answer_id, f"Page {answer_id}", f"https://w/{answer_id}", version=3, space=space),)
        if outcome is Outcome.ANSWERED
        else (),
        spaces=(space,),
        down=down,
    )


def test_a_space_sees_only_its_own_questions() -> None:
    entries = [
        _logged("a", "IT", Outcome.ANSWERED, down=1),
        _logged("b", "HR", Outcome.ANSWERED),
        _logged("c", "HR", Outcome.NOT_FOUND),
        _logged("d", "IT", Outcome.NOT_FOUND, days_ago=40),
    ]
    hr = build_report(entries, ReportQuery(days=30, space="HR"))
    assert (hr["questions"], hr["answered"], hr["not_found"]) == (2, 1, 1)
    assert [p["page_id"] for p in hr["top_pages"]] == ["b"] and hr["disliked"] == []
    assert "spaces" not in hr
    everything = build_report(entries, ReportQuery(days=60))
    assert [(s["space"], s["questions"]) for s in everything["spaces"]] == [("HR", 2), ("IT", 2)]
    assert everything["disliked"][0]["question"] == "question a"


def test_paraphrases_group_by_meaning_with_an_embedder() -> None:
    vectors = {"vpn at home": [1.0, 0.1], "vpn from home": [0.98, 0.15], "printer jam": [0.0, 1.0]}
    groups = group_similar(
        ["VPN at home?", "printer jam", "VPN from home"], lambda texts: [vectors[t] for t in texts]
    )
    assert groups == [[0, 2], [1]]


async def test_wikibot_report_prints_the_json_contract_and_a_readable_text(
    core: Core, fake: ConfluenceFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _traffic(core)
    monkeypatch.setattr(bot.app, "build_embedder", lambda settings: HashingEmbedder())
    for name, value in {
        "CONFLUENCE_URL": fake.base_url,
        "CONFLUENCE_USERNAME": USER,
        "CONFLUENCE_PASSWORD": PASSWORD,
        "CONFLUENCE_SPACE": "LUMEN",
        "DATA_DIR": str(core.settings.data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert main(["report", "--json", "--since", "7"], stdout=out) == 0
    report = json.loads(out.getvalue())
    assert {"questions", "answered", "not_found", "feedback", "unanswered", "disliked", "top_pages"} <= set(
        report
    )
    assert report["days"] == 7 and report["unanswered"][0]["count"] == 3
    text = io.StringIO()
    assert main(["report", "--space", "LUMEN"], stdout=text) == 0
    assert "Not found in the wiki:" in text.getvalue() and "3× How do I frobnicate" in text.getvalue()
    assert "Disliked answers:" in text.getvalue() and "the portal moved" in text.getvalue()


def test_wikibot_report_with_the_log_off_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUESTION_LOG_ENABLED", "false")
    assert main(["report"], stdout=io.StringIO()) == 2
    assert "QUESTION_LOG_ENABLED=false" in capsys.readouterr().err


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(build_web_app(core, with_scheduler=False))) as client:
        yield client


async def test_admin_report_needs_the_admin_token(core: Core, client: TestClient[object, object]) -> None:
    await _traffic(core)
    assert (await client.get("/admin/report")).status == 401
    assert (await client.get("/admin/report", headers={"Authorization": "Bearer wrong"})).status == 401
    response = await client.get("/admin/report?since=7", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    body = await response.json()
    assert (
        body["days"] == 7
        and body["not_found"] == 3
        and body["disliked"][0]["comments"] == ["the portal moved"]
    )
    bad = await client.get("/admin/report?since=-1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status == 400 and "since" in (await bad.json())["error"]
