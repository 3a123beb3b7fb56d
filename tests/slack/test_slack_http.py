"""The real Bolt app over HTTP, requests signed as Slack signs them, against the loopback Slack Web API."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.slack import texts
from rag import texts as core_texts

from .fake_slack import APP_ID, BOT_USER_ID, TEAM_ID, FakeSlack, Posted
from .fake_slack_assistant import PAGE, FakeAssistant
from .slack_harness import SlackServer, finished
from .slack_payloads import (
    ALICE,
    BOB,
    CHANNEL,
    DM,
    as_json,
    dm,
    envelope,
    mention,
    message,
    own_message,
    sign,
    slash_command,
)


def answers(fake: FakeSlack, channel: str, thread_ts: str | None) -> list[Posted]:
    """The bot's finished messages in a thread: not the "working" placeholder, a stream still going or a draft
    still marked as being written."""
    return [m for m in fake.in_thread(channel, thread_ts) if finished(m)]


async def wait_answers(
    fake: FakeSlack, channel: str, thread_ts: str | None, count: int = 1, *, timeout: float = 5.0
) -> list[Posted]:
    return await fake.wait_for(
        lambda: (found := answers(fake, channel, thread_ts)) and len(found) >= count and found, timeout
    )


async def settle(slack: SlackServer) -> None:
    """Lets any wrongly started answer run to the end before asserting that nothing more happened."""
    await asyncio.sleep(0.3)
    await slack.bot.wait_idle()


async def test_channel_mention_gets_one_threaded_answer_citing_the_page(
    slack: SlackServer, fake_slack: FakeSlack
):
    event = mention("how do I deploy?")

    response, _ = await slack.event(event)

    assert response.status == 200
    [reply] = await wait_answers(fake_slack, CHANNEL, event["ts"])
    assert reply.thread_ts == event["ts"]
    assert "*Answer* to: how do I deploy?" in reply.text  # markdown bold became mrkdwn bold
    assert f"<{PAGE.url}|[1] {PAGE.title}>" in reply.everything  # the Sources line links the page
    context = [block for block in reply.blocks if block["type"] == "context"]
    assert PAGE.url in context[0]["elements"][0]["text"]
    await settle(slack)
    assert fake_slack.in_thread(CHANNEL, None) == []  # nothing posted at the channel's top level
    assert len(fake_slack.in_thread(CHANNEL, event["ts"])) == 1  # the placeholder became the answer


async def test_a_direct_message_gets_an_answer(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    await slack.event(dm("where are the VPN docs?"))

    [reply] = await wait_answers(fake_slack, DM, None)
    assert "where are the VPN docs?" in reply.text
    assert PAGE.url in reply.everything
    assert assistant.asked[0].platform == "slack" and assistant.asked[0].user_id == ALICE


async def test_follow_up_in_the_thread_uses_the_history_without_a_new_mention(
    slack: SlackServer, fake_slack: FakeSlack
):
    first = mention("how do I deploy?")
    await slack.event(first)
    await wait_answers(fake_slack, CHANNEL, first["ts"])

    await slack.event(message("and to staging?", thread_ts=first["ts"]))

    replies = await wait_answers(fake_slack, CHANNEL, first["ts"], count=2)
    assert "earlier questions: how do I deploy?" in replies[1].text


async def test_dm_top_level_is_one_conversation_and_a_dm_thread_its_own(
    slack: SlackServer, fake_slack: FakeSlack
):
    first = dm("first question")
    await slack.event(first)
    await wait_answers(fake_slack, DM, None)
    await slack.event(dm("second question"))
    replies = await wait_answers(fake_slack, DM, None, count=2)
    assert "earlier questions: first question" in replies[1].text

    await slack.event(dm("in a thread", thread_ts=first["ts"]))
    [threaded] = await wait_answers(fake_slack, DM, first["ts"])
    assert "earlier questions: none" in threaded.text


async def test_a_mention_delivered_as_app_mention_and_as_message_is_answered_once(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    first = mention("how do I deploy?")
    await slack.event(first)
    await wait_answers(fake_slack, CHANNEL, first["ts"])

    follow_up = mention("and rollbacks?", thread_ts=first["ts"])
    same_as_message = message(follow_up["text"], ts=follow_up["ts"], thread_ts=first["ts"])
    await asyncio.gather(slack.event(same_as_message), slack.event(follow_up))

    await wait_answers(fake_slack, CHANNEL, first["ts"], count=2)
    await settle(slack)
    assert len(answers(fake_slack, CHANNEL, first["ts"])) == 2
    assert [m.text for m in assistant.asked] == ["how do I deploy?", "and rollbacks?"]


async def test_a_dm_delivered_as_message_im_and_as_app_mention_is_answered_once(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    as_mention = mention("vpn?", channel=DM)
    as_message = dm(as_mention["text"], ts=as_mention["ts"])

    await asyncio.gather(slack.event(as_message), slack.event(as_mention))

    await wait_answers(fake_slack, DM, None)
    await settle(slack)
    assert len(answers(fake_slack, DM, None)) == 1
    assert len(assistant.asked) == 1


async def test_channel_chatter_outside_the_bots_threads_is_left_alone(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    first = mention("how do I deploy?")
    await slack.event(first)
    await wait_answers(fake_slack, CHANNEL, first["ts"])

    await slack.event(message("lunch anyone?"))  # top level, no mention
    await slack.event(message("unrelated thread", thread_ts="1600000000.000100"))  # a thread without the bot
    await slack.event(message(f"<@{BOB}> what do you think?", thread_ts=first["ts"]))  # addressed to Bob
    await settle(slack)

    assert len(assistant.asked) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_wiki_reset_in_a_dm_confirms_ephemerally_and_forgets(slack: SlackServer, fake_slack: FakeSlack):
    await slack.event(dm("first question"))
    await wait_answers(fake_slack, DM, None)

    response = await slack.command(channel=DM, user=ALICE)

    assert response.status == 200 and response.elapsed_s < 3.0
    assert response.json() == {"text": core_texts.RESET_PRIVATE_DONE, "response_type": "ephemeral"}
    await slack.event(dm("second question"))
    replies = await wait_answers(fake_slack, DM, None, count=2)
    assert "earlier questions: none" in replies[1].text


async def test_wiki_reset_in_a_channel_forgets_only_the_callers_threads(
    slack: SlackServer, fake_slack: FakeSlack
):
    alices = mention("alice asks", user=ALICE)
    bobs = mention("bob asks", user=BOB)
    await slack.event(alices)
    await slack.event(bobs)
    await wait_answers(fake_slack, CHANNEL, alices["ts"])
    await wait_answers(fake_slack, CHANNEL, bobs["ts"])

    response = await slack.command(channel=CHANNEL, user=ALICE)

    assert response.status == 200 and response.elapsed_s < 3.0
    assert response.json()["response_type"] == "ephemeral"
    assert "1 thread you had with me in this channel" in response.json()["text"]
    await slack.event(message("alice again", thread_ts=alices["ts"], user=ALICE))
    await slack.event(message("bob again", thread_ts=bobs["ts"], user=BOB))
    assert "earlier questions: none" in (await wait_answers(fake_slack, CHANNEL, alices["ts"], 2))[1].text
    assert "earlier questions: bob asks" in (await wait_answers(fake_slack, CHANNEL, bobs["ts"], 2))[1].text


async def test_wiki_reset_in_a_channel_without_threads_says_how_to_reset_one(slack: SlackServer):
    response = await slack.command(channel=CHANNEL, user=BOB)

    assert response.status == 200
    assert "Nothing to reset" in response.json()["text"]
    assert response.json()["text"] == core_texts.RESET_PLACE_NOTHING


async def test_reset_inside_a_thread_resets_only_that_thread(slack: SlackServer, fake_slack: FakeSlack):
    one, two = mention("question one"), mention("question two")
    await slack.event(one)
    await slack.event(two)
    await wait_answers(fake_slack, CHANNEL, one["ts"])
    await wait_answers(fake_slack, CHANNEL, two["ts"])

    await slack.event(mention("reset", thread_ts=one["ts"]))

    confirmation = (await wait_answers(fake_slack, CHANNEL, one["ts"], 2))[1]
    assert confirmation.text == core_texts.RESET_THREAD
    await slack.event(message("again one", thread_ts=one["ts"]))
    await slack.event(message("again two", thread_ts=two["ts"]))
    assert "earlier questions: none" in (await wait_answers(fake_slack, CHANNEL, one["ts"], 3))[2].text
    assert (
        "earlier questions: question two" in (await wait_answers(fake_slack, CHANNEL, two["ts"], 2))[1].text
    )


async def test_reset_in_a_dm_thread_leaves_the_dm_conversation(slack: SlackServer, fake_slack: FakeSlack):
    first = dm("top question")
    await slack.event(first)
    await wait_answers(fake_slack, DM, None)
    await slack.event(dm("thread question", thread_ts=first["ts"]))
    await wait_answers(fake_slack, DM, first["ts"])

    await slack.event(dm("reset", thread_ts=first["ts"]))
    assert (await wait_answers(fake_slack, DM, first["ts"], 2))[1].text == core_texts.RESET_THREAD

    await slack.event(dm("top again"))
    assert "earlier questions: top question" in (await wait_answers(fake_slack, DM, None, 2))[1].text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda raw: sign(raw, secret="not-the-signing-secret"), id="wrong-secret"),
        pytest.param(lambda raw: sign(raw, timestamp=int(time.time()) - 6 * 60), id="older-than-5-minutes"),
        pytest.param(lambda raw: {}, id="unsigned"),
        pytest.param(lambda raw: sign(raw + " "), id="body-tampered"),
    ],
)
async def test_a_badly_signed_request_is_refused_and_nothing_answered(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant, headers
):
    raw = as_json(envelope(mention("how do I deploy?")))

    response = await slack.post(raw, headers(raw))

    assert response.status == 401
    await settle(slack)
    assert assistant.asked == []
    assert fake_slack.calls_of("chat.postMessage") == []


async def test_a_retried_event_is_answered_once(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    event = mention("how do I deploy?")
    _, body = await slack.event(event)

    for attempt in (1, 2):  # Slack's redeliveries: the same event_id, signed again
        assert (await slack.deliver(body, retry=attempt)).status == 200

    await wait_answers(fake_slack, CHANNEL, event["ts"])
    await settle(slack)
    assert len(assistant.asked) == 1
    assert len(fake_slack.in_thread(CHANNEL, event["ts"])) == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(own_message("my own answer", channel=DM, channel_type="im"), id="own-dm-message"),
        pytest.param(own_message("my own answer", thread_ts="1700000000.000001"), id="own-thread-message"),
        pytest.param(
            message(
                "a bot", channel=DM, channel_type="im", user=None, subtype="bot_message", bot_id="B0OTHER"
            ),
            id="other-bot",
        ),
        pytest.param(
            dm("hello", subtype="message_changed", message={"type": "message", "user": ALICE, "text": "x"}),
            id="edit",
        ),
        pytest.param(dm("", subtype="message_deleted", deleted_ts="1700000000.000001"), id="deletion"),
        pytest.param(message(f"<@{ALICE}> has joined the channel", subtype="channel_join"), id="join"),
        pytest.param(dm("hello", subtype="channel_topic"), id="other-subtype"),
    ],
)
async def test_bot_messages_edits_deletions_and_joins_are_ignored(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant, event
):
    response, _ = await slack.event(event)

    assert response.status == 200
    await settle(slack)
    assert assistant.asked == []
    assert fake_slack.calls_of("chat.postMessage") == []


async def test_the_bots_own_reply_in_its_thread_does_not_loop(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    first = mention("how do I deploy?")
    await slack.event(first)
    [reply] = await wait_answers(fake_slack, CHANNEL, first["ts"])

    await slack.event(own_message(reply.text, ts=reply.ts, thread_ts=first["ts"]))
    await settle(slack)

    assert len(assistant.asked) == 1


async def test_the_ack_is_immediate_and_work_shows_within_a_second_when_the_answer_takes_10_s(
    fake_slack: FakeSlack,
):
    slow = FakeAssistant(delay_s=10)
    server = SlackServer(fake_slack, slow)
    await server.start()
    try:
        event, in_dm = mention("a slow question"), dm("a slow question")
        for sent in (event, in_dm):
            response, _ = await server.event(sent)
            assert response.status == 200
            assert response.elapsed_s < 3.0

        started = time.perf_counter()
        # A thread shows a loading status; the top level of a DM, which has no thread, a "working" message.
        status = await fake_slack.wait_for(
            lambda: fake_slack.statuses.get((CHANNEL, event["ts"])), timeout=1.0
        )
        [placeholder] = await fake_slack.wait_for(lambda: fake_slack.in_thread(DM, None), timeout=1.0)
        assert time.perf_counter() - started < 1.0
        assert status.status == texts.STATUS and status.loading_messages
        assert placeholder.text == texts.WORKING
        assert fake_slack.in_thread(CHANNEL, event["ts"]) == []  # the answer itself is still on its way
    finally:
        await server.close()  # cancels the answers in flight


async def test_a_429_from_chat_post_message_is_retried_and_delivered(
    slack: SlackServer, fake_slack: FakeSlack
):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    event = mention("how do I deploy?")

    await slack.event(event)

    [reply] = await wait_answers(fake_slack, CHANNEL, event["ts"])
    assert PAGE.url in reply.everything
    statuses = [call.status for call in fake_slack.calls_of("chat.postMessage")]
    assert statuses == [429, 200]


async def test_a_message_with_only_a_file_gets_a_short_polite_reply(
    slack: SlackServer, fake_slack: FakeSlack
):
    files = [{"id": "F0FILE", "name": "screenshot.png", "mimetype": "image/png"}]
    await slack.event(dm("", subtype="file_share", files=files))

    [reply] = await wait_answers(fake_slack, DM, None)
    assert reply.text == core_texts.FILE_ONLY


async def test_a_bare_mention_gets_the_help(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    event = mention("")
    await slack.event(event)

    [reply] = await wait_answers(fake_slack, CHANNEL, event["ts"])
    assert "Ask me anything about our Confluence wiki" in reply.text
    assert assistant.answerer.questions == []


async def test_a_failing_core_gets_a_short_human_message_and_the_server_keeps_going(fake_slack: FakeSlack):
    failing = FakeAssistant(error=RuntimeError("chroma exploded: Traceback (most recent call last)"))
    server = SlackServer(fake_slack, failing)
    await server.start()
    try:
        event = mention("how do I deploy?")
        await server.event(event)
        [reply] = await wait_answers(fake_slack, CHANNEL, event["ts"])
        assert reply.text == core_texts.FAILURE
        assert "Traceback" not in reply.everything and "chroma" not in reply.everything

        failing.error = None
        again = mention("and now?")
        await server.event(again)
        assert "*Answer* to: and now?" in (await wait_answers(fake_slack, CHANNEL, again["ts"]))[0].text
        assert await server.get("/healthz") == 200
    finally:
        await server.close()


async def test_a_model_that_never_answers_gets_a_timeout_message(fake_slack: FakeSlack):
    stuck = FakeAssistant(delay_s=30, answer_timeout_s=0.5)
    server = SlackServer(fake_slack, stuck)
    await server.start()
    try:
        event = dm("a question")
        await server.event(event)
        [reply] = await wait_answers(fake_slack, DM, None)
        assert reply.text == core_texts.TIMEOUT
    finally:
        await server.close()


async def test_when_the_placeholder_cannot_be_edited_the_answer_is_posted_anew(
    slack: SlackServer, fake_slack: FakeSlack
):
    fake_slack.fail_next("chat.update", error="cant_update_message")
    event = mention("how do I deploy?")

    await slack.event(event)

    found = await wait_answers(fake_slack, CHANNEL, event["ts"])
    assert "*Answer* to: how do I deploy?" in found[0].text


async def test_slack_refusing_every_post_is_logged_and_the_server_keeps_running(
    slack: SlackServer, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
):
    # The answer, then the note that Slack refused it: the thread's loading status needs no message.
    fake_slack.fail_next("chat.postMessage", error="not_in_channel", times=2)

    await slack.event(mention("how do I deploy?"))
    await fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postMessage")) >= 2)
    await settle(slack)

    assert "not_in_channel" in caplog.text
    assert await slack.get("/healthz") == 200
    event = mention("second try")
    await slack.event(event)
    await wait_answers(fake_slack, CHANNEL, event["ts"])


async def test_a_long_answer_is_split_below_slacks_limits_with_sources_once(fake_slack: FakeSlack):
    paragraph = "Lorem ipsum dolor sit amet, **consectetur** adipiscing elit. " * 20
    code = "```python\n" + "\n".join(f"print({n})" for n in range(400)) + "\n```"
    long = FakeAssistant(answer=f"{paragraph}\n\n{code}\n\n{paragraph} [1]")
    server = SlackServer(fake_slack, long)
    await server.start()
    try:
        event = mention("tell me everything")
        await server.event(event)
        await fake_slack.wait_for(lambda: len(answers(fake_slack, CHANNEL, event["ts"])) >= 3)
        await server.bot.wait_idle()
    finally:
        await server.close()
    parts = answers(fake_slack, CHANNEL, event["ts"])
    assert all(call.ok for call in fake_slack.calls)  # Slack accepted every part
    sections = [
        block["text"]["text"] for part in parts for block in part.blocks if block["type"] == "section"
    ]
    assert all(len(text) <= 3000 for text in sections)
    assert all(text.count("```") % 2 == 0 for text in sections)  # a cut code block is closed and reopened
    assert "".join(sections).count("print(") == 400
    assert [PAGE.url in part.everything for part in parts] == [False] * (len(parts) - 1) + [True]


async def test_url_verification_is_answered_with_the_challenge(slack: SlackServer):
    raw = as_json(
        {
            "token": "legacy",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )

    response = await slack.post(raw, sign(raw))

    assert response.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.body


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        '"a string"',
        '{"type": "event_callback", "event": "not an object"}',
        '{"type": "event_callback", "team_id": "T0FAKE01", "event": {"type": "message", "channel": 5, "ts": []}}',
        '{"type": "event_callback", "team_id": "T:1", "event": {"type": "app_mention", "user": "U0ALICE", '
        '"channel": "C0GENERAL", "ts": "1.2", "text": null}}',
        "\u0000" * 10,
    ],
)
async def test_a_signed_but_malformed_body_is_refused_without_a_crash(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant, raw: str
):
    response = await slack.post(raw, sign(raw))

    assert response.status < 500  # a 5xx would make Slack redeliver it again and again
    await settle(slack)
    assert assistant.asked == []
    assert await slack.get("/healthz") == 200


async def test_mention_text_reaches_the_core_without_the_bot_mention(
    slack: SlackServer, assistant: FakeAssistant
):
    await slack.event(mention("what is <https://wiki.example.com/x|this page> &amp; <#C0OPS|ops>?"))

    await asyncio.wait_for(_until(lambda: assistant.asked), 5)
    assert assistant.asked[0].text == "what is this page (https://wiki.example.com/x) & #ops?"
    assert BOT_USER_ID not in assistant.asked[0].text


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.02)


async def test_a_quick_follow_up_waits_for_the_answer_before_it(fake_slack: FakeSlack):
    thinking = FakeAssistant(delay_s=0.3)
    server = SlackServer(fake_slack, thinking)
    await server.start()
    try:
        await server.event(dm("first question"))
        await server.event(dm("second question"))  # sent while the first is still being answered
        replies = await wait_answers(fake_slack, DM, None, count=2)
    finally:
        await server.close()
    assert "earlier questions: none" in replies[0].text
    assert "earlier questions: first question" in replies[1].text


async def test_a_slow_reset_is_still_acknowledged_in_time_saying_so(fake_slack: FakeSlack):
    sluggish = FakeAssistant(reset_delay_s=1.5, reset_timeout_s=0.3)
    server = SlackServer(fake_slack, sluggish)
    await server.start()
    try:
        response = await server.command(channel=DM, user=ALICE)
    finally:
        await server.close()
    assert response.status == 200 and response.elapsed_s < 3.0
    assert response.json() == {"text": core_texts.RESET_SLOW, "response_type": "ephemeral"}


@pytest.mark.parametrize(
    ("team", "app"),
    [
        pytest.param("T0OTHER1", APP_ID, id="another-workspace"),
        pytest.param(TEAM_ID, "A0OTHER", id="another-app"),
    ],
)
async def test_a_signed_event_for_another_installation_is_not_answered(
    slack: SlackServer, assistant: FakeAssistant, team: str, app: str
):
    response = await slack.deliver(envelope(dm("what is the VPN address?"), team=team, app=app))
    await settle(slack)
    assert response.status == 200, "acknowledged, so that Slack does not retry it"
    assert assistant.asked == []


async def test_a_slash_command_from_another_workspace_gets_no_reply_and_resets_nothing(
    slack: SlackServer, fake_slack: FakeSlack, assistant: FakeAssistant
):
    await slack.event(dm("first question"))
    await wait_answers(fake_slack, DM, None)
    raw = slash_command(channel=DM, user=ALICE, team="T0OTHER1")
    response = await slack.post(raw, sign(raw), content_type="application/x-www-form-urlencoded")
    assert response.status == 200 and response.body == "", "no reply at all to another workspace"
    assert assistant.asked[-1].text == "first question", "the command never reached the core"
