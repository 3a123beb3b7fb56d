"""Two Slack replicas behind one load balancer: two real bots and cores sharing one Redis, one Slack fake.

Whichever replica Slack reaches, the bot behaves as one: a retry to the other is dropped, a thread one
answered is followed by the other, and a channel reset through either forgets threads the other answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rag.sessions import RedisSessionStore
from rag.shared_state import RedisChatState

from .fake_slack import FakeSlack
from .fake_slack_assistant import FakeAssistant
from .slack_harness import SlackServer
from .slack_payloads import ALICE, CHANNEL, DM, dm, mention, message
from .test_slack_http import answers, settle, wait_answers

Replicas = tuple[SlackServer, SlackServer]


@pytest.fixture
async def replicas(
    fake_slack: FakeSlack, chat_state: RedisChatState, shared_sessions: RedisSessionStore
) -> AsyncIterator[Replicas]:
    servers = []
    for _ in range(2):
        assistant = FakeAssistant(
            sessions=shared_sessions,
            participants=chat_state.participants(idle_s=3600),
            gate=chat_state.gate(turn_timeout_s=30, idle_s=3600),
        )
        server = SlackServer(fake_slack, assistant, dedupe=chat_state)
        await server.start()
        servers.append(server)
    yield servers[0], servers[1]
    for server in servers:
        await server.close()


async def test_an_event_delivered_to_one_replica_and_retried_to_the_other_is_answered_once(
    replicas: Replicas, fake_slack: FakeSlack
) -> None:
    a, b = replicas
    response, body = await a.event(mention("how do I deploy?"))
    assert response.status == 200
    retried = await b.deliver(body, retry=1)
    assert retried.status == 200
    await wait_answers(fake_slack, CHANNEL, body["event"]["ts"])
    await asyncio.gather(settle(a), settle(b))
    assert len(answers(fake_slack, CHANNEL, body["event"]["ts"])) == 1
    assert len(b.assistant.asked) == 0


async def test_a_dm_as_message_im_on_one_replica_and_as_app_mention_on_the_other_is_answered_once(
    replicas: Replicas, fake_slack: FakeSlack
) -> None:
    a, b = replicas
    as_mention = mention("vpn?", channel=DM)
    await asyncio.gather(a.event(dm(as_mention["text"], ts=as_mention["ts"])), b.event(as_mention))
    await wait_answers(fake_slack, DM, None)
    await asyncio.gather(settle(a), settle(b))
    assert len(answers(fake_slack, DM, None)) == 1


async def test_a_follow_up_without_a_mention_on_the_other_replica_is_answered_with_history(
    replicas: Replicas, fake_slack: FakeSlack
) -> None:
    a, b = replicas
    root = mention("how do I deploy?")
    await a.event(root)
    await wait_answers(fake_slack, CHANNEL, root["ts"])
    await b.event(message("and to staging?", thread_ts=root["ts"]))
    follow_up = (await wait_answers(fake_slack, CHANNEL, root["ts"], 2))[1]
    assert "earlier questions: how do I deploy?" in follow_up.text


async def test_wiki_reset_through_the_other_replica_forgets_a_thread_only_one_answered(
    replicas: Replicas, fake_slack: FakeSlack
) -> None:
    a, b = replicas
    root = mention("how do I deploy?", user=ALICE)
    await a.event(root)
    await wait_answers(fake_slack, CHANNEL, root["ts"])

    response = await b.command(channel=CHANNEL, user=ALICE)

    assert response.status == 200
    assert "I forgot the 1 thread you had with me in this channel" in response.json()["text"]
    await a.event(message("again", thread_ts=root["ts"]))
    assert "earlier questions: none" in (await wait_answers(fake_slack, CHANNEL, root["ts"], 2))[1].text
