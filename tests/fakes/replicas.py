"""Real `wikibot serve` replicas on one `chroma run` and one `redis-server`, as an operator runs them.

Used by the replicas' end-to-end test (`tests/test_replicas_e2e.py`) and the load bench (`bench/load.py`).
Every replica is a `python -m bot.cli serve` process with a bare environment (this tree on PYTHONPATH), its
own empty DATA_DIR, and the settings the README's "Run several replicas" lists: the Chroma server, Redis,
one CHROMA_COLLECTION, Slack (pointed at a loopback Slack API fake), Confluence (the loopback fake) and one
EMBED_CACHE_DIR prepared once by `wikibot prepare`. The caller owns the two fakes; `Cluster` owns the
processes and stops every one of them, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import redis

from tests.fakes.chroma_server import start_chroma, stop_chroma
from tests.fakes.redis_server import start_redis, stop_redis
from tests.slack.fake_slack import BOT_TOKEN
from tests.slack.slack_payloads import SIGNING_SECRET, as_json, sign, slash_command

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "an-admin-token-for-the-replicas"
CONFLUENCE_USER, CONFLUENCE_PASSWORD = "bot@example.com", "secret"
EVENTS_PATH = "/slack/events"


def bare_env(**settings: str) -> dict[str, str]:
    """What an operator's shell gives `wikibot`: PATH, HOME, LANG and the settings, with this tree's code
    first on the path (whatever checkout the interpreter's environment installed: worktrees share one)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**base, "PYTHONPATH": str(ROOT), **settings}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    name: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float:
        """Resident memory now (VmRSS), in MB."""
        try:
            import psutil

            return float(psutil.Process(self.pid).memory_info().rss) / 1e6
        except ImportError:
            status = Path(f"/proc/{self.pid}/status").read_text()
            kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
            return int(kb) / 1000

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no lease released, as when a machine dies."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """One Chroma server, one Redis, the settings every replica shares, and the replicas started on them."""

    def __init__(
        self,
        workdir: Path,
        *,
        confluence_url: str,
        slack_api_url: str,
        sync_interval_minutes: float,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.collection = f"replicas{uuid.uuid4().hex[:8]}"
        self.interval_s = sync_interval_minutes * 60
        self._shared = {
            "CONFLUENCE_URL": confluence_url,
            "CONFLUENCE_USERNAME": CONFLUENCE_USER,
            "CONFLUENCE_PASSWORD": CONFLUENCE_PASSWORD,
            "CONFLUENCE_SPACE": "LUMEN",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SYNC_INTERVAL_MINUTES": str(sync_interval_minutes),
            "CHROMA_COLLECTION": self.collection,
            "EMBED_CACHE_DIR": str(workdir / "models"),
            **(settings or {}),
        }
        self.replicas: list[Replica] = []
        self.prepared: dict[str, Any] = {}  # what `wikibot prepare --json` said
        self._chroma: subprocess.Popen[bytes] | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._db: redis.Redis | None = None

    # ---- lifecycle

    def start(self) -> Self:
        """Starts Chroma and Redis, and runs `wikibot prepare` once into the shared EMBED_CACHE_DIR."""
        (self.workdir / "chroma").mkdir(parents=True, exist_ok=True)
        (self.workdir / "redis").mkdir(parents=True, exist_ok=True)
        prepare = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "prepare", "--json"],
            env=bare_env(**self._shared, DATA_DIR=str(self.workdir / "prepare-data")),
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self._chroma, chroma_port = start_chroma(self.workdir / "chroma")
            self._redis, redis_url = start_redis(self.workdir / "redis")
            out, err = prepare.communicate(timeout=300)
        finally:
            if prepare.poll() is None:
                prepare.kill()
                prepare.wait()
        if prepare.returncode != 0:
            raise RuntimeError(f"wikibot prepare failed: {err.decode(errors='replace')[-2000:]}")
        self.prepared = json.loads(out)
        self._shared |= {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_port), "REDIS_URL": redis_url}
        self._db = redis.Redis.from_url(redis_url, decode_responses=True)
        return self

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if self._db is not None:
            self._db.close()
        if self._redis is not None:
            stop_redis(self._redis)
        if self._chroma is not None:
            stop_chroma(self._chroma)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- replicas

    @property
    def settings(self) -> dict[str, str]:
        """What every replica is given (the README's list), DATA_DIR aside."""
        return dict(self._shared)

    def launch(self, name: str, *, without: tuple[str, ...] = ()) -> Replica:
        """Starts `wikibot serve` with its own empty DATA_DIR; `without` leaves shared settings out (to show
        what breaks). Returns at once: `wait_ready` waits for it."""
        home = self.workdir / name
        (home / "data").mkdir(parents=True)
        settings = {k: v for k, v in self._shared.items() if k not in without}
        port = _free_port()
        log_path = home / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=bare_env(**settings, DATA_DIR=str(home / "data")),
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(name, port, home / "data", log_path, process)
        self.replicas.append(replica)
        return replica

    async def wait_ready(self, replica: Replica, *, timeout_s: float = 120.0) -> float:
        """Waits until the replica's /readyz answers 200 (the shared index is in Chroma with chunks); returns
        the seconds waited. Raises with the end of its log if it exits or takes longer."""
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() - started < timeout_s:
                if not replica.alive():
                    raise RuntimeError(f"replica {replica.name} exited:\n{replica.log()[-3000:]}")
                try:
                    async with http.get(replica.url("/readyz")) as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"replica {replica.name} not ready in {timeout_s:.0f} s:\n{replica.log()[-3000:]}")

    # ---- what Redis and Chroma say

    def lease_holder(self) -> Replica | None:
        """The replica holding the sync writer's lease (its token ends with host:pid:nonce), if any."""
        assert self._db is not None
        token = self._db.get(f"wikibot:index:{self.collection}:lease")
        if token is None:
            return None
        pid = int(str(token).split(":")[-2])
        return next((r for r in self.replicas if r.pid == pid), None)

    def active_collection(self) -> str | None:
        assert self._db is not None
        name = self._db.hget(f"wikibot:index:{self.collection}:meta", "active_collection")
        return None if name is None else str(name)

    async def collections(self) -> list[str]:
        """The collections of this deployment in the Chroma server, asked of Chroma's REST API."""
        port = self._shared["CHROMA_PORT"]
        url = f"http://127.0.0.1:{port}/api/v2/tenants/default_tenant/databases/default_database/collections"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            rows: list[dict[str, Any]] = await response.json()
        return sorted(str(row["name"]) for row in rows if str(row["name"]).startswith(self.collection + "-"))


# ---- Slack, as Slack delivers to a replica


async def post_event(
    http: aiohttp.ClientSession, replica: Replica, body: dict[str, Any], *, retry: int | None = None
) -> tuple[int, float]:
    """POSTs one signed Events API envelope; returns the HTTP status and the seconds the ack took."""
    raw = as_json(body)
    headers = {"Content-Type": "application/json", **sign(raw)}
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    started = time.perf_counter()
    async with http.post(replica.url(EVENTS_PATH), data=raw.encode(), headers=headers) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def post_command(
    http: aiohttp.ClientSession, replica: Replica, *, channel: str, user: str, command: str = "/wiki-reset"
) -> tuple[int, dict[str, Any]]:
    """A signed slash command; returns the HTTP status and the JSON of the immediate answer."""
    raw = slash_command(channel=channel, user=user, command=command)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(raw)}
    async with http.post(replica.url(EVENTS_PATH), data=raw.encode(), headers=headers) as response:
        return response.status, await response.json(content_type=None)
