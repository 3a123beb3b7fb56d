"""The web channel's JSON API over real HTTP on the real server and core: each endpoint, and each refusal."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import Core
from bot.server import RUNNER
from tests.fakes.llm_server import FakeLLM, content_text
from tests.web.conftest import ADMIN, ALICE, BOB, UNNAMED, Client, bearer

QUESTION = "how do I add the quillprint7 printer?"


async def ask(web: Client, token: str | None, session_id: str, query: str) -> tuple[int, dict[str, Any]]:
    headers = bearer(token) if token else {}
    response = await web.post("/query", json={"session_id": session_id, "query": query}, headers=headers)
    return response.status, await response.json()


async def stream(web: Client, token: str, session_id: str, query: str) -> list[dict[str, Any]]:
    response = await web.post(
        "/query/stream", json={"session_id": session_id, "query": query}, headers=bearer(token)
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    events = []
    async for line in response.content:
        if line.strip():
            events.append(json.loads(line))
    return events


async def test_a_question_without_credentials_is_refused(web: Client) -> None:
    status, body = await ask(web, None, "s1", QUESTION)
    assert status == 401 and "Bearer" in body["error"]


async def test_a_bad_token_is_refused(web: Client) -> None:
    for authorization in [
        "Bearer not-a-token-we-know",
        f"Bearer {ALICE}x",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer ",
        ALICE,
    ]:
        response = await web.post(
            "/query", json={"session_id": "s1", "query": QUESTION}, headers={"Authorization": authorization}
        )
        assert response.status == 401, authorization
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        assert set(body) == {"error"} and ALICE not in body["error"]


async def test_answers_cite_their_sources_and_the_history_grows_until_a_reset(
    web: Client, web_core: Core
) -> None:
    status, first = await ask(web, ALICE, "conv-1", QUESTION)
    assert status == 200, first
    assert set(first) == {"session_id", "answer", "sources", "history"}
    assert first["session_id"] == "conv-1" and "[1]" in first["answer"]
    wiki = web_core.settings.confluence_url.rstrip("/")
    assert first["sources"][0]["title"] == "Printer setup"
    assert first["sources"][0]["url"].startswith(wiki + "/") and first["sources"][0]["page_id"] == "9500"
    assert [turn["role"] for turn in first["history"]] == ["user", "assistant"]
    assert first["history"] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first["answer"]},
    ]

    _, second = await ask(web, ALICE, "conv-1", "and on Linux?")
    assert len(second["history"]) == 4 and second["history"][2]["content"] == "and on Linux?"

    reset = await web.post("/reset-session/conv-1", headers=bearer(ALICE))
    assert reset.status == 200 and await reset.json() == {"status": "reset", "session_id": "conv-1"}
    _, third = await ask(web, ALICE, "conv-1", QUESTION)
    assert len(third["history"]) == 2


async def test_another_user_can_neither_read_nor_reset_a_session(web: Client, e2e_llm: FakeLLM) -> None:
    await ask(web, ALICE, "shared-id", QUESTION)
    # Bob names Alice's session id: he gets a conversation of his own, which knows nothing of hers.
    e2e_llm.requests.clear()
    _, bobs = await ask(web, BOB, "shared-id", "and on Linux?")
    assert [t["content"] for t in bobs["history"] if t["role"] == "user"] == ["and on Linux?"]
    assert len(bobs["history"]) == 2
    condensed = [r for r in e2e_llm.requests if "standalone" in content_text(r["messages"][0]).lower()]
    assert condensed == [], "Bob's follow-up was read with Alice's history"
    # Nor can he reset hers.
    assert (await web.post("/reset-session/shared-id", headers=bearer(BOB))).status == 200
    e2e_llm.requests.clear()
    _, alices = await ask(web, ALICE, "shared-id", "and on Linux?")
    assert len(alices["history"]) == 4
    assert [r for r in e2e_llm.requests if "standalone" in content_text(r["messages"][0]).lower()], (
        "her follow-up is read with her history"
    )


async def test_an_unnamed_token_has_sessions_of_its_own(web: Client) -> None:
    await ask(web, ALICE, "conv", QUESTION)
    _, body = await ask(web, UNNAMED, "conv", QUESTION)
    assert len(body["history"]) == 2
    me = await (await web.get("/me", headers=bearer(UNNAMED))).json()
    assert me["user"].startswith("token-") and UNNAMED not in me["user"] and me["admin"] is False


async def test_ingest_is_for_the_admin_token_only(web: Client, web_core: Core) -> None:
    assert (await web.post("/ingest")).status == 401
    refused = await web.post("/ingest", headers=bearer(ALICE))
    assert refused.status == 401 and "admin" in (await refused.json())["error"]
    started = await web.post("/ingest", headers=bearer(ADMIN))
    busy = await web.post("/ingest", headers=bearer(ADMIN))
    assert started.status == 202 and (await started.json())["started"] is True
    assert busy.status == 409 and (await busy.json())["started"] is False
    runner = web.server.app[RUNNER]
    async with asyncio.timeout(30):
        while runner.running:
            await asyncio.sleep(0.05)
    assert len(web_core.kb.recent_syncs(10)) == 2  # the fixture's sync, then this one
    assert web_core.kb.recent_syncs(1)[0]["ok"] is True


async def test_the_admin_status_shows_the_index_and_its_syncs_to_the_admin_only(
    web: Client, web_core: Core
) -> None:
    assert (await web.get("/admin/status", headers=bearer(ALICE))).status == 401
    response = await web.get("/admin/status", headers=bearer(ADMIN))
    info = await response.json()
    assert response.status == 200
    assert info["pages"] > 20 and info["chunks"] >= info["pages"] and info["spaces"] == ["LUMEN"]
    assert info["embedding_model"] == web_core.kb.summary().fingerprint
    [last] = info["recent_syncs"]
    assert last["ok"] is True and last["duration_s"] >= 0 and last["errors"] == []
    assert info["sync_running"] is False


async def test_a_streamed_answer_arrives_in_drafts_then_whole(web: Client, e2e_llm: FakeLLM) -> None:
    e2e_llm.word_interval_s = 0.03
    events = await stream(web, ALICE, "streamed", QUESTION)
    drafts = [e for e in events if e["event"] == "draft"]
    [answer] = [e for e in events if e["event"] == "answer"]
    assert events[-1] is answer and len(drafts) >= 2, events
    assert all("<" not in d["html"] or d["html"].startswith("<p>") for d in drafts)
    assert answer["kind"] == "answer" and answer["answer_id"]
    assert len(answer["history"]) == 2 and answer["sources"][0]["title"] == "Printer setup"
    # The citation links the source, and so does the Sources list; nothing else links anywhere.
    assert answer["html"].count(f'href="{answer["links"][0]}"') == 2
    assert answer["links"] == [answer["sources"][0]["url"]]


async def test_a_rating_is_recorded_for_the_gap_report(web: Client, web_core: Core) -> None:
    [answer] = [e for e in await stream(web, ALICE, "rated", QUESTION) if e["event"] == "answer"]
    body = {"answer_id": answer["answer_id"], "rating": "down"}
    response = await web.post("/feedback", json=body, headers=bearer(ALICE))
    assert response.status == 200 and await response.json() == {"status": "recorded"}
    assert web_core.questions is not None
    [entry] = web_core.questions.entries(since=datetime.now(UTC) - timedelta(hours=1))
    assert entry.down == 1 and entry.platform == "web"
    unknown = await web.post("/feedback", json={**body, "answer_id": "nope"}, headers=bearer(ALICE))
    assert unknown.status == 404
    bad = await web.post("/feedback", json={**body, "rating": "meh"}, headers=bearer(ALICE))
    assert bad.status == 400


BAD_REQUESTS: list[tuple[bytes, str, int]] = [
    (b"not json", "application/json", 400),
    (b'{"session_id": "s", "query": "q"}', "text/plain", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"session_id": "s"}', "application/json", 400),
    (b'{"session_id": "s", "query": "   "}', "application/json", 400),
    (b'{"session_id": "s", "query": 42}', "application/json", 400),
    (b'{"session_id": "../etc", "query": "q"}', "application/json", 400),
    (b'{"session_id": "a:b", "query": "q"}', "application/json", 400),
    (json.dumps({"session_id": "x" * 65, "query": "q"}).encode(), "application/json", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # deeper than the JSON parser recurses
    (b"\xff\xfe\x00garbage", "application/json", 400),
    (json.dumps({"session_id": "s", "query": "q" * 100_000}).encode(), "application/json", 413),
]


async def test_bad_requests_get_a_short_json_error_and_the_server_keeps_answering(web: Client) -> None:
    for body, content_type, status in BAD_REQUESTS:
        for path in ("/query", "/query/stream"):
            headers = {**bearer(ALICE), "Content-Type": content_type}
            response = await web.post(path, data=body, headers=headers)
            assert response.status == status, (path, body[:60])
            error = await response.json()
            assert set(error) == {"error"} and len(error["error"]) < 120, error
    ok, _ = await ask(web, ALICE, "after", QUESTION)
    assert ok == 200


async def test_a_question_over_the_limit_is_answered_by_the_core_not_refused(web: Client) -> None:
    status, body = await ask(web, ALICE, "long", "why " * 600)
    assert status == 200 and "too long" in body["answer"] and body["history"] == []


async def test_a_reset_of_a_bad_session_id_is_refused(web: Client) -> None:
    assert (await web.post("/reset-session/" + "x" * 65, headers=bearer(ALICE))).status == 400
    assert (await web.post("/reset-session/conv", headers=bearer("wrong-token-123456"))).status == 401


async def test_a_cross_site_request_is_refused(web: Client) -> None:
    headers = {**bearer(ALICE), "Sec-Fetch-Site": "cross-site"}
    response = await web.post("/query", json={"session_id": "s", "query": QUESTION}, headers=headers)
    assert response.status == 401 and "cross-site" in (await response.json())["error"]


async def test_a_token_in_the_url_is_refused(web: Client) -> None:
    response = await web.post(f"/query?token={ALICE}", json={"session_id": "s", "query": QUESTION})
    assert response.status == 400


async def test_a_model_failure_is_a_short_503_not_a_traceback(web: Client, e2e_llm: FakeLLM) -> None:
    e2e_llm.set_responder(lambda _: (_ for _ in ()).throw(RuntimeError("boom")))  # the model answers 500
    status, body = await ask(web, ALICE, "failing", QUESTION)
    # The core falls back to the passages when the model fails: still an answer with its sources.
    assert status == 200 and body["sources"] and "boom" not in body["answer"]


async def test_a_reader_who_leaves_mid_answer_still_gets_the_turn_recorded(
    web: Client, web_core: Core, e2e_llm: FakeLLM
) -> None:
    e2e_llm.word_interval_s = 0.1
    response = await web.post(
        "/query/stream", json={"session_id": "left", "query": QUESTION}, headers=bearer(ALICE)
    )
    first = json.loads(await response.content.readline())
    assert first["event"] == "draft"
    response.close()  # the tab was closed while the model was still writing
    async with asyncio.timeout(30):
        while len(await web_core.assistant.history("web:token:alice:left")) < 2:
            await asyncio.sleep(0.05)
    e2e_llm.word_interval_s = 0.0
    _, follow_up = await ask(web, ALICE, "left", "and on Linux?")
    assert len(follow_up["history"]) == 4
