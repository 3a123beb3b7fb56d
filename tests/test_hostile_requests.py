"""Hostile requests against the web server and hostile values in logs: refused, escaped, redacted."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import yarl
from aiohttp import web

from bot.app import Core
from bot.cli import main
from bot.demo.confluence_fake import ConfluenceFake
from bot.server import AccessLogger, build_web_app
from tests.fakes.embedder import HashingEmbedder
from tests.support import PASSWORD, USER, make_core, settings_for

TOKEN = "s3cret-admin-token-4242"
API_KEY = "sk-live-0123456789abcdef"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        core = make_core(settings_for(fake, tmp_path / "data", admin_token=TOKEN), embedder=HashingEmbedder())
        yield core
        core.close()


class Client:
    """The web app run as `wikibot serve` runs it (our access logger included), on a loopback port."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self._base = base
        self._session = session

    async def request(self, method: str, path: str) -> tuple[int, dict[str, str], str]:
        # The path goes out as written: a test must be able to send what a browser would not.
        async with self._session.request(method, yarl.URL(self._base + path, encoded=True)) as response:
            return response.status, dict(response.headers), await response.text()


@pytest.fixture
async def client(core: Core) -> AsyncIterator[Client]:
    runner = web.AppRunner(build_web_app(core, with_scheduler=False), access_log_class=AccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(f"http://127.0.0.1:{port}", session)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("name", ["token", "access_token", "Authorization"])
async def test_a_token_in_the_query_string_is_refused_and_never_logged(
    client: Client, process_log: Callable[..., io.StringIO], name: str
) -> None:
    log = process_log(log_level="INFO")
    status, _, body = await client.request("POST", f"/admin/sync?{name}={TOKEN}")
    assert status == 400 and "Authorization header" in body
    assert "POST /admin/sync 400" in log.getvalue(), "the request is in the access log"
    assert TOKEN not in log.getvalue() and "?" not in log.getvalue()


async def test_the_server_header_names_no_version(client: Client) -> None:
    _, headers, _ = await client.request("GET", "/healthz")
    assert headers["Server"] == "WikiBot"


async def test_a_path_with_a_line_break_cannot_forge_an_access_log_line(
    client: Client, process_log: Callable[..., io.StringIO]
) -> None:
    log = process_log(log_level="INFO")
    await client.request("GET", "/healthz%0a2026-11-29%2010:00:00%20INFO%20admin:%20login%20ok")
    lines = log.getvalue().splitlines()
    assert lines and not any(line.startswith("2026-11-29 10:00:00 INFO admin") for line in lines)
    assert "\\u000a2026-11-29" in log.getvalue()


def test_no_configured_secret_reaches_the_log_even_at_debug(process_log: Callable[..., io.StringIO]) -> None:
    log = process_log(log_level="DEBUG", secrets=[API_KEY, TOKEN])
    # What a provider SDK does at DEBUG: echo the request with its key.
    logging.getLogger("openai").debug("Request options: {'headers': {'Authorization': 'Bearer %s'}}", API_KEY)
    logging.getLogger("rag.llm").warning("chat model failed: 401 Incorrect API key provided: %s", API_KEY)
    try:
        raise RuntimeError(f"connect failed with token={TOKEN}")
    except RuntimeError:
        logging.getLogger("bot.server").exception("a failure with a secret in its traceback")
    text = log.getvalue()
    assert API_KEY not in text and TOKEN not in text
    assert "Incorrect API key provided: [redacted]" in text and "token=[redacted]" in text


@pytest.mark.parametrize("session", ["x" * 513, "bad\nline"])
def test_an_invalid_session_is_a_one_line_error_and_exit_2(
    session: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--session", session, "what is the VPN?"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("usage:") or "--session" in error[-1]
    assert "Traceback" not in "\n".join(error)


def test_every_configured_secret_is_known_to_the_redaction(tmp_path: Path) -> None:
    settings = settings_for(
        None,
        tmp_path,
        redis_url="redis://:pa55-w0rd%21@cache.internal:6379/0",
        slack_bot_token="xoxb-1111-2222-abcdef",
        litellm_api_key=API_KEY,
    )
    assert {"pa55-w0rd!", "xoxb-1111-2222-abcdef", API_KEY} <= set(settings.secret_values())
