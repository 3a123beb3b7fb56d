"""`wikibot … --help` documents every option of every command, with its default (issue 15)."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout

import pytest

from bot.cli import _parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    [commands] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _help(*argv: str) -> str:
    """The help text without its white space: argparse wraps lines at spaces and at hyphens."""
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return "".join(out.getvalue().split())


def _squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_every_command_has_help_and_shows_its_default(name: str) -> None:
    command = _commands()[name]
    text = _help(name)
    for action in command._actions:
        assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.dest}: no help text"
        # A flag is off by default, a None default is named in words by its help; any other is shown.
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help or _squeezed(f"(default: {action.default})") in text, (
                f"{name} {action.option_strings[0]}: its default {action.default!r} is not shown"
            )


def test_serve_help_documents_host_all_interfaces_and_port() -> None:
    text = _help("serve")
    for expected in ("--host HOST", "0.0.0.0 is every interface", "(default: 0.0.0.0)"):
        assert _squeezed(expected) in text
    assert _squeezed("--port PORT") in text and _squeezed("TCP port to listen on (default: 3000)") in text


def test_demo_help_names_its_data_dir_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "here:demo-data)" in _help("demo")
    monkeypatch.setenv("DATA_DIR", "/srv/wikibot-demo")
    assert "here:/srv/wikibot-demo)" in _help("demo")
