"""The chat page and the admin view as a browser gets them: files of the package, under a strict policy."""

from __future__ import annotations

import re

from tests.web.conftest import Client
from tests.web.html_check import Rendered


async def test_the_pages_load_only_their_own_scripts_and_styles(web: Client) -> None:
    for path, script in [("/", "/web/chat.js"), ("/admin", "/web/admin.js")]:
        response = await web.get(path)
        assert response.status == 200 and response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
        assert "require-trusted-types-for 'script'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        page = Rendered(await response.text())
        # No inline script or style: every one is a file the policy allows, served by this server.
        assert "style" not in page.tags and ("style", "") not in page.attributes
        assert not any(name.startswith("on") for name, _ in page.attributes)
        assets = [v for name, v in page.attributes if name in ("src", "href") and v.startswith("/web/")]
        assert script in assets and "/web/style.css" in assets
        for asset in assets:
            served = await web.get(asset)
            assert served.status == 200, asset
            assert served.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"


async def test_only_the_packages_assets_are_served(web: Client) -> None:
    for path in ["/web/../config.py", "/web/%2e%2e%2fapi.py", "/web/nope.js", "/web/chat.html", "/web/"]:
        assert (await web.get(path)).status == 404, path
    script = await web.get("/web/common.js")
    assert script.content_type == "text/javascript"
    # The page inserts server HTML in one place only, and through the policy the header names.
    text = await script.text()
    assert text.count(".innerHTML") == 1 and 'createPolicy("wikibot-html"' in text
    for name in ("chat.js", "admin.js"):
        assert ".innerHTML" not in await (await web.get(f"/web/{name}")).text()
