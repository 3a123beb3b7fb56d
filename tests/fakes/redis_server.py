"""A real `redis-server` on a free loopback port, for the session-store tests (not a fake: Redis is cheap).

The binary comes from Debian's `redis-server` package; `.ci/run` installs it. Without it the tests that
need Redis are skipped, saying so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rag.sessions import RedisSessionStore
from rag.shared_state import RedisChatState

_START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Starts redis-server with no persistence; returns the process and its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`.ci/run` installs it: apt-get install redis-server)")
    port = _free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--logfile", str(log),
            "--daemonize", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_redis(process)
            details = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"redis-server did not start on port {port}:\n{details}")
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server shared by the whole test session: give each test its own key prefix."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        stop_redis(process)


def unique_prefix() -> str:
    """A key prefix no other test uses: the server is shared by the whole session."""
    return f"wikibot-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def chat_state(redis_url: str) -> AsyncIterator[RedisChatState]:
    """The chat state several replicas share, on the test session's Redis, under this test's own prefix."""
    state = RedisChatState(redis_url, key_prefix=unique_prefix())
    yield state
    await state.aclose()


@pytest.fixture
def shared_sessions(redis_url: str) -> Iterator[RedisSessionStore]:
    """The session history several replicas share, under this test's own prefix."""
    store = RedisSessionStore(redis_url, max_turns=10, idle_seconds=3600, key_prefix=unique_prefix())
    yield store
    store.close()
