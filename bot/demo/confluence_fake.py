"""A loopback fake of Confluence's REST API v1, serving the bundled sample wiki.

The demo, the tests and the benches drive it through the real atlassian-python-api client, so it copies
the details of the real service that clients trip over: a context path (Cloud's ``/wiki``), page sizes
capped below the requested limit (lower still when bodies are expanded), ``_links.next`` relative to
``_links.base`` rather than to the site root, minute-precision CQL dates, expansions that appear only
when asked for, and restrictions that show on the restricted page but not on the children that inherit
them. Faults (429 with Retry-After, 5xx) can be injected, and every request is recorded.

With ``web_pages=True`` it also serves what a source link opens in a browser: each page's ``_links.webui``
address shows its title and text, without a login (as a space open to anonymous readers does), and only for
pages without read restrictions, their own or inherited.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from rag.storage_format import parse_storage

SAMPLE_WIKI_DIR = Path(__file__).resolve().parent / "sample_wiki"
COPY_ID_OFFSET = 1_000_000

_SPACE_NAMES = {"LUMEN": "Lumen IT"}
_RESTRICTION_OWNER = {
    "type": "known",
    "accountId": "5f3c9a1e2b7d4c0012a4e001",
    "accountType": "atlassian",
    "publicName": "Security Operations",
    "displayName": "Security Operations",
}
_ADDED_RESTRICTION_USER = {
    "type": "known",
    "accountId": "5f3c9a1e2b7d4c0012a4e002",
    "accountType": "atlassian",
    "publicName": "Restricted Reader",
    "displayName": "Restricted Reader",
}
_BODY_EXPAND = re.compile(r"(^|,)body\.")
_WEB_PAGE = re.compile(r"/spaces/([A-Za-z0-9_~]+)/pages/(\d+)(?:/[^/]*)?/?")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    status: int
    at: float  # time.time() when the answer was sent


class CqlError(ValueError):
    """CQL this fake (or Confluence) cannot parse."""


@dataclass(slots=True)
class _PageState:
    page_id: str
    title: str
    space: str
    parent_id: str | None
    version: int
    when: datetime
    created: datetime
    file: str | None = None  # body read lazily from the sample wiki, shared by every copy
    body: str | None = None  # set once the page is added or edited through the API
    status: str = "current"
    deleted: bool = False
    read_users: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Fault:
    status: int
    times: int
    retry_after: int | None
    path_contains: str
    skip: int = 0


@dataclass(frozen=True, slots=True)
class _Clause:
    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Query:
    clauses: tuple[_Clause, ...]
    order_field: str | None = None
    order_desc: bool = False


def _now() -> datetime:
    # Confluence reports milliseconds; dropping the rest keeps round trips through strings exact.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------------------------------------- CQL

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|!~|=|>|<|~)"""
    r"""|(?P<punct>[(),])|(?P<word>[A-Za-z0-9_.:\-+/]+))"""
)
_FIELDS = {
    "space": "space",
    "space.key": "space",
    "type": "type",
    "lastmodified": "lastmodified",
    "created": "created",
    "status": "status",
    "id": "id",
    "content": "id",
    "ancestor": "ancestor",
    "parent": "parent",
    "title": "title",
}
_DATE_FIELDS = {"lastmodified", "created"}
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def _tokens(cql: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = cql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise CqlError(f"unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
        pos = match.end()
    return out


def parse_cql(cql: str) -> _Query:
    """Parse the subset of CQL the fake answers: clauses joined by AND, then an optional ORDER BY."""
    tokens = _tokens(cql)
    clauses: list[_Clause] = []
    i = 0

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise CqlError("unexpected end of query")
        tok = tokens[i]
        i += 1
        return tok

    def peek_word() -> str:
        return tokens[i][1].lower() if i < len(tokens) and tokens[i][0] == "word" else ""

    while True:
        kind, name = take()
        if kind != "word" or name.lower() not in _FIELDS:
            raise CqlError(f"unsupported field {name!r}")
        fld = _FIELDS[name.lower()]
        if peek_word() in {"in", "not"}:
            op = take()[1].lower()
            if op == "not":
                if take()[1].lower() != "in":
                    raise CqlError("expected IN after NOT")
                op = "not in"
            if take() != ("punct", "("):
                raise CqlError("expected ( after IN")
            values: list[str] = []
            while True:
                vkind, value = take()
                if vkind not in {"str", "word"}:
                    raise CqlError(f"unexpected {value!r} in list")
                values.append(value)
                sep = take()
                if sep == ("punct", ")"):
                    break
                if sep != ("punct", ","):
                    raise CqlError("expected , or ) in list")
            clauses.append(_Clause(fld, op, tuple(values)))
        else:
            okind, op = take()
            if okind != "op":
                raise CqlError(f"expected an operator after {name!r}")
            vkind, value = take()
            if vkind not in {"str", "word"}:
                raise CqlError(f"expected a value after {op!r}")
            if i < len(tokens) and tokens[i] == ("punct", "("):
                raise CqlError(f"CQL functions such as {value}() are not supported by this fake")
            clauses.append(_Clause(fld, op, (value,)))
        _check_clause(clauses[-1])
        word = peek_word()
        if i >= len(tokens):
            return _Query(tuple(clauses))
        if word == "and":
            i += 1
            continue
        if word == "order":
            i += 1
            if peek_word() != "by":
                raise CqlError("expected BY after ORDER")
            i += 1
            kind, order_field = take()
            if kind != "word" or order_field.lower() not in {"lastmodified", "created", "id", "title"}:
                raise CqlError(f"cannot order by {order_field!r}")
            desc = False
            if peek_word() in {"asc", "desc"}:
                desc = take()[1].lower() == "desc"
            if i < len(tokens):
                raise CqlError(f"unexpected {tokens[i][1]!r} after ORDER BY")
            return _Query(tuple(clauses), order_field.lower(), desc)
        raise CqlError(f"unsupported {tokens[i][1]!r}: only AND between clauses is supported")


def _check_clause(clause: _Clause) -> None:
    ops = {
        "space": {"=", "!=", "in", "not in"},
        "type": {"=", "!=", "in", "not in"},
        "status": {"=", "!=", "in", "not in"},
        "id": {"=", "!=", "in", "not in"},
        "ancestor": {"=", "in"},
        "parent": {"=", "in"},
        "title": {"=", "!=", "~"},
        "lastmodified": {"=", ">", ">=", "<", "<="},
        "created": {"=", ">", ">=", "<", "<="},
    }[clause.field]
    if clause.op not in ops:
        raise CqlError(f"operator {clause.op!r} is not supported for {clause.field}")
    if clause.field in _DATE_FIELDS:
        _cql_date(clause.values[0])


def _cql_date(text: str) -> datetime:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise CqlError(f'bad date {text!r}: use "yyyy-MM-dd HH:mm" or "yyyy-MM-dd"')


# ------------------------------------------------------------------------------------------ the fake


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: ConfluenceFake


class ConfluenceFake:
    """Serves the sample wiki (``copies`` times) on 127.0.0.1 under ``context_path``."""

    def __init__(
        self,
        *,
        context_path: str = "/wiki",
        max_limit: int = 25,
        max_limit_with_body: int = 10,
        username: str = "bot@example.com",
        password: str = "secret",  # noqa: S107 - a loopback fake's well-known test credential
        token: str = "",
        copies: int = 1,
        wiki_dir: Path | None = None,
        port: int = 0,
        web_pages: bool = False,
    ) -> None:
        """``port`` 0 binds a free port; ``web_pages`` serves the pages' web addresses (see the module)."""
        if copies < 1:
            raise ValueError("copies must be at least 1")
        if max_limit < 1 or max_limit_with_body < 1:
            raise ValueError("limits must be at least 1")
        self._ctx = "/" + context_path.strip("/") if context_path.strip("/") else ""
        self._max_limit = max_limit
        self._max_limit_with_body = max_limit_with_body
        self._username = username
        self._password = password
        self._token = token
        self._wiki_dir = wiki_dir or SAMPLE_WIKI_DIR
        self._port = port
        self._web_pages = web_pages
        self._lock = threading.RLock()
        self._pages: dict[str, _PageState] = {}
        self._bodies: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._spaces = dict(_SPACE_NAMES)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._load(copies)

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> str:
        """Start serving; return the base URL a user would set as CONFLUENCE_URL.

        Raises OSError when the port cannot be bound (in use, or not allowed)."""
        if self._server is not None:
            return self.base_url
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="confluence-fake", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._ctx}"

    @property
    def context_path(self) -> str:
        return self._ctx

    # ------------------------------------------------------------------------------------ loading

    def _load(self, copies: int) -> None:
        entries = json.loads((self._wiki_dir / "space.json").read_text(encoding="utf-8"))
        for k in range(copies):
            for entry in entries:
                page_id = self._copy_id(str(entry["id"]), k)
                space = str(entry.get("space", "LUMEN"))
                self._spaces.setdefault(space, space)
                parent = entry.get("parent_id")
                when = _parse_iso(str(entry["last_modified"]))
                self._pages[page_id] = _PageState(
                    page_id=page_id,
                    title=str(entry["title"]) + (f" (copy {k})" if k else ""),
                    space=space,
                    parent_id=self._copy_id(str(parent), k) if parent else None,
                    version=int(entry.get("version", 1)),
                    when=when,
                    created=_parse_iso(str(entry.get("created", entry["last_modified"]))),
                    file=str(entry["file"]),
                    read_users=[dict(_RESTRICTION_OWNER)] if entry.get("restricted") else [],
                )

    @staticmethod
    def _copy_id(page_id: str, k: int) -> str:
        return str(int(page_id) + k * COPY_ID_OFFSET) if k else page_id

    def _body(self, page: _PageState) -> str:
        if page.body is not None:
            return page.body
        assert page.file is not None
        cached = self._bodies.get(page.file)
        if cached is None:
            cached = (self._wiki_dir / page.file).read_text(encoding="utf-8")
            self._bodies[page.file] = cached
        return cached

    # ---------------------------------------------------------------------------------- mutations

    def _live(self, page_id: str) -> _PageState:
        page = self._pages.get(page_id)
        if page is None or page.deleted:
            raise KeyError(f"no page {page_id}")
        return page

    def add_page(
        self, *, page_id: str, title: str, body: str, parent_id: str | None = None, space: str = "LUMEN"
    ) -> None:
        with self._lock:
            if page_id in self._pages:
                raise ValueError(f"page {page_id} already exists")
            if parent_id is not None:
                self._live(parent_id)
            now = _now()
            self._spaces.setdefault(space, space)
            self._pages[page_id] = _PageState(
                page_id=page_id,
                title=title,
                space=space,
                parent_id=parent_id,
                version=1,
                when=now,
                created=now,
                body=body,
            )

    def edit_page(self, page_id: str, *, body: str | None = None, title: str | None = None) -> None:
        with self._lock:
            page = self._live(page_id)
            if body is not None:
                page.body = body
            if title is not None:
                page.title = title
            page.version += 1
            page.when = _now()

    def delete_page(self, page_id: str) -> None:
        """Trash the page: gone from listings and search, 404 by id. Children keep their parent id."""
        with self._lock:
            self._live(page_id).deleted = True

    def archive_page(self, page_id: str) -> None:
        """Archiving does not create a version in Confluence, so version and lastmodified stay put."""
        with self._lock:
            self._live(page_id).status = "archived"

    def restrict_page(self, page_id: str) -> None:
        """Add a read restriction. Like Confluence, no new version and no lastmodified change."""
        with self._lock:
            page = self._live(page_id)
            if _ADDED_RESTRICTION_USER not in page.read_users:
                page.read_users.append(dict(_ADDED_RESTRICTION_USER))

    def move_page(self, page_id: str, *, space: str) -> None:
        """Move the page and, as Confluence does, its descendants; it becomes a root of ``space``."""
        with self._lock:
            page = self._live(page_id)
            self._spaces.setdefault(space, space)
            moved = {page_id}
            for other in self._pages.values():  # insertion order puts parents before children
                if other.parent_id in moved:
                    moved.add(other.page_id)
            for moved_id in moved:
                self._pages[moved_id].space = space
            page.parent_id = None

    # ------------------------------------------------------------------------------------- faults

    def fail(
        self, status: int, *, times: int = 1, retry_after: int | None = None, path_contains: str = ""
    ) -> None:
        """Answer ``status`` to the next ``times`` requests whose path and query contain ``path_contains``."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, path_contains))

    def fail_after(self, n_requests: int, status: int, *, times: int = 1000) -> None:
        """Let ``n_requests`` requests through, then answer ``status`` ``times`` times."""
        with self._lock:
            self._faults.append(_Fault(status, times, None, "", skip=n_requests))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, target: str) -> _Fault | None:
        with self._lock:
            chosen: _Fault | None = None
            for fault in self._faults:
                if fault.times <= 0 or fault.path_contains not in target:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                elif chosen is None:
                    fault.times -= 1
                    chosen = fault
            self._faults = [f for f in self._faults if f.times > 0]
            return chosen

    # -------------------------------------------------------------------------------- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def body_requests(self) -> int:
        with self._lock:
            return sum(1 for r in self._requests if _BODY_EXPAND.search(r.query.get("expand", "")))

    def _record(self, method: str, path: str, query: Mapping[str, str], status: int) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, dict(query), status, time.time()))

    def page_ids(self, *, include_archived: bool = False) -> list[str]:
        """Ids of the pages a full sync should see (test oracle)."""
        with self._lock:
            return [
                p.page_id
                for p in self._pages.values()
                if not p.deleted and (include_archived or p.status == "current")
            ]

    # ---------------------------------------------------------------------------------- answering

    def check_auth(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self._token:
            return hmac.compare_digest(value.strip().encode(), self._token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self._username}:{self._password}"
        return hmac.compare_digest(decoded.encode(), expected.encode())

    def answer(self, path: str, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Route a GET already stripped of the context path; return (status, JSON body)."""
        with self._lock:
            if path in {"/rest/api/content", "/rest/api/content/"}:
                return self._listing(query)
            if path == "/rest/api/content/search":
                return self._search(query)
            match = re.fullmatch(r"/rest/api/content/(\d+)/?", path)
            if match:
                return self._by_id(match.group(1), query)
            match = re.fullmatch(r"/rest/api/space/([A-Za-z0-9_~]+)/?", path)
            if match and match.group(1) in self._spaces:
                return 200, self._space_json(match.group(1))
            if path == "/rest/api/user/current":
                return 200, {
                    "type": "known",
                    "accountId": "bot",
                    "email": self._username,
                    "publicName": "WikiBot",
                    "displayName": "WikiBot",
                }
            return 404, _error(404, f"No route for {path}")

    def web_page(self, path: str) -> tuple[int, str] | None:
        """The HTML a browser gets at a page's web address (path without the context path), or None when
        the path is not one (or web pages are off)."""
        match = _WEB_PAGE.fullmatch(path) if self._web_pages else None
        if match is None:
            return None
        with self._lock:
            page = self._pages.get(match.group(2))
            hidden = (
                page is None
                or page.deleted
                or page.status != "current"
                or page.space != match.group(1)
                or any(p.read_users for p in [page, *self._ancestors(page)])
            )
            if page is None or hidden:
                return 404, _html("Page not found", "<p>No such page, or it is restricted.</p>")
            title, body = page.title, self._body(page)
        parts: list[str] = []
        for section in parse_storage(body):
            if section.headings:
                parts.append(f"<h2>{html.escape(' › '.join(section.headings))}</h2>")
            parts.append(f'<div style="white-space: pre-wrap">{html.escape(section.text)}</div>')
        return 200, _html(title, "".join(parts))

    def _base(self) -> str:
        return self.base_url

    def _limits(self, query: Mapping[str, str], expand: set[str]) -> tuple[int, int]:
        try:
            start = int(query.get("start", "0"))
            limit = int(query.get("limit", "25"))
        except ValueError as exc:
            raise _BadRequest("start and limit must be integers") from exc
        if start < 0 or limit < 0:
            raise _BadRequest("start and limit must not be negative")
        cap = self._max_limit_with_body if any(e.startswith("body.") for e in expand) else self._max_limit
        return start, max(1, min(limit, cap))

    def _listing(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        expand = _expand(query)
        try:
            start, limit = self._limits(query, expand)
        except _BadRequest as exc:
            return 400, _error(400, str(exc))
        statuses = {s.strip() for s in query.get("status", "current").split(",") if s.strip()}
        space = query.get("spaceKey")
        kind = query.get("type", "page")
        title = query.get("title")
        pages = [
            p
            for p in self._pages.values()
            if not p.deleted
            and ("any" in statuses or p.status in statuses)
            and (space is None or p.space == space)
            and kind == "page"
            and (title is None or p.title == title)
        ]
        return 200, self._page_of(pages, "/rest/api/content", query, start, limit, expand)

    def _search(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        expand = _expand(query)
        try:
            start, limit = self._limits(query, expand)
            cql = query.get("cql", "")
            if not cql.strip():
                raise _BadRequest("CQL query parameter 'cql' is required")
            parsed = parse_cql(cql)
        except (_BadRequest, CqlError) as exc:
            message = str(exc)
            if isinstance(exc, CqlError):
                message = (
                    f"com.atlassian.confluence.api.service.exceptions.BadRequestException: "
                    f"Could not parse cql : {query.get('cql', '')} ({exc})"
                )
            return 400, _error(400, message)
        pages = [p for p in self._pages.values() if not p.deleted and self._matches(p, parsed)]
        if parsed.order_field:
            key = {
                "lastmodified": lambda p: (p.when, int(p.page_id)),
                "created": lambda p: (p.created, int(p.page_id)),
                "id": lambda p: (int(p.page_id), 0),
                "title": lambda p: (p.title.lower(), int(p.page_id)),
            }[parsed.order_field]
            pages.sort(key=key, reverse=parsed.order_desc)
        return 200, self._page_of(pages, "/rest/api/content/search", query, start, limit, expand)

    def _matches(self, page: _PageState, parsed: _Query) -> bool:
        if not any(c.field == "status" for c in parsed.clauses) and page.status != "current":
            return False
        return all(self._clause_matches(page, c) for c in parsed.clauses)

    def _clause_matches(self, page: _PageState, clause: _Clause) -> bool:
        if clause.field in _DATE_FIELDS:
            actual = page.when if clause.field == "lastmodified" else page.created
            bound = _cql_date(clause.values[0])
            if clause.op == "=":
                return bound <= actual < bound.replace(second=59, microsecond=999999)
            return {">": actual > bound, ">=": actual >= bound, "<": actual < bound, "<=": actual <= bound}[
                clause.op
            ]
        if clause.field == "title" and clause.op == "~":
            return clause.values[0].lower().strip("*") in page.title.lower()
        if clause.field in {"ancestor", "parent"}:
            wanted = set(clause.values)
            if clause.field == "parent":
                return page.parent_id in wanted
            return any(a.page_id in wanted for a in self._ancestors(page))
        actual_value = {
            "space": page.space,
            "type": "page",
            "status": page.status,
            "id": page.page_id,
            "title": page.title,
        }[clause.field]
        values = (
            {v.lower() for v in clause.values} if clause.field in {"type", "status"} else set(clause.values)
        )
        if clause.field in {"type", "status"}:
            actual_value = actual_value.lower()
        hit = actual_value in values
        return not hit if clause.op in {"!=", "not in"} else hit

    def _page_of(
        self,
        pages: list[_PageState],
        route: str,
        query: Mapping[str, str],
        start: int,
        limit: int,
        expand: set[str],
    ) -> dict[str, Any]:
        chosen = pages[start : start + limit]
        base = self._base()
        params = dict(query)
        params["limit"] = str(limit)
        params["start"] = str(start)
        links: dict[str, str] = {
            "base": base,
            "context": self._ctx,
            "self": f"{base}{route}?{urlencode(params, safe=',')}",
        }
        if start + len(chosen) < len(pages):
            params["start"] = str(start + len(chosen))
            # Relative to _links.base, as Confluence means it: no context path here.
            links["next"] = f"{route}?{urlencode(params, safe=',')}"
        if start > 0:
            params["start"] = str(max(0, start - limit))
            links["prev"] = f"{route}?{urlencode(params, safe=',')}"
        return {
            "results": [self._content(p, expand) for p in chosen],
            "start": start,
            "limit": limit,
            "size": len(chosen),
            "_links": links,
        }

    def _by_id(self, page_id: str, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        page = self._pages.get(page_id)
        if page is None or page.deleted:
            return 404, _error(404, f"No content found with id: ContentId{{id={page_id}}}")
        return 200, self._content(page, _expand(query))

    def _ancestors(self, page: _PageState) -> list[_PageState]:
        chain: list[_PageState] = []
        seen = {page.page_id}
        parent_id = page.parent_id
        while parent_id is not None and parent_id not in seen:
            parent = self._pages.get(parent_id)
            if parent is None or parent.deleted:
                break
            seen.add(parent_id)
            chain.append(parent)
            parent_id = parent.parent_id
        chain.reverse()
        return chain

    def _space_json(self, key: str) -> dict[str, Any]:
        return {
            "id": 98304 + sorted(self._spaces).index(key),
            "key": key,
            "name": self._spaces[key],
            "type": "global",
            "status": "current",
            "_links": {"webui": f"/spaces/{key}", "self": f"{self._base()}/rest/api/space/{key}"},
        }

    def _content(self, page: _PageState, expand: set[str]) -> dict[str, Any]:
        base = self._base()
        slug = quote(re.sub(r"\s+", "-", page.title.strip()), safe="-()")
        out: dict[str, Any] = {"id": page.page_id, "type": "page", "status": page.status, "title": page.title}
        expandable: dict[str, str] = {}
        if "space" in expand:
            space = self._space_json(page.space)
            out["space"] = {k: space[k] for k in ("id", "key", "name", "type", "status", "_links")}
        else:
            expandable["space"] = f"/rest/api/space/{page.space}"
        if "version" in expand:
            out["version"] = {
                "number": page.version,
                "when": _iso(page.when),
                "minorEdit": False,
                "by": {"type": "known", "displayName": "Lumen IT"},
            }
        else:
            expandable["version"] = ""
        if "ancestors" in expand:
            out["ancestors"] = [
                {"id": a.page_id, "type": "page", "status": a.status, "title": a.title}
                for a in self._ancestors(page)
            ]
        else:
            expandable["ancestors"] = ""
        if "history" in expand or any(e.startswith("history.") for e in expand):
            history: dict[str, Any] = {"latest": True, "createdDate": _iso(page.created)}
            if "history.lastUpdated" in expand:
                history["lastUpdated"] = {"when": _iso(page.when), "number": page.version}
            out["history"] = history
        else:
            expandable["history"] = f"/rest/api/content/{page.page_id}/history"
        if "body.storage" in expand or "body" in expand:
            body: dict[str, Any] = {}
            if "body.storage" in expand:
                body["storage"] = {"value": self._body(page), "representation": "storage"}
            out["body"] = body
        else:
            expandable["body"] = ""
        restrictions = self._restrictions(page, expand)
        if restrictions is not None:
            out["restrictions"] = restrictions
        else:
            expandable["restrictions"] = f"/rest/api/content/{page.page_id}/restriction/byOperation"
        out["_expandable"] = expandable
        out["_links"] = {
            "webui": f"/spaces/{page.space}/pages/{page.page_id}/{slug}",
            "tinyui": f"/x/{page.page_id}",
            "self": f"{base}/rest/api/content/{page.page_id}",
        }
        return out

    def _restrictions(self, page: _PageState, expand: set[str]) -> dict[str, Any] | None:
        if not any(e == "restrictions" or e.startswith("restrictions.") for e in expand):
            return None
        whole = bool(expand & {"restrictions.read", "restrictions.read.restrictions"})
        want_user = whole or "restrictions.read.restrictions.user" in expand
        want_group = whole or "restrictions.read.restrictions.group" in expand
        read: dict[str, Any] = {"operation": "read"}
        if want_user or want_group:
            inner: dict[str, Any] = {}
            if want_user:
                users = [dict(u) for u in page.read_users]
                inner["user"] = {"results": users, "start": 0, "limit": 200, "size": len(users)}
            if want_group:
                inner["group"] = {"results": [], "start": 0, "limit": 200, "size": 0}
            read["restrictions"] = inner
        return {"read": read}


class _BadRequest(ValueError):
    pass


def _expand(query: Mapping[str, str]) -> set[str]:
    names = {e.strip() for e in query.get("expand", "").split(",") if e.strip()}
    # Asking for a nested field expands its parents too, as Confluence does.
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:n]) for n in range(1, len(parts)))
    return names


def _html(title: str, body: str) -> str:
    """A page of the web view: the title escaped here, the body already escaped by the caller."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><p><small>WikiBot demo: the sample wiki, served while <code>wikibot demo</code> runs.</small></p>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _error(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "data": {"authorized": status != 401, "valid": True, "errors": [], "successful": False},
        "message": message,
        "reason": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, delayed ACKs stall each
    # keep-alive response by ~40 ms, which a real Confluence behind a proper server does not do.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # the fake records requests itself; stderr noise would drown test output

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        ctx = fake.context_path
        page = (
            fake.web_page(path[len(ctx) :])
            if method in ("GET", "HEAD") and path.startswith(ctx + "/")
            else None
        )
        if page is not None:
            fake._record(method, path, query, page[0])
            self._send_html(*page)
            return
        extra: dict[str, str] = {}
        status, payload = self._route(fake, method, path, query, extra)
        fake._record(method, path, query, status)
        self._send(status, payload, extra)

    def _route(
        self, fake: ConfluenceFake, method: str, path: str, query: dict[str, str], extra: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        fault = fake._take_fault(self.path)
        if fault is not None:
            if fault.retry_after is not None:
                extra["Retry-After"] = str(fault.retry_after)
            return fault.status, _error(fault.status, f"Injected fault {fault.status}")
        ctx = fake.context_path
        if ctx and path != ctx and not path.startswith(ctx + "/"):
            return 404, _error(404, f"Nothing is served outside {ctx}")
        if not fake.check_auth(self.headers.get("Authorization")):
            extra["WWW-Authenticate"] = 'Basic realm="Confluence"'
            return 401, _error(401, "Client must be authenticated to access this resource.")
        if method != "GET":
            return 405, _error(405, f"{method} is not supported by this fake")
        return fake.answer(path[len(ctx) :] or "/", query)

    def _send(self, status: int, payload: dict[str, Any], extra: dict[str, str]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_html(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def iter_sample_pages(wiki_dir: Path | None = None) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield (space.json entry, storage body) for every bundled page."""
    root = wiki_dir or SAMPLE_WIKI_DIR
    for entry in json.loads((root / "space.json").read_text(encoding="utf-8")):
        yield entry, (root / str(entry["file"])).read_text(encoding="utf-8")
