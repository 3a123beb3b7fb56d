"""Who is asking: a bearer token, a trusted proxy's user header, or nobody (anonymous, loopback only).

Every way in is checked here, once per request, and every refusal says why in one short sentence (the
handlers answer it as a 401). A credential that is present but wrong is refused even where anonymous access
is allowed: a mistyped token must not quietly become somebody else's session.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from aiohttp import web

from adapters.web.config import WebConfig, WebToken

_MAX_USER_CHARS = 200


class Refused(Exception):
    """The request is not authenticated; str() is the reason, safe to show to the caller."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. `user_id` namespaces sessions and is what the question log hashes; `name`
    is for the logs."""

    user_id: str
    name: str
    admin: bool = False


def peer_address(request: web.Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The TCP peer, never a forwarded-for header: that one is whatever the caller wants it to be."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:  # a Unix socket
        return None
    # An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d: compared as the IPv4 address it is.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Authenticator:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        admin = (config.admin_token,) if config.admin_token is not None else ()
        self._candidates = (*config.tokens, *admin)

    def identify(self, request: web.Request) -> Identity:
        """The caller, or Refused."""
        config = self._config
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            # A trusted proxy authenticates by its own cookie: another site's page must not ask in its name.
            raise Refused("cross-site requests are refused")
        token = self._bearer(request)
        proxied = request.headers.get(config.user_header)
        if proxied is not None:
            user = self._proxy_user(request, proxied)
            groups = {g.strip() for g in request.headers.get(config.groups_header, "").split(",")}
            admin = bool(config.admin_group) and config.admin_group in groups
            return Identity(user_id=f"proxy:{user}", name=user, admin=admin or self._is_admin_token(token))
        if token is not None:
            return self._token_identity(token)
        if config.allow_anonymous and self._from_loopback(request):
            return Identity(user_id="anonymous", name="anonymous")
        raise Refused("sign in: send Authorization: Bearer <your token>")

    def is_admin(self, request: web.Request) -> bool:
        """For the server's own admin endpoints: the trusted proxy's admin group (the admin token they check
        themselves)."""
        try:
            return self.identify(request).admin
        except Refused:
            return False

    def _bearer(self, request: web.Request) -> WebToken | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Refused("the Authorization header must be: Bearer <your token>")
        digest = hashlib.sha256(value.strip().encode()).digest()
        found: WebToken | None = None
        # Every token is compared, a match or not: the time taken says nothing about which one was close.
        for candidate in self._candidates:
            if hmac.compare_digest(digest, candidate.digest):
                found = candidate
        if found is None:
            raise Refused("this token is not valid")
        return found

    def _is_admin_token(self, token: WebToken | None) -> bool:
        return token is not None and token is self._config.admin_token

    def _token_identity(self, token: WebToken) -> Identity:
        if self._is_admin_token(token):
            return Identity(user_id="admin", name="admin", admin=True)
        return Identity(user_id=f"token:{token.name}", name=token.name)

    def _proxy_user(self, request: web.Request, value: str) -> str:
        peer = peer_address(request)
        if peer is None or not any(peer in network for network in self._config.trusted_proxies):
            raise Refused(f"the {self._config.user_header} header is accepted only from a trusted proxy")
        user = value.strip()
        if not user or len(user) > _MAX_USER_CHARS or not user.isprintable():
            raise Refused(f"the {self._config.user_header} header does not hold a user name")
        return user

    @staticmethod
    def _from_loopback(request: web.Request) -> bool:
        peer = peer_address(request)
        return peer is not None and peer.is_loopback
