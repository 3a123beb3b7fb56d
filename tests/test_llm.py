"""LiteLLMChatModel through LiteLLM's real HTTP path to a loopback OpenAI-compatible server."""

# Fixtures come from tests/fakes by import (no conftest registers them): that import looks unused to ruff.
# ruff: noqa: F401, F811

from __future__ import annotations

import logging
import time

import pytest

from rag.llm import ChatModelError, LiteLLMChatModel
from tests.fakes.llm_server import FakeLLM, fake_llm

QUESTION = [
    {
        "role": "system",
        "content": "Answer from the passages. Cite them as [n].\n\n[1] Holidays: 25 days a year.",
    },
    {"role": "user", "content": "How many holidays do I get?"},
]


def make_model(llm: FakeLLM, **overrides: object) -> LiteLLMChatModel:
    options: dict[str, object] = {
        "model": "openai/wiki-model",
        "api_base": llm.url,
        "api_key": "sk-test-secret-123",
        "timeout_s": 10.0,
        "num_retries": 0,
    }
    options.update(overrides)
    return LiteLLMChatModel(**options)  # type: ignore[arg-type]


async def test_completion_returns_the_model_text(fake_llm: FakeLLM) -> None:
    answer = await make_model(fake_llm).complete(messages=QUESTION)

    assert answer == "According to the wiki, Holidays: 25 days a year [1]."


async def test_messages_and_settings_arrive_as_sent(fake_llm: FakeLLM) -> None:
    model = make_model(fake_llm, temperature=0.3, max_tokens=123)

    await model.complete(messages=QUESTION)

    request = fake_llm.last_request
    assert request["messages"] == QUESTION
    assert request["model"] == "wiki-model"
    assert request["temperature"] == 0.3
    assert request["max_tokens"] == 123
    assert fake_llm.request_headers[-1]["authorization"] == "Bearer sk-test-secret-123"


async def test_keyless_local_server_gets_no_real_key(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")

    answer = await make_model(fake_llm, api_key="").complete(messages=QUESTION)

    assert answer.endswith("[1].")
    assert "sk-real-openai-key" not in fake_llm.request_headers[-1]["authorization"]


async def test_hosted_vllm_prefix_reaches_the_same_server(fake_llm: FakeLLM) -> None:
    answer = await make_model(fake_llm, model="hosted_vllm/local-llama", api_key="").complete(
        messages=QUESTION
    )

    assert answer.endswith("[1].")
    assert fake_llm.models_seen == ["local-llama"]


async def test_a_server_error_is_retried(fake_llm: FakeLLM) -> None:
    fake_llm.fail(500, times=1)

    answer = await make_model(fake_llm, num_retries=1).complete(messages=QUESTION)

    assert answer.endswith("[1].")
    assert len(fake_llm.requests) == 2


async def test_without_retries_a_server_error_is_a_chat_model_error(fake_llm: FakeLLM) -> None:
    fake_llm.fail(500, times=1)

    with pytest.raises(ChatModelError, match="wiki-model"):
        await make_model(fake_llm, num_retries=0).complete(messages=QUESTION)
    assert len(fake_llm.requests) == 1


async def test_slow_model_times_out_quickly(fake_llm: FakeLLM) -> None:
    fake_llm.delay_s = 10
    model = make_model(fake_llm, timeout_s=0.5, num_retries=2)

    started = time.monotonic()
    with pytest.raises(ChatModelError, match=r"did not answer within 0\.5 s"):
        await model.complete(messages=QUESTION)

    assert time.monotonic() - started < 2.5


async def test_fallback_model_answers_when_the_primary_keeps_failing(fake_llm: FakeLLM) -> None:
    fake_llm.fail(503, times=100, model="primary")
    model = make_model(fake_llm, model="openai/primary", fallbacks=["openai/backup"], num_retries=1)

    answer = await model.complete(messages=QUESTION)

    assert answer.endswith("[1].")
    assert "primary" in fake_llm.models_seen
    assert fake_llm.models_seen[-1] == "backup"


async def test_all_models_failing_is_a_chat_model_error(fake_llm: FakeLLM) -> None:
    fake_llm.fail(500, times=100)
    model = make_model(fake_llm, model="openai/primary", fallbacks=["openai/backup"])

    with pytest.raises(ChatModelError, match="fallbacks"):
        await model.complete(messages=QUESTION)
    assert set(fake_llm.models_seen) == {"primary", "backup"}


async def test_empty_answer_is_a_chat_model_error(fake_llm: FakeLLM) -> None:
    fake_llm.set_responder(lambda request: "  ")

    with pytest.raises(ChatModelError, match="empty answer"):
        await make_model(fake_llm).complete(messages=QUESTION)


async def test_rejected_key_is_named_and_never_logged(
    fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.fail(401, times=1)
    model = make_model(fake_llm)

    with caplog.at_level(logging.DEBUG), pytest.raises(ChatModelError, match="refused the API key") as raised:
        await model.complete(messages=QUESTION)

    assert "sk-test-secret-123" not in caplog.text
    assert "sk-test-secret-123" not in str(raised.value)
    assert "sk-test-secret-123" not in repr(model)


async def test_unreachable_server_is_a_chat_model_error() -> None:
    with FakeLLM() as llm:
        url = llm.url
    model = LiteLLMChatModel(model="openai/m", api_base=url, api_key="k", timeout_s=5, num_retries=0)

    with pytest.raises(ChatModelError, match="cannot reach"):
        await model.complete(messages=QUESTION)


def test_model_without_provider_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="provider"):
        LiteLLMChatModel(model="no-such-provider-model-xyz", timeout_s=5, num_retries=0)


def test_fake_condenses_follow_ups_for_the_standalone_prompt(fake_llm: FakeLLM) -> None:
    """The fake's default answers, which other tests rely on, shown through a plain HTTP client."""
    import httpx

    condense = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Rewrite the follow-up as a standalone question."},
            {"role": "user", "content": "History: ...\nFollow-up: and for interns?"},
        ],
    }
    response = httpx.post(fake_llm.url + "/chat/completions", json=condense, timeout=5)
    assert response.json()["choices"][0]["message"]["content"] == "STANDALONE: and for interns?"
    assert response.json()["usage"]["total_tokens"] > 0

    plain = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    streamed = httpx.post(fake_llm.url.removesuffix("/v1") + "/chat/completions", json=plain, timeout=5)
    assert streamed.headers["content-type"] == "text/event-stream"
    assert streamed.text.rstrip().endswith("data: [DONE]")


async def _streamed(model: LiteLLMChatModel) -> list[str]:
    return [piece async for piece in model.stream(messages=QUESTION)]


async def test_a_streamed_answer_arrives_in_pieces_that_make_the_whole(fake_llm: FakeLLM) -> None:
    pieces = await _streamed(make_model(fake_llm))

    assert len(pieces) > 3
    assert "".join(pieces) == "According to the wiki, Holidays: 25 days a year [1]."
    assert fake_llm.last_request["stream"] is True


async def test_a_stream_falls_back_when_the_primary_fails_before_its_first_piece(fake_llm: FakeLLM) -> None:
    fake_llm.fail(503, times=100, model="primary")
    model = make_model(fake_llm, model="openai/primary", fallbacks=["openai/backup"], num_retries=0)

    assert "".join(await _streamed(model)).endswith("[1].")
    assert fake_llm.models_seen[-1] == "backup"


async def test_a_stream_that_stalls_times_out_within_the_whole_answer_deadline(fake_llm: FakeLLM) -> None:
    fake_llm.word_interval_s = 5
    model = make_model(fake_llm, timeout_s=0.8)

    started = time.monotonic()
    pieces: list[str] = []
    with pytest.raises(ChatModelError, match=r"did not answer within 0\.8 s"):
        async for piece in model.stream(messages=QUESTION):
            pieces.append(piece)
    assert pieces and time.monotonic() - started < 2.5


async def test_a_model_failing_mid_stream_is_a_chat_model_error_without_the_key(
    fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.cut_stream_after = 3
    pieces: list[str] = []
    with pytest.raises(ChatModelError), caplog.at_level(logging.WARNING):
        async for piece in make_model(fake_llm).stream(messages=QUESTION):
            pieces.append(piece)
    assert 1 <= len(pieces) <= 3
    assert "sk-test-secret-123" not in caplog.text


_STALL_PROBE = """
import asyncio, sys, time
from rag.llm import LiteLLMChatModel

async def main(api_base: str) -> None:
    model = LiteLLMChatModel(model="openai/wiki-model", api_base=api_base, api_key="k-123", timeout_s=10, num_retries=0)
    await asyncio.to_thread(model.warm)
    stalls = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - before)

    ticker = asyncio.create_task(tick())
    await model.complete(messages=[{"role": "user", "content": "hi"}])
    async for _ in model.stream(messages=[{"role": "user", "content": "hi"}]):
        pass
    ticker.cancel()
    print(max(stalls))

asyncio.run(main(sys.argv[1]))
"""


def test_after_the_warm_up_a_first_answer_does_not_stall_the_event_loop(fake_llm: FakeLLM) -> None:
    import subprocess
    import sys
    from pathlib import Path

    # A fresh process: in this one, earlier tests have long imported what a first call imports.
    done = subprocess.run(
        [sys.executable, "-c", _STALL_PROBE, fake_llm.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    assert float(done.stdout.strip()) < 0.15, done.stdout
