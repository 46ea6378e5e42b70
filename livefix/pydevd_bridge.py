"""Every reliance of livefix on pydevd's internals, in one small module.

pydevd (vendored in debugpy) has no public API for custom DAP requests, so the livefix
plugin leans on a handful of internals, all of them named here and nowhere else:

- `_pydevd_bundle._debug_adapter.pydevd_base_schema`: `register_request(command)` (the
  reader only dispatches requests whose command has a registered class),
  `BaseSchema` and its DAP id translation (`_translate_id_to_dap`), which turns pydevd's
  string thread ids into the integers of the DAP `threads` response;
- `_pydevd_bundle.pydevd_process_net_command_json.PyDevJsonCommandProcessor`: requests
  are dispatched to `on_<command>_request(py_db, request)` methods of this class, on
  pydevd's reader thread, under `py_db._main_lock`, after pydevd's own authentication
  check; `on_launch_request` / `on_attach_request` receive the start request (whose
  unknown keys, such as `livefix`, land in `request.arguments.kwargs`);
- `_pydevd_bundle.pydevd_net_command.NetCommand` + `pydevd_comm_constants.CMD_RETURN`:
  a JSON message queued on `py_db.writer` (whose `.sock` is the connection to the adapter),
  with `call_after_send(callback)` run by the writer thread once it is on the wire;
- `_pydevd_bundle.pydevd_constants.get_global_debugger` and `get_thread_id`;
- pydevd's own threads carry `is_pydev_daemon_thread = True` and are hidden from
  `threading.enumerate()` (pydevd patches it), so they are found in `threading._active`.

`check_compatibility()` lists what is missing or changed; tests/adapter/test_adapter_plumbing.py
runs it against the installed debugpy so that a release changing these fails loudly.
Imported only inside a debuggee where pydevd is already loaded (by the plugin). The engine
never imports this module.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
import threading
from importlib import import_module
from typing import Any, Callable

# (module, attribute, parameters the attribute must accept, or None for "not a callable we call")
_REQUIRED: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("_pydevd_bundle._debug_adapter.pydevd_base_schema", "register_request", ("command",)),
    ("_pydevd_bundle._debug_adapter.pydevd_base_schema", "BaseSchema", None),
    ("_pydevd_bundle._debug_adapter.pydevd_base_schema", "_requests_to_types", None),
    ("_pydevd_bundle.pydevd_process_net_command_json", "PyDevJsonCommandProcessor", None),
    ("_pydevd_bundle.pydevd_net_command", "NetCommand", ("cmd_id", "seq", "text", "is_json")),
    ("_pydevd_bundle.pydevd_comm_constants", "CMD_RETURN", None),
    ("_pydevd_bundle.pydevd_constants", "get_global_debugger", ()),
    ("_pydevd_bundle.pydevd_constants", "get_thread_id", ("thread",)),
)
_PROCESSOR_METHODS = ("on_launch_request", "on_attach_request", "process_net_command_json")

# Answer of a request handler: (success, message, body, events to send after the response).
Outcome = tuple[bool, str, dict[str, Any], list[tuple[str, dict[str, Any]]]]
RequestHandler = Callable[[Any, str, Any], Outcome]
# Start-request hook: (py_db, command, livefix-relevant arguments) -> refusal (message, body) or None.
StartHook = Callable[[Any, str, dict[str, Any]], "tuple[str, dict[str, Any]] | None"]


class IncompatiblePydevd(RuntimeError):
    """The loaded pydevd lacks an internal livefix relies on (a debugpy release changed it)."""


def check_compatibility() -> list[str]:
    """What livefix needs from pydevd and does not find: [] means compatible."""
    problems: list[str] = []
    for module_name, attribute, parameters in _REQUIRED:
        try:
            module = import_module(module_name)
        except Exception as exc:  # ImportError, or pydevd failing at import
            problems.append(f"cannot import {module_name}: {type(exc).__name__}: {exc}")
            continue
        if not hasattr(module, attribute):
            problems.append(f"{module_name}.{attribute} is missing")
            continue
        if parameters:
            missing = _missing_parameters(getattr(module, attribute), parameters)
            if missing:
                problems.append(f"{module_name}.{attribute} no longer accepts {', '.join(missing)}")
    try:
        processor = import_module("_pydevd_bundle.pydevd_process_net_command_json").PyDevJsonCommandProcessor
    except Exception:
        return problems
    for method in _PROCESSOR_METHODS:
        if not callable(getattr(processor, method, None)):
            problems.append(f"PyDevJsonCommandProcessor.{method} is missing")
    try:
        dispatch = inspect.getsource(processor.process_net_command_json)
    except (OSError, TypeError):
        dispatch = ""
    # The reader must still dispatch by method name and check authentication first.
    for needle in ('"on_%s_request"', "is_authenticated()"):
        if dispatch and needle not in dispatch:
            problems.append(f"PyDevJsonCommandProcessor.process_net_command_json no longer contains {needle}")
    if not isinstance(getattr(threading, "_active", None), dict):
        problems.append("threading._active (every thread, pydevd's hidden ones included) is missing")
    try:
        daemon_source = inspect.getsource(import_module("_pydevd_bundle.pydevd_daemon_thread"))
    except Exception:
        daemon_source = ""
    if "is_pydev_daemon_thread = True" not in daemon_source:
        problems.append("pydevd no longer marks its threads with is_pydev_daemon_thread")
    net_command = import_module("_pydevd_bundle.pydevd_net_command").NetCommand
    if not callable(getattr(net_command, "call_after_send", None)):
        problems.append("NetCommand.call_after_send is missing")
    base_schema = import_module("_pydevd_bundle._debug_adapter.pydevd_base_schema").BaseSchema
    if not callable(getattr(base_schema, "_translate_id_to_dap", None)):
        problems.append("BaseSchema._translate_id_to_dap is missing")
    return problems


def _missing_parameters(function: Any, names: tuple[str, ...]) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return []
    return [name for name in names if name not in signature.parameters]


class PydevdBridge:
    """The operations the livefix plugin needs from the pydevd loaded in this process."""

    def __init__(self) -> None:
        problems = check_compatibility()
        if problems:
            raise IncompatiblePydevd("; ".join(problems))
        self._schema = import_module("_pydevd_bundle._debug_adapter.pydevd_base_schema")
        self._processor = import_module("_pydevd_bundle.pydevd_process_net_command_json").PyDevJsonCommandProcessor
        self._NetCommand = import_module("_pydevd_bundle.pydevd_net_command").NetCommand
        self._CMD_RETURN = import_module("_pydevd_bundle.pydevd_comm_constants").CMD_RETURN
        constants = import_module("_pydevd_bundle.pydevd_constants")
        self._get_global_debugger = constants.get_global_debugger
        self._get_thread_id = constants.get_thread_id
        self._request_class = _make_request_class(self._schema.BaseSchema)
        self._saved_interval: float | None = None

    # -- requests ----------------------------------------------------------------------

    def register_request(self, command: str, handler: RequestHandler) -> None:
        """Serve `command` on pydevd's reader thread with `handler(py_db, command, arguments)`.

        Events the handler returns are queued after the response, so the client has its
        answer first. From the request's arrival until its response is on the wire the
        interpreter's switch interval is lowered (see `_boost_switching`).
        """
        self._schema.register_request(command)(self._request_class)
        bridge = self

        def on_request(processor: Any, py_db: Any, request: Any) -> Any:
            bridge._boost_switching()
            try:
                success, message, body, events = handler(py_db, request.command, request.arguments)
                command = bridge.response_command(request, success, message, body)
            except BaseException as exc:  # a missing response would hang the session
                bridge._restore_switching()
                message = f"livefix plugin failed: {type(exc).__name__}: {exc}"
                return bridge.response_command(request, False, message, {})
            writer = getattr(py_db, "writer", None)

            def after_send(sock: Any) -> None:
                bridge._restore_switching()
                for event, event_body in events:
                    bridge.send_event(event, event_body, writer)

            command.call_after_send(after_send)
            return command

        on_request.__name__ = "on_%s_request" % command.lower()
        setattr(self._processor, on_request.__name__, on_request)

    def response_command(self, request: Any, success: bool, message: str, body: dict[str, Any]) -> Any:
        response: dict[str, Any] = {
            "type": "response",
            "request_seq": request.seq,
            "command": request.command,
            "success": success,
            "body": body,
        }
        if not success:
            response["message"] = message
        return self._NetCommand(self._CMD_RETURN, 0, response, is_json=True)

    # While a livefix request is served, a CPU-bound user thread would make each GIL
    # handoff (reader thread after every syscall, then the writer thread) wait up to the
    # switch interval (5 ms by default). A 0.1 ms interval for those few milliseconds keeps
    # the round trip short; the writer restores it once the response is sent.
    _BOOSTED_INTERVAL = 0.0001

    def _boost_switching(self) -> None:
        if self._saved_interval is None:
            self._saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_interval, self._BOOSTED_INTERVAL))

    def _restore_switching(self) -> None:
        saved, self._saved_interval = self._saved_interval, None
        if saved is not None:
            sys.setswitchinterval(saved)

    def intercept_start_requests(self, hook: StartHook) -> None:
        """Call `hook(py_db, command, arguments)` before pydevd handles `launch`/`attach`;
        a non-None result `(message, body)` refuses the request with that error."""
        for name in ("on_launch_request", "on_attach_request"):
            original = getattr(self._processor, name)
            if getattr(original, "__livefix_original__", None) is not None:
                original = original.__livefix_original__  # re-installed: wrap pydevd's, not ours
            wrapper = self._start_wrapper(original, hook)
            setattr(self._processor, name, wrapper)

    def _start_wrapper(self, original: Callable[..., Any], hook: StartHook) -> Callable[..., Any]:
        make_response = self.response_command

        def on_start_request(processor: Any, py_db: Any, request: Any) -> Any:
            arguments = getattr(request.arguments, "kwargs", None) or {}
            try:
                refusal = hook(py_db, request.command, dict(arguments))
            except Exception as exc:
                refusal = (f"livefix could not read the {request.command} options: {exc}", {})
            if refusal is not None:
                return make_response(request, False, refusal[0], refusal[1])
            return original(processor, py_db, request)

        on_start_request.__livefix_original__ = original  # type: ignore[attr-defined]
        on_start_request.__name__ = original.__name__
        return on_start_request

    # -- events ------------------------------------------------------------------------

    def send_event(self, event: str, body: dict[str, Any], writer: Any = None) -> bool:
        """Queue a DAP event to the adapter; False when no client is connected."""
        if writer is None:
            writer = getattr(self._get_global_debugger(), "writer", None)
        if writer is None:
            return False
        message = {"type": "event", "event": event, "body": body}
        # -1: not a pydevd command id; pydevd's own send_json_message uses the same.
        writer.add_command(self._NetCommand(-1, 0, message, is_json=True))
        return True

    # -- threads and sockets -------------------------------------------------------------

    def dap_thread_id(self, ident: int) -> int:
        """The id the DAP `threads` response uses for the Python thread `ident`.

        Threads pydevd lists are keyed by `get_thread_id(thread)`; threads unknown to the
        debugger get a stable id of their own from the same counter, so ids never clash.
        """
        thread = _all_threads().get(ident)
        key = self._get_thread_id(thread) if thread is not None else f"livefix_ident_{ident}"
        return int(self._schema.BaseSchema._translate_id_to_dap(key))

    def debugger_thread_ids(self) -> set[int]:
        """DAP ids of pydevd's own threads (reader, writer...), which `threads` never lists.

        pydevd (and debugpy's `hide_thread_from_debugger`) mark them `is_pydev_daemon_thread`.
        """
        return {
            self.dap_thread_id(ident)
            for ident, thread in _all_threads().items()
            if getattr(thread, "is_pydev_daemon_thread", False)
        }

    def debugger_code_dirs(self) -> tuple[str, ...]:
        """Directories of the debugger's own code (debugpy, with pydevd vendored inside it):
        frames there are the debugger's, e.g. the wait loop above a paused frame."""
        dirs = []
        for name in ("debugpy", "pydevd"):
            module = sys.modules.get(name)
            path = getattr(module, "__file__", None)
            if path:
                dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
        return tuple(dirs)

    def debugger(self) -> Any:
        """pydevd's PyDB of this process (None before the debugger is set up)."""
        return self._get_global_debugger()

    def set_nodelay(self, py_db: Any) -> bool:
        """Disable Nagle on pydevd's connection to the adapter.

        pydevd writes each message as two `sendall`s (header, then body); with Nagle on,
        the body waits for the ACK of the header, which the adapter delays ~40 ms.
        """
        sock = getattr(getattr(py_db, "writer", None), "sock", None)
        if sock is None:
            return False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            return False  # not TCP (e.g. a pipe in some embeddings): nothing to disable
        return True


def _all_threads() -> dict[int, threading.Thread]:
    """Every Python thread by ident, the debugger's included: pydevd patches
    `threading.enumerate` to hide its own threads, so read the registry it filters."""
    return dict(threading._active)  # type: ignore[attr-defined]  # copied under the GIL


def _make_request_class(base: type) -> type:
    """One request class for every livefix command: pydevd builds it with
    `cls(update_ids_from_dap=..., **message)`; arguments stay a plain dict."""

    class LivefixRequest(base):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            command: str = "",
            seq: int = -1,
            arguments: Any = None,
            update_ids_from_dap: bool = False,
            type: str = "request",  # noqa: A002 - the DAP field name
            **kwargs: Any,
        ) -> None:
            self.type = "request"
            self.command = command
            self.seq = seq
            self.arguments = {} if arguments is None else arguments  # validated by the Service
            self.kwargs = kwargs

        def to_dict(self, update_ids_to_dap: bool = False) -> dict[str, Any]:
            return {"type": self.type, "command": self.command, "seq": self.seq, "arguments": self.arguments, **self.kwargs}

    return LivefixRequest
