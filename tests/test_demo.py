"""`wikibot demo`: links a reader can open while the demo serves them, the data folder it is given (issue 15)."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from adapters.terminal import chat
from bot.cli import main
from bot.config import SettingsError
from bot.demo.confluence_fake import ConfluenceFake
from bot.demo.run import run_demo
from rag.ports import Assistant
from tests.fakes.embedder import HashingEmbedder
from tests.support import make_core, settings_for

pytestmark = pytest.mark.usefixtures("hashing_core")

_LINK = re.compile(r"^\s+\[\d+\] .+ - (http://\S+)$", re.MULTILINE)


def _open(url: str) -> tuple[int, str]:
    """What a browser gets at a source link: no credentials."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_says_its_links_point_to_its_local_confluence_which_stops_with_it(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(question=None, data_dir=tmp_path / "demo", out=out) == 0
    text = out.getvalue()
    base = re.search(r"local Confluence at (http://127\.0\.0\.1:\d+/wiki), which is up only while", text)
    assert base, text
    links = _LINK.findall(text)
    assert links and all(link.startswith(base.group(1) + "/") for link in links)
    assert "wikibot demo --chat" in text
    with pytest.raises(urllib.error.URLError):  # the demo has ended: nothing serves them any more
        _open(links[0])


def test_demo_chat_serves_the_linked_pages_while_the_chat_runs(tmp_path: Path) -> None:
    opened: list[tuple[int, str]] = []
    restricted: list[int] = []

    async def chat_and_click(assistant: Assistant, session_key: str) -> None:
        said = io.StringIO()
        await chat(
            assistant,
            session_key=session_key,
            stdin=io.StringIO("How do I connect to the VPN from home?\n"),
            stdout=said,
        )
        link = _LINK.findall(said.getvalue())[0]
        opened.append(await asyncio.to_thread(_open, link))
        # A restricted page is not indexed, and its web address shows nothing either.
        restricted.append(
            (await asyncio.to_thread(_open, link.split("/spaces/")[0] + "/spaces/LUMEN/pages/1014"))[0]
        )

    out = io.StringIO()
    assert run_demo(question=None, data_dir=tmp_path / "demo", out=out, chat=chat_and_click) == 0
    [(status, page)] = opened
    assert status == 200 and "<h1>" in page and "VPN" in page
    assert restricted == [404]
    assert "it serves the pages while this chat runs" in out.getvalue()


def test_a_fixed_confluence_port_keeps_the_links_the_same_between_runs(tmp_path: Path) -> None:
    port = _free_port()
    runs = []
    for _ in range(2):
        out = io.StringIO()
        assert run_demo(question=None, data_dir=tmp_path / "demo", out=out, confluence_port=port) == 0
        runs.append(_LINK.findall(out.getvalue()))
    assert runs[0] == runs[1] and runs[0][0].startswith(f"http://127.0.0.1:{port}/wiki/spaces/LUMEN/pages/")


def test_a_confluence_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(
            ["demo", "--confluence-port", str(port), "--data-dir", str(tmp_path / "d")], stdout=io.StringIO()
        )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"wikibot: --confluence-port {port}: ")


def test_demo_writes_into_data_dir_from_the_environment_and_chat_reads_it_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "mine"))
    out = io.StringIO()
    assert main(["demo"], stdout=out) == 0
    assert (tmp_path / "mine" / "state.sqlite3").is_file() and not (tmp_path / "demo-data").exists()
    assert f"DATA_DIR={tmp_path / 'mine'} .venv/bin/wikibot chat" in out.getvalue()
    # What the README's next step does (`DATA_DIR=... wikibot chat`), with the same settings.
    found = io.StringIO()
    assert main(["search", "VPN from home", "--json"], stdout=found) == 0
    assert "/spaces/LUMEN/pages/" in found.getvalue()


def test_demo_data_dir_defaults_to_demo_data_without_data_dir(tmp_path: Path) -> None:
    assert main(["demo"], stdout=io.StringIO()) == 0
    assert (tmp_path / "demo-data" / "state.sqlite3").is_file()  # the tests run in tmp_path


def test_demo_refuses_a_data_dir_holding_another_wikis_index(fake: ConfluenceFake, tmp_path: Path) -> None:
    fake.move_page("1001", space="ENG")
    core = make_core(
        settings_for(fake, tmp_path / "real", confluence_space="ENG"), embedder=HashingEmbedder()
    )
    try:
        assert core.sync(full=True).ok
    finally:
        core.close()
    with pytest.raises(SettingsError, match=r"holds the index of space ENG, which the demo would replace"):
        run_demo(question=None, data_dir=tmp_path / "real", out=io.StringIO())
