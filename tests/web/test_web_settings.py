"""The web channel's settings: what they accept, and the one line that says what is wrong (never a token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import SettingsError, load_settings
from bot.platforms import web_config
from bot.server import startup_line
from tests.test_cli import _wikibot

TOKEN_A = "tok-aaaaaaaaaaaaaaaa"
TOKEN_B = "tok-bbbbbbbbbbbbbbbb"


def settings(**values: Any) -> Any:
    return load_settings(_env_file=None, **values)


def test_tokens_are_named_for_the_logs_or_get_a_name_of_their_own() -> None:
    loaded = settings(web_tokens=f" alice:{TOKEN_A} , {TOKEN_B},")
    assert loaded.web_token_list == (("alice", TOKEN_A), ("", TOKEN_B))
    assert loaded.web_enabled
    names = [token.name for token in web_config(loaded).tokens]
    assert names[0] == "alice" and names[1].startswith("token-") and TOKEN_B not in names[1]
    assert TOKEN_B not in repr(web_config(loaded))
    # The log redaction knows each token on its own, as a log line would hold it.
    assert {TOKEN_A, TOKEN_B} <= set(loaded.secret_values())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"web_tokens": "alice:short"}, "WEB_TOKENS: entry 1: a token is at least 16 characters"),
        ({"web_tokens": f"{TOKEN_A},bad name:{TOKEN_B}"}, "WEB_TOKENS: entry 2: a name is 1-64 letters"),
        ({"web_tokens": f"a:{TOKEN_A},b:{TOKEN_A}"}, "WEB_TOKENS: entry 2 repeats a token"),
        ({"web_tokens": TOKEN_A, "admin_token": TOKEN_A}, "WEB_TOKENS: one of the tokens is ADMIN_TOKEN"),
        ({"web_trusted_proxies": "10.0.0.0/8, proxy.example"}, "WEB_TRUSTED_PROXIES: 'proxy.example' is not"),
        ({"web_user_header": "X User"}, "WEB_USER_HEADER: must be an HTTP header name"),
        ({"web_groups_header": "x-forwarded-user"}, "WEB_GROUPS_HEADER must differ from WEB_USER_HEADER"),
        ({"web_rate_limit_burst": 0}, "WEB_RATE_LIMIT_BURST:"),
    ],
)
def test_a_bad_web_setting_is_one_line_naming_it(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**values)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message
    assert TOKEN_A not in message and TOKEN_B not in message and "short" not in message.split(":", 2)[-1]


def test_trusted_proxies_take_addresses_and_cidrs() -> None:
    loaded = settings(web_trusted_proxies="10.0.0.0/8, 192.168.1.7, ::1")
    assert [str(n) for n in loaded.web_proxy_networks] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
    assert loaded.web_enabled and not settings().web_enabled


def test_the_startup_line_names_the_web_channel_when_it_is_on() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert "web chat / and /admin" in startup_line(settings(web_tokens=TOKEN_A), sock)
        assert "web" not in startup_line(settings(), sock)


def test_serve_refuses_anonymous_access_on_every_interface_in_one_line(tmp_path: Path) -> None:
    # Refused before it listens: the port is never bound.
    proc = _wikibot(tmp_path, "serve", "--host", "0.0.0.0", "--port", "3999", WEB_ALLOW_ANONYMOUS="true")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wikibot: WEB_ALLOW_ANONYMOUS=true"), proc.stderr
