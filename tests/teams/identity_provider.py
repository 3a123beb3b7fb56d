"""A loopback stand-in for login.botframework.com and login.microsoftonline.com.

It holds an RSA key, serves the OpenID metadata and JWKS the Bot Framework SDK fetches to check inbound
tokens, answers msal's tenant discovery and client-credentials token requests, and mints the tokens the
Bot Framework would sign. It speaks HTTPS with a certificate for both real host names, issued by a
throwaway CA; tests reach it through `LoopbackConnectProxy`, exactly as the SDK would reach the real hosts
through a corporate proxy. It runs on background threads because the SDK calls it with blocking
`requests` from inside the event loop.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

BOTFRAMEWORK_HOST = "login.botframework.com"
MICROSOFT_LOGIN_HOST = "login.microsoftonline.com"
HOSTS = (BOTFRAMEWORK_HOST, MICROSOFT_LOGIN_HOST)
CHANNEL_ISSUER = "https://api.botframework.com"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TokenRequest:
    tenant: str
    form: dict[str, str]


@dataclass
class IdentityLog:
    paths: list[str] = field(default_factory=list)
    token_requests: list[TokenRequest] = field(default_factory=list)
    issued_access_tokens: set[str] = field(default_factory=set)


class LoopbackIdentityProvider:
    def __init__(self, ca: trustme.CA, *, app_id: str, app_password: str) -> None:
        self.key = new_rsa_key()
        self.kid = "loopback-signing-key"
        self.app_id = app_id
        self.app_password = app_password
        self.log = IdentityLog()
        self.delay_s = 0.0  # how long each answer takes: a slow identity provider must not stall the bot
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*HOSTS).configure_cert(context)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # The handshake runs in the handler thread, so one stalled client cannot block the others.
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-idp", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> LoopbackIdentityProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- tokens the Bot Framework channel would send to the bot -------------------------------------
    def mint(
        self,
        *,
        service_url: str,
        audience: str | None = None,
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": CHANNEL_ISSUER,
            "aud": audience if audience is not None else self.app_id,
            "serviceurl": service_url,
            "nbf": now - 60 if expires_in > 0 else now + expires_in - 600,
            "iat": now - 60 if expires_in > 0 else now + expires_in - 600,
            "exp": now + expires_in,
        }
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid, "typ": "JWT"}
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams", "emulator"]})
        return {"keys": [jwk]}

    # --- HTTP ---------------------------------------------------------------------------------------
    def _answer(self, method: str, host: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.log.paths.append(f"{method} {host}{path}")
        base = f"https://{host}"
        if host == BOTFRAMEWORK_HOST and path == "/v1/.well-known/openidconfiguration":
            return 200, {
                "issuer": CHANNEL_ISSUER,
                "jwks_uri": f"{base}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        if host == BOTFRAMEWORK_HOST and path == "/v1/.well-known/keys":
            return 200, self.jwks()
        if host != MICROSOFT_LOGIN_HOST:
            return 404, {"error": "not_found"}
        parts = [p for p in path.split("/") if p]
        if path.startswith("/common/discovery/instance"):
            tenant_url = form.get("authorization_endpoint", f"{base}/common/oauth2/v2.0/authorize")
            tenant = urlsplit(tenant_url).path.split("/")[1]
            return 200, {
                "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            tenant = parts[0]
            return 200, {
                "issuer": f"{base}/{tenant}/v2.0",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "jwks_uri": f"https://{BOTFRAMEWORK_HOST}/v1/.well-known/keys",
            }
        if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            with self._lock:
                self.log.token_requests.append(TokenRequest(tenant=parts[0], form=form))
            if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
                return 401, {"error": "invalid_client", "error_description": "bad client credentials"}
            now = int(time.time())
            access_token = jwt.encode(
                {
                    "aud": CHANNEL_ISSUER,
                    "appid": self.app_id,
                    "iat": now,
                    "exp": now + 3600,
                    "jti": str(uuid.uuid4()),
                },
                self.key,
                algorithm="RS256",
                headers={"kid": self.kid},
            )
            with self._lock:
                self.log.issued_access_tokens.add(access_token)
            return 200, {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access_token,
            }
        return 404, {"error": "not_found"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, method: str) -> None:
                url = urlsplit(self.path)
                host = (self.headers.get("Host") or "").split(":")[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(url.query).items()}
                form.update({k: v[0] for k, v in parse_qs(body).items()})
                time.sleep(provider.delay_s)
                status, payload = provider._answer(method, host, url.path, form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

        return Handler
