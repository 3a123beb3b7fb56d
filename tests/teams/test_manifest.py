"""The Teams app package: manifest in step with the commands the bot handles, icons of the right size."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from adapters.teams import AppIdError, write_teams_package
from adapters.teams.package import APP_ID_PLACEHOLDER, MANIFEST_DIR
from rag.commands import Command, parse_command

APP_ID = "0a1b2c3d-1111-2222-3333-444455556666"


def manifest_template() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def png_info(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def test_every_scope_has_one_list_offering_every_command_the_bot_handles() -> None:
    [bot] = manifest_template()["bots"]
    scopes = [scope for command_list in bot["commandLists"] for scope in command_list["scopes"]]
    assert sorted(scopes) == sorted(bot["scopes"]), "one command list per scope, every scope covered"
    for command_list in bot["commandLists"]:
        titles = [command["title"] for command in command_list["commands"]]
        assert len(titles) <= 10  # Teams' limit per list
        commands = {parse_command(title) for title in titles} - {None}
        assert commands == set(Command), f"{command_list['scopes']}: {titles}"


def test_prompt_starters_are_personal_questions_the_bot_answers() -> None:
    [bot] = manifest_template()["bots"]
    starters = {
        scope: [c for c in command_list["commands"] if parse_command(c["title"]) is None]
        for command_list in bot["commandLists"]
        for scope in command_list["scopes"]
    }
    # Teams shows a personal list's entries as prompt starters; in a group or a channel a question needs a
    # mention, so there only the commands are offered.
    assert len(starters.pop("personal")) >= 3
    assert all(not found for found in starters.values()), starters
    [personal] = [c for c in bot["commandLists"] if c["scopes"] == ["personal"]]
    for starter in personal["commands"]:
        assert len(starter["title"]) <= 32 and 0 < len(starter["description"]) <= 128  # Teams' limits
        if parse_command(starter["title"]) is None:
            assert starter["title"].endswith("?"), "a starter is sent as it is: a question"


def test_manifest_declares_the_three_bot_scopes_and_a_current_schema() -> None:
    manifest = manifest_template()
    [bot] = manifest["bots"]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    major, minor = (int(p) for p in str(manifest["manifestVersion"]).split("."))
    assert (major, minor) >= (1, 19)
    assert f"v{manifest['manifestVersion']}/" in str(manifest["$schema"])
    assert manifest["id"] == bot["botId"] == APP_ID_PLACEHOLDER
    assert len(manifest["name"]["short"]) <= 30
    assert len(manifest["description"]["short"]) <= 80


def test_icons_have_the_sizes_teams_requires() -> None:
    assert png_info((MANIFEST_DIR / "color.png").read_bytes())[:2] == (192, 192)
    width, height, _, colour = png_info((MANIFEST_DIR / "outline.png").read_bytes())
    assert (width, height) == (32, 32)
    assert colour == 6  # RGBA: the outline needs transparency


def test_package_has_the_app_id_filled_in_and_the_three_files_at_its_root(tmp_path: Path) -> None:
    out = write_teams_package(app_id=APP_ID.upper(), out=tmp_path / "dist" / "wikibot.zip")

    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == (MANIFEST_DIR / "color.png").read_bytes()
    assert manifest["id"] == APP_ID
    assert manifest["bots"][0]["botId"] == APP_ID
    assert APP_ID_PLACEHOLDER not in json.dumps(manifest)


def test_package_into_a_directory(tmp_path: Path) -> None:
    out = write_teams_package(app_id=APP_ID, out=tmp_path)
    assert out.parent == tmp_path and zipfile.is_zipfile(out)


@pytest.mark.parametrize("bad", ["", "not-a-guid", '0a1b2c3d-1111-2222-3333-44445555666"'])
def test_package_refuses_an_app_id_that_is_not_a_guid(tmp_path: Path, bad: str) -> None:
    with pytest.raises(AppIdError, match="GUID"):
        write_teams_package(app_id=bad, out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
