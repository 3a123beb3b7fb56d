"""Confluence pages through atlassian-python-api, Cloud (/wiki) and Data Center alike.

We drive pagination ourselves: atlassian-python-api 5.0.x resolves a relative `_links.next` against the
site root, which drops Cloud's `/wiki` (or a Data Center context path). Confluence means it relative to
`_links.base`, which is our configured URL; we also never follow a next link to another host, since the
client would send our credentials there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.retry import Retry

from rag.ports import PageSourceError
from rag.types import Page, PageRef

log = logging.getLogger(__name__)

SPACE_KEY = re.compile(r"^~?[A-Za-z0-9_-]{1,255}$")
_RESTRICTIONS = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
LIST_EXPAND = f"version,ancestors,{_RESTRICTIONS}"
BODY_EXPAND = f"body.storage,version,space,{_RESTRICTIONS}"
# A guard against a server that keeps sending the same next link.
_MAX_BATCHES = 100_000
# The longest wait between two attempts, whether from our backoff or a server's Retry-After.
MAX_BACKOFF_S = 60.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


class _BoundedRetry(Retry):
    """urllib3's Retry with a server's Retry-After capped like our own backoff: a server saying "come back in
    a day" must not hold an ingest (or the scheduler's thread) for a day."""

    def get_retry_after(self, response: Any) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else float(min(wait, self.backoff_max))


def bounded_retry(*, retries: int, backoff_s: float) -> Retry:
    """Every failure counts against one budget: connection errors, timeouts, 429 and 5xx.

    atlassian-python-api's own `backoff_and_retry` builds `Retry(status=N)` with `total` and `connect`
    unset, so a refused connection or an unknown host is retried without end. `total` bounds them all;
    after the last 5xx the answer itself is returned (`raise_on_status=False`), so the error names the
    status rather than "too many retries".
    """
    return _BoundedRetry(
        total=retries,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_s,
        backoff_max=MAX_BACKOFF_S,
        backoff_jitter=0.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def worst_case_s(*, retries: int, backoff_s: float, timeout_s: float) -> float:
    """How long one request can take before it fails, for a source that never answers.

    urllib3 retries the first failure at once, then waits backoff_s × 2^(n-1) before the n-th retry.
    """
    waits: float = sum(min(MAX_BACKOFF_S, backoff_s * 2.0 ** (n - 1)) for n in range(2, retries + 1))
    return (retries + 1) * timeout_s + waits


class ConfluenceError(PageSourceError):
    """Confluence could not be read (auth, network, server). The message is safe to log and show."""


class RestClient(Protocol):
    """The slice of atlassian.Confluence we use; the real client is injected."""

    url: str

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, absolute: bool = False) -> Any: ...


def _quote_cql(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _restricted(content: Mapping[str, Any], *, missing: bool) -> bool:
    """Whether the page has read restrictions; `missing` is the answer when Confluence did not say."""
    restrictions = content.get("restrictions")
    read = restrictions.get("read") if isinstance(restrictions, dict) else None
    inner = read.get("restrictions") if isinstance(read, dict) else None
    if not isinstance(inner, dict):
        return missing
    for kind in ("user", "group"):
        entry = inner.get(kind)
        if not isinstance(entry, dict):
            continue
        if entry.get("results") or int(entry.get("size") or 0) > 0:
            return True
    return False


class ConfluenceSource:
    """Implements rag.ports.PageSource over a real atlassian.Confluence client."""

    def __init__(
        self,
        client: RestClient,
        *,
        spaces: Sequence[str],
        page_limit: int = 50,
        overlap: timedelta = timedelta(minutes=15),
        retries: int = 0,
    ) -> None:
        bad = [s for s in spaces if not SPACE_KEY.match(s)]
        if bad or not spaces:
            raise ValueError(f"invalid Confluence space key(s): {', '.join(bad) or '(none)'}")
        self._client = client
        self._spaces = tuple(spaces)
        self._limit = page_limit
        self._overlap = overlap
        self._base = client.url.rstrip("/")
        self._retries = retries

    # -- the PageSource port -------------------------------------------------------------------------

    def list_pages(self) -> list[PageRef]:
        refs: list[PageRef] = []
        unknown = 0
        for space in self._spaces:
            params = {"spaceKey": space, "type": "page", "status": "current", "expand": LIST_EXPAND}
            for content in self._paged("rest/api/content", params):
                ref = self._ref(content, space)
                if ref is not None:
                    refs.append(ref)
                    unknown += not isinstance(content.get("restrictions"), dict)
        if unknown:
            log.warning(
                "Confluence did not return read restrictions for %d pages: they count as restricted and are "
                "not indexed (set CONFLUENCE_INCLUDE_RESTRICTED=true only if every bot user may read them)",
                unknown,
            )
        return refs

    def pages_modified_since(self, since: datetime | None) -> Iterator[Page]:
        spaces = ",".join(_quote_cql(s) for s in self._spaces)
        cql = f"space in ({spaces}) and type = page"
        if since is not None:
            # CQL has minute precision in the site's time zone: the overlap absorbs both; pages whose
            # version did not change are skipped by the caller, so overlap costs no embedding.
            start = since - self._overlap
            cql += f' and lastmodified >= "{start:%Y-%m-%d %H:%M}"'
        params = {"cql": cql, "expand": BODY_EXPAND}
        for content in self._paged("rest/api/content/search", params):
            page = self._page(content)
            if page is not None:
                yield page

    def get_page(self, page_id: str) -> Page | None:
        if not page_id.isdigit():
            return None
        try:
            content = self._client.get(f"rest/api/content/{page_id}", params={"expand": BODY_EXPAND})
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise ConfluenceError(self._describe(exc)) from exc
        if not isinstance(content, dict) or content.get("status", "current") != "current":
            return None
        return self._page(content)

    # -- helpers -------------------------------------------------------------------------------------

    def _paged(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        query = {**params, "start": 0, "limit": self._limit}
        url, absolute = path, False
        seen: set[str] = set()
        for _ in range(_MAX_BATCHES):
            try:
                response = self._client.get(url, params=query, absolute=absolute)
            except Exception as exc:
                raise ConfluenceError(self._describe(exc)) from exc
            if not isinstance(response, dict) or not isinstance(response.get("results"), list):
                raise ConfluenceError(f"unexpected answer from Confluence for {path}")
            for item in response["results"]:
                if isinstance(item, dict):
                    yield item
            next_link = (response.get("_links") or {}).get("next")
            if not next_link:
                return
            url = self._resolve_next(str(next_link))
            if url in seen:
                raise ConfluenceError("Confluence pagination loops on the same next link")
            seen.add(url)
            query, absolute = {}, True
        raise ConfluenceError("Confluence pagination did not end")

    def _describe(self, exc: BaseException) -> str:
        """One line an operator can act on: the setting, the address and what went wrong."""
        status = _status(exc)
        if status == 401:
            return (
                "Confluence refused our credentials (401): check CONFLUENCE_USERNAME/PASSWORD or "
                "CONFLUENCE_TOKEN"
            )
        if status == 403:
            return "Confluence denied access (403): the account cannot read that space"
        where = f"CONFLUENCE_URL {_without_userinfo(self._base)}"
        tries = f"{self._retries + 1} attempt{'s' if self._retries else ''}"
        if status is not None:
            return f"{where} answered HTTP {status}" + (f" ({tries})" if status in RETRY_STATUSES else "")
        return f"cannot reach {where}: {_cause(exc)} ({tries})"

    def _resolve_next(self, link: str) -> str:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            base = urlsplit(self._base)
            if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
                raise ConfluenceError("Confluence sent a next link to another host; refusing to follow it")
            return link
        # Relative to `_links.base`, which is our configured URL (context path included).
        return f"{self._base}/{link.lstrip('/')}"

    def _ref(self, content: Mapping[str, Any], space: str) -> PageRef | None:
        try:
            return PageRef(
                page_id=str(content["id"]),
                space=space,
                title=str(content.get("title") or ""),
                version=int((content.get("version") or {}).get("number") or 0),
                ancestor_ids=tuple(str(a["id"]) for a in content.get("ancestors") or [] if "id" in a),
                # The listing decides what may be indexed: when a proxy or server drops the restrictions
                # we asked for, the page counts as restricted (fail closed), not as public.
                restricted=_restricted(content, missing=True),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("skipping a malformed page entry in space %s", space)
            return None

    def _page(self, content: Mapping[str, Any]) -> Page | None:
        try:
            page_id = str(content["id"])
            version = content.get("version") or {}
            space = (content.get("space") or {}).get("key") or ""
            webui = (content.get("_links") or {}).get("webui") or f"/pages/viewpage.action?pageId={page_id}"
            body = ((content.get("body") or {}).get("storage") or {}).get("value") or ""
            return Page(
                page_id=page_id,
                space=str(space),
                title=str(content.get("title") or ""),
                version=int(version.get("number") or 0),
                url=f"{self._base}{webui}" if webui.startswith("/") else str(webui),
                body=str(body),
                last_modified=str(version.get("when") or ""),
                restricted=_restricted(content, missing=False),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("skipping a malformed page %r", content.get("id"))
            return None


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if code is not None else None


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _cause(exc: BaseException) -> str:
    """The innermost network failure in requests' and urllib3's wrapping, in words."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # Subclasses first: in urllib3 2 NameResolutionError is a NewConnectionError, which is in turn a
        # ConnectTimeoutError (for history's sake), though neither is a timeout.
        if isinstance(current, NameResolutionError):
            return "the host name does not resolve"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, NewConnectionError):
            if isinstance(current.__cause__, ConnectionRefusedError) or "refused" in str(current).lower():
                return "connection refused"
            return f"cannot connect ({str(current.__cause__ or current)[:200]})"
        if isinstance(current, ConnectTimeoutError):
            return "no connection within CONFLUENCE_TIMEOUT_S"
        if isinstance(current, ReadTimeoutError):
            return "no answer within CONFLUENCE_TIMEOUT_S"
        if isinstance(current, SSLError):
            return "TLS failed (CONFLUENCE_VERIFY_SSL, or a proxy's certificate)"
        # requests keeps urllib3's MaxRetryError in args; urllib3 keeps the last error in `reason`.
        todo.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        for attribute in ("reason", "__cause__", "__context__"):
            inner = getattr(current, attribute, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
    return type(exc).__name__
