"""The real botbuilder stack over HTTP, against loopback fakes of everything Microsoft runs.

identity provider (HTTPS, throwaway CA)  <- CONNECT proxy <- HTTPS_PROXY <- the SDK's `requests`/msal
connector fake (the activity's serviceUrl, on 127.0.0.1, reached directly thanks to NO_PROXY)
the bot: aiohttp app with add_teams_routes' endpoint, POST /api/messages
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters.teams.bot import Timing
from adapters.teams.routes import TeamsEndpoint, mount_teams_endpoint
from bot.config import Settings
from bot.platforms import teams_config
from rag.ports import Dedupe

from .connector_fake import ConnectorFake
from .fake_assistant import FakeAssistant
from .identity import APP_ID, APP_PASSWORD, Identity, route_to

TENANT_ID = "72f988bf-0000-0000-0000-000000000001"
BOT_ACCOUNT = {"id": f"28:{APP_ID}", "name": "WikiBot"}
USER_ACCOUNT = {"id": "29:alice", "aadObjectId": "aad-alice", "name": "Alice"}
PERSONAL = {"id": "a:1personal-chat-alice", "conversationType": "personal", "tenantId": TENANT_ID}
GROUP_CHAT = {"id": "19:group-chat-0123@thread.v2", "conversationType": "groupChat", "tenantId": TENANT_ID}
# Teams' pace between stream updates is 1.5 s; tests keep the rule at a pace that keeps them quick.
FAST = Timing(stream_interval_s=0.25)


@pytest.fixture(autouse=True)
def proxy_environment(identity: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
    route_to(identity, monkeypatch)


@pytest.fixture
async def connector() -> AsyncIterator[ConnectorFake]:
    fake = await ConnectorFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


def teams_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "microsoft_app_id": APP_ID,
        "microsoft_app_password": SecretStr(APP_PASSWORD),
        "microsoft_app_type": "MultiTenant",
        "microsoft_app_tenant_id": "",
        "teams_allow_anonymous": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Sent:
    status: int
    elapsed_s: float
    body: str


class TeamsBot:
    """The bot behind its real HTTP endpoint, and what a Bot Framework channel would send it."""

    def __init__(
        self, url: str, endpoint: TeamsEndpoint | None, identity: Identity, connector: ConnectorFake
    ):
        self.url = url
        self.endpoint = endpoint
        self.identity = identity
        self.connector = connector

    def token(self, **kwargs: Any) -> str:
        return self.identity.provider.mint(service_url=self.connector.url, **kwargs)

    async def send(self, activity: dict[str, Any], *, authorization: str | None = "default") -> Sent:
        if authorization == "default":
            authorization = f"Bearer {self.token()}"
        headers = {"Authorization": authorization} if authorization else {}
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/api/messages", json=activity, headers=headers) as response,
        ):
            body = await response.text()
        return Sent(status=response.status, elapsed_s=time.monotonic() - started, body=body)

    def activity(
        self,
        text: str,
        *,
        conversation: dict[str, Any] | None = None,
        activity_id: str = "1700000000001",
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return {
            "type": "message",
            "id": activity_id,
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": USER_ACCOUNT,
            "recipient": BOT_ACCOUNT,
            "conversation": conversation or PERSONAL,
            "channelData": {"tenant": {"id": TENANT_ID}},
            "text": text,
            "textFormat": "plain",
            "locale": "en-US",
            "entities": entities or [],
        }

    def feedback_click(
        self,
        reply_to_id: str,
        reaction: str = "like",
        *,
        feedback: object = '{"feedbackText":""}',
        conversation: dict[str, Any] | None = None,
        activity_id: str = "f:1700000000999",
    ) -> dict[str, Any]:
        """A click on a feedback button of the bot's message reply_to_id, as Teams sends it."""
        click = self.activity("", conversation=conversation, activity_id=activity_id)
        click.update(
            type="invoke",
            name="message/submitAction",
            replyToId=reply_to_id,
            text=None,
            value={"actionName": "feedback", "actionValue": {"reaction": reaction, "feedback": feedback}},
        )
        return click


async def start_bot(
    settings: Settings,
    assistant: FakeAssistant,
    identity: Identity,
    connector: ConnectorFake,
    timing: Timing | None = None,
    dedupe: Dedupe | None = None,
) -> tuple[TeamsBot, web.AppRunner]:
    app = web.Application()
    endpoint = mount_teams_endpoint(
        app, config=teams_config(settings), assistant=assistant, timing=timing, dedupe=dedupe
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return TeamsBot(f"http://127.0.0.1:{port}", endpoint, identity, connector), runner


@pytest.fixture
async def teams(
    identity: Identity, connector: ConnectorFake, assistant: FakeAssistant
) -> AsyncIterator[TeamsBot]:
    bot, runner = await start_bot(teams_settings(), assistant, identity, connector, timing=FAST)
    yield bot
    await runner.cleanup()
