"""`wikibot teams-package`: the Teams app zip (manifest with the app id, two icons) ready to upload."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit

# The sources live in the top-level `manifest` package (package data), read through importlib.resources
# so the command works from an installed wheel as well as from a checkout.
MANIFEST_DIR: Traversable = files("manifest") / "teams"
APP_ID_PLACEHOLDER = "{{MICROSOFT_APP_ID}}"
PACKAGE_FILES = ("manifest.json", "color.png", "outline.png")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class DeveloperUrls:
    """The publisher's links Teams shows on the app's page; None keeps the manifest's placeholder."""

    website: str | None = None
    privacy: str | None = None
    terms: str | None = None


# The manifest's developer fields, and the placeholder host they ship with (to be replaced before publishing).
URL_FIELDS = {"website": "websiteUrl", "privacy": "privacyUrl", "terms": "termsOfUseUrl"}
PLACEHOLDER_HOST = "example.com"


def _developer_links(developer: dict[str, object], urls: DeveloperUrls | None) -> dict[str, str]:
    """The manifest's developer links (manifest key to URL): the template's, with the given ones instead."""
    links = {key: str(developer[key]) for key in URL_FIELDS.values()}
    for name, key in URL_FIELDS.items():
        url = getattr(urls, name) if urls is not None else None
        if url is not None:
            links[key] = url
    return links


def placeholder_links(
    urls: DeveloperUrls | None = None, *, template_dir: Traversable = MANIFEST_DIR
) -> tuple[str, ...]:
    """Which links ("website", "privacy", "terms") the package would keep on the placeholder host."""
    template = json.loads((template_dir / "manifest.json").read_text(encoding="utf-8"))
    links = _developer_links(template["developer"], urls)
    return tuple(
        name
        for name, key in URL_FIELDS.items()
        if (urlsplit(links[key]).hostname or "").removeprefix("www.") == PLACEHOLDER_HOST
    )


class AppIdError(ValueError):
    """The app id is not a GUID; str() says what one looks like, the caller names where it came from."""


def render_manifest(
    app_id: str, *, urls: DeveloperUrls | None = None, template_dir: Traversable = MANIFEST_DIR
) -> str:
    app_id = app_id.strip()
    if not _GUID.match(app_id):
        raise AppIdError(
            "must be the GUID of the bot's Azure app registration (like 00000000-0000-0000-0000-000000000000)"
        )
    template = (template_dir / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(template.replace(APP_ID_PLACEHOLDER, app_id.lower()))
    manifest["developer"].update(_developer_links(manifest["developer"], urls))
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def write_teams_package(
    *,
    app_id: str,
    out: Path,
    urls: DeveloperUrls | None = None,
    template_dir: Traversable = MANIFEST_DIR,
) -> Path:
    """Writes the zip Teams accepts for "Upload a custom app": its three files at the root."""
    manifest = render_manifest(app_id, urls=urls, template_dir=template_dir)
    out = out / "wikibot-teams.zip" if out.is_dir() else out
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest)
        for name in PACKAGE_FILES[1:]:
            archive.writestr(name, (template_dir / name).read_bytes())
    return out
