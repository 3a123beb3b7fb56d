"""The chat page at /, the admin view at /admin, and their assets: files of this package, nothing from a CDN.

The pages hold no data and no secret (they fetch what they show with the caller's credentials), so they are
served to anyone; every script and style is a file under /web/, which the Content-Security-Policy names as
the only source. No inline script or style runs, and HTML can be inserted only through the pages' one
Trusted Types policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import PurePath

from aiohttp import web

from adapters.web.api import harden

ASSET_PREFIX = "/web/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types wikibot-html",
    ]
)


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str


class Pages:
    """Reads the package's static files once, at mount."""

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}
        for item in (resources.files("adapters.web") / "static").iterdir():
            content_type = _TYPES.get(PurePath(item.name).suffix)
            if content_type is not None:
                self._files[item.name] = _File(item.read_bytes(), content_type)

    async def chat(self, _request: web.Request) -> web.Response:
        return self._page("chat.html")

    async def admin(self, _request: web.Request) -> web.Response:
        return self._page("admin.html")

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        found = self._files.get(name)
        if found is None or name.endswith(".html"):
            raise web.HTTPNotFound()
        response = web.Response(body=found.body, headers={"Content-Type": found.content_type})
        harden(response)
        # Small files that change with a release: revalidated, never stale.
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _page(self, name: str) -> web.Response:
        page = self._files[name]
        response = web.Response(
            body=page.body,
            headers={"Content-Type": page.content_type, "Content-Security-Policy": PAGE_POLICY},
        )
        harden(response)
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        return response
