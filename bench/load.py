"""Load bench for replicas (issue 12, item 7): 50 Slack conversations in flight against one `wikibot serve`
and against three; prints JSON.

    python bench/load.py                          # 50 conversations, 1 then 3 replicas
    python bench/load.py --conversations 20 --replicas 1,2,3 --spread-s 2

The processes are the replicas' end-to-end test's (`tests/fakes/replicas.py`): `chroma run`, `redis-server`
and real `wikibot serve` replicas, each with its own empty DATA_DIR, on the sample wiki (the loopback
Confluence fake) and the loopback Slack API fake, extractive mode (no language model), default retrieval
(hybrid with the cross-encoder). Each round sends N signed `app_mention` events, each in its own thread,
within `--spread-s` seconds, round-robin over the replicas, and measures:

- ack latency: the HTTP response time of each event POST (Slack retries what is not answered in 3 s);
- answer latency: event sent → the answer visible in the Slack API fake (the placeholder's `chat.update`);
- RSS per replica (VmRSS), after the round and the highest seen during it.

The index is built once, by the first replica; replicas started for later rounds serve it at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from adapters.slack import texts as slack_texts  # noqa: E402
from bot.demo.confluence_fake import ConfluenceFake  # noqa: E402
from tests.fakes.replicas import CONFLUENCE_PASSWORD, CONFLUENCE_USER, Cluster, Replica, post_event  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402
from tests.slack.slack_payloads import ALICE, CHANNEL, envelope, mention  # noqa: E402


def _quantiles(values: list[float], *qs: int) -> dict[str, float]:
    """Percentiles (p50, p95, p99...) by linear interpolation, plus the maximum."""
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {**{f"p{q}": round(cuts[q - 1], 3) for q in qs}, "max": round(max(values), 3)}


def _answered(slack: FakeSlack, thread_ts: str) -> bool:
    return any(m.text != slack_texts.WORKING for m in slack.in_thread(CHANNEL, thread_ts))


async def _conversation(
    http: aiohttp.ClientSession, slack: FakeSlack, replica: Replica, question: str, delay_s: float
) -> tuple[int, float, float | None]:
    """One conversation: a mention in a new thread; (HTTP status, ack seconds, answer seconds or None)."""
    await asyncio.sleep(delay_s)
    event = mention(question, user=ALICE)
    sent = time.perf_counter()
    status, ack_s = await post_event(http, replica, envelope(event))
    try:
        await slack.wait_for(lambda: _answered(slack, event["ts"]), timeout=300)
    except TimeoutError:
        return status, ack_s, None
    return status, ack_s, time.perf_counter() - sent


async def _sample_rss(replicas: list[Replica], peaks: dict[str, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for replica in replicas:
            peaks[replica.name] = max(peaks.get(replica.name, 0.0), replica.rss_mb())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)


async def run_round(
    http: aiohttp.ClientSession,
    slack: FakeSlack,
    replicas: list[Replica],
    questions: list[str],
    *,
    conversations: int,
    spread_s: float,
) -> dict[str, Any]:
    # One question per replica first: the first answers of a process pay for lazy work nobody should bench.
    await asyncio.gather(*(_conversation(http, slack, r, questions[0], 0.0) for r in replicas))
    peaks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(replicas, peaks, stop))
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            _conversation(
                http,
                slack,
                replicas[n % len(replicas)],
                questions[n % len(questions)],
                n * spread_s / conversations,
            )
            for n in range(conversations)
        )
    )
    wall_s = time.perf_counter() - started
    stop.set()
    await sampler
    acks = [ack for _, ack, _ in results]
    answers = [answer for _, _, answer in results if answer is not None]
    return {
        "replicas": len(replicas),
        "conversations": conversations,
        "acked_200": sum(1 for status, _, _ in results if status == 200),
        "answered": len(answers),
        "ack_ms": {k: round(v * 1000, 1) for k, v in _quantiles(acks, 50, 99).items()},
        "answer_s": _quantiles(answers, 50, 95) if answers else None,
        "wall_s": round(wall_s, 2),
        "rss_mb": {r.name: round(r.rss_mb(), 1) for r in replicas},
        "peak_rss_mb": {name: round(mb, 1) for name, mb in peaks.items()},
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rows = json.loads((ROOT / "bench" / "questions.json").read_text(encoding="utf-8"))
    questions = [str(row["question"]) for row in rows if row.get("lang") == "en"]
    counts = sorted({int(n) for n in args.replicas.split(",")})
    slack = FakeSlack()
    await slack.start()
    out: dict[str, Any] = {
        "mode": "extractive (no LLM), hybrid retrieval with rerank",
        "spread_s": args.spread_s,
    }
    try:
        with (
            ConfluenceFake(username=CONFLUENCE_USER, password=CONFLUENCE_PASSWORD) as wiki,
            tempfile.TemporaryDirectory() as scratch,
            Cluster(
                Path(args.keep or scratch),
                confluence_url=wiki.base_url,
                slack_api_url=slack.api_url,
                sync_interval_minutes=60,  # the start-up sync builds the index; no tick during the rounds
                settings=dict(setting.split("=", 1) for setting in args.set),
            ) as cluster,
        ):
            out["embedder"] = cluster.prepared["embedding_model"]
            rounds = []
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                for count in counts:
                    while len(cluster.replicas) < count:
                        cluster.launch(f"r{len(cluster.replicas) + 1}")
                    replicas = cluster.replicas[:count]
                    await asyncio.gather(*(cluster.wait_ready(r) for r in replicas))
                    rounds.append(
                        await run_round(
                            http,
                            slack,
                            replicas,
                            questions,
                            conversations=args.conversations,
                            spread_s=args.spread_s,
                        )
                    )
            out["rounds"] = rounds
    finally:
        await slack.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50, help="conversations in flight per round")
    parser.add_argument("--spread-s", type=float, default=1.0, help="the events are sent within this time")
    parser.add_argument("--replicas", default="1,3", help="replica counts, one round each (default 1,3)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting for every replica"
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR (an empty folder) and keep the replicas' logs"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2))


if __name__ == "__main__":
    main()
