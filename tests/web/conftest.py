"""The web channel on the real server and the real core: the loopback Confluence with the sample wiki (and the
printer page), the loopback model through LiteLLM's HTTP path, the fast hashing embedder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Core
from bot.server import build_web_app
from tests.e2e_core import real_core
from tests.fakes.llm_server import FakeLLM

ALICE = "alice-token-4f1c9e2b7a"
BOB = "bob-token-8d3a6c1e5f"
UNNAMED = "unnamed-token-2b9e7c4d1a"
ADMIN = "admin-token-6e2d9a4c8b"
# A burst no test reaches unless it means to (the rate limit has its own test).
WEB_SETTINGS: dict[str, Any] = {
    "web_tokens": f"alice:{ALICE},bob:{BOB},{UNNAMED}",
    "admin_token": ADMIN,
    "web_rate_limit_burst": 200,
}

Client = TestClient[Any, Any]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def web_settings() -> dict[str, Any]:
    """What the module's core is configured with; a module overrides this fixture to change it."""
    return dict(WEB_SETTINGS)


@pytest.fixture
def web_core(tmp_path: Path, e2e_llm: FakeLLM, web_settings: dict[str, Any]) -> Iterator[Core]:
    with real_core(tmp_path / "data", e2e_llm, **web_settings) as core:
        yield core


@contextlib.asynccontextmanager
async def client_of(core: Core) -> AsyncIterator[Client]:
    """The real server of this core (its web app, without the scheduler) on a loopback port."""
    async with TestClient(TestServer(build_web_app(core, with_scheduler=False))) as client:
        yield client


@contextlib.asynccontextmanager
async def serving(data_dir: Path, llm: FakeLLM, **settings: Any) -> AsyncIterator[tuple[Core, Client]]:
    """A core with these settings (the module's own web settings not included) and its server."""
    with real_core(data_dir, llm, **settings) as core:
        async with client_of(core) as client:
            yield core, client


@pytest.fixture
async def web(web_core: Core) -> AsyncIterator[Client]:
    async with client_of(web_core) as client:
        yield client
