"""Restart frame and rerun, the pydevd side: three requests served inside the debuggee.

- `restartFrame` (standard DAP): restart the frame a thread is paused in, on the code it
  runs, with a fresh call's locals; refused (with the reason) where that is not correct,
  including once a fix replaced the frame's code (a frame cannot switch code).
- `livefix/frameInfo`: may this frame restart, and if not why; did a fix replace its code;
  can its function be called again. Without `frameId`: which of these requests this
  debuggee serves (the adapter's probe before it advertises `supportsRestartFrame`).
- `livefix/rerunFrame`: call the paused frame's function again, with its current code
  (the fix) and the frame's argument values, on a new thread; answer with the result or
  the exception. The paused frame itself is left as it is, on its old code.

What CPython allows is decided in `livefix_frame_analysis.py`, the function and its call
in `livefix_frame_call.py`; docs/adapter.md ("Restart frame") says why. The jump, and the
reading of a call's arguments, happen on the paused thread itself, inside the trace or
monitoring callback it waits in (CPython changes `f_lineno` only there; the frame's locals
belong to it): a request is checked on pydevd's reader thread, handed to the paused thread
as a pydevd internal command, and answered from there (a rerun, from the thread it runs
on). The reader thread never waits for user code.

pydevd internals used here besides `livefix.pydevd_bridge` (they belong in the bridge,
which was not free to change when this was written): `py_db.suspended_frames_manager`
(frame ids to frames and threads), a thread's `additional_info.pydev_state` and
`is_in_wait_loop` and its `stop_reason`, `py_db.post_method_as_internal_command`, `BaseSchema._translate_id_from_dap`,
`pydevd_find_thread_by_id` (and the bridge's request class, for restartFrame too).
`check_compatibility()` lists what is missing.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable

RESTART_FRAME = "restartFrame"
# livefix's own frame requests (docs/protocol.md); the adapter knows them by these names too.
FRAME_INFO = "livefix/frameInfo"
RERUN_FRAME = "livefix/rerunFrame"
COMMANDS = (FRAME_INFO, RERUN_FRAME)
RERUN_THREAD = "livefix-rerun"  # the thread a rerun runs on (a new one each time)

# Siblings the plugin loads by path before this module (see `_sibling`).
ANALYSIS_MODULE = "pydevd_plugins.extensions.livefix_frame_analysis"
CALL_MODULE = "pydevd_plugins.extensions.livefix_frame_call"
_MAX_TRACEBACK = 20_000
_MAX_MESSAGE = 2_000


def check_compatibility() -> list[str]:
    """What these requests need from pydevd and do not find ([] = fine)."""
    problems = []
    for module_name, attribute in (
        ("_pydevd_bundle._debug_adapter.pydevd_base_schema", "register_request"),
        ("_pydevd_bundle.pydevd_process_net_command_json", "PyDevJsonCommandProcessor"),
        ("_pydevd_bundle.pydevd_thread_lifecycle", "pydevd_find_thread_by_id"),
        ("_pydevd_bundle.pydevd_constants", "STATE_SUSPEND"),
        ("_pydevd_bundle.pydevd_comm_constants", "CMD_STEP_CAUGHT_EXCEPTION"),
        ("_pydevd_bundle.pydevd_comm_constants", "CMD_ADD_EXCEPTION_BREAK"),
        ("_pydevd_bundle.pydevd_suspended_frames", "SuspendedFramesManager"),
        ("pydevd", "PyDB"),
    ):
        try:
            if not hasattr(import_module(module_name), attribute):
                problems.append(f"{module_name}.{attribute} is missing")
        except Exception as exc:
            problems.append(f"cannot import {module_name}: {type(exc).__name__}: {exc}")
    if problems:
        return problems
    manager = import_module("_pydevd_bundle.pydevd_suspended_frames").SuspendedFramesManager
    for method in ("get_thread_id_for_variable_reference", "find_frame", "get_frames_list"):
        if not callable(getattr(manager, method, None)):
            problems.append(f"SuspendedFramesManager.{method} is missing")
    if not callable(getattr(import_module("pydevd").PyDB, "post_method_as_internal_command", None)):
        problems.append("PyDB.post_method_as_internal_command is missing")
    info = getattr(import_module("_pydevd_bundle.pydevd_additional_thread_info"), "PyDBAdditionalThreadInfo", None)
    for attribute in ("pydev_state", "is_in_wait_loop"):
        if not hasattr(info, attribute):
            problems.append(f"PyDBAdditionalThreadInfo.{attribute} is missing")
    base = import_module("_pydevd_bundle._debug_adapter.pydevd_base_schema").BaseSchema
    if not callable(getattr(base, "_translate_id_from_dap", None)):
        problems.append("BaseSchema._translate_id_from_dap is missing")
    return problems


@dataclass
class Paused:
    """A frame of a thread paused in pydevd's wait loop, as a request found it."""

    dap_id: int
    thread_id: str  # pydevd's
    thread: Any
    frame: types.FrameType
    frames_list: Any  # pydevd's FramesList of that suspension: the paused frame first


class FrameRequests:
    """Serves the three requests; one per process, created by the livefix plugin."""

    def __init__(self, bridge: Any, engine: Any) -> None:
        from livefix import pydevd_bridge

        problems = check_compatibility()
        if problems:
            raise pydevd_bridge.IncompatiblePydevd("; ".join(problems))
        self.bridge = bridge
        self.engine = engine
        self._schema = import_module("_pydevd_bundle._debug_adapter.pydevd_base_schema")
        self._processor = import_module("_pydevd_bundle.pydevd_process_net_command_json").PyDevJsonCommandProcessor
        self._find_thread = import_module("_pydevd_bundle.pydevd_thread_lifecycle").pydevd_find_thread_by_id
        self._suspended = import_module("_pydevd_bundle.pydevd_constants").STATE_SUSPEND
        constants = import_module("_pydevd_bundle.pydevd_comm_constants")
        self._exception_stops = {constants.CMD_STEP_CAUGHT_EXCEPTION, constants.CMD_ADD_EXCEPTION_BREAK}
        self._request_class = pydevd_bridge._make_request_class(self._schema.BaseSchema)
        # id(code) -> (code, history stamp, (fixed, rerunnable)): every stackTrace asks
        # about the top frame, and finding a nested function's object scans the heap.
        self._code_facts: dict[int, tuple[types.CodeType, Any, tuple[bool, bool]]] = {}

    def install(self) -> None:
        for command, handler in ((RESTART_FRAME, self._restart), (FRAME_INFO, self._frame_info), (RERUN_FRAME, self._rerun)):
            self._serve(command, handler)

    def _serve(self, command: str, handler: Callable[[Any, Any], Any]) -> None:
        """Dispatch `command` to `handler(py_db, request)` on pydevd's reader thread. The
        handler returns a response body (answered now) or None (the paused thread answers).
        Arguments stay a plain dict, ids as the client sent them (for restartFrame too: its
        schema class would refuse an unknown frameId before any handler could say why)."""
        from livefix import dap
        from livefix.errors import LivefixError

        self._schema.register_request(command)(self._request_class)
        requests = self

        def on_request(processor: Any, py_db: Any, request: Any) -> Any:
            try:
                body = handler(py_db, request)
            except LivefixError as error:
                return requests.bridge.response_command(request, False, *dap.error_response(error))
            except BaseException as exc:  # a missing response would hang the client
                error = LivefixError("internal", f"{command} failed unexpectedly: {type(exc).__name__}: {exc}")
                return requests.bridge.response_command(request, False, *dap.error_response(error))
            if body is None:
                return None
            return requests.bridge.response_command(request, True, "", body)

        on_request.__name__ = "on_%s_request" % command.lower()
        setattr(self._processor, on_request.__name__, on_request)

    # -- finding the frame -------------------------------------------------------------------

    def _paused(self, py_db: Any, frame_id: Any, dap_id: Any) -> Paused:
        from livefix.errors import LivefixError

        manager = py_db.suspended_frames_manager
        thread_id = manager.get_thread_id_for_variable_reference(frame_id)
        frame = manager.find_frame(thread_id, frame_id) if thread_id is not None else None
        thread = self._find_thread(thread_id) if frame is not None else None
        info = getattr(thread, "additional_info", None)
        # In the wait loop: only there does the thread run what is posted to it (a thread
        # that "suspend all" caught in C code gets there only when that code returns).
        if frame is None or info is None or info.pydev_state != self._suspended or not getattr(info, "is_in_wait_loop", False):
            raise LivefixError(
                "notFound", f"No paused frame with id {dap_id}: its thread was resumed, or it is not a frameId from stackTrace",
                frameId=dap_id,
            )
        return Paused(dap_id, thread_id, thread, frame, manager.get_frames_list(thread_id))

    def _livefix_frame(self, py_db: Any, request: Any) -> Paused:
        from livefix.errors import LivefixError

        arguments = request.arguments if isinstance(request.arguments, dict) else {}
        dap_id = arguments.get("frameId")
        if not isinstance(dap_id, int) or isinstance(dap_id, bool):
            raise LivefixError("invalid", f"{request.command} needs `frameId`, a frame id from a stackTrace response")
        try:
            frame_id = self._schema.BaseSchema._translate_id_from_dap(dap_id)
        except KeyError:
            frame_id = None
        return self._paused(py_db, frame_id, dap_id)

    def _still_paused(self, paused: Paused, py_db: Any) -> bool:
        """On the paused thread, when the internal command runs: is it the same suspension?"""
        info = getattr(paused.thread, "additional_info", None)
        return (
            info is not None and info.pydev_state == self._suspended
            and py_db.suspended_frames_manager.get_frames_list(paused.thread_id) is paused.frames_list
        )

    def _replaced(self) -> list[tuple[str, str]]:
        """(module, qualname) of every definition an active generation replaced."""
        replaced = []
        for generation in self.engine.history().get("generations", []):
            if generation.get("status") == "active":
                replaced.extend((c.get("module"), c.get("qualname")) for c in generation.get("changes", []))
        return replaced

    def _facts(self, frame: types.FrameType, fresh: bool = False) -> tuple[bool, bool]:
        """(a fix replaced the frame's code, its function can be called again), cached per
        code object until the history changes (`fresh`: not from the cache, for a restart)."""
        analysis = _analysis()
        replaced = self._replaced()
        stamp = (self.engine.generation, tuple(replaced))
        code = frame.f_code
        cached = self._code_facts.get(id(code))
        if cached is not None and cached[0] is code and cached[1] == stamp and not fresh:
            return cached[2]
        function, fixed = _call().function_of(frame, replaced)
        kind = analysis.code_refusal(code)
        rerunnable = function is not None and (kind is None or kind.reason not in ("notFunction", "generator"))
        if len(self._code_facts) >= 64:
            self._code_facts.clear()
        self._code_facts[id(code)] = (code, stamp, (fixed, rerunnable))
        return fixed, rerunnable

    # -- restartFrame ------------------------------------------------------------------------

    def restart_refusal(self, paused: Paused, fresh: bool = False) -> Any:
        """Why `paused` cannot restart (an analysis.Refusal), or None."""
        analysis = _analysis()
        frames = list(paused.frames_list or [])
        raising = getattr(paused.frames_list, "exc_type", None) is not None
        if raising or getattr(paused.thread, "stop_reason", None) in self._exception_stops:
            return analysis.Refusal(
                "exceptionStop",
                "stopped at an exception: a jump cannot stop an exception being raised; "
                "step until it is handled, or run the call again (livefix/rerunFrame)",
            )
        if not frames or frames[0] is not paused.frame:
            return analysis.Refusal(
                "notTopFrame",
                "only the frame the thread is paused in can restart: the frames above it would have to be unwound, "
                "which CPython does only by raising an exception through them (running their except and finally "
                "clauses, and stopping the debugger's tracing of the thread)",
            )
        fixed, _ = self._facts(paused.frame, fresh)
        if fixed:
            return analysis.Refusal(
                "fixed",
                f"{_where(paused.frame)} was fixed after this frame started, and a frame cannot switch to new code "
                "(CPython ties a frame to its code object for its lifetime): run the call again with the new code "
                "instead (livefix/rerunFrame)",
            )
        return analysis.restart_refusal(paused.frame)

    def _restart(self, py_db: Any, request: Any) -> None:
        from livefix.errors import LivefixError

        paused = self._livefix_frame(py_db, request)
        refusal = self.restart_refusal(paused, fresh=True)
        if refusal is not None:
            raise LivefixError("incompatible", f"Cannot restart this frame: {refusal.message}", reason=refusal.reason)
        py_db.post_method_as_internal_command(paused.thread_id, self._restart_on_thread, request, paused)
        return None

    def _restart_on_thread(self, py_db: Any, request: Any, paused: Paused) -> None:
        """On the paused thread, inside the callback it waits in: jump, reset, answer, stop again."""
        from livefix.errors import LivefixError

        if not self._still_paused(paused, py_db):
            self._answer(py_db, request, LivefixError("failed", "The thread was resumed before the restart could run"))
            return
        try:
            _analysis().restart(paused.frame)
        except ValueError as error:  # CPython's own refusal of the jump; nothing changed
            refused = LivefixError("incompatible", f"Cannot restart this frame: CPython refused the jump: {error}", reason="jumpRefused")
            self._answer(py_db, request, refused)
            return
        self._answer(py_db, request, {})
        # DAP: after the response, a `stopped` event with reason "restart"; the client
        # fetches the stack again (pydevd reads each frame's line live).
        self.bridge.send_event("stopped", {
            "reason": "restart", "threadId": self.bridge.dap_thread_id(paused.thread.ident),
            "preserveFocusHint": False, "allThreadsStopped": False,
        }, getattr(py_db, "writer", None))

    # -- livefix/frameInfo -------------------------------------------------------------------

    def _frame_info(self, py_db: Any, request: Any) -> dict[str, Any]:
        arguments = request.arguments if isinstance(request.arguments, dict) else {}
        if "frameId" not in arguments:
            return {"restartFrame": True, "rerunFrame": True}
        paused = self._livefix_frame(py_db, request)
        fixed, rerunnable = self._facts(paused.frame)
        refusal = self.restart_refusal(paused)
        body: dict[str, Any] = {
            "frameId": paused.dap_id,
            "function": _where(paused.frame),
            "fixed": fixed,
            "canRestart": refusal is None,
            "canRerun": rerunnable,
        }
        if refusal is None:
            body["restartLine"] = _analysis().first_body_line(paused.frame.f_code)
        else:
            body["restartRefusal"] = {"reason": refusal.reason, "message": refusal.message}
        return body

    # -- livefix/rerunFrame ------------------------------------------------------------------

    def _rerun(self, py_db: Any, request: Any) -> None:
        paused = self._livefix_frame(py_db, request)
        py_db.post_method_as_internal_command(paused.thread_id, self._rerun_on_thread, request, paused)
        return None

    def _rerun_on_thread(self, py_db: Any, request: Any, paused: Paused) -> None:
        """On the paused thread (the frame's locals belong to it): read the call, then run it
        on a new thread, in a copy of the paused thread's context variables.

        Not on the paused thread itself: a function that takes a lock the paused stack holds
        (stopped inside `with lock:`) would wait for itself forever; and a new thread is
        debugged like any other, so a breakpoint in the new code stops the rerun there.
        """
        from livefix.errors import LivefixError

        calls = _call()
        if not self._still_paused(paused, py_db):
            self._answer(py_db, request, LivefixError("failed", "The thread was resumed before the call could run"))
            return
        try:
            call = calls.call_of(paused.frame, self._replaced())
        except calls.NotCallable as error:
            kind = "notFound" if error.reason == "functionNotFound" else "incompatible"
            self._answer(py_db, request, LivefixError(kind, f"Cannot run this call again: {error.message}", reason=error.reason))
            return
        context = contextvars.copy_context()

        def rerun() -> None:  # the frame under the call in the new thread's stack
            started = time.perf_counter()
            try:
                value, raised = context.run(call.function, *call.args, **call.kwargs), None
            except BaseException as exc:  # the call's outcome, whatever it is, is the answer
                value, raised = None, exc
            duration = (time.perf_counter() - started) * 1000
            try:
                body = _rerun_body(call, value, raised, duration)
                body["threadId"] = self.bridge.dap_thread_id(threading.get_ident())
                self._answer(py_db, request, body)
            except BaseException as exc:  # a missing response would leave the client waiting
                self._answer(py_db, request, LivefixError("internal", f"Reporting the rerun failed: {type(exc).__name__}: {exc}"))

        threading.Thread(target=rerun, name=RERUN_THREAD, daemon=True).start()

    def _answer(self, py_db: Any, request: Any, outcome: Any) -> None:
        """Send the response to `request` from the paused thread: a body, or a LivefixError."""
        from livefix import dap
        from livefix.errors import LivefixError

        if isinstance(outcome, LivefixError):
            command = self.bridge.response_command(request, False, *dap.error_response(outcome))
        else:
            command = self.bridge.response_command(request, True, "", outcome)
        py_db.writer.add_command(command)


def _rerun_body(call: Any, value: Any, raised: BaseException | None, duration: float) -> dict[str, Any]:
    calls = _call()
    arguments = ", ".join(f"{name}={shown}" for name, shown in call.shown.items())
    body: dict[str, Any] = {
        "function": call.name,
        "code": "new" if call.fixed else "same",
        "arguments": call.shown,
        "durationMs": round(duration, 3),
    }
    which = "with the new code" if call.fixed else "again (nothing was fixed since the frame started: the same code)"
    which += f", on a new thread ({RERUN_THREAD})"
    if raised is None:
        body.update(result=calls.safe_repr(value), type=_type_name(value))
        outcome = f"returned {body['result']}"
    else:
        # Leave out the first entry of the traceback: the rerun's own call site, in livefix.
        tb = raised.__traceback__.tb_next if raised.__traceback__ is not None else None
        try:
            trace = "".join(traceback.format_exception(type(raised), raised, tb))
            message = str(raised)
        except Exception as error:  # a user __str__ that raises
            trace, message = "", f"<str() failed: {type(error).__name__}>"
        body["exception"] = {"type": _type_name(raised), "message": message[:_MAX_MESSAGE], "traceback": trace[-_MAX_TRACEBACK:]}
        outcome = f"raised {_type_name(raised)}" + (f": {message[:_MAX_MESSAGE]}" if message else "")
    lines = [f"Ran {call.name}({arguments}) {which}: {outcome} ({duration:.1f} ms)."]
    if call.fixed:
        lines.append("The paused frame still runs the old code: resumed, it finishes its call on the old code.")
    if call.rebound:
        body["rebound"] = call.rebound
        names = ", ".join(call.rebound)
        lines.append(f"{names}: reassigned in the body of the running code, so the value passed is its current value, "
                     "not necessarily the one it was called with.")
    body["report"] = "\n".join(lines)
    return body


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _where(frame: types.FrameType) -> str:
    return f"{frame.f_globals.get('__name__', '?')}.{_call().qualname(frame)}"


def _analysis() -> Any:
    """`livefix_frame_analysis`, which the plugin loads next to this module by path (when
    livefix is injected, `pydevd_plugins.extensions` is debugpy's package, not ours)."""
    return sys.modules[ANALYSIS_MODULE]


def _call() -> Any:
    """`livefix_frame_call`, loaded by path like `livefix_frame_analysis`."""
    return sys.modules[CALL_MODULE]
