"""A real `chroma run` server on loopback, started and stopped by the tests (and benches) that need it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

_START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Starts `chroma run` on a free loopback port over the folder `data`; returns the process and its port."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        raise RuntimeError("the `chroma` CLI (chromadb's) is not installed in this environment")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_chroma(proc)
                raise RuntimeError("`chroma run` did not start") from None
            time.sleep(0.2)


def stop_chroma(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    try:
        proc, port = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield "127.0.0.1", port
    finally:
        stop_chroma(proc)
