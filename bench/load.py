"""Load bench for replicas (issue 12, item 7) and streamed answers (issue 14, item 6): 50 Slack conversations in
flight against one `wikibot serve` and against three; prints JSON.

    python bench/load.py                          # 50 conversations, 1 then 3 replicas
    python bench/load.py --conversations 20 --replicas 1,2,3 --spread-s 2
    python bench/load.py --stream-word-interval-s 0.05 --replicas 1   # a model streaming a word every 50 ms

The processes are the replicas' end-to-end test's (`tests/fakes/replicas.py`): `chroma run`, `redis-server`
and real `wikibot serve` replicas, each with its own empty DATA_DIR, on the sample wiki (the loopback
Confluence fake) and the loopback Slack API fake, extractive mode (no language model), default retrieval
(hybrid with the cross-encoder). Each round sends N signed `app_mention` events, each in its own thread,
within `--spread-s` seconds, round-robin over the replicas, and measures:

- ack latency: the HTTP response time of each event POST (Slack retries what is not answered in 3 s);
- answer latency: event sent → the answer finished in the Slack API fake (the stream stopped, or the last
  `chat.update`);
- RSS per replica (VmRSS), after the round and the highest seen during it.

With `--stream-word-interval-s`, the replicas answer through the LLM fake over LiteLLM's HTTP path, streaming
its answer a word at that interval, and the bench also measures the first visible text: event sent → the first
answer text at the Slack API fake (a stream's first piece, or a posted draft), and how long after the model's
first word it came (each question carries a reference, so its request to the model is found).

The index is built once, by the first replica; replicas started for later rounds serve it at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from adapters.slack import texts as slack_texts  # noqa: E402
from bot.demo.confluence_fake import ConfluenceFake  # noqa: E402
from tests.fakes.llm_server import FakeLLM, last_user_text  # noqa: E402
from tests.fakes.replicas import CONFLUENCE_PASSWORD, CONFLUENCE_USER, Cluster, Replica, post_event  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402
from tests.slack.slack_harness import finished  # noqa: E402
from tests.slack.slack_payloads import ALICE, CHANNEL, envelope, mention  # noqa: E402

# The methods that put answer text in front of the user, streamed or posted.
_TEXT_METHODS = ("chat.startStream", "chat.appendStream", "chat.postMessage", "chat.update")


def _quantiles(values: list[float], *qs: int) -> dict[str, float]:
    """Percentiles (p50, p95, p99...) by linear interpolation, plus the maximum."""
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {**{f"p{q}": round(cuts[q - 1], 3) for q in qs}, "max": round(max(values), 3)}


def _answered(slack: FakeSlack, thread_ts: str) -> bool:
    found = slack.in_thread(CHANNEL, thread_ts)
    return bool(found) and all(map(finished, found))


def _first_text_at(slack: FakeSlack, thread_ts: str) -> float | None:
    """When the first answer text of a thread reached the Slack fake (a placeholder is not text)."""
    ts_in_thread = {m.ts for m in slack.in_thread(CHANNEL, thread_ts)}
    for call in slack.calls:
        if call.method not in _TEXT_METHODS or not call.ok:
            continue
        in_thread = call.params.get("thread_ts") == thread_ts or call.params.get("ts") in ts_in_thread
        text = str(call.params.get("markdown_text") or call.params.get("text") or "")
        if in_thread and text and text != slack_texts.WORKING:
            return call.at
    return None


@dataclass
class _Result:
    status: int
    ack_s: float
    sent_at: float
    answer_s: float | None = None
    first_text_at: float | None = None


async def _conversation(
    http: aiohttp.ClientSession, slack: FakeSlack, replica: Replica, question: str, delay_s: float
) -> _Result:
    """One conversation: a mention in a new thread; the ack, and when its text first showed and finished."""
    await asyncio.sleep(delay_s)
    event = mention(question, user=ALICE)
    sent = time.perf_counter()
    status, ack_s = await post_event(http, replica, envelope(event))
    result = _Result(status, ack_s, sent)
    try:
        await slack.wait_for(lambda: _answered(slack, event["ts"]), timeout=300)
    except TimeoutError:
        return result
    result.answer_s = time.perf_counter() - sent
    result.first_text_at = _first_text_at(slack, event["ts"])
    return result


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
    llm: FakeLLM | None,
) -> dict[str, Any]:
    # One question per replica first: the first answers of a process pay for lazy work nobody should bench.
    await asyncio.gather(*(_conversation(http, slack, r, questions[0], 0.0) for r in replicas))
    peaks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(replicas, peaks, stop))
    started = time.perf_counter()
    asked = [f"{questions[n % len(questions)]} (ref q{n})" for n in range(conversations)]
    results = await asyncio.gather(
        *(
            _conversation(http, slack, replicas[n % len(replicas)], asked[n], n * spread_s / conversations)
            for n in range(conversations)
        )
    )
    wall_s = time.perf_counter() - started
    stop.set()
    await sampler
    acks = [r.ack_s for r in results]
    answers = [r.answer_s for r in results if r.answer_s is not None]
    out: dict[str, Any] = {
        "replicas": len(replicas),
        "conversations": conversations,
        "acked_200": sum(1 for r in results if r.status == 200),
        "answered": len(answers),
        "ack_ms": {k: round(v * 1000, 1) for k, v in _quantiles(acks, 50, 99).items()},
        "answer_s": _quantiles(answers, 50, 95) if answers else None,
    }
    if llm is not None:
        out |= _first_text(results, asked, llm)
    return out | {
        "wall_s": round(wall_s, 2),
        "rss_mb": {r.name: round(r.rss_mb(), 1) for r in replicas},
        "peak_rss_mb": {name: round(mb, 1) for name, mb in peaks.items()},
    }


def _first_text(results: list[_Result], asked: list[str], llm: FakeLLM) -> dict[str, Any]:
    """Event sent → first text at Slack, and model's first word → first text at Slack (matched by reference)."""
    first_words: dict[str, float] = {}
    for body, at in llm.first_words:
        found = re.search(r"\(ref (q\d+)\)", last_user_text(body))
        if found:
            first_words.setdefault(found.group(1), at)
    shown = [r.first_text_at - r.sent_at for r in results if r.first_text_at is not None]
    after_model = [
        r.first_text_at - first_words[ref]
        for r, question in zip(results, asked, strict=True)
        if r.first_text_at is not None and (ref := question.rsplit("(ref ", 1)[1].rstrip(")")) in first_words
    ]
    return {
        "first_text_s": _quantiles(shown, 50, 95) if shown else None,
        "first_text_after_model_first_word_s": _quantiles(after_model, 50, 95) if after_model else None,
        "matched_to_model": len(after_model),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rows = json.loads((ROOT / "bench" / "questions.json").read_text(encoding="utf-8"))
    questions = [str(row["question"]) for row in rows if row.get("lang") == "en"]
    counts = sorted({int(n) for n in args.replicas.split(",")})
    slack = FakeSlack()
    await slack.start()
    streaming = args.stream_word_interval_s is not None
    out: dict[str, Any] = {
        "mode": (
            f"LLM fake streaming a word every {args.stream_word_interval_s} s, hybrid retrieval with rerank"
            if streaming
            else "extractive (no LLM), hybrid retrieval with rerank"
        ),
        "spread_s": args.spread_s,
    }
    settings = dict(setting.split("=", 1) for setting in args.set)
    try:
        with (
            ConfluenceFake(username=CONFLUENCE_USER, password=CONFLUENCE_PASSWORD) as wiki,
            FakeLLM() as llm,
            tempfile.TemporaryDirectory() as scratch,
        ):
            if streaming:
                llm.word_interval_s = args.stream_word_interval_s
                settings |= {
                    "LITELLM_MODEL": "openai/wiki-bench",
                    "LITELLM_API_BASE": llm.url,
                    "LITELLM_API_KEY": "bench-key-123",
                    "LITELLM_NUM_RETRIES": "0",
                }
            with Cluster(
                Path(args.keep or scratch),
                confluence_url=wiki.base_url,
                slack_api_url=slack.api_url,
                sync_interval_minutes=60,  # the start-up sync builds the index; no tick during the rounds
                settings=settings,
            ) as cluster:
                out["embedder"] = cluster.prepared["embedding_model"]
                rounds = []
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                    for count in counts:
                        while len(cluster.replicas) < count:
                            cluster.launch(f"r{len(cluster.replicas) + 1}")
                        replicas = cluster.replicas[:count]
                        await asyncio.gather(*(cluster.wait_ready(r) for r in replicas))
                        llm.first_words.clear()
                        rounds.append(
                            await run_round(
                                http,
                                slack,
                                replicas,
                                questions,
                                conversations=args.conversations,
                                spread_s=args.spread_s,
                                llm=llm if streaming else None,
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
    parser.add_argument(
        "--stream-word-interval-s",
        type=float,
        metavar="S",
        help="answer with the LLM fake streaming a word every S seconds, and measure the first visible text",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2))


if __name__ == "__main__":
    main()
