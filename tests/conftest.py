"""Hermetic tests: every setting comes from the test, never from the developer's environment or .env."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core
from bot.config import Settings
from bot.demo.confluence_fake import ConfluenceFake
from bot.runtime import SafeFormatter, start_process
from tests.support import PASSWORD, USER

pytest_plugins = [
    "tests.fakes.llm_server",
    "tests.fakes.redis_server",
    "tests.fakes.chroma_server",
    "tests.e2e_core",
    "tests.teams.identity",  # one identity provider per process: the Bot Framework SDK caches its key
]

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

_SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
}


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    # A developer's .env in the repo must not leak into tests: settings read .env from the working dir.
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def fake() -> Iterator[ConfluenceFake]:
    """The loopback Confluence with the sample wiki, for tests that talk to it as the bot's account."""
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        yield fake


@pytest.fixture
def core(fake: ConfluenceFake, tmp_path: Path) -> Iterator[Core]:
    """A core on that Confluence (or a module's own `fake`), embedded Chroma, the fast test embedder."""
    from tests.fakes.embedder import HashingEmbedder
    from tests.support import make_core, settings_for

    core = make_core(settings_for(fake, tmp_path / "data"), embedder=HashingEmbedder())
    yield core
    core.close()


@pytest.fixture
def hashing_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and the demo build their core from settings; here with the fast test embedder."""
    import bot.app
    import bot.demo.run
    from tests.fakes.embedder import HashingEmbedder

    real = bot.app.build_core

    def build(settings: Settings, **ports: Any) -> bot.app.Core:
        return real(settings, embedder=HashingEmbedder(), **ports)

    monkeypatch.setattr(bot.app, "build_core", build)
    monkeypatch.setattr(bot.demo.run, "build_core", build)


@pytest.fixture
def process_log() -> Iterator[Callable[..., io.StringIO]]:
    """The process's own logging as `wikibot` sets it up, written to a buffer; undone afterwards."""
    root = logging.getLogger()
    level = root.level

    def start(**options: Any) -> io.StringIO:
        buffer = io.StringIO()
        start_process(stream=buffer, **options)
        return buffer

    yield start
    for handler in [h for h in root.handlers if isinstance(h.formatter, SafeFormatter)]:
        root.removeHandler(handler)
    root.setLevel(level)
