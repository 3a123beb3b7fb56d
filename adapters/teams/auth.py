"""Bot Framework authentication built from our TeamsConfig, with every inbound auth failure made a 401.

botbuilder turns only PermissionError into 401: an expired or badly signed token (PyJWT errors), a key id
it does not know (an IndexError deep inside) or garbage come out as 500, which the Bot Framework treats as
our outage and retries. Here every failure to authenticate the request is a PermissionError, logged
without the token.

Two blocking calls hide in the SDK's async code: the signing-key fetch (`requests`, once a day) and the
outbound token (msal). Authentication runs on a worker thread with its own event loop, and outbound
credentials are created once per audience and refreshed on a worker thread, so neither stalls other chats.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import requests
from aiohttp import web
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    ServiceClientCredentialsFactory,
)

from adapters.teams.config import TeamsConfig

_LOG = logging.getLogger(__name__)
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_MAX_CACHED_CREDENTIALS = 8


@dataclass(frozen=True)
class BotFrameworkConfig:
    """The configuration object botbuilder reads by attribute name; built from our config, never from env.

    None of the optional endpoint attributes (OAUTH_URL, TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL, ...)
    is present: setting any one switches the SDK to a mode that needs all of them.
    """

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str

    @classmethod
    def from_config(cls, config: TeamsConfig) -> BotFrameworkConfig:
        return cls(
            APP_ID=config.app_id,
            APP_PASSWORD=config.app_password,
            APP_TYPE=config.app_type,
            APP_TENANTID=config.tenant_id,
        )


def scrub(text: str) -> str:
    """A log-safe message: anything shaped like a JWT is replaced."""
    return _JWT_LIKE.sub("<token>", text)[:300]


class ReusedCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Hands out one credentials object per (app, audience, endpoint) so msal's token cache survives.

    The SDK's own factory builds fresh credentials, hence a fresh msal app and a token request, for every
    turn. The token is acquired (or silently refreshed near expiry) on a worker thread here, so the
    synchronous `signed_session` the connector calls on the event loop finds it in msal's cache.
    """

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._credentials: OrderedDict[tuple[str, str, str, bool], Any] = OrderedDict()

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (app_id or "", oauth_scope or "", login_endpoint or "", bool(validate_authority))
        credentials = self._credentials.get(key)
        if credentials is None:
            credentials = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
            self._credentials[key] = credentials
            while len(self._credentials) > _MAX_CACHED_CREDENTIALS:
                self._credentials.popitem(last=False)
        else:
            self._credentials.move_to_end(key)
        if isinstance(credentials, AppCredentials) and credentials.microsoft_app_id:
            await self._warm(credentials)
        return credentials

    @staticmethod
    async def _warm(credentials: AppCredentials) -> None:
        try:
            await asyncio.to_thread(credentials.get_access_token)
        except Exception as exc:  # the send that needs the token reports the failure
            _LOG.warning("teams: could not get an outbound Bot Framework token: %s", scrub(str(exc)))


class StrictBotFrameworkAuthentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    """ConfigurationBotFrameworkAuthentication whose request authentication never ends in a 500."""

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        inner = super().authenticate_request
        try:
            # asyncio.run on a worker thread: the SDK's key fetch is a blocking `requests` call.
            return await asyncio.to_thread(asyncio.run, inner(activity, auth_header))
        except requests.RequestException as exc:
            # Our identity provider is unreachable: not the caller's fault, so not a 401.
            _LOG.error("teams: cannot fetch Bot Framework signing keys: %s", scrub(str(exc)))
            raise web.HTTPServiceUnavailable(text="authentication keys unavailable") from None
        except Exception as exc:  # every other failure means the token did not prove who sent it
            _LOG.warning(
                "teams: rejected a request (%s: %s) for conversation %s",
                type(exc).__name__,
                scrub(str(exc)) or "no detail",
                scrub(str(getattr(activity.conversation, "id", "?"))),
            )
            raise PermissionError("Unauthorized") from None


def build_authentication(config: TeamsConfig) -> StrictBotFrameworkAuthentication:
    sdk_config = BotFrameworkConfig.from_config(config)
    credentials = ReusedCredentialsFactory(ConfigurationServiceClientCredentialFactory(sdk_config))
    return StrictBotFrameworkAuthentication(sdk_config, credentials_factory=credentials)
