"""The adapter's own behaviour, independent of the engine: options, routing, errors, internals.

Real `python -m livefix.adapter` over stdio, real debugpy, real debuggee processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_support import (
    ADAPTER, DapClient, ProcessOutput, clean_env, edit, find_marker, launch_args, next_price, wait_price,
)


def test_adapter_runs_a_plain_debug_session_like_debugpy(session, workdir: Path) -> None:
    """Breakpoints, stack traces, evaluate and threads behave exactly as with debugpy."""
    line = find_marker(workdir / "shop.py", "price_body")
    dap = session(breakpoints={str(workdir / "shop.py"): [line]}, ready=None)
    stopped = dap.wait_stopped()
    thread_id = stopped["body"]["threadId"]
    frame = dap.top_frame(thread_id)
    assert (frame["name"], frame["line"]) == ("price", line)
    assert dap.call("evaluate", {"expression": "qty * 3", "frameId": frame["id"], "context": "repl"})["result"] == "3"
    assert "worker" in [t["name"] for t in dap.threads()]
    dap.set_breakpoints(workdir / "shop.py", [])
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    wait_price(dap, 10, since=mark)


@pytest.mark.parametrize(
    "option, complaint",
    [
        ({"approval": "sometimes"}, "approval must be one of never, risky, always"),
        ({"aproval": "never"}, "Unknown key(s) in the \"livefix\" option: aproval"),
        ("risky", "must be an object"),
        ({"auditLog": 3}, "auditLog must be a file path"),
        ({"bootstrap": "yes"}, "bootstrap must be true or false"),
        ({"token": "secret"}, "only applies with livefix.connect"),
        ({"connect": "unix:/tmp/agent.sock"}, "is for attach, not launch"),
        ({"connect": "unix:/tmp/agent.sock", "approval": "never"}, "the agent's process sets approval"),
    ],
)
def test_bad_livefix_option_is_refused_with_a_clear_error(adapter, workdir: Path, option, complaint) -> None:
    dap = adapter()
    dap.initialize()
    response = dap.fail("launch", launch_args(workdir, livefix=option))
    assert complaint in response["message"]
    assert response["body"]["livefix"]["kind"] == "invalid"
    assert response["body"]["error"]["showUser"] is True
    # Nothing was started: no debuggee process event ever arrives.
    assert not [e for e in dap.events if e.get("event") == "process"]


def test_livefix_errors_keep_their_body_through_the_adapter(session) -> None:
    """Service validation errors come back as DAP errors with body.livefix, the debuggee untouched."""
    dap = session(livefix={"approval": "never"})
    response = dap.fail("livefix/apply", {"changes": "not a list"})
    assert response["body"]["livefix"]["kind"] == "invalid"
    assert response["body"]["error"]["format"] == response["message"]
    assert "changes" in response["message"]
    assert next_price(dap) == 10


def test_unknown_livefix_request_is_invalid(session) -> None:
    dap = session()
    response = dap.fail("livefix/frobnicate", {})
    assert response["body"]["livefix"]["kind"] == "invalid"
    assert "livefix/apply" in response["message"]  # names the known requests


def test_livefix_request_before_launch_is_refused(adapter) -> None:
    dap = adapter()
    dap.initialize()
    response = dap.fail("livefix/history")
    assert response["body"]["livefix"]["kind"] == "invalid"


NEW_PRICE = {"module": "shop", "qualname": "price", "line": 6, "source": "def price(qty):\n    return qty * 7\n"}


def test_debuggee_without_livefix_answers_unsupported(adapter, workdir: Path, bare_python: str) -> None:
    """No livefix where the debuggee runs, injection turned off: a clear `unsupported` error."""
    dap = adapter()
    dap.launch(launch_args(workdir, python=bare_python, livefix={"bootstrap": False}))
    dap.wait_output("ready")
    response = dap.fail("livefix/apply", {"changes": [NEW_PRICE]})
    assert response["body"]["livefix"]["kind"] == "unsupported"
    assert "not installed" in response["message"]
    assert next_price(dap) == 10


def test_debuggee_without_livefix_gets_it_injected_with_evaluate(adapter, workdir: Path, bare_python: str) -> None:
    """The stretch route: one `evaluate` (no frameId) installs the plugin, then livefix works."""
    assert find_marker(workdir / "shop.py", "price_body") == NEW_PRICE["line"] + 1
    dap = adapter()
    dap.launch(launch_args(workdir, python=bare_python, livefix={"approval": "never"}))
    dap.wait_output("ready")
    mark = dap.mark()
    body = dap.call("livefix/apply", {"changes": [NEW_PRICE]})
    assert body["generation"] == 1
    wait_price(dap, 7, since=mark)
    assert dap.wait_event("livefix/applied", since=mark)["body"]["generation"] == 1
    assert dap.call("livefix/history")["generation"] == 1  # served by the injected plugin from now on
    # Only livefix was made importable there, not the rest of the adapter's environment.
    probe = dap.call("evaluate", {"expression": "__import__('importlib.util').util.find_spec('pygls') is None", "context": "repl"})
    assert probe["result"] == "True"


@pytest.mark.parametrize("bytecode", [False, True], ids=["no-bytecode", "bytecode"])
def test_file_saved_before_livefix_was_injected(adapter, workdir: Path, bare_python: str, bytecode: bool) -> None:
    """A program that never had livefix, its file saved anew while it ran: the first livefix
    requests (status, then reload) see the edit, whether or not a bytecode cache exists."""
    dap = adapter()
    env = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "" if bytecode else "1"}
    dap.launch(launch_args(workdir, python=bare_python, livefix={"approval": "never"}, env=env))
    wait_price(dap, 10)
    assert bool(list(workdir.glob("__pycache__/shop.*.pyc"))) == bytecode
    edit(workdir / "shop.py", "total = qty * RATE  # @price_body", "total = qty * RATE * 3  # @price_body")
    stamp = (workdir / "shop.py").stat().st_mtime + 2  # newer than the cache, whatever the clock's grain
    os.utime(workdir / "shop.py", (stamp, stamp))
    (shop,) = [m for m in dap.call("livefix/status")["modules"] if m["name"] == "shop"]
    assert shop["changed"] == ["price"], json.dumps(shop)
    assert next_price(dap) == 10  # reporting changed nothing
    mark = dap.mark()
    body = dap.call("livefix/reload", {"modules": ["shop"]})
    assert [(a["qualname"], a["kind"]) for a in body["applied"]] == [("price", "replaced")]
    wait_price(dap, 30, since=mark)
    assert [m for m in dap.call("livefix/status")["modules"] if m["name"] == "shop"] == []


def test_adapter_listens_on_tcp(workdir: Path) -> None:
    """`--host/--port`: the same adapter for clients that connect over TCP."""
    process = subprocess.Popen(
        [*ADAPTER, "--host", "127.0.0.1", "--port", "0", "--log-stderr"],
        stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=str(workdir),
    )
    try:
        # debugpy's log says where it listens (port 0: the system chose one).
        line = ProcessOutput(process, process.stderr).wait(r"Listening for incoming Client connections on")
        port = int(re.search(r":(\d+)\.\.\.", line).group(1))
        with DapClient.tcp("127.0.0.1", port) as dap:
            dap.launch(launch_args(workdir))
            dap.wait_output("ready")
            assert dap.fail("livefix/apply", {"changes": []})["body"]["livefix"]["kind"] == "invalid"
    finally:
        process.kill()
        process.wait(10)


def _run_isolated(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: the checks import debugpy/pydevd internals, not this pytest process.
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), cwd=str(cwd), timeout=120)


def test_pydevd_internals_that_livefix_relies_on_are_present(tmp_path: Path) -> None:
    """Fails loudly when a debugpy release changes the pydevd internals in livefix.pydevd_bridge."""
    code = (
        "import json, debugpy, debugpy.server\n"  # debugpy.server imports the vendored pydevd
        "from livefix import pydevd_bridge\n"
        "problems = pydevd_bridge.check_compatibility()\n"
        "bridge = pydevd_bridge.PydevdBridge() if not problems else None\n"
        "print(json.dumps({'debugpy': debugpy.__version__, 'problems': problems}))\n"
    )
    result = _run_isolated(code, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == [], f"debugpy {report['debugpy']} changed pydevd internals livefix uses: {report['problems']}"


def test_debugpy_adapter_internals_that_livefix_relies_on_are_present(tmp_path: Path) -> None:
    """Fails loudly when a debugpy release changes the adapter internals in livefix.adapter.debugpy_hooks."""
    code = (
        "import json, debugpy\n"
        "from livefix.adapter import debugpy_hooks\n"
        "print(json.dumps({'debugpy': debugpy.__version__, 'problems': debugpy_hooks.check_compatibility()}))\n"
    )
    result = _run_isolated(code, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == [], f"debugpy {report['debugpy']} changed adapter internals livefix uses: {report['problems']}"


def test_help_says_what_livefix_adds_to_debugpys_options(workdir: Path) -> None:
    """`--help` names this adapter (not debugpy's `__main__.py`), what livefix adds, and
    debugpy's own options, which all still work."""
    from livefix import protocol

    done = subprocess.run([*ADAPTER, "--help"], capture_output=True, text=True, timeout=30, env=clean_env(), cwd=str(workdir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m livefix.adapter [-h] [--port PORT]")
    assert "__main__.py" not in done.stdout
    assert all(command in done.stdout for command in protocol.COMMANDS)
    assert '"livefix": {"approval": "risky"' in done.stdout and "tokenFile" in done.stdout
    assert "--log-dir DIR" in done.stdout and "--host HOST" in done.stdout


def test_pydevd_bridge_check_reports_a_missing_internal(tmp_path: Path) -> None:
    """The compatibility check itself can fail: remove one internal and it names it."""
    code = (
        "import json, debugpy.server\n"
        "from _pydevd_bundle._debug_adapter import pydevd_base_schema\n"
        "del pydevd_base_schema.register_request\n"
        "from livefix import pydevd_bridge\n"
        "print(json.dumps(pydevd_bridge.check_compatibility()))\n"
    )
    result = _run_isolated(code, tmp_path)
    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout.strip().splitlines()[-1])
    assert problems == ["_pydevd_bundle._debug_adapter.pydevd_base_schema.register_request is missing"]


def test_every_error_kind_has_its_own_stable_dap_message_id() -> None:
    from livefix.dap import ERROR_IDS
    from livefix.errors import ERROR_KINDS

    assert set(ERROR_IDS) == set(ERROR_KINDS), "give every new error kind the next free id in livefix/dap.py"
    assert len(set(ERROR_IDS.values())) == len(ERROR_IDS)
