"""A French question over an English wiki, through the real stack: the loopback Confluence, the real client,
the default embedding model and cross-encoder, and WikiAssistant in extractive mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.demo.confluence_fake import ConfluenceFake
from rag.types import IncomingMessage
from tests.support import PASSWORD, USER, make_core, settings_for

pytestmark = pytest.mark.slow

_PAGES = {
    "Sequences and lists": (
        "<h1>Lists</h1><p>A list is a mutable sequence. Append items with <code>append()</code>, add several "
        "with <code>extend()</code>, sort it in place with <code>sort()</code> and reverse it with "
        "<code>reverse()</code>. Lists can be nested and sliced like any sequence.</p>"
    ),
    "The random module": (
        "<h1>random — Generate pseudo-random numbers</h1><p><code>random.shuffle(x)</code> shuffles the "
        "sequence x in place, putting its items in a random order. <code>random.randint(a, b)</code> returns "
        "a random integer between a and b; <code>random.choice(seq)</code> picks one element.</p>"
    ),
    "Sockets": (
        "<h1>Socket programming</h1><p>Create a TCP server socket, bind it to a port, listen and accept "
        "connections from clients over the network.</p>"
    ),
}


@pytest.fixture(scope="module")
def wiki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("english-wiki")
    entries = []
    for n, (title, body) in enumerate(_PAGES.items(), start=1):
        (folder / f"{n}.xml").write_text(body, encoding="utf-8")
        entries.append(
            {
                "id": str(700 + n),
                "title": title,
                "space": "DOC",
                "parent_id": None,
                "file": f"{n}.xml",
                "last_modified": "2026-06-01T09:00:00.000Z",
            }
        )
    (folder / "space.json").write_text(json.dumps(entries), encoding="utf-8")
    return folder


async def _ask(wiki_dir: Path, data: Path, question: str, **settings: object) -> tuple[list[str], str]:
    with ConfluenceFake(username=USER, password=PASSWORD, wiki_dir=wiki_dir) as wiki:
        core = make_core(settings_for(wiki, data, confluence_space="DOC", retrieval_rerank=True, **settings))
        try:
            assert core.sync().ok
            reply = await core.assistant.ask(IncomingMessage(session_key="s", text=question))
            return [s.title for s in reply.sources], reply.text
        finally:
            core.close()


async def test_a_french_question_finds_the_english_page_that_answers_it(
    wiki_dir: Path, tmp_path: Path
) -> None:
    titles, text = await _ask(wiki_dir, tmp_path / "on", "Comment mélanger une liste au hasard ?")
    assert titles[:1] == ["The random module"]
    assert "shuffle" in text
    # Without the English rendering the French words match nothing and "liste" looks like the lists page.
    titles, _ = await _ask(
        wiki_dir, tmp_path / "off", "Comment mélanger une liste au hasard ?", retrieval_translate=False
    )
    assert titles[:1] != ["The random module"]


async def test_a_french_question_about_a_system_the_wiki_never_names_is_not_answered(
    wiki_dir: Path, tmp_path: Path
) -> None:
    titles, text = await _ask(wiki_dir, tmp_path / "data", "Comment réinitialiser mon mot de passe Splunk ?")
    assert titles == []
    assert "wiki" in text.lower()
