"""The `livefix` command line against real service processes: reports, prompts, exit codes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_support import APP, WAIT

from livefix.cli import definition_source, main
from livefix.errors import LivefixError

FIX = APP.replace("n * 10", "n * 100")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=WAIT, stdin=subprocess.DEVNULL, env=env)


@pytest.fixture
def fix(tmp_path: Path) -> Path:
    path = tmp_path / "shop_fix.py"
    path.write_text(FIX)
    return path


# -- parsing, no process needed ------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["apply"], ["apply", "1234"], ["rollback", "--to", "x", "1"], ["frobnicate"]])
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        code = main(argv)
        raise SystemExit(code)
    assert caught.value.code == 2


def test_definition_source_finds_methods_with_decorators() -> None:
    source = (
        "import functools\n\n"
        "class Cart:\n"
        "    @functools.lru_cache\n"
        "    @staticmethod\n"
        "    def total(n):\n"
        "        return n + 1\n\n"
        "    def other(self):\n"
        "        pass\n"
    )
    text, line = definition_source(source, "Cart.total", "cart.py")
    assert line == 4
    assert text == "@functools.lru_cache\n@staticmethod\ndef total(n):\n    return n + 1\n"
    with pytest.raises(LivefixError) as caught:
        definition_source(source, "Cart.missing", "cart.py")
    assert caught.value.kind == "notFound"
    with pytest.raises(LivefixError) as caught:
        definition_source("def broken(:\n", "broken", "b.py")
    assert caught.value.kind == "syntax"


def test_an_unknown_pid_is_unreachable(runtime: Path) -> None:
    done = cli("status", "999999999")
    assert done.returncode == 5
    assert "no livefix agent for pid 999999999" in done.stderr


def test_no_standard_input_at_all(runtime: Path) -> None:
    """As in CI: stdin closed, so sys.stdin is None; nobody to prompt, and no crash."""
    done = subprocess.run(
        [sys.executable, "-c", "import os, runpy, sys; os.close(0); sys.stdin = None; "
         "sys.argv = ['livefix', 'status', '999999999']; runpy.run_module('livefix.cli', run_name='__main__')"],
        capture_output=True, text=True, timeout=WAIT,
    )
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr


# -- against a running service ------------------------------------------------------------------


def test_wrong_token_exits_5_and_changes_nothing(spawn: Any, runtime: Path, fix: Path) -> None:
    worker = spawn()
    done = cli("apply", str(worker.pid), f"{fix}::price", "--module", "shop", "--token", "wrong", "--yes")
    assert done.returncode == 5
    assert "wrong or missing token" in done.stderr
    assert worker.call() == 21


def test_apply_history_frames_status_rollback(spawn: Any, runtime: Path, fix: Path) -> None:
    worker = spawn(busy=True)
    target = str(worker.pid)
    applied = cli("apply", target, f"{fix}::price", "--module", "shop")
    assert applied.returncode == 0, applied.stderr
    assert "Applying fix to shop.price" in applied.stdout
    assert "Applied generation 1" in applied.stdout
    assert worker.call() == 201

    history = cli("history", worker.address, "--json")
    assert history.returncode == 0
    body = json.loads(history.stdout)
    assert body["generation"] == 1 and body["generations"][0]["status"] == "active"

    frames = cli("frames", target, "--locals")
    assert frames.returncode == 0
    assert "service-loop" in frames.stdout and "busy" in frames.stdout
    # The program's threads only: not the agent's accept loop, nor the one answering.
    assert "livefix-agent" not in frames.stdout and "(livefix)" not in frames.stdout

    status = cli("status", target, "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["agent"]["pid"] == worker.pid

    back = cli("rollback", target, "--to", "0")
    assert back.returncode == 0
    assert "Rolled back to generation 0" in back.stdout
    assert worker.call() == 21


def test_failures_have_their_exit_codes_and_leave_the_service_unchanged(
    spawn: Any, runtime: Path, fix: Path, tmp_path: Path
) -> None:
    worker = spawn()
    target = str(worker.pid)
    broken = tmp_path / "broken.py"
    broken.write_text("def price(n):\n    return n *\n")
    syntax = cli("apply", target, str(broken), "--module", "shop", "--json")
    assert syntax.returncode == 1
    assert json.loads(syntax.stdout)["error"]["kind"] == "syntax"

    verify = cli("apply", target, f"{fix}::price", "--module", "shop", "--verify", "price(1) == 10")
    assert verify.returncode == 4
    assert "rolled back" in verify.stderr

    missing = cli("apply", target, f"{fix}::price", "--module", "no_such_module")
    assert missing.returncode == 1
    assert worker.call() == 21
    assert worker.history()["generation"] == 0

    nothing = cli("rollback", target)
    assert nothing.returncode == 1
    assert "nothing to roll back" in nothing.stderr


def test_a_fix_file_that_is_no_loaded_module_says_to_name_the_module(spawn: Any, runtime: Path, fix: Path) -> None:
    """`livefix apply PID fix.py::price` (the fix in a file of its own): the error says what to add."""
    worker = spawn()
    done = cli("apply", str(worker.pid), f"{fix}::price")
    assert done.returncode == 1
    assert f"no module loaded in this process comes from {fix}" in done.stderr
    assert "name the module with --module MODULE" in done.stderr
    assert worker.call() == 21 and worker.history()["generation"] == 0
    # With --module, the fix file is only where the source comes from: the module is named.
    assert cli("apply", str(worker.pid), f"{fix}::price", "--module", "shop").returncode == 0
    assert worker.call() == 201


def test_approval_required_exits_3_unless_approved(spawn: Any, runtime: Path, fix: Path) -> None:
    worker = spawn(approval="always")
    refused = cli("apply", str(worker.pid), f"{fix}::price", "--module", "shop")
    assert refused.returncode == 3
    assert "re-run with --yes" in refused.stderr
    assert worker.call() == 21
    approved = cli("apply", str(worker.pid), f"{fix}::price", "--module", "shop", "--yes")
    assert approved.returncode == 0
    assert worker.call() == 201


def _run_in_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, answer its prompt, return (exit code, everything shown)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "livefix.cli", *args], stdin=follower, stdout=follower,
                            stderr=follower, close_fds=True)
    os.close(follower)
    shown = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], WAIT)
            if not ready:
                raise AssertionError(f"the CLI showed nothing for {WAIT} s: {shown!r}")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the CLI exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        return proc.wait(timeout=WAIT), shown.decode(errors="replace")
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("answer", "code", "output"), [("y", 0, 201), ("n", 3, 21)])
def test_interactive_approval_prompt(spawn: Any, runtime: Path, fix: Path, answer: str, code: int, output: int) -> None:
    worker = spawn(approval="always")
    exit_code, shown = _run_in_terminal(["apply", str(worker.pid), f"{fix}::price", "--module", "shop"], answer)
    assert "Apply anyway? [y/N]" in shown
    assert "Applying fix to shop.price" in shown  # the report before, shown with the question
    assert exit_code == code
    assert worker.call() == output


@pytest.mark.parametrize("bytecode", [False, True], ids=["no-bytecode", "bytecode"])
def test_listen_after_the_fix_was_saved(spawn: Any, app: Path, bytecode: bool, monkeypatch: Any) -> None:
    """`livefix.listen()` arrives after the app was imported and its file saved anew: status
    and reload see the saved fix (not "the running code already matches"), with and without
    bytecode caches (containers set PYTHONDONTWRITEBYTECODE=1)."""
    if bytecode:
        monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    else:
        monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    worker = spawn(save_before_listen=["shop.py", FIX])
    assert bool(list(app.glob("__pycache__/shop.*.pyc"))) == bytecode
    status = cli("status", str(worker.pid))
    assert "changed: price" in status.stdout and "livefix arrived after this module was loaded" in status.stdout
    assert worker.call() == 21
    reloaded = cli("reload", str(worker.pid), "shop")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "1 replaced" in reloaded.stdout
    assert worker.call() == 201
    assert "no loaded module differs from its file" in cli("status", str(worker.pid)).stdout


def test_status_shows_what_differs_and_reload_brings_it_in(spawn: Any, runtime: Path, app: Path) -> None:
    worker = spawn()
    (app / "shop.py").write_text(FIX)  # the file on disk moves on; the service runs what it loaded
    status = cli("status", str(worker.pid))
    assert status.returncode == 0
    assert "shop (" in status.stdout and "changed: price" in status.stdout
    assert worker.call() == 21
    reloaded = cli("reload", str(worker.pid), "shop")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "Applied generation 1" in reloaded.stdout or "generation 1" in reloaded.stdout
    assert worker.call() == 201
    assert "no loaded module differs from its file" in cli("status", str(worker.pid)).stdout


CART_APP = """
class Cart:
    def __init__(self):
        self.rate = 10

    def total(self, n):
        return n * self.rate


CART = Cart()


def total(n):
    return CART.total(n)
"""

CART_FIX = """
class Cart:
    def __init__(self):
        self.rate = 10
        self.bonus = 1

    def total(self, n):
        return n * self.rate + self.bonus
"""


def test_a_class_fix_needs_a_migration_for_live_instances(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    """The live Cart made before the fix lacks `bonus`: the CLI says so and asks; with
    --migrate it gets one, and rollback takes it away again."""
    app_dir = tmp_path / "cart_app"
    app_dir.mkdir()
    (app_dir / "shop.py").write_text(CART_APP)
    fix = tmp_path / "cart_fix.py"
    fix.write_text(CART_FIX)
    worker = spawn(app_dir=app_dir)
    target = str(worker.pid)
    asked = cli("apply", target, f"{fix}::Cart", "--module", "shop")
    assert asked.returncode == 3, asked.stdout + asked.stderr
    assert "1 live `Cart` instance lacks `bonus`; pass a migration" in asked.stdout + asked.stderr
    assert worker.call() == 20  # nothing changed

    bad = cli("apply", target, f"{fix}::Cart", "--module", "shop", "--migrate", "Crat={\"bonus\": 5}")
    assert bad.returncode == 1 and "not a class" in bad.stdout + bad.stderr
    assert worker.call() == 20

    migrated = cli("apply", target, f"{fix}::Cart", "--module", "shop", "--migrate", 'Cart={"bonus": 5}')
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "migrated 1 live shop.Cart instance (bonus)" in migrated.stdout
    assert worker.call() == 25

    back = cli("rollback", target)
    assert back.returncode == 0
    assert worker.call() == 20
