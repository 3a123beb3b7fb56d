"""Who may use the web channel: a trusted proxy's user header, anonymous access on loopback, the rate limit,
and the channel off when nothing lets anyone in; over real HTTP on the real server and core."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.web.routes import ANONYMOUS_WARNING, OFF_LINE, add_web_routes
from bot.config import SettingsError, load_settings
from bot.platforms import web_config
from bot.server import RUNNER
from rag.shared_state import RedisChatState
from tests.e2e_core import real_core
from tests.fakes.llm_server import FakeLLM
from tests.fakes.redis_server import unique_prefix
from tests.web.conftest import ADMIN, ALICE, bearer, serving

QUESTION = {"session_id": "s1", "query": "how do I add the quillprint7 printer?"}
PROXY = {"web_trusted_proxies": "127.0.0.0/8", "web_admin_group": "wiki-admins"}


async def test_a_trusted_proxy_names_the_user_and_its_admin_group_opens_the_admin_endpoints(
    tmp_path: Path, e2e_llm: FakeLLM
) -> None:
    async with serving(tmp_path, e2e_llm, **PROXY) as (_core, web):
        carol = {"X-Forwarded-User": "carol@example.com", "X-Forwarded-Groups": "staff, readers"}
        answered = await web.post("/query", json=QUESTION, headers=carol)
        assert answered.status == 200 and (await answered.json())["sources"]
        assert await (await web.get("/me", headers=carol)).json() == {
            "user": "carol@example.com",
            "admin": False,
        }
        assert (await web.get("/admin/status", headers=carol)).status == 401
        assert (await web.post("/ingest", headers=carol)).status == 401

        dave = {"X-Forwarded-User": "dave", "X-Forwarded-Groups": "staff,wiki-admins"}
        assert (await web.get("/admin/status", headers=dave)).status == 200
        # No ADMIN_TOKEN is set: the proxy's admin group is the only admin, on the server's own endpoint too.
        assert (await web.post("/admin/sync", headers=dave)).status == 202
        runner = web.server.app[RUNNER]
        async with asyncio.timeout(30):
            while runner.running:
                await asyncio.sleep(0.05)
        # Carol's session is hers: the same id from Dave starts his own.
        history = (await (await web.post("/query", json=QUESTION, headers=dave)).json())["history"]
        assert len(history) == 2


async def test_the_user_header_from_an_untrusted_peer_is_refused(tmp_path: Path, e2e_llm: FakeLLM) -> None:
    settings = {"web_trusted_proxies": "10.0.0.0/8", "web_tokens": f"alice:{ALICE}"}
    async with serving(tmp_path, e2e_llm, **settings) as (_core, web):
        spoofed = {"X-Forwarded-User": "admin", "X-Forwarded-Groups": "wiki-admins"}
        response = await web.post("/query", json=QUESTION, headers=spoofed)
        body = await response.json()
        assert response.status == 401 and "trusted proxy" in body["error"]
        # Not even beside a valid token: the header says someone else is asking.
        both = await web.post("/query", json=QUESTION, headers={**spoofed, **bearer(ALICE)})
        assert both.status == 401
        assert (await web.post("/query", json=QUESTION, headers=bearer(ALICE))).status == 200


async def test_renamed_proxy_headers_are_the_only_ones_read(tmp_path: Path, e2e_llm: FakeLLM) -> None:
    settings = {
        **PROXY,
        "web_user_header": "X-Auth-Request-User",
        "web_groups_header": "X-Auth-Request-Groups",
    }
    async with serving(tmp_path, e2e_llm, **settings) as (_core, web):
        assert (await web.post("/query", json=QUESTION, headers={"X-Forwarded-User": "erin"})).status == 401
        named = {"X-Auth-Request-User": "erin", "X-Auth-Request-Groups": "wiki-admins"}
        assert await (await web.get("/me", headers=named)).json() == {"user": "erin", "admin": True}


async def test_anonymous_access_answers_loopback_callers_but_not_a_wrong_token(
    tmp_path: Path, e2e_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.web")
    async with serving(tmp_path, e2e_llm, web_allow_anonymous=True) as (_core, web):
        assert ANONYMOUS_WARNING in caplog.text
        response = await web.post("/query", json=QUESTION)
        assert response.status == 200 and (await response.json())["sources"]
        assert (await web.post("/query", json=QUESTION, headers=bearer("a-mistyped-token-123"))).status == 401
        assert (await web.post("/ingest")).status == 401, "anonymous is never an admin"


def test_anonymous_access_needs_a_loopback_bind() -> None:
    settings = load_settings(_env_file=None, web_allow_anonymous=True)
    for host in ("127.0.0.1", "::1", "localhost", "[::1]"):
        settings.require_web(host=host)
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        with pytest.raises(SettingsError, match=r"^WEB_ALLOW_ANONYMOUS=true .* loopback --host"):
            settings.require_web(host=host)


async def test_each_user_is_rate_limited_with_retry_after(tmp_path: Path, e2e_llm: FakeLLM) -> None:
    settings = {"web_tokens": f"alice:{ALICE},bob:bob-token-8d3a6c1e5f", "web_rate_limit_burst": 2}
    async with serving(tmp_path, e2e_llm, web_rate_limit_per_minute=6, **settings) as (_core, web):
        for _ in range(2):
            assert (await web.post("/query", json=QUESTION, headers=bearer(ALICE))).status == 200
        limited = await web.post("/query", json=QUESTION, headers=bearer(ALICE))
        assert limited.status == 429
        # One request comes back every 10 s at 6 a minute, less the time the two answers took.
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        assert "too many" in (await limited.json())["error"]
        # Someone else is not held up by Alice.
        assert (await web.post("/query", json=QUESTION, headers=bearer("bob-token-8d3a6c1e5f"))).status == 200


async def test_without_tokens_proxies_or_anonymous_the_channel_is_not_there(
    tmp_path: Path, e2e_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.web")
    async with serving(tmp_path, e2e_llm, admin_token=ADMIN) as (_core, web):
        assert [r.getMessage() for r in caplog.records if r.name.startswith("adapters.web")] == [OFF_LINE]
        for method, path in [("GET", "/"), ("GET", "/admin"), ("POST", "/query"), ("POST", "/ingest")]:
            assert (await web.request(method, path, headers=bearer(ADMIN))).status in (404, 405), path
        # The server's own admin endpoints stay, for the admin token.
        assert (await web.get("/admin/status", headers=bearer(ADMIN))).status == 200


async def test_replicas_sharing_redis_count_a_users_requests_together(
    tmp_path: Path, e2e_llm: FakeLLM, redis_url: str
) -> None:
    # Two replicas behind a round-robin balancer: without a shared bucket, Alice would get twice her limit.
    state = RedisChatState(redis_url, key_prefix=unique_prefix())
    settings = {"web_tokens": f"alice:{ALICE}", "web_rate_limit_burst": 2, "web_rate_limit_per_minute": 6}
    with real_core(tmp_path / "data", e2e_llm, **settings) as core:
        replicas = []
        for _ in range(2):
            app = web.Application()
            add_web_routes(
                app,
                config=web_config(core.settings),
                assistant=core.assistant,
                start_sync=_no_sync,
                throttles=state,
            )
            replicas.append(TestClient(TestServer(app)))
        async with replicas[0] as first, replicas[1] as second:
            assert (await first.post("/query", json=QUESTION, headers=bearer(ALICE))).status == 200
            assert (await second.post("/query", json=QUESTION, headers=bearer(ALICE))).status == 200
            limited = await first.post("/query", json=QUESTION, headers=bearer(ALICE))
            assert limited.status == 429 and 1 <= int(limited.headers["Retry-After"]) <= 10
    await state.aclose()


async def _no_sync(request: web.Request) -> web.StreamResponse:
    return web.json_response({"started": False}, status=409)


async def test_a_shared_bucket_refills_at_its_rate(redis_url: str) -> None:
    state = RedisChatState(redis_url, key_prefix=unique_prefix())
    try:
        throttle = state.throttle("test", per_minute=600, burst=2)  # one back every 0.1 s
        assert [await throttle.take("alice") for _ in range(2)] == [0.0, 0.0]
        wait = await throttle.take("alice")
        assert 0.0 < wait <= 0.1
        assert await throttle.take("bob") == 0.0  # everyone has their own bucket
        await asyncio.sleep(0.15)
        assert await throttle.take("alice") == 0.0
    finally:
        await state.aclose()
