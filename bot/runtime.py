"""Process runtime: the one hardening step at start-up, and the file locks on the data folder.

Neither belongs in the composition root (bot/app.py wires objects and does nothing else) nor in the core
(rag/ knows nothing of processes): both are about the process the code runs in. The locks coordinate two
processes sharing one data folder (a `serve` and a CLI ingest, or two ingests), so they take the folder,
not settings, and any entry point can use them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from filelock import FileLock, Timeout

# Read by the libraries when they are first imported or used, so they must be set before any of them is.
# We are offline-first: nothing may reach the network, phone home or draw progress bars behind our back.
# setdefault, not assignment: an operator who sets one on purpose keeps it.
OFFLINE_ENVIRONMENT = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    # The ingest reports its own progress; the model loader's bars only clutter logs.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
# Chatty at INFO about every request they make (our own log lines say what matters), and at DEBUG some echo
# request headers or a provider's error with the API key in it: kept at WARNING even when LOG_LEVEL=DEBUG.
_NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "openai",
    "LiteLLM",
    "litellm",
    "chromadb",
    "sentence_transformers",
    "urllib3",
    "atlassian",
    "msal",
    # Two INFO lines per job run: the lease renewal alone runs every few seconds. Missed runs stay warnings.
    "apscheduler.executors.default",
)
_quieted: set[str] = set()
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A value from a request (a conversation id, a path) could hold a line break and forge a log line, or a
# bidi control to disguise one: every control and format character of a message is written escaped.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 6  # shorter values would redact ordinary words


class SafeFormatter(logging.Formatter):
    """Log lines that cannot be forged and never show a configured secret, whoever logs them."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is redacted whole.
        kept = sorted({s for s in secrets if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)
        self._secrets = re.compile("|".join(re.escape(s) for s in kept)) if kept else None

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        # Tracebacks keep their lines; secrets are redacted everywhere, a traceback's locals included.
        text = super().format(record)
        return self._secrets.sub(_REDACTED, text) if self._secrets else text


class _ProcessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's own log handler; others (a test runner's) are left alone."""


def escape_controls(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class SyncBusy(Exception):
    """Another process holds a lock on the data folder: a running sync, or a server on an embedded index."""


def harden_environment() -> None:
    """Sets the offline variables; for an entry point that keeps its own logging (the benches)."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def start_process(
    *, log_level: str, secrets: Iterable[str] = (), stream: TextIO | None = None, quiet: Iterable[str] = ()
) -> None:
    """The start-up step of every `wikibot` command, run once before a command imports any library."""
    harden_environment()
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _ProcessHandler)]:
        root.removeHandler(previous)  # a second start in one process (tests, `demo` then a command)
    handler = _ProcessHandler(stream or sys.stderr)
    handler.setFormatter(SafeFormatter(_LOG_FORMAT, secrets))
    root.addHandler(handler)
    root.setLevel(log_level)
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in _quieted - set(_NOISY_LOGGERS):  # a second start (tests) begins from the defaults
        logging.getLogger(name).setLevel(logging.NOTSET)
    _quieted.clear()
    for name in quiet:  # loggers whose warnings the caller shows itself: only their errors are logged
        logging.getLogger(name).setLevel(logging.ERROR)
        _quieted.add(name)


def server_lock(data_dir: Path) -> FileLock:
    """Held by `serve` for its lifetime when Chroma is embedded.

    An embedded Chroma store is not safe to write from a second process (readers keep their own cached
    vector index), so a CLI ingest next to a running server must go through the server instead.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(data_dir / "serve.lock"))


def ensure_no_server(data_dir: Path) -> None:
    """Raises SyncBusy while a server holds `data_dir`; only meaningful for an embedded Chroma index."""
    lock = server_lock(data_dir)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SyncBusy(
            f"a wikibot server is using {data_dir}: trigger the sync with POST /admin/sync "
            "(ADMIN_TOKEN), or run Chroma as a server (CHROMA_HOST) to ingest from another process"
        ) from None
    lock.release()


@contextmanager
def sync_lock(data_dir: Path) -> Iterator[None]:
    """Held for one sync: two processes never sync one index at once, and the second is refused, not queued."""
    lock = FileLock(str(data_dir / "sync.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SyncBusy("another sync is already running on this data folder") from None
    try:
        yield
    finally:
        lock.release()
