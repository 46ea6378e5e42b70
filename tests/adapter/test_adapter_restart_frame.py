"""Restart frame and rerun through the adapter: `restartFrame`, `livefix/frameInfo`, `livefix/rerunFrame`.

Real `python -m livefix.adapter` over stdio, real debugpy, real debuggee processes, on this
interpreter and on every other supported CPython pyenv provides (3.10, 3.12, 3.13: skipped,
saying so, when absent). The debuggees are written into the test's private directory:
`restart_app.py` prints `total=<orders.total(1)> calls=<entries into total> n=<loop>` from
a worker thread every 50 ms; `restart_cases.py` runs one function per case where a restart
must be refused, then prints what each returned. Lines are found by `# @marker`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from adapter_support import DEFAULT_TIMEOUT, DapClient, clean_env, definition, edit, find_marker, launch_args
from test_adapter_interpreters import pyenv_python

ORDERS = '''\
"""Debuggee module: functions the restart-frame tests stop in, restart, fix and run again."""

import threading

calls = []
lock = threading.Lock()


def total(qty, price=10):
    calls.append(qty)  # @total_entry
    subtotal = qty * price  # @total_body
    return subtotal


def outer(qty):
    return total(qty) + 1  # @outer_call


def locked_total(qty):
    with lock:
        value = qty * 10  # @locked_body
    return value


def cleanup_total(qty):
    try:
        value = qty * 10  # @finally_body
    finally:
        calls.append("cleanup")
    return value


def defaulted(items=None):
    if items is None:
        items = []
    items.append(1)  # @rebound_body
    return len(items)


def countdown(n):
    yield n  # @generator_body


def last_of(n):
    for i in range(n):
        pass
    return i  # @loop_var


def checked(qty):
    kind = "checked"  # @checked_entry
    try:
        raise KeyError(qty)  # @raise
    except KeyError:
        return kind
'''

APP = '''\
"""Debuggee: a worker thread prints orders.total(1) every 50 ms, forever."""

import threading
import time

import orders


def work():
    n = 0
    while True:
        n += 1
        value = orders.total(1)
        print(f"total={value} calls={len(orders.calls)} n={n}\\n", end="", flush=True)
        time.sleep(0.05)


threading.Thread(target=work, name="worker", daemon=True).start()
print("ready\\n", end="", flush=True)
while True:
    time.sleep(1)
'''

CASES = '''\
"""Debuggee: each case once, in the main thread, then what each returned."""

import time

import orders

results = [
    orders.locked_total(1), orders.cleanup_total(1), orders.defaulted(), list(orders.countdown(5)),
    orders.outer(1), orders.last_of(3),
]
print(f"results={results} locked={orders.lock.locked()} calls={orders.calls}\\n", end="", flush=True)
while True:
    time.sleep(1)
'''

RAISES = '''\
"""Debuggee: one exception raised and handled, in the main thread."""

import time

import orders

print(f"checked={orders.checked(3)}\\n", end="", flush=True)
while True:
    time.sleep(1)
'''

OTHER_PYTHONS = ["3.10", "3.12", "3.13"]


@pytest.fixture
def programs(workdir: Path) -> Path:
    for name, text in (("orders.py", ORDERS), ("restart_app.py", APP), ("restart_cases.py", CASES), ("restart_raise.py", RAISES)):
        (workdir / name).write_text(text)
    return workdir


def interpreter(version: str | None) -> dict[str, Any]:
    """Launch arguments for `version` (None: the interpreter running the tests)."""
    if version is None:
        return {}
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} from pyenv on this machine")
    return {"python": python}


def python_of(version: str | None) -> str:
    return version or "%d.%d" % sys.version_info[:2]


def stop_in_total(adapter: Any, programs: Path, version: str | None = None) -> tuple[DapClient, int]:
    """Launch restart_app.py stopped at the breakpoint in orders.total (its first call)."""
    orders = programs / "orders.py"
    dap = adapter()
    dap.launch(
        launch_args(programs, "restart_app.py", {"approval": "never"}, **interpreter(version)),
        breakpoints={str(orders): [find_marker(orders, "total_body")]},
    )
    return dap, dap.wait_stopped()["body"]["threadId"]


def frames(dap: DapClient, thread_id: int) -> list[dict[str, Any]]:
    return dap.call("stackTrace", {"threadId": thread_id})["stackFrames"]


def local_values(dap: DapClient, frame_id: int) -> dict[str, str]:
    scope = dap.call("scopes", {"frameId": frame_id})["scopes"][0]
    variables = dap.call("variables", {"variablesReference": scope["variablesReference"]})["variables"]
    return {v["name"]: v["value"] for v in variables if v["name"] not in ("special variables", "function variables")}


def test_restart_is_advertised_only_once_the_debuggee_serves_it(adapter, programs: Path) -> None:
    """debugpy answers initialize with no restartFrame; the adapter turns it on with a
    `capabilities` event once the debuggee's livefix serves it, and marks frames."""
    dap = adapter()
    assert not dap.initialize().get("supportsRestartFrame")
    dap.close()
    dap, thread_id = stop_in_total(adapter, programs)
    assert dap.wait_event("capabilities")["body"] == {"capabilities": {"supportsRestartFrame": True}}
    stack = frames(dap, thread_id)
    assert [(f["name"], f["canRestart"]) for f in stack[:2]] == [("total", True), ("work", False)]
    assert all(f["canRestart"] is False for f in stack[1:])
    # A later page of the stack never holds the top frame.
    later = dap.call("stackTrace", {"threadId": thread_id, "startFrame": 1, "levels": 1})["stackFrames"]
    assert [(f["name"], f["canRestart"]) for f in later] == [("work", False)]
    info = dap.call("livefix/frameInfo", {"frameId": stack[0]["id"]})
    assert info == {
        "frameId": stack[0]["id"], "function": "orders.total", "fixed": False, "canRestart": True, "canRerun": True,
        "restartLine": find_marker(programs / "orders.py", "total_entry"),
    }
    below = dap.call("livefix/frameInfo", {"frameId": stack[1]["id"]})
    assert (below["canRestart"], below["restartRefusal"]["reason"]) == (False, "notTopFrame")


@pytest.mark.parametrize("version", [None, *OTHER_PYTHONS], ids=["this-python", *OTHER_PYTHONS])
def test_restart_frame_runs_the_call_again_from_its_first_line(adapter, programs: Path, version: str | None) -> None:
    """Stopped in total: restart; the frame is back on its first line with only its
    arguments bound, the entry line runs a second time, and the call returns as usual."""
    orders = programs / "orders.py"
    dap, thread_id = stop_in_total(adapter, programs, version)
    top = frames(dap, thread_id)[0]
    assert local_values(dap, top["id"]) == {"qty": "1", "price": "10"}  # paused before subtotal is bound
    dap.call("evaluate", {"expression": "subtotal = 99", "frameId": top["id"], "context": "repl"})
    assert local_values(dap, top["id"])["subtotal"] == "99"

    mark = dap.mark()
    assert dap.call("restartFrame", {"frameId": top["id"]}) == {}
    stopped = dap.wait_stopped(since=mark)["body"]
    assert (stopped["reason"], stopped["threadId"]) == ("restart", thread_id)
    restarted = frames(dap, thread_id)[0]
    assert (restarted["name"], restarted["line"]) == ("total", find_marker(orders, "total_entry"))
    # A new call's locals: 3.10/3.11 unbind the rest; 3.12+ cannot unbind a local, so the
    # first run's value is replaced by None (the restart is refused where code could tell).
    fresh = {"qty": "1", "price": "10"}
    if python_of(version) not in ("3.10", "3.11"):
        fresh["subtotal"] = "None"
    assert local_values(dap, restarted["id"]) == fresh

    # Stepping goes on from there; the entry line ran twice for this one call.
    mark = dap.mark()
    dap.call("next", {"threadId": thread_id})
    dap.wait_stopped(since=mark)
    assert frames(dap, thread_id)[0]["line"] == find_marker(orders, "total_entry") + 1
    dap.set_breakpoints(orders, [])
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    dap.wait_output(r"^total=10 calls=2 n=1$", since=mark)
    dap.wait_output(r"^total=10 calls=3 n=2$", since=mark)


@pytest.mark.parametrize("version", [None, *OTHER_PYTHONS], ids=["this-python", *OTHER_PYTHONS])
def test_after_a_fix_restart_is_refused_and_rerun_runs_the_new_code(adapter, programs: Path, version: str | None) -> None:
    """Breakpoint-then-fix: the paused frame cannot switch to the fix, so restart is refused
    (and not offered); rerunning the call runs the new code on the frame's arguments, and
    the paused frame still finishes on the old code."""
    orders = programs / "orders.py"
    dap, thread_id = stop_in_total(adapter, programs, version)
    edit(orders, "subtotal = qty * price  # @total_body", "subtotal = qty * price * 2  # @total_body")
    dap.call("livefix/apply", {"changes": [definition(orders, "total")]})

    top = frames(dap, thread_id)[0]
    assert (top["line"], top["canRestart"]) == (find_marker(orders, "total_body"), False)
    info = dap.call("livefix/frameInfo", {"frameId": top["id"]})
    assert (info["fixed"], info["canRestart"], info["canRerun"]) == (True, False, True)
    assert info["restartRefusal"]["reason"] == "fixed"
    refused = dap.fail("restartFrame", {"frameId": top["id"]})
    assert refused["body"]["livefix"] == {
        "kind": "incompatible", "reason": "fixed", "message": refused["body"]["livefix"]["message"],
    }
    assert "livefix/rerunFrame" in refused["message"] and "cannot switch to new code" in refused["message"]

    dap.set_breakpoints(orders, [])  # (a breakpoint in the new code would stop the rerun: below)
    rerun = dap.call("livefix/rerunFrame", {"frameId": top["id"]})
    assert (rerun["function"], rerun["code"], rerun["result"], rerun["type"]) == ("orders.total", "new", "20", "int")
    assert rerun["arguments"] == {"qty": "1", "price": "10"}
    assert "with the new code, on a new thread (livefix-rerun): returned 20" in rerun["report"]
    assert "still runs the old code" in rerun["report"]
    assert frames(dap, thread_id)[0]["line"] == top["line"]  # the paused frame did not move

    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    # The paused call finishes on the old code (the rerun entered total once more), then new calls.
    dap.wait_output(r"^total=10 calls=2 n=1$", since=mark)
    dap.wait_output(r"^total=20 calls=3 n=2$", since=mark)


def test_rerun_reports_what_the_new_code_raises(adapter, programs: Path) -> None:
    orders = programs / "orders.py"
    dap, thread_id = stop_in_total(adapter, programs)
    edit(orders, "subtotal = qty * price  # @total_body", "subtotal = qty * price  # @total_body\n    raise ValueError(f'no price for {qty}')")
    dap.call("livefix/apply", {"changes": [definition(orders, "total")]})
    top = frames(dap, thread_id)[0]
    dap.set_breakpoints(orders, [])
    rerun = dap.call("livefix/rerunFrame", {"frameId": top["id"]})
    assert "result" not in rerun
    assert (rerun["exception"]["type"], rerun["exception"]["message"]) == ("ValueError", "no price for 1")
    assert f'orders.py", line {find_marker(orders, "total_body") + 1}, in total' in rerun["exception"]["traceback"]
    assert "livefix_frame_requests" not in rerun["exception"]["traceback"]  # only the call's own frames
    assert "raised ValueError: no price for 1" in rerun["report"]
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    dap.wait_output(r"^total=10 calls=2 n=1$", since=mark)  # the paused call, on the old code


@pytest.mark.parametrize("version", [None, *OTHER_PYTHONS], ids=["this-python", *OTHER_PYTHONS])
def test_a_breakpoint_in_the_new_code_stops_the_rerun(adapter, programs: Path, version: str | None) -> None:
    """The closest thing to restarting with the new code: the rerun is a new call on its
    own thread, debugged like any other; it stops at the breakpoint, in the new code, with
    the paused frame's arguments. Meanwhile the session answers everything else."""
    orders = programs / "orders.py"
    dap, thread_id = stop_in_total(adapter, programs, version)
    edit(orders, "subtotal = qty * price  # @total_body", "subtotal = qty * price * 2  # @total_body")
    dap.call("livefix/apply", {"changes": [definition(orders, "total")]})
    top = frames(dap, thread_id)[0]
    mark = dap.mark()
    rerun_seq = dap.send("livefix/rerunFrame", {"frameId": top["id"]})
    stopped = dap.wait_stopped(since=mark)["body"]
    rerun_thread = stopped["threadId"]
    assert {t["id"]: t["name"] for t in dap.threads()}[rerun_thread] == "livefix-rerun"
    new_top = frames(dap, rerun_thread)[0]
    assert (new_top["name"], new_top["line"], new_top["canRestart"]) == ("total", find_marker(orders, "total_body"), True)
    assert dap.call("evaluate", {"expression": "qty, price", "frameId": new_top["id"], "context": "repl"})["result"] == "(1, 10)"
    assert dap.call("livefix/frameInfo", {"frameId": new_top["id"]})["fixed"] is False  # it runs the new code
    assert dap.call("livefix/history")["generation"] == 1  # the adapter is not waiting on the rerun

    dap.set_breakpoints(orders, [])
    mark = dap.mark()
    dap.call("continue", {"threadId": rerun_thread})  # debugpy resumes every thread
    rerun = dap.response(rerun_seq)["body"]
    assert (rerun["result"], rerun["threadId"], rerun["code"]) == ("20", rerun_thread, "new")
    dap.wait_output(r"^total=10 calls=2 n=1$", since=mark)  # the paused call finished on the old code


def test_a_rerun_waiting_for_a_lock_the_paused_frame_holds_is_not_a_deadlock(adapter, programs: Path) -> None:
    """Paused inside `with lock:`, rerun the function, which takes the same lock: the rerun
    waits on its own thread (on the paused thread it would wait for itself forever), the
    session goes on, and once the paused frame releases the lock the rerun answers."""
    orders = programs / "orders.py"
    dap = adapter()
    dap.launch(
        launch_args(programs, "restart_cases.py", {"approval": "never"}),
        breakpoints={str(orders): [find_marker(orders, "locked_body")]},
    )
    thread_id = dap.wait_stopped()["body"]["threadId"]
    top = frames(dap, thread_id)[0]
    rerun_seq = dap.send("livefix/rerunFrame", {"frameId": top["id"]})
    with_line = find_marker(orders, "locked_body") - 1

    def blocked() -> bool:
        threads = dap.call("livefix/captureFrames", {"maxFrames": 1})["threads"]
        rerun = [t for t in threads if t["name"] == "livefix-rerun"]
        return bool(rerun) and (rerun[0]["frames"][0]["qualname"], rerun[0]["frames"][0]["line"]) == ("locked_total", with_line)

    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not blocked():  # each round trip is a request to the debuggee: no sleeping
        assert time.monotonic() < deadline, "the rerun never reached the lock"
    dap.set_breakpoints(orders, [])
    dap.call("continue", {"threadId": thread_id})
    rerun = dap.response(rerun_seq)["body"]
    assert (rerun["function"], rerun["code"], rerun["result"]) == ("orders.locked_total", "same", "10")
    dap.wait_output(r"^results=\[10, 10, 1, \[5\], 11, 2\] locked=False")


def test_frame_requests_refuse_bad_frames(adapter, programs: Path) -> None:
    dap, thread_id = stop_in_total(adapter, programs)
    assert dap.fail("livefix/rerunFrame", {})["body"]["livefix"]["kind"] == "invalid"
    assert dap.fail("livefix/frameInfo", {"frameId": "top"})["body"]["livefix"]["kind"] == "invalid"
    for command in ("livefix/frameInfo", "livefix/rerunFrame", "restartFrame"):
        unknown = dap.fail(command, {"frameId": 987654})
        assert (unknown["body"]["livefix"]["kind"], unknown["body"]["livefix"]["frameId"]) == ("notFound", 987654)
    assert dap.call("livefix/frameInfo") == {"restartFrame": True, "rerunFrame": True}  # the adapter's probe
    top = frames(dap, thread_id)[0]
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    dap.wait_output(r"^total=10 calls=1 n=1$", since=mark)
    # The frame id belonged to a suspension that is over.
    gone = dap.fail("restartFrame", {"frameId": top["id"]})
    assert gone["body"]["livefix"]["kind"] == "notFound"


# Where a restart is refused, per case: (marker of the stop, frame index asked about, reason).
REFUSED = [
    ("locked_body", 0, "withBlock"),
    ("finally_body", 0, "finallyBlock"),
    ("rebound_body", 0, "argumentsRebound"),
    ("generator_body", 0, "generator"),
    ("total_body", 1, "notTopFrame"),  # total called from outer: outer is below the top
]


@pytest.mark.parametrize("version", [None, *OTHER_PYTHONS], ids=["this-python", *OTHER_PYTHONS])
def test_restart_is_refused_where_it_would_not_be_a_new_call(adapter, programs: Path, version: str | None) -> None:
    """Each refusal names its reason, changes nothing (the frame stays where it is, and
    each case still returns what it returns without the debugger: the lock is released,
    the finally clause ran once)."""
    orders = programs / "orders.py"
    markers = [marker for marker, _, _ in REFUSED] + ["loop_var"]
    dap = adapter()
    dap.launch(
        launch_args(programs, "restart_cases.py", {"approval": "never"}, **interpreter(version)),
        breakpoints={str(orders): [find_marker(orders, m) for m in markers]},
    )
    since = 0
    for marker, index, reason in REFUSED:
        stopped = dap.wait_stopped(since=since)["body"]
        stack = frames(dap, stopped["threadId"])
        assert stack[0]["line"] == find_marker(orders, marker)
        assert stack[index]["canRestart"] is False
        info = dap.call("livefix/frameInfo", {"frameId": stack[index]["id"]})
        assert (info["canRestart"], info["restartRefusal"]["reason"]) == (False, reason), info
        refused = dap.fail("restartFrame", {"frameId": stack[index]["id"]})
        assert (refused["body"]["livefix"]["kind"], refused["body"]["livefix"]["reason"]) == ("incompatible", reason)
        assert frames(dap, stopped["threadId"])[0]["line"] == stack[0]["line"]
        since = dap.mark()
        dap.call("continue", {"threadId": stopped["threadId"]})
    # Reading a loop variable after its loop: 3.10/3.11 unbind it on restart; 3.12+ cannot
    # unbind a local, so a restart there is refused (a new call could fail where it would not).
    stopped = dap.wait_stopped(since=since)["body"]
    top = frames(dap, stopped["threadId"])[0]
    if python_of(version) in ("3.10", "3.11"):
        assert top["canRestart"] is True
        mark = dap.mark()
        dap.call("restartFrame", {"frameId": top["id"]})
        dap.wait_stopped(since=mark)
        assert local_values(dap, frames(dap, stopped["threadId"])[0]["id"]) == {"n": "3"}
    else:
        info = dap.call("livefix/frameInfo", {"frameId": top["id"]})
        assert (top["canRestart"], info["restartRefusal"]["reason"]) == (False, "staleLocals")
        assert "i" in info["restartRefusal"]["message"]
    dap.set_breakpoints(orders, [])
    dap.call("continue", {"threadId": stopped["threadId"]})
    dap.wait_output(r"^results=\[10, 10, 1, \[5\], 11, 2\] locked=False calls=\['cleanup', 1\]$")


def test_restart_is_refused_at_an_exception_stop(adapter, programs: Path) -> None:
    """Stopped because an exception is being raised: CPython does not jump then."""
    orders = programs / "orders.py"
    dap = adapter()
    dap.launch(
        launch_args(programs, "restart_raise.py", {"approval": "never"}),
        breakpoints={str(orders): [find_marker(orders, "checked_entry")]},
    )
    thread_id = dap.wait_stopped()["body"]["threadId"]
    assert frames(dap, thread_id)[0]["canRestart"] is True  # a line stop in the same function
    dap.call("setExceptionBreakpoints", {"filters": ["raised"]})
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    assert dap.wait_stopped(since=mark)["body"]["reason"] == "exception"
    top = frames(dap, thread_id)[0]
    assert (top["line"], top["canRestart"]) == (find_marker(orders, "raise"), False)
    info = dap.call("livefix/frameInfo", {"frameId": top["id"]})
    assert info["restartRefusal"]["reason"] == "exceptionStop"
    assert dap.fail("restartFrame", {"frameId": top["id"]})["body"]["livefix"]["reason"] == "exceptionStop"
    dap.call("setExceptionBreakpoints", {"filters": []})
    dap.call("continue", {"threadId": thread_id})
    dap.wait_output(r"^checked=checked$")


def test_without_livefix_in_the_debuggee_restart_is_never_offered(adapter, programs: Path, bare_python: str) -> None:
    """No livefix where the debuggee runs and injection off: no capabilities event, no
    canRestart, and a restartFrame sent anyway is refused at once (pydevd would never answer it)."""
    orders = programs / "orders.py"
    dap = adapter()
    dap.launch(
        launch_args(programs, "restart_app.py", {"bootstrap": False}, python=bare_python),
        breakpoints={str(orders): [find_marker(orders, "total_body")]},
    )
    thread_id = dap.wait_stopped()["body"]["threadId"]
    top = frames(dap, thread_id)[0]
    assert "canRestart" not in top
    assert not [e for e in dap.events if e.get("event") == "capabilities"]
    refused = dap.fail("restartFrame", {"frameId": top["id"]})
    assert refused["body"]["livefix"]["kind"] == "unsupported"
    assert dap.fail("livefix/rerunFrame", {"frameId": top["id"]})["body"]["livefix"]["kind"] == "unsupported"


def test_frame_request_internals_of_pydevd_are_present(tmp_path: Path) -> None:
    """Fails loudly when a debugpy release changes the pydevd internals the frame requests use."""
    plugin_dir = Path(__file__).resolve().parents[2] / "pydevd_plugins" / "extensions"
    code = (
        "import importlib.util, json, sys, debugpy, debugpy.server\n"
        f"spec = importlib.util.spec_from_file_location('frame_requests', {str(plugin_dir / 'livefix_frame_requests.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules[spec.name] = module; spec.loader.exec_module(module)\n"
        "print(json.dumps({'debugpy': debugpy.__version__, 'problems': module.check_compatibility()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), cwd=str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == [], f"debugpy {report['debugpy']} changed pydevd internals restart frame uses: {report['problems']}"
