"""The loopback identity provider, one per test process, for every test that drives the real botbuilder stack.

The SDK caches the signing keys it fetched for the whole process (a day): a second provider, with a key of its
own, would see its tokens refused. So the fixture is registered once, as a plugin (tests/conftest.py), and
shared by tests/teams and the end-to-end tests outside it (tests/test_hostile_replies.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from .connect_proxy import LoopbackConnectProxy
from .identity_provider import HOSTS, LoopbackIdentityProvider

APP_ID = "00000000-1111-2222-3333-444444444444"
APP_PASSWORD = "loopback-client-secret"


@dataclass
class Identity:
    provider: LoopbackIdentityProvider
    proxy: LoopbackConnectProxy
    ca_bundle: Path


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Identity]:
    ca = trustme.CA()
    ca_bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    provider = LoopbackIdentityProvider(ca, app_id=APP_ID, app_password=APP_PASSWORD).start()
    proxy = LoopbackConnectProxy(dict.fromkeys(HOSTS, provider.port)).start()
    yield Identity(provider=provider, proxy=proxy, ca_bundle=ca_bundle)
    proxy.stop()
    provider.stop()


def route_to(identity: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard variables a corporate network would set; the SDK's HTTP calls must honour them."""
    for name in ("HTTP_PROXY", "ALL_PROXY", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", identity.proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(identity.ca_bundle))
