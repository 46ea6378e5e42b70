"""Why "restart this frame with the new code" cannot be done, shown on each CPython (3.10-3.13).

These run small programs on this interpreter and on every other supported CPython pyenv
provides (skipped, saying so, when absent), with no debugger: what they show is CPython's,
and is why livefix restarts a frame only on its own code, never after a fix (it offers
`livefix/rerunFrame` instead; see test_adapter_restart_frame.py and docs/adapter.md,
"Restart frame"). Each program prints one JSON line of facts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from adapter_support import clean_env
from test_adapter_interpreters import pyenv_python

VERSIONS = ["this-python", "3.10", "3.12", "3.13"]


def python(version: str) -> str:
    if version == "this-python":
        return sys.executable
    found = pyenv_python(version)
    if found is None:
        pytest.skip(f"no Python {version} from pyenv on this machine")
    return found


def run(version: str, program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python(version), "-c", textwrap.dedent(program)], capture_output=True, text=True, env=clean_env(), timeout=60,
    )


def facts(version: str, program: str) -> dict[str, Any]:
    result = run(version, program)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_frame_cannot_switch_to_other_code(version: str) -> None:
    """`f_code` is read-only: a paused frame keeps the code it started with, whatever a fix does."""
    found = facts(version, """
        import json, sys
        def old():
            frame = sys._getframe()
            try:
                frame.f_code = (lambda: None).__code__
                return "assigned"
            except AttributeError as error:
                return "AttributeError"
        print(json.dumps({"f_code": old()}))
    """)
    assert found == {"f_code": "AttributeError"}


@pytest.mark.parametrize("version", VERSIONS)
def test_unwinding_a_frame_by_raising_from_the_tracer_cannot_come_back_to_the_call(version: str) -> None:
    """Raising from the trace function at a line of the callee unwinds through the caller
    (its except/finally clauses would run; it has no handler to call again) and CPython
    removes the trace function: the debugger would lose the thread."""
    found = facts(version, """
        import json, sys
        class Restart(BaseException):
            pass
        log = []
        def callee(x):
            log.append("callee")
            return x + 1
        def caller():
            try:
                return callee(5)
            finally:
                log.append("caller's finally ran")
        def tracer(frame, event, arg):
            if event == "line" and frame.f_code is callee.__code__ and not log:
                log.append("raise")  # at the callee's first line
                raise Restart()
            return tracer
        sys.settrace(lambda frame, event, arg: tracer)
        try:
            outcome = caller()
        except Restart:
            outcome = "Restart escaped the caller"
        print(json.dumps({"outcome": outcome, "log": log, "tracing": sys.gettrace() is not None}))
    """)
    assert found == {
        "outcome": "Restart escaped the caller", "log": ["raise", "caller's finally ran"], "tracing": False,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_a_caller_cannot_be_sent_back_to_its_call(version: str) -> None:
    """Jumping the *caller* back to the line of its call (to call the fixed function again)
    is never a re-call: 3.10 ignores it, 3.12 refuses it, 3.11 and 3.13 crash (so livefix
    never sets f_lineno on any frame but the one the thread is paused in)."""
    result = run(version, """
        import json, sys
        log = []
        def callee(x):
            log.append("callee")
            return x + 1  # the line the tracer acts on
        def caller():
            value = callee(5)  # the line of the call
            log.append(("caller got", value))
        call_line = caller.__code__.co_firstlineno + 1
        outcome = []
        def tracer(frame, event, arg):
            if event == "line" and frame.f_code is callee.__code__ and not outcome:
                try:
                    frame.f_back.f_lineno = call_line
                    outcome.append("jump accepted")
                except ValueError as error:
                    outcome.append("refused: %s" % error)
            return tracer
        sys.settrace(lambda frame, event, arg: tracer)
        caller()
        sys.settrace(None)
        print(json.dumps({"outcome": outcome[0], "log": log}))
    """)
    if result.returncode < 0:  # killed by a signal: CPython crashed (3.11, 3.13)
        assert result.returncode in (-11, -6), result.stderr
        return
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["log"] == ["callee", ["caller got", 6]], found  # called once: never again
    assert found["outcome"] == "jump accepted" or found["outcome"].startswith("refused"), found


@pytest.mark.parametrize("version", VERSIONS)
def test_a_running_frame_cannot_unbind_a_local_on_312_and_later(version: str) -> None:
    """What a restart can do to the first run's locals: 3.10/3.11 unbind them
    (PyFrame_LocalsToFast with clear); 3.12 binds None instead (and warns), 3.13's f_locals
    refuses to remove one. So on 3.12+ a restart is refused where code could see the difference."""
    found = facts(version, """
        import ctypes, json, sys, warnings
        def f():
            a = 1
            return a  # paused here (a line event), as a debugger pauses a frame
        outcome = []
        def tracer(frame, event, arg):
            if event == "line" and frame.f_code is f.__code__ and frame.f_lineno == f.__code__.co_firstlineno + 2 and not outcome:
                try:
                    if sys.version_info >= (3, 13):
                        del frame.f_locals["a"]
                    else:
                        frame.f_locals.pop("a")
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(1))
                        outcome.extend(str(warning.message) for warning in caught)
                except TypeError as error:
                    outcome.append("refused: %s" % error)
                outcome.append("done")
            return tracer
        sys.settrace(lambda frame, event, arg: tracer)
        try:
            value = "returned %r" % f()
        except UnboundLocalError:
            value = "unbound"
        sys.settrace(None)
        print(json.dumps({"version": "%d.%d" % sys.version_info[:2], "a": value, "notes": outcome[:-1]}))
    """)
    expected = {
        "3.10": ("unbound", []), "3.11": ("unbound", []),
        "3.12": ("returned None", ["assigning None to unbound local 'a'"]),
        "3.13": ("returned 1", ["refused: cannot remove variables from FrameLocalsProxy"]),
    }
    assert (found["a"], found["notes"]) == expected[found["version"]]
