"""Fixtures for the adapter tests: the real adapter over stdio, real debuggee processes.

Each test gets a private copy of `debuggees/` (tests rewrite files on disk, as an editor
would) and starts `python -m livefix.adapter` with the interpreter running pytest, in
which livefix must be installed (scripts/test.sh does `pip install .`). Every process a
test starts is ended at teardown.
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapter_support import ADAPTER, DEBUGGEES, DapClient, clean_env, launch_args


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for script in DEBUGGEES.glob("*.py"):
        shutil.copy(script, tmp_path / script.name)
    return tmp_path


@pytest.fixture
def adapter(workdir: Path) -> Iterator[Any]:
    """A factory of DAP clients connected to fresh `python -m livefix.adapter` processes."""
    clients: list[DapClient] = []

    def start(*args: str) -> DapClient:
        # cwd = workdir: `-m` puts the cwd on sys.path, which must not be the source tree.
        client = DapClient.stdio([*ADAPTER, *args], env=clean_env(), cwd=str(workdir))
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.close()


@pytest.fixture
def session(adapter: Any, workdir: Path) -> Iterator[Any]:
    """A factory: launch a debuggee program through a fresh adapter; returns the DAP client."""

    def start(program: str = "app.py", livefix: Any = None, breakpoints: Any = None, ready: str | None = "ready", **extra: Any) -> DapClient:
        dap = adapter()
        dap.launch(launch_args(workdir, program, livefix, **extra), breakpoints=breakpoints)
        if ready:
            dap.wait_output(ready)
        return dap

    yield start


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes a test starts directly; killed at teardown."""
    started: list[subprocess.Popen[Any]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """An interpreter whose environment has neither livefix nor debugpy (debugpy is run by path)."""
    bare = tmp_path_factory.mktemp("bare-venv")
    venv.EnvBuilder(with_pip=False).create(bare)
    python = str(bare / "bin" / "python")
    probe = subprocess.run([python, "-c", "import livefix"], capture_output=True, cwd=str(bare), env=clean_env())
    assert probe.returncode != 0, "the bare environment must not see livefix"
    return python
