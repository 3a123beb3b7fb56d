"""`wikibot teams-package`: the Teams app zip (manifest with the app id, two icons) ready to upload."""

from __future__ import annotations

import json
import re
import zipfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# The sources live in the top-level `manifest` package (package data), read through importlib.resources
# so the command works from an installed wheel as well as from a checkout.
MANIFEST_DIR: Traversable = files("manifest") / "teams"
APP_ID_PLACEHOLDER = "{{MICROSOFT_APP_ID}}"
PACKAGE_FILES = ("manifest.json", "color.png", "outline.png")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AppIdError(ValueError):
    """The app id is not a GUID; str() says what one looks like, the caller names where it came from."""


def render_manifest(app_id: str, *, template_dir: Traversable = MANIFEST_DIR) -> str:
    app_id = app_id.strip()
    if not _GUID.match(app_id):
        raise AppIdError(
            "must be the GUID of the bot's Azure app registration (like 00000000-0000-0000-0000-000000000000)"
        )
    template = (template_dir / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(template.replace(APP_ID_PLACEHOLDER, app_id.lower()))
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def write_teams_package(*, app_id: str, out: Path, template_dir: Traversable = MANIFEST_DIR) -> Path:
    """Writes the zip Teams accepts for "Upload a custom app": its three files at the root."""
    manifest = render_manifest(app_id, template_dir=template_dir)
    out = out / "wikibot-teams.zip" if out.is_dir() else out
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest)
        for name in PACKAGE_FILES[1:]:
            archive.writestr(name, (template_dir / name).read_bytes())
    return out
