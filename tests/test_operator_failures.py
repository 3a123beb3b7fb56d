"""What an operator sees when something around WikiBot is wrong: one line, a bounded time, a known exit code.

Every test runs the real `wikibot` in a fresh process with a bare environment, as an operator's shell or
service manager would, and none loads a model.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.server import startup_line, startup_warnings
from rag.confluence import worst_case_s

ROOT = Path(__file__).resolve().parents[1]


def _wikibot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    from tests.test_cli import _wikibot as wikibot  # the CLI in a fresh process with a bare environment

    return wikibot(cwd, *args, **env)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def _ingest(tmp_path: Path, url: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = _wikibot(
        tmp_path,
        "ingest",
        DATA_DIR=str(tmp_path / "data"),
        CONFLUENCE_URL=url,
        CONFLUENCE_USERNAME="bot@example.com",
        CONFLUENCE_PASSWORD="an-api-token",
        CONFLUENCE_SPACE="ENG",
        **env,
    )
    return proc, time.monotonic() - started


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_ingest_against_a_closed_port_fails_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    proc, took = _ingest(tmp_path, url, CONFLUENCE_MAX_RETRIES="2", CONFLUENCE_BACKOFF_S="0.2")
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert (
        line
        == f"wikibot: sync failed: listing pages: cannot reach CONFLUENCE_URL {url}: connection refused (3 attempts)"
    )
    assert took < 30


def test_ingest_against_a_silent_server_gives_up_after_the_retries(
    tmp_path: Path, silent_server: int
) -> None:
    url = f"http://127.0.0.1:{silent_server}/wiki"
    proc, took = _ingest(
        tmp_path, url, CONFLUENCE_TIMEOUT_S="1", CONFLUENCE_MAX_RETRIES="1", CONFLUENCE_BACKOFF_S="0"
    )
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert line.endswith(
        f"cannot reach CONFLUENCE_URL {url}: no answer within CONFLUENCE_TIMEOUT_S (2 attempts)"
    )
    assert 2 <= took < 30  # two attempts of one second each, then the start-up of the process


def test_the_stated_bound_with_the_defaults() -> None:
    # The README states it: 5 attempts of 30 s, waits of 0, 2, 4 and 8 s between them.
    assert worst_case_s(retries=4, backoff_s=1.0, timeout_s=30) == 164


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    base = {"DATA_DIR": str(tmp_path / "data"), "LITELLM_MODEL": "", **env}
    proc = _wikibot(tmp_path, "serve", "--host", "127.0.0.1", *args, **base)
    return proc, time.monotonic() - started


def test_serve_on_a_port_in_use_stops_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc, took = _serve(tmp_path, "--port", str(port))
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert line.startswith(f"wikibot: --host/--port: cannot listen on 127.0.0.1:{port}: ")
    assert took < 30


def test_serve_with_a_data_dir_that_is_a_file_stops_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    proc, took = _serve(tmp_path, "--port", str(_closed_port()))
    assert proc.returncode == 2
    assert _one_line(proc.stderr).startswith(f"wikibot: DATA_DIR: cannot use {tmp_path / 'data'}")
    assert took < 30


def test_serve_with_an_unusable_embedding_model_never_listens(tmp_path: Path) -> None:
    proc, took = _serve(tmp_path, "--port", str(_closed_port()), EMBED_MODEL="/nonexistent/model")
    assert proc.returncode == 2
    assert _one_line(proc.stderr).startswith("wikibot: EMBED_MODEL")
    assert took < 60


def test_serve_with_a_model_but_not_its_key_stops_in_one_line(tmp_path: Path) -> None:
    proc, took = _serve(tmp_path, "--port", str(_closed_port()), LITELLM_MODEL="openai/gpt-4o-mini")
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert line.startswith("wikibot: LITELLM_MODEL") and "OPENAI_API_KEY" in line
    assert took < 30


def test_the_startup_line_and_warnings_say_what_is_served() -> None:
    bare = Settings(_env_file=None)  # type: ignore[call-arg]
    admin = Settings(
        _env_file=None,  # type: ignore[call-arg]
        admin_token=SecretStr("a-long-admin-token"),
        confluence_url="https://wiki.example.com",
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert startup_line(bare, sock) == (
            f"listening on http://127.0.0.1:{port}: Slack off, Teams off, /healthz, admin off"
        )
        assert startup_line(admin, sock).endswith(": Slack off, Teams off, /healthz, admin /admin/sync on")
    # Without ADMIN_TOKEN, /admin/sync answers 404: the warning must not claim it is served.
    assert startup_warnings(bare) == [
        "neither Slack nor Teams is configured: serving only /healthz (admin is off too: ADMIN_TOKEN is unset)",
        "CONFLUENCE_URL is not set: the scheduled sync is off",
    ]
    assert startup_warnings(admin) == [
        "neither Slack nor Teams is configured: serving only /healthz and /admin/sync"
    ]


def test_an_empty_index_is_answered_at_once_without_a_model(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    started = time.monotonic()
    ask = _wikibot(tmp_path, "ask", "anything?", DATA_DIR=str(data))
    search = _wikibot(tmp_path, "search", "anything", "--json", DATA_DIR=str(data))
    # Not a failed sync (exit 1): an answer that says what to do.
    assert ask.returncode == 0 and "wikibot ingest" in ask.stdout and ask.stderr == ""
    assert search.returncode == 0 and search.stdout == "[]\n" and search.stderr == ""
    assert not (data / "models").exists()  # no model was loaded, let alone exported
    assert time.monotonic() - started < 40
