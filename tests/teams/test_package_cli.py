"""`wikibot teams-package`: the command, and the command from an installed wheel (manifests as package data)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "0a1b2c3d-1111-2222-3333-444455556666"


def test_teams_package_takes_the_app_id_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    out = io.StringIO()

    assert main(["teams-package", "--out", str(tmp_path / "app.zip")], stdout=out) == 0

    assert out.getvalue() == f"wrote {tmp_path / 'app.zip'}\n"
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["id"] == APP_ID


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "wikibot: MICROSOFT_APP_ID is not set"),
        (["--app-id", "not-a-guid"], "wikibot: MICROSOFT_APP_ID: must be the GUID"),
    ],
)
def test_teams_package_names_the_variable_when_the_app_id_is_missing_or_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code = main(["teams-package", *argv, "--out", str(tmp_path / "app.zip")], stdout=io.StringIO())

    assert code == 2
    assert capsys.readouterr().err.startswith(expected)
    assert not (tmp_path / "app.zip").exists()


def _pip(*args: str, env: dict[str, str]) -> None:
    # --no-index: the wheel is built and installed from local files only, as on an offline machine.
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "--disable-pip-version-check", "-q"],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.slow
def test_teams_package_works_from_an_installed_wheel(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", minversion="69")  # the build backend, used in place (no isolation)
    # A copy of the sources: building writes build/ and an egg-info beside pyproject.toml.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("bot", "rag", "adapters", "manifest"):
        shutil.copytree(ROOT / package, src / package, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    _pip("wheel", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src), env=env)
    [wheel] = (tmp_path / "dist").glob("wikibot-*.whl")
    site = tmp_path / "site"
    _pip("install", "--target", str(site), str(wheel), env=env)
    shutil.rmtree(src)  # nothing of a source tree is left to fall back on

    # Run from a folder outside any checkout, with only the installed copy on the path.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env={**env, "PYTHONPATH": str(site)},
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = run(sys.executable, "-c", "import adapters.teams.package as p; print(p.__file__, p.MANIFEST_DIR)")
    assert where.returncode == 0, where.stderr
    assert all(Path(path).is_relative_to(site) for path in where.stdout.split()), where.stdout
    proc = run(str(site / "bin" / "wikibot"), "teams-package", "--app-id", APP_ID, "--out", "app.zip")

    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(elsewhere / "app.zip") as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert json.loads(archive.read("manifest.json"))["bots"][0]["botId"] == APP_ID
        assert archive.read("outline.png") == (ROOT / "manifest" / "teams" / "outline.png").read_bytes()


LINKS = {
    "websiteUrl": "https://wiki.yourco.com/wikibot",
    "privacyUrl": "https://yourco.com/privacy",
    "termsOfUseUrl": "https://yourco.com/terms",
}


def _developer(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        developer: dict[str, str] = json.loads(archive.read("manifest.json"))["developer"]
    return developer


def test_teams_package_links_come_from_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--website-url", LINKS["websiteUrl"], "--privacy-url", LINKS["privacyUrl"]]
    argv += ["--terms-url", LINKS["termsOfUseUrl"], "--app-id", APP_ID, "--out", str(tmp_path / "app.zip")]

    assert main(["teams-package", *argv], stdout=io.StringIO()) == 0

    assert {k: _developer(tmp_path / "app.zip")[k] for k in LINKS} == LINKS
    assert capsys.readouterr().err == ""  # nothing left to warn about


def test_teams_package_links_come_from_the_settings_and_an_option_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    monkeypatch.setenv("TEAMS_WEBSITE_URL", "https://settings.yourco.com/")
    monkeypatch.setenv("TEAMS_PRIVACY_URL", LINKS["privacyUrl"])
    monkeypatch.setenv("TEAMS_TERMS_URL", LINKS["termsOfUseUrl"])
    out = tmp_path / "app.zip"

    argv = ["teams-package", "--website-url", LINKS["websiteUrl"], "--out", str(out)]
    assert main(argv, stdout=io.StringIO()) == 0

    assert {k: _developer(out)[k] for k in LINKS} == LINKS


def test_teams_package_warns_in_one_line_when_placeholder_links_are_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--app-id", APP_ID, "--website-url", LINKS["websiteUrl"], "--out", str(tmp_path / "app.zip")]

    assert main(["teams-package", *argv], stdout=io.StringIO()) == 0

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("wikibot: warning: ") and "TEAMS_PRIVACY_URL, TEAMS_TERMS_URL" in line
    assert "TEAMS_WEBSITE_URL" not in line
    assert "example.com" in _developer(tmp_path / "app.zip")["privacyUrl"]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (
            ["--website-url", "http://yourco.com/wikibot"],
            {},
            "wikibot: --website-url: must be an https:// URL",
        ),
        (["--terms-url", "https://"], {}, "wikibot: --terms-url: must be an https:// URL"),
        (
            [],
            {"TEAMS_PRIVACY_URL": "ftp://yourco.com/privacy"},
            "wikibot: TEAMS_PRIVACY_URL: must be an https://",
        ),
    ],
)
def test_teams_package_refuses_a_link_that_is_not_https_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["teams-package", "--app-id", APP_ID, *argv, "--out", str(tmp_path / "app.zip")])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(expected)
    assert not (tmp_path / "app.zip").exists()
