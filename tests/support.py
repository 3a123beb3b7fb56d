"""Builders shared by tests: a core over the loopback Confluence fake with port fakes where useful."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import Core, build_core
from bot.config import Settings, load_settings
from bot.demo.confluence_fake import ConfluenceFake
from rag.ports import ChatModel, Embedder

USER, PASSWORD = "bot@example.com", "secret"


def settings_for(fake: ConfluenceFake | None, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "confluence_space": "LUMEN",
        "confluence_max_retries": 3,
        "confluence_backoff_s": 0.05,
    }
    if fake is not None:
        values.update(confluence_url=fake.base_url, confluence_username=USER, confluence_password=PASSWORD)
    values.update(overrides)
    return load_settings(**values)


def make_core(
    settings: Settings, *, embedder: Embedder | None = None, chat_model: ChatModel | None = None
) -> Core:
    return build_core(settings, embedder=embedder, chat_model=chat_model)
