"""`wikibot` as operators' scripts use it: exit codes, one-line errors, and the JSON contracts."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo.confluence_fake import ConfluenceFake
from tests.fakes.replicas import bare_env
from tests.support import PASSWORD, USER

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceFake]:
    with ConfluenceFake(username=USER, password=PASSWORD) as fake:
        yield fake


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, wiki: ConfluenceFake) -> Path:
    """One ingest with the real default embedding model, shared by this module's read-only tests."""
    data = tmp_path_factory.mktemp("cli-data")
    env = {
        "CONFLUENCE_URL": wiki.base_url,
        "CONFLUENCE_USERNAME": USER,
        "CONFLUENCE_PASSWORD": PASSWORD,
        "CONFLUENCE_SPACE": "LUMEN",
        "DATA_DIR": str(data),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        out = io.StringIO()
        assert main(["ingest", "--json"], stdout=out) == 0
        report = json.loads(out.getvalue())
        assert report["ok"] and report["added"] > 20 and report["chunks_total"] > report["added"]
        # Chunks are sized to the model's token window: nothing is cut off at embedding time.
        assert report["chunks_truncated"] == 0
        # The sample wiki has restricted pages: left out, and counted as such.
        assert report["skipped_restricted"] >= 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return data


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, wiki: ConfluenceFake) -> Path:
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("CONFLUENCE_SPACE", "LUMEN")
    return data_dir


def _run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_search_json_shape_and_relevance(env: Path) -> None:
    code, out = _run(["search", "VPN connection from home", "-k", "3", "--json"])
    assert code == 0
    rows = json.loads(out)
    assert 1 <= len(rows) <= 3
    assert set(rows[0]) == {"page_id", "title", "url", "section", "score", "text"}
    assert any("VPN" in r["title"] for r in rows)
    assert all(r["url"].startswith("http://127.0.0.1") for r in rows)


def test_search_for_a_person_shows_each_page_once_with_its_passages_and_no_scores(env: Path) -> None:
    code, out = _run(["search", "VPN connection from home", "-k", "4"])
    _, json_out = _run(["search", "VPN connection from home", "-k", "4", "--json"])
    rows = json.loads(json_out)
    pages: dict[str, dict[str, str]] = {}
    for row in rows:
        pages.setdefault(row["page_id"], row)
    headers = [line for line in out.splitlines() if line.startswith("[")]
    assert code == 0 and headers == [
        f"[{n}] {page['title']} - {page['url']}" for n, page in enumerate(pages.values(), start=1)
    ]
    # The passages themselves, whole, and no fusion score a person cannot read.
    assert all(line.strip() in out for r in rows for line in r["text"].split("\n\n", 1)[-1].splitlines())
    assert not re.search(r"\b0\.\d{3,}", out)


def test_search_dash_reads_one_query_per_line(env: Path) -> None:
    code, out = _run(["search", "-"], stdin="VPN\n\nincident severity levels\n")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert all(isinstance(json.loads(line), list) for line in lines)


def test_ask_json_shape_with_cited_sources(env: Path) -> None:
    code, out = _run(["ask", "How do I connect to the VPN?", "--json"])
    assert code == 0
    answer = json.loads(out)
    assert set(answer) == {"session_id", "answer", "sources"}
    assert answer["sources"] and set(answer["sources"][0]) == {"page_id", "title", "url"}
    assert "[1]" in answer["answer"]


def test_ask_dash_keeps_one_session_across_lines(env: Path) -> None:
    code, out = _run(["ask", "-"], stdin="How do I connect to the VPN?\nAnd if it fails?\n")
    first, second = (json.loads(line) for line in out.strip().splitlines())
    assert code == 0 and first["session_id"] == second["session_id"]


def test_ask_refuses_an_empty_question_with_exit_2(env: Path) -> None:
    code, out = _run(["ask", "   "])
    assert code == 2 and "Ask me anything" in out


def test_status_json(env: Path) -> None:
    code, out = _run(["status", "--json"])
    status = json.loads(out)
    assert code == 0
    assert status["pages"] > 20 and status["chunks"] > status["pages"]
    assert status["last_ingest"] and status["spaces"] == ["LUMEN"]
    assert "all-MiniLM-L6-v2" in status["embedding_model"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CHUNK_SIZE", "lots", "CHUNK_SIZE"),
        ("CONFLUENCE_URL", "ftp://wiki", "CONFLUENCE_URL"),
        ("SLACK_SIGNING_SECRET", "changeme", "SLACK_SIGNING_SECRET"),
    ],
)
def test_a_bad_setting_stops_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    proc = _wikibot(tmp_path, "status", **{variable: value})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wikibot: {expected}")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"EMBED_MODEL": "/nonexistent/model"}, "wikibot: EMBED_MODEL"),
        ({"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": "9"}, "wikibot: CHROMA_HOST"),
        ({"REDIS_URL": "redis://127.0.0.1:9/0"}, "wikibot: REDIS_URL"),
        ({"SYSTEM_PROMPT_FILE": "/nonexistent/prompt.txt"}, "wikibot: SYSTEM_PROMPT_FILE"),
    ],
)
def test_unusable_resources_are_named_in_one_line(
    tmp_path: Path, data_dir: Path, env: dict[str, str], expected: str
) -> None:
    if "EMBED_MODEL" in env:
        # An empty index is answered without any model: the model is only needed (and named) for a real one.
        env = {**env, "DATA_DIR": str(data_dir)}
    proc = _wikibot(tmp_path, "ask", "hello?", **env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(expected)


def test_ingest_without_confluence_says_what_to_set(tmp_path: Path) -> None:
    proc = _wikibot(tmp_path, "ingest")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("wikibot: CONFLUENCE_URL is not set")


def _wikibot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process with a bare environment: what an operator's script sees."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=bare_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ask_on_an_empty_index_says_to_ingest_with_exit_0(tmp_path: Path) -> None:
    proc = _wikibot(tmp_path, "ask", "anything?", DATA_DIR=str(tmp_path / "empty"))
    assert proc.returncode == 0 and "wikibot ingest" in proc.stdout


def test_search_refuses_a_k_outside_1_to_50(tmp_path: Path) -> None:
    proc = _wikibot(tmp_path, "search", "vpn", "-k", "0")
    assert proc.returncode == 2 and "from 1 to 50" in proc.stderr


def test_ingest_next_to_a_running_server_is_refused(tmp_path: Path, wiki: ConfluenceFake) -> None:
    from bot.runtime import server_lock

    data = tmp_path / "served"
    with server_lock(data):
        proc = _wikibot(
            tmp_path,
            "ingest",
            DATA_DIR=str(data),
            CONFLUENCE_URL=wiki.base_url,
            CONFLUENCE_USERNAME=USER,
            CONFLUENCE_PASSWORD=PASSWORD,
            CONFLUENCE_SPACE="LUMEN",
        )
    assert proc.returncode == 1 and "POST /admin/sync" in proc.stderr


def test_prepare_finds_the_export_already_made_and_says_where(env: Path) -> None:
    def exports() -> list[tuple[str, int]]:
        return [(p.name, p.stat().st_mtime_ns) for p in sorted((env / "models").glob("onnx/*")) if p.is_dir()]

    before = exports()
    assert before, "the ingest above exported the int8 model into DATA_DIR/models"
    code, out = _run(["prepare", "--json"])
    info = json.loads(out)
    assert code == 0 and Path(info["model_cache"]) == (env / "models").resolve()
    assert "all-MiniLM-L6-v2" in info["embedding_model"]
    # Nothing exported again: a replica started on this cache pays no export either.
    assert exports() == before
