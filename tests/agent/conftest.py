"""Fixtures for the agent tests: a private runtime directory and real service processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from agent_support import APP, Worker


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime directory (short path: Unix socket paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="lf-", dir="/tmp"))
    monkeypatch.setenv("LIVEFIX_RUNTIME_DIR", str(path))
    monkeypatch.delenv("LIVEFIX_TOKEN", raising=False)
    monkeypatch.delenv("LIVEFIX_TOKEN_FILE", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A directory holding the service's app module `shop`."""
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "shop.py").write_text(APP)
    return directory


@pytest.fixture
def spawn(runtime: Path, app: Path) -> Iterator[Any]:
    """Start service processes: `spawn(**listen_options)`; all are killed at the end."""
    workers: list[Worker] = []

    def start(app_dir: Path | None = None, **options: Any) -> Worker:
        worker = Worker(app_dir or app, options, dict(os.environ))
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill()

