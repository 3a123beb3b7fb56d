"""The chat model behind every answer: any provider LiteLLM speaks, one `complete()` call.

Model strings are LiteLLM's: "openai/gpt-4o-mini", "azure/<deployment>", "mistral/mistral-large-latest",
"ollama/llama3.1", "hosted_vllm/<model>" (any OpenAI-compatible server, with `api_base`). Without
`api_key`, LiteLLM reads the provider's own variable (OPENAI_API_KEY, AZURE_API_KEY, MISTRAL_API_KEY, ...).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# LiteLLM reads these when first imported or first used. Without them it fetches its model cost map,
# Anthropic beta headers and other lists from GitHub, and loads a `.env` from the working directory
# into os.environ ("DEV" mode): nothing may reach the network or read settings behind our back.
_LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_MODE": "PRODUCTION",
}
# The OpenAI client refuses to start without a key, but local OpenAI-compatible servers (vLLM, llama.cpp,
# LM Studio) need none; sending OPENAI_API_KEY to a server that is not OpenAI's would leak it.
_NO_KEY = "no-key-required"
_MAX_LOGGED_ERROR = 300


class ChatModelError(Exception):
    """The model gave no usable answer. str() is one short line, safe to show to an operator."""


def _import_litellm() -> ModuleType:
    """Imports LiteLLM offline. Deferred to first use: the import takes seconds and most CLI commands
    never need a model."""
    os.environ.update(_LITELLM_ENV)
    import litellm

    # Its "Give Feedback / Get Help" banner would land in our logs on every handled error.
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMChatModel:
    """`ChatModel` over `litellm.acompletion`, with LiteLLM's own retries and fallbacks.

    `timeout_s` bounds the whole call, retries and fallbacks included: a user waits at most that
    long for an answer or an apology. Retries and fallbacks therefore mostly help with quick failures
    (5xx, 429, connection refused), which are the common ones. Fallback models share `api_base` and
    `api_key` (one gateway, several models); leave both empty to let each provider use its own variables.
    """

    def __init__(
        self,
        *,
        model: str,
        api_base: str = "",
        api_key: str = "",
        timeout_s: float,
        num_retries: int,
        fallbacks: Sequence[str] = (),
        temperature: float = 0.1,
        max_tokens: int = 800,
    ) -> None:
        model = model.strip()
        if not model:
            raise ValueError("LITELLM_MODEL is empty: set it, e.g. openai/gpt-4o-mini")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if num_retries < 0:
            raise ValueError("num_retries must not be negative")
        self._litellm = _import_litellm()
        self._model = model
        self._api_base = api_base.strip()
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._num_retries = num_retries
        self._fallbacks = [f.strip() for f in fallbacks if f.strip()]
        self._temperature = temperature
        self._max_tokens = max_tokens
        for name in (self._model, *self._fallbacks):
            self._check_provider(name)
            self._check_credentials(name)

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:
        # Never the key.
        return f"LiteLLMChatModel(model={self._model!r}, api_base={self._api_base!r}, fallbacks={self._fallbacks!r})"

    def _check_provider(self, model: str) -> None:
        """Fails at startup, not on the first question, when LiteLLM cannot route the model string."""
        try:
            self._litellm.get_llm_provider(model=model, api_base=self._api_base or None)
        except Exception as exc:
            raise ValueError(
                f"LiteLLM does not know the provider of model {model!r}: "
                "prefix it with one, e.g. openai/, azure/, mistral/, ollama/, hosted_vllm/"
            ) from exc

    def _check_credentials(self, model: str) -> None:
        """Fails at startup when the provider's key is missing, rather than every answer falling back.

        Only where LiteLLM can tell: with our own key or base URL (a local or self-hosted server, which may
        need none) we cannot, and AWS or Google credentials may come from the machine's role, not a variable.
        """
        if self._api_key or self._api_base:
            return
        missing = self._litellm.validate_environment(model=model).get("missing_keys") or []
        keys = [k for k in missing if str(k).endswith(("_KEY", "_TOKEN")) and not str(k).startswith("AWS_")]
        if keys:
            raise ValueError(
                f"model {model!r} needs a key: set LITELLM_API_KEY (or {' / '.join(keys)}), "
                "or LITELLM_API_BASE for a server that needs none"
            )

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self._model,
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "timeout": self._timeout_s,
            "num_retries": self._num_retries,
            # Some models refuse parameters (o-series and temperature): drop them rather than fail.
            "drop_params": True,
        }
        if self._api_base:
            kwargs["api_base"] = self._api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        elif self._api_base and self._model.startswith("openai/"):
            kwargs["api_key"] = _NO_KEY
        if self._fallbacks:
            kwargs["fallbacks"] = list(self._fallbacks)
        return kwargs

    def warm(self) -> None:
        """Runs one answer and one streamed answer through LiteLLM with a canned reply (no request leaves the
        process), in a loop of this thread's own: LiteLLM and the OpenAI client import most of themselves, and
        tiktoken loads its encodings, on the first call, which would otherwise stall the event loop for about
        half a second on the first question (measured: 0.38 s for the first answer, 0.21 s for the first stream).
        """

        async def canned() -> None:
            kwargs = {**self._request_kwargs(), "fallbacks": None, "num_retries": 0}
            messages = [{"role": "user", "content": "warm-up"}]
            await self._litellm.acompletion(messages=messages, mock_response="ok", **kwargs)
            stream = await self._litellm.acompletion(
                messages=messages, mock_response="ok", stream=True, **kwargs
            )
            async for _ in stream:
                pass

        try:
            asyncio.run(canned())
            # What the real request path imports beyond a canned reply: the client's resources, the encodings.
            importlib.import_module("openai.resources.chat.completions.completions")
            importlib.import_module("litellm.litellm_core_utils.default_encoding")
        except Exception as exc:  # a warm-up is an optimisation: the first question pays instead
            log.warning("warming up the language model client failed: %s", type(exc).__name__)

    async def complete(self, *, messages: Sequence[dict[str, str]]) -> str:
        if not messages:
            raise ValueError("messages must not be empty")
        # Copies: LiteLLM may rewrite messages in place (role merging, content parts).
        payload = [dict(m) for m in messages]
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._litellm.acompletion(messages=payload, **self._request_kwargs())
        except TimeoutError as exc:
            raise self._error(exc, f"the language model did not answer within {self._timeout_s:g} s") from exc
        except Exception as exc:
            raise self._error(exc, self._describe(exc)) from exc
        text = _answer_text(response)
        if not text:
            raise ChatModelError(f"the language model ({self._model}) returned an empty answer")
        return text

    async def stream(self, *, messages: Sequence[dict[str, str]]) -> AsyncIterator[str]:
        """complete() in pieces: the same request with stream=True, the same bound on the whole answer.

        LiteLLM retries and falls back only until the stream opens; a failure after the first piece ends
        the stream with ChatModelError (the caller has shown part of an answer and must say so)."""
        if not messages:
            raise ValueError("messages must not be empty")
        payload = [dict(m) for m in messages]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        pieces = 0
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._litellm.acompletion(
                    messages=payload, stream=True, **self._request_kwargs()
                )
            async for chunk in _bounded(response, deadline):
                piece = _delta_text(chunk)
                if piece:
                    pieces += 1
                    yield piece
        except TimeoutError as exc:
            raise self._error(exc, f"the language model did not answer within {self._timeout_s:g} s") from exc
        except ChatModelError:
            raise
        except Exception as exc:
            raise self._error(exc, self._describe(exc)) from exc
        if not pieces:
            raise ChatModelError(f"the language model ({self._model}) returned an empty answer")

    def _describe(self, exc: Exception) -> str:
        # LiteLLM's exception classes depend on the provider's wording as much as on the status
        # (a connection refusal can come out as InternalServerError): look at both.
        litellm = self._litellm
        status = getattr(exc, "status_code", None)
        text = str(exc)
        if self._fallbacks and "All fallback attempts failed" in text:
            return f"the language model failed: {self._model} and its fallbacks gave no answer"
        if isinstance(exc, litellm.Timeout) or status in (408, 504):
            return f"the language model did not answer within {self._timeout_s:g} s"
        if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError) or status in (
            401,
            403,
        ):
            return f"the language model ({self._model}) refused the API key"
        if isinstance(exc, litellm.RateLimitError) or status == 429:
            return f"the language model ({self._model}) is rate-limited"
        if isinstance(exc, litellm.ContextWindowExceededError):
            return f"the question and passages are too long for {self._model}"
        if isinstance(exc, litellm.NotFoundError) or status == 404:
            return f"the model {self._model} was not found at the provider"
        if isinstance(exc, litellm.APIConnectionError) or "Connection error" in text:
            return f"cannot reach the language model ({self._model})"
        return f"the language model ({self._model}) failed: {type(exc).__name__}"

    def _error(self, exc: BaseException, message: str) -> ChatModelError:
        detail = str(exc) or type(exc).__name__
        if self._api_key:
            detail = detail.replace(self._api_key, "***")
        log.warning("%s (%s)", message, detail[:_MAX_LOGGED_ERROR])
        return ChatModelError(message)


async def _bounded(stream: Any, deadline: float) -> AsyncIterator[Any]:
    """The stream's chunks, each awaited under the one deadline of the whole answer (a yield inside
    `asyncio.timeout` would stretch the deadline over the consumer's own time, and break on its exit)."""
    iterator = stream.__aiter__()
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        yield chunk


def _delta_text(chunk: Any) -> str:
    try:
        content = chunk.choices[0].delta.content
    except (AttributeError, IndexError, KeyError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def _answer_text(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        return ""
    return content.strip() if isinstance(content, str) else ""
