"""The web channel's one input from the outside: a frozen config the composition root builds and checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network


@dataclass(frozen=True, kw_only=True)
class WebToken:
    """A bearer token and who it stands for. Kept as its SHA-256 digest: compared in constant time and
    never shown (repr, logs, a test failure)."""

    name: str
    digest: bytes = field(repr=False)

    @classmethod
    def of(cls, name: str, token: str) -> WebToken:
        digest = hashlib.sha256(token.encode()).digest()
        # An unnamed token still needs a stable user of its own: a short hash of it, never the token.
        return cls(name=name or f"token-{digest.hex()[:10]}", digest=digest)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    per_minute: float
    burst: int


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """Who may use the web channel and how much; the adapter reads nothing else, the environment included.

    With no tokens, no trusted proxies and no anonymous access the channel is not mounted at all.
    """

    tokens: tuple[WebToken, ...] = ()
    # Empty: no admin through this channel but by the trusted proxy's admin group.
    admin_token: WebToken | None = None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"
    admin_group: str = ""
    allow_anonymous: bool = False
    rate_limit: RateLimit = RateLimit(per_minute=12, burst=6)
    max_question_chars: int = 2000

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.trusted_proxies or self.allow_anonymous)

    @property
    def max_body_bytes(self) -> int:
        # The longest question the core accepts even if every character came as a JSON \uXXXX escape pair,
        # plus the envelope: a question over the limit still reaches the core, which says it is too long.
        return self.max_question_chars * 12 + 1024
