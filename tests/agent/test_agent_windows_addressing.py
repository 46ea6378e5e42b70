"""The agent's Windows addressing, on Linux: `LIVEFIX_HOST_OS=windows` stands in for Windows,
which cannot run here (see livefix/agent/host_os.py). Agents listen on loopback TCP ports
(the token guards them) and publish `<pid>.addr` where the Unix socket file would be; the
fleet finds and fixes them the same way. The registry lock and the process check follow the
real system, whose Windows calls (msvcrt.locking, OpenProcess) exist only on Windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_support import token

from livefix.agent.fleet import Fleet

PRICE_FIX = "def price(n):\n    return n * 100\n"


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEFIX_HOST_OS", "windows")  # the workers inherit it


def test_fleet_workers_listen_on_loopback_tcp_and_publish_address_files(
    windows: None, spawn: Any, runtime: Path
) -> None:
    workers = [spawn(service="shop") for _ in range(3)]
    assert all(w.address.startswith("tcp:127.0.0.1:") for w in workers)
    registry = runtime / "services" / "shop"
    assert sorted(p.name for p in registry.iterdir() if not p.name.startswith(".")) == sorted(
        [f"{w.pid}.addr" for w in workers] + (["journal.json"] if (registry / "journal.json").exists() else [])
    )
    assert (registry / f"{workers[0].pid}.addr").read_text() == workers[0].address
    result = Fleet("shop", token(runtime)).apply(
        {"action": "apply", "changes": [{"module": "shop", "qualname": "price", "source": PRICE_FIX}]})
    assert result.outcome == "applied", result.report
    assert [w.call() for w in workers] == [201, 201, 201]
    workers[0].ask_exit()
    assert not (registry / f"{workers[0].pid}.addr").exists()  # a clean shutdown leaves nothing behind


def test_a_single_agent_publishes_its_address_for_the_command_line(windows: None, spawn: Any, runtime: Path) -> None:
    worker = spawn()
    published = runtime / "agents" / f"{worker.pid}.addr"
    assert published.read_text() == worker.address and worker.address.startswith("tcp:127.0.0.1:")
    assert not any(p.suffix == ".sock" for p in (runtime / "agents").iterdir())
    assert os.stat(published).st_mode & 0o077 == 0
    done = subprocess.run([sys.executable, "-m", "livefix.cli", "status", str(worker.pid), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr  # the command line finds it by pid, through the address file
    assert json.loads(done.stdout)["agent"]["pid"] == worker.pid


def test_a_clean_exit_leaves_no_socket_file_behind(spawn: Any, runtime: Path) -> None:
    worker = spawn(service="shop")
    socket_file = runtime / "services" / "shop" / f"{worker.pid}.sock"
    assert socket_file.exists()
    assert worker.ask_exit() == 0
    assert not socket_file.exists()
