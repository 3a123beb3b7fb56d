"""The Confluence fake, driven through the real atlassian-python-api client as the bot drives it."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from atlassian import Confluence
from lxml import etree
from requests import HTTPError

from bot.demo.confluence_fake import SAMPLE_WIKI_DIR, ConfluenceFake, iter_sample_pages

USER, PASSWORD = "bot@example.com", "secret"
N_PAGES = len(json.loads((SAMPLE_WIKI_DIR / "space.json").read_text(encoding="utf-8")))


@pytest.fixture
def fake() -> Iterator[ConfluenceFake]:
    with ConfluenceFake() as running:
        yield running


def client_for(base: str, password: str = PASSWORD) -> Confluence:
    return make_client(url=base, username=USER, password=password, cloud=True)


def make_client(**kwargs: Any) -> Confluence:
    return Confluence(**kwargs)  # type: ignore[no-untyped-call]


def fetch(
    client: Confluence, path: str, params: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """client.get, typed: these endpoints always answer a JSON object or raise."""
    answer = client.get(path, params=params, **kwargs)
    assert isinstance(answer, dict)
    return answer


def status_of(err: pytest.ExceptionInfo[HTTPError]) -> int:
    assert err.value.response is not None
    return err.value.response.status_code


def message_of(err: pytest.ExceptionInfo[HTTPError]) -> dict[str, Any]:
    assert err.value.response is not None
    body = err.value.response.json()
    assert isinstance(body, dict)
    return body


def get_all(client: Confluence, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Follow _links.next the way Confluence means it: relative to _links.base. Returns results, calls."""
    response = fetch(client, path, params=params)
    results = list(response["results"])
    calls = 1
    while "next" in response["_links"]:
        response = fetch(client, response["_links"]["base"] + response["_links"]["next"], absolute=True)
        results.extend(response["results"])
        calls += 1
        assert calls < 500
    return results, calls


def test_pagination_is_capped_and_next_is_relative_to_base(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    first = fetch(client, "rest/api/content", params={"spaceKey": "LUMEN", "limit": 100})
    assert first["limit"] == 25 and first["size"] == 25
    assert first["_links"]["next"].startswith("/rest/api/content?")
    assert "/wiki" not in first["_links"]["next"]
    assert first["_links"]["base"] == fake.base_url and first["_links"]["context"] == "/wiki"

    pages, calls = get_all(client, "rest/api/content", {"spaceKey": "LUMEN", "limit": 100})
    assert len({p["id"] for p in pages}) == len(pages) == N_PAGES
    assert calls == 2

    bodies, calls = get_all(
        client, "rest/api/content", {"spaceKey": "LUMEN", "limit": 50, "expand": "body.storage,version"}
    )
    assert calls == 4  # 35 pages, 10 a page once bodies are expanded
    assert all(b["body"]["storage"]["value"].startswith("<") for b in bodies)
    assert fake.body_requests() == 4


def test_only_expanded_fields_are_returned(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    bare = fetch(client, "rest/api/content/1005")
    assert "body" not in bare and "version" not in bare and "ancestors" not in bare
    full = fetch(client, "rest/api/content/1005", params={"expand": "ancestors,version,space,body.storage"})
    assert [a["title"] for a in full["ancestors"]] == [
        "Lumen IT Home",
        "Onboarding for New IT Staff",
        "VPN Access",
    ]
    assert full["space"]["key"] == "LUMEN" and full["space"]["name"] == "Lumen IT"
    assert full["version"]["number"] == 7
    assert full["_links"]["webui"] == "/spaces/LUMEN/pages/1005/VPN-Troubleshooting"
    assert "GP-1021" in full["body"]["storage"]["value"]


def test_served_only_under_the_context_path(fake: ConfluenceFake) -> None:
    site_root = fake.base_url.removesuffix("/wiki")
    with pytest.raises(HTTPError) as err:
        fetch(client_for(site_root), "rest/api/content", params={"spaceKey": "LUMEN"})
    assert status_of(err) == 404
    assert fetch(client_for(fake.base_url), "rest/api/content", params={"spaceKey": "LUMEN"})["size"] == 25


def test_wrong_password_is_401_json(fake: ConfluenceFake) -> None:
    with pytest.raises(HTTPError) as err:
        fetch(client_for(fake.base_url, password="wrong"), "rest/api/content", params={"spaceKey": "LUMEN"})
    assert status_of(err) == 401
    assert message_of(err)["statusCode"] == 401
    assert [r.status for r in fake.requests] == [401]


def test_bearer_token_when_configured() -> None:
    with ConfluenceFake(token="pat-123") as fake:
        client = make_client(url=fake.base_url, token="pat-123", cloud=False)
        assert fetch(client, "rest/api/content/1001")["title"] == "Lumen IT Home"
        with pytest.raises(HTTPError):
            fetch(make_client(url=fake.base_url, token="nope", cloud=False), "rest/api/content/1001")


def test_429_with_retry_after_is_retried_once_by_the_client(fake: ConfluenceFake) -> None:
    fake.fail(429, times=1, retry_after=0, path_contains="/content/1001")
    client = client_for(fake.base_url)
    assert fetch(client, "rest/api/content/1001")["id"] == "1001"
    assert [r.status for r in fake.requests] == [429, 200]

    fake.fail(503, times=1)
    with pytest.raises(HTTPError) as err:
        fetch(client, "rest/api/content/1001")
    assert status_of(err) == 503  # the client never retries a 5xx


def test_fail_after_lets_requests_through_first(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    fake.fail_after(2, 500, times=1)
    fetch(client, "rest/api/content/1001")
    fetch(client, "rest/api/content/1002")
    with pytest.raises(HTTPError):
        fetch(client, "rest/api/content/1003")
    assert fetch(client, "rest/api/content/1003")["id"] == "1003"


def test_cql_lastmodified_and_space_filters(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    cql = 'space = "LUMEN" and type = page and lastmodified >= "2026-09-20 00:00"'
    recent, _ = get_all(client, "rest/api/content/search", {"cql": cql, "expand": "version"})
    assert {p["id"] for p in recent} == {"1001", "1007", "1021", "1027", "1028", "1031"}

    before = datetime.now(UTC) - timedelta(minutes=1)
    fake.edit_page("1011", body="<p>Minimum length is now 16 characters.</p>")
    since = before.strftime("%Y-%m-%d %H:%M")
    changed, _ = get_all(
        client, "rest/api/content/search", {"cql": f"space in (LUMEN, OTHER) and lastmodified >= '{since}'"}
    )
    assert [p["id"] for p in changed] == ["1011"]

    with pytest.raises(HTTPError) as err:
        fetch(client, "rest/api/content/search", params={"cql": "space = LUMEN or type = page"})
    assert status_of(err) == 400
    assert "cql" in message_of(err)["message"].lower()


def test_edit_bumps_version_and_changes_body(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    fake.edit_page("1011", body="<p>Minimum length is now 16 characters.</p>", title="Password Rules")
    page = fetch(
        client, "rest/api/content/1011", params={"expand": "version,body.storage,history.lastUpdated"}
    )
    assert page["version"]["number"] == 5 and page["title"] == "Password Rules"
    assert page["body"]["storage"]["value"] == "<p>Minimum length is now 16 characters.</p>"
    assert page["history"]["lastUpdated"]["when"] == page["version"]["when"]


def test_delete_archive_restrict_and_move(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    fake.delete_page("1036")
    fake.archive_page("1038")
    fake.restrict_page("1035")
    fake.move_page("1033", space="ARCHIVE")

    with pytest.raises(HTTPError) as err:
        fetch(client, "rest/api/content/1036")
    assert status_of(err) == 404
    assert fetch(client, "rest/api/content/1038")["status"] == "archived"

    listed, _ = get_all(client, "rest/api/content", {"spaceKey": "LUMEN", "limit": 100})
    ids = {p["id"] for p in listed}
    assert "1036" not in ids and "1038" not in ids
    assert "1033" not in ids and "1034" not in ids  # moved with its child
    searched, _ = get_all(client, "rest/api/content/search", {"cql": "space = LUMEN"})
    assert {p["id"] for p in searched} == ids

    expand = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
    restricted = fetch(client, "rest/api/content/1035", params={"expand": expand})
    assert restricted["restrictions"]["read"]["restrictions"]["user"]["size"] == 1
    assert fetch(client, "rest/api/content/1034", params={"expand": "space"})["space"]["key"] == "ARCHIVE"


def test_restriction_shows_on_the_page_not_on_its_child(fake: ConfluenceFake) -> None:
    client = client_for(fake.base_url)
    expand = "ancestors,restrictions.read.restrictions.user,restrictions.read.restrictions.group"
    parent = fetch(client, "rest/api/content/1014", params={"expand": expand})
    child = fetch(client, "rest/api/content/1015", params={"expand": expand})
    assert parent["restrictions"]["read"]["restrictions"]["user"]["size"] == 1
    assert child["restrictions"]["read"]["restrictions"]["user"]["size"] == 0
    assert "1014" in [a["id"] for a in child["ancestors"]]


def test_added_page_appears(fake: ConfluenceFake) -> None:
    fake.add_page(page_id="2001", title="New Page", body="<p>Hello</p>", parent_id="1030")
    page = fetch(client_for(fake.base_url), "rest/api/content/2001", params={"expand": "ancestors,version"})
    assert page["version"]["number"] == 1
    assert [a["id"] for a in page["ancestors"]] == ["1001", "1030"]


def test_copies_multiply_the_wiki() -> None:
    with ConfluenceFake(copies=30, max_limit=100) as fake:
        client = client_for(fake.base_url)
        pages, calls = get_all(client, "rest/api/content", {"spaceKey": "LUMEN", "limit": 100})
        assert len(pages) == N_PAGES * 30 == len({p["id"] for p in pages})
        assert calls == -(-N_PAGES * 30 // 100)
        copy = fetch(client, "rest/api/content/29001005", params={"expand": "ancestors,body.storage"})
        assert copy["title"] == "VPN Troubleshooting (copy 29)"
        assert [a["id"] for a in copy["ancestors"]] == ["29001001", "29001002", "29001004"]
        assert "GP-1021" in copy["body"]["storage"]["value"]


NAMESPACES = 'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'


def test_every_sample_page_is_well_formed_storage_format() -> None:
    entries = list(iter_sample_pages())
    titles = {e["title"] for e, _ in entries}
    assert len(entries) >= 28
    assert sum(e["restricted"] for e, _ in entries) == 1
    for entry, body in entries:
        assert not body.lstrip().startswith("<?xml"), entry["file"]
        root = etree.fromstring(f"<root {NAMESPACES}>{body}</root>".encode())
        assert len(root) > 0, entry["file"]
        for target in re.findall(r'ri:content-title="([^"]*)"', body):
            assert target in titles, f"{entry['file']} links to missing page {target!r}"
    parents = {e["id"]: e["parent_id"] for e, _ in entries}
    depth = max(_depth(parents, page_id) for page_id in parents)
    assert depth >= 3
    size = sum(p.stat().st_size for p in Path(SAMPLE_WIKI_DIR).iterdir())
    assert 100_000 < size < 400_000


def _depth(parents: dict[str, str | None], page_id: str) -> int:
    depth, current = 0, parents[page_id]
    while current is not None:
        depth, current = depth + 1, parents[current]
    return depth


def test_benchmark_questions_point_at_readable_pages() -> None:
    questions = json.loads((Path(__file__).parents[1] / "bench" / "questions.json").read_text("utf-8"))
    entries = {e["id"]: e for e, _ in iter_sample_pages()}
    restricted = {i for i, e in entries.items() if e["restricted"]}
    restricted |= {i for i, e in entries.items() if e["parent_id"] in restricted}
    assert len(questions) == 40
    assert sum(q["lang"] == "fr" for q in questions) == 10
    for q in questions:
        assert q["page_ids"] and set(q["page_ids"]) <= set(entries) - restricted, q


def test_web_pages_show_readable_pages_to_a_browser_and_hide_restricted_ones() -> None:
    with ConfluenceFake(username=USER, password=PASSWORD, web_pages=True) as fake:
        fake.add_page(
            page_id="2002", title="<script>x</script>", body="<p>a &lt;b&gt; c</p>", parent_id="1030"
        )
        base = fake.base_url

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as response:
                    return response.status, response.read().decode("utf-8")
            except urllib.error.HTTPError as error:
                return error.code, ""

        status, page = get("/spaces/LUMEN/pages/2002/slug")
        assert status == 200 and "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
        assert "a &lt;b&gt; c" in page
        assert (
            get("/spaces/LUMEN/pages/1014")[0] == get("/spaces/LUMEN/pages/1015")[0] == 404
        )  # inherited too
        assert get("/rest/api/content/1001")[0] == 401  # the API still needs the bot's account
