"""The Slack adapter's one input from the outside: a frozen config the composition root builds and checks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class SlackConfig:
    """Credentials of one Slack app; the adapter reads nothing else, the environment included.

    Secrets stay out of repr: a config may end up in a log line or a test failure.
    """

    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    # An app-level token (xapp-…) switches to Socket Mode: the app dials out, no public URL.
    app_token: str = field(repr=False)
    # The Web API base (GovSlack, an Enterprise proxy, a test fake); Socket Mode connects through it too.
    api_url: str

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)
