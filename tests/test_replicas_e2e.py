"""Three real `wikibot serve` processes behind a pretend load balancer, as issue 12 asks (item 6).

Nothing in-process but the remote services: `chroma run`, `redis-server` and the replicas are processes
started and stopped here (`tests/fakes/replicas.py`); the Confluence fake and the Slack API fake listen on
loopback in this process and record what the replicas asked of them, which is what the tests read. Each
replica has its own empty DATA_DIR; the sync interval is a few seconds, so real scheduled ticks run.

The tests share one cluster and run in file order; each starts its own threads and reads only its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
import pytest_asyncio

from bot.demo.confluence_fake import ConfluenceFake, RecordedRequest
from tests.fakes.replicas import (
    ADMIN_TOKEN,
    CONFLUENCE_PASSWORD,
    CONFLUENCE_USER,
    Cluster,
    Replica,
    post_command,
    post_event,
)
from tests.slack.fake_slack import FakeSlack, Posted
from tests.slack.slack_harness import finished
from tests.slack.slack_payloads import ALICE, BOB, CHANNEL, envelope, mention, message

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

INTERVAL_MINUTES = 0.1  # 6 s: the writer's lease then expires after 3 s (half an interval, 3 s at least)
INTERVAL_S = INTERVAL_MINUTES * 60
ANSWER_TIMEOUT_S = 30.0
EDITED_PAGE = "1008"  # IT Service Desk Contacts


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceFake]:
    with ConfluenceFake(username=CONFLUENCE_USER, password=CONFLUENCE_PASSWORD) as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, wiki: ConfluenceFake, slack: FakeSlack
) -> AsyncIterator[Cluster]:
    workdir = tmp_path_factory.mktemp("replicas")
    with Cluster(
        workdir,
        confluence_url=wiki.base_url,
        slack_api_url=slack.api_url,
        sync_interval_minutes=INTERVAL_MINUTES,
    ) as started:
        replicas = [started.launch(name) for name in ("a", "b", "c")]
        # Three empty data folders, one empty index: one of them builds it, all three serve it.
        await asyncio.gather(*(started.wait_ready(r) for r in replicas))
        yield started


@pytest.fixture(scope="module")
def ready_at(cluster: Cluster) -> float:
    """When the three replicas were all ready (the first test asks for it)."""
    return time.time()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def _abc(cluster: Cluster) -> tuple[Replica, Replica, Replica]:
    a, b, c = cluster.replicas[:3]
    return a, b, c


def _answers(slack: FakeSlack, thread_ts: str) -> list[Posted]:
    """The bot's finished messages in a thread of the channel (a "working" placeholder does not count)."""
    return [m for m in slack.in_thread(CHANNEL, thread_ts) if finished(m)]


async def _wait_answers(slack: FakeSlack, thread_ts: str, count: int = 1) -> list[Posted]:
    def enough() -> list[Posted] | None:
        found = _answers(slack, thread_ts)
        return found if len(found) >= count else None

    return await slack.wait_for(enough, ANSWER_TIMEOUT_S)


async def _ask(http: aiohttp.ClientSession, slack: FakeSlack, replica: Replica, question: str) -> str:
    """A mention in a new thread, delivered to `replica`; returns the text of the bot's answer."""
    event = mention(question, user=ALICE)
    status, _ = await post_event(http, replica, envelope(event))
    assert status == 200
    return (await _wait_answers(slack, event["ts"]))[0].everything


async def _served(
    http: aiohttp.ClientSession, slack: FakeSlack, replica: Replica, room: str, *, deadline: float
) -> None:
    """Asks `replica` where the service desk is, in a new thread each time, until its answer gives `room`;
    fails when the deadline (a wall-clock time) passes first."""
    while True:
        answer = await _ask(http, slack, replica, "which room is the IT service desk in?")
        if room in answer:
            return
        assert time.time() < deadline, f"replica {replica.name} still answers without {room}: {answer}"
        await asyncio.sleep(0.5)


def _listings(wiki: ConfluenceFake, since: float) -> list[RecordedRequest]:
    """Each sync's listing of the space: the first batch of the page listing (its later batches follow
    `_links.next`)."""
    return [
        r
        for r in wiki.requests
        if r.at >= since and r.path.endswith("/rest/api/content") and r.query.get("start", "0") == "0"
    ]


def _body_fetches(wiki: ConfluenceFake, since: float) -> list[RecordedRequest]:
    return [r for r in wiki.requests if r.at >= since and "body." in r.query.get("expand", "")]


def _service_desk(room: str) -> str:
    return f"<h1>Service desk</h1><p>The IT service desk has moved to room {room}, on the third floor.</p>"


async def _until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.1)


async def test_an_event_delivered_to_a_retried_to_b_and_duplicated_to_c_is_answered_once(
    cluster: Cluster, slack: FakeSlack, http: aiohttp.ClientSession, ready_at: float
) -> None:
    a, b, c = _abc(cluster)
    root = mention("how do I connect to the VPN from home?", user=ALICE)
    body = envelope(root)
    # Slack thinks A missed it and retries to B; C gets the same message as message.channels too.
    acks = [
        await post_event(http, a, body),
        await post_event(http, b, body, retry=1),
        await post_event(http, c, envelope(message(root["text"], ts=root["ts"], user=ALICE))),
    ]
    assert [status for status, _ in acks] == [200, 200, 200]

    [answer] = await _wait_answers(slack, root["ts"])
    assert "VPN Access" in answer.everything
    await asyncio.sleep(2.0)  # a second answer would have set the thread's loading status at once
    assert [m.text for m in slack.in_thread(CHANNEL, root["ts"])] == [answer.text], "answered once"
    assert [thread for _, thread, _ in slack.status_history].count(root["ts"]) == 1, "worked on once"


async def test_a_follow_up_without_a_mention_on_another_replica_is_answered(
    cluster: Cluster, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    a, b, _ = _abc(cluster)
    root = mention("how do I connect to the VPN from home?", user=ALICE)
    await post_event(http, a, envelope(root))
    await _wait_answers(slack, root["ts"])

    # No mention: only a replica that knows the bot takes part in this thread answers it.
    follow_up = message("and what if it keeps disconnecting?", thread_ts=root["ts"], user=ALICE)
    status, _ = await post_event(http, b, envelope(follow_up))

    assert status == 200
    first, second = await _wait_answers(slack, root["ts"], 2)
    assert second.text and second.text != first.text


async def test_wiki_reset_through_b_forgets_threads_only_a_and_c_answered(
    cluster: Cluster, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    a, b, c = _abc(cluster)
    for replica, question in ((a, "how do I reset my MFA token?"), (c, "what is the password policy?")):
        root = mention(question, user=BOB)
        await post_event(http, replica, envelope(root))
        await _wait_answers(slack, root["ts"])

    status, answer = await post_command(http, b, channel=CHANNEL, user=BOB)

    assert status == 200
    assert answer["text"].startswith("Done: I forgot the 2 threads you had with me in this channel."), answer


async def test_an_edit_is_fetched_once_and_served_by_every_replica_within_two_intervals(
    cluster: Cluster, wiki: ConfluenceFake, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    edited = time.time()
    wiki.edit_page(EDITED_PAGE, body=_service_desk("zebracorn"))

    await asyncio.gather(
        *(_served(http, slack, r, "zebracorn", deadline=edited + 2 * INTERVAL_S) for r in _abc(cluster))
    )
    await asyncio.sleep(INTERVAL_S)  # another tick on every replica: nobody fetches it again
    assert len(_body_fetches(wiki, edited)) == 1, "fetched (and embedded) once, for all replicas"


async def test_the_wiki_is_listed_once_per_interval_not_once_per_replica(
    wiki: ConfluenceFake, ready_at: float
) -> None:
    since = ready_at
    # At least four intervals of real scheduled ticks on three replicas (the tests before took some of it).
    await asyncio.sleep(max(0.0, since + 4 * INTERVAL_S - time.time()))
    elapsed = time.time() - since
    listings = len(_listings(wiki, since))
    intervals = elapsed / INTERVAL_S
    assert intervals - 1.5 <= listings <= intervals + 1, (listings, round(intervals, 1))


async def test_after_sigkill_of_the_writer_mid_rebuild_an_edit_lands_and_the_half_built_collection_goes(
    cluster: Cluster, wiki: ConfluenceFake, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    writer = cluster.lease_holder()
    assert writer is not None
    live = cluster.active_collection()
    assert await cluster.collections() == [live]

    # A full rebuild on the writer, killed while it writes its new collection.
    async def rebuild() -> bool:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with http.post(writer.url("/admin/sync?full=1"), headers=headers) as response:
            return response.status == 202  # 409 while a scheduled sync runs: ask again

    await _until_async(rebuild, INTERVAL_S, "the writer starts a full rebuild")
    half_built: list[str] = []

    async def rebuilding() -> bool:
        half_built[:] = [n for n in await cluster.collections() if n != live]
        return bool(half_built)

    await _until_async(rebuilding, 30, "the rebuild's collection appears in Chroma")
    writer.kill()
    assert cluster.active_collection() == live, "killed before the rebuild was switched in"

    edited = time.time()
    wiki.edit_page(EDITED_PAGE, body=_service_desk("quokkaroom"))
    survivors = [r for r in _abc(cluster) if r is not writer]
    await asyncio.gather(
        *(_served(http, slack, r, "quokkaroom", deadline=edited + 3 * INTERVAL_S) for r in survivors)
    )

    assert cluster.lease_holder() in survivors
    assert await cluster.collections() == [live], "the dead writer's half-built collection is dropped"


async def test_a_replica_started_later_serves_the_index_within_30_s_and_fetches_no_page(
    cluster: Cluster, wiki: ConfluenceFake, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    started = time.time()
    late = cluster.launch("d")

    waited = await cluster.wait_ready(late, timeout_s=30)
    text = await _ask(http, slack, late, "how do I connect to the VPN from home?")

    assert waited < 30
    assert "VPN Access" in text
    assert _body_fetches(wiki, started) == [], "no page body fetched since the late replica started"


async def _until_async(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.05)
