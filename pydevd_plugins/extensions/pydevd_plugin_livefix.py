"""pydevd plugin: serves livefix's custom DAP requests inside every debugged process.

pydevd imports every `pydevd_plugins.extensions.pydevd_plugin_*` module it finds on
`sys.path` when it starts (launch, `debugpy --listen`, attach, child processes), so a
regular install of livefix makes this module run in every process debugpy debugs in that
environment. It connects three things:

- pydevd (through `livefix.pydevd_bridge`, the only module touching pydevd internals):
  the custom requests arrive on pydevd's reader thread, running or paused;
- the `livefix` option of the `launch`/`attach` request pydevd receives
  (`{approval, auditLog}`, forwarded verbatim by debugpy's adapter and copied into child
  processes' attach configurations): it configures the service and, for livefix
  sessions, turns off Nagle on pydevd's socket;
- `livefix.service.Service` over the process's engine: every answer is a response body or
  a `LivefixError` turned into a DAP error response by `livefix.dap`;
- restart frame and rerun (`restartFrame`, `livefix/frameInfo`, `livefix/rerunFrame`):
  `livefix_frame_requests.py` and the two modules it uses, loaded next to this file by path.

Nothing here may break the debugger: when livefix cannot load, a one-line warning goes to
stderr and pydevd runs on without livefix (its requests then fail as unknown).
"""

from __future__ import annotations

import os
import sys
from typing import Any

# pydevd instantiates public classes of plugin modules that subclass its extension types;
# this module provides none, so export nothing.
__all__: list[str] = []


class LivefixPlugin:
    """The root object of livefix inside a debugged process: bridge + service."""

    def __init__(self, bridge: Any, service: Any) -> None:
        self.bridge = bridge
        self.service = service
        # Events emitted while a request is answered; only the reader thread answers.
        self._held: list[tuple[str, dict[str, Any]]] | None = None

    @classmethod
    def create(cls) -> "LivefixPlugin":
        from livefix.engine import default_engine
        from livefix.pydevd_bridge import PydevdBridge
        from livefix.service import Service, ServiceOptions

        bridge = PydevdBridge()
        plugin = cls(bridge, None)
        plugin.service = Service(
            default_engine(), ServiceOptions(), emit=plugin.emit, thread_id=bridge.dap_thread_id
        )
        return plugin

    def install(self) -> None:
        from livefix import protocol

        for command in protocol.COMMANDS:
            self.bridge.register_request(command, self.answer)
        self.bridge.intercept_start_requests(self.on_start_request)
        # Track module sources from the start, before user code imports anything.
        self.service.engine.install()

    # -- called by pydevd's reader thread ----------------------------------------------------

    def answer(self, py_db: Any, command: str, arguments: Any) -> Any:
        """One livefix request: (success, message, body, events to send after the response).

        Never raises. Events the service emits while answering are held back so that the
        response goes out first.
        """
        from livefix import dap, protocol
        from livefix.errors import LivefixError

        self._held = held = []
        try:
            # Also here: other adapters (debugpy's own, `--listen`) forward requests unchecked.
            protocol.check_limits(arguments)
            if command == protocol.CAPTURE_FRAMES:
                return True, "", self._capture_frames(arguments), held
            return True, "", self.service.handle(command, arguments), held
        except LivefixError as error:
            message, body = dap.error_response(error)
            return False, message, body, held
        except BaseException as exc:  # Service converts Exceptions; this is the last resort
            message, body = dap.error_response(
                LivefixError("internal", f"{command} failed unexpectedly: {type(exc).__name__}: {exc}")
            )
            return False, message, body, held
        finally:
            self._held = None

    def _capture_frames(self, arguments: Any) -> dict[str, Any]:
        """Frames as the debugger shows them: without pydevd's threads, nor its frames (the
        wait loop on top of a paused thread, the runner below `<module>`)."""
        from livefix import protocol
        from livefix.errors import LivefixError

        max_frames = arguments.get("maxFrames") if isinstance(arguments, dict) else None
        if max_frames is not None:
            if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames < 1:
                raise LivefixError("invalid", "`maxFrames` must be a positive integer")
            # Capture whole stacks: the bound applies after the debugger's frames are dropped.
            arguments = {key: value for key, value in arguments.items() if key != "maxFrames"}
        body = self.service.handle(protocol.CAPTURE_FRAMES, arguments)
        hidden = self.bridge.debugger_thread_ids()
        debugger_dirs = self.bridge.debugger_code_dirs()
        threads = []
        for thread in body.get("threads", []):
            if thread.get("id") in hidden:
                continue
            frames = _user_frames(thread.get("frames", []), debugger_dirs)
            threads.append({**thread, "frames": frames[:max_frames] if max_frames else frames})
        return {**body, "threads": threads}

    def on_start_request(self, py_db: Any, command: str, arguments: dict[str, Any]) -> Any:
        """Read the `livefix` option of `launch`/`attach`; refuse the request when it is bad."""
        if "livefix" not in arguments:
            return None  # not a livefix session: keep pydevd's stock behaviour (and defaults)
        from livefix import dap
        from livefix.errors import LivefixError
        from livefix.service import ServiceOptions

        try:
            self.service.options = ServiceOptions.from_wire(arguments["livefix"])
        except LivefixError as error:
            return dap.error_response(error)
        self.bridge.set_nodelay(py_db)
        return None

    def emit(self, event: str, body: dict[str, Any]) -> None:
        """Service callback: the `livefix/applied` event, then the report as console output."""
        from livefix import dap, protocol

        events = [(event, body)]
        if event in protocol.REPORTED_EVENTS and body.get("report"):
            events.append(("output", {"category": "console", "output": dap.output_text(body["report"])}))
        held = self._held
        if held is not None:  # answering a request (on the reader thread): after its response
            held.extend(events)
            return
        for name, event_body in events:
            self.bridge.send_event(name, event_body)


def _user_frames(frames: list[dict[str, Any]], debugger_dirs: tuple[str, ...]) -> list[dict[str, Any]]:
    """Drop the debugger's frames from a stack (innermost first).

    Below user code the debugger's runner frames are simply dropped. Above it, a debugger
    frame means the debugger took over (a paused thread waits in pydevd, which calls into
    `threading`): that frame and everything it called go.
    """
    def is_debugger(frame: dict[str, Any]) -> bool:
        return str(frame.get("path", "")).startswith(debugger_dirs)

    def is_runner(frame: dict[str, Any]) -> bool:
        # `python -m debugpy` runs under runpy, then debugpy runs the program with runpy
        # again: those outer stdlib frames are not the program's code yet.
        return os.path.basename(str(frame.get("path", ""))) == "runpy.py"

    seen_user = False
    for index in range(len(frames) - 1, -1, -1):  # from the outermost frame inwards
        if not is_debugger(frames[index]) and not is_runner(frames[index]):
            seen_user = True
        elif seen_user:
            frames = frames[index + 1 :]
            break
    kept = [frame for frame in frames if not is_debugger(frame)]
    while kept and is_runner(kept[-1]):  # the runner frames below the program's own
        kept.pop()
    return kept


def _start() -> LivefixPlugin | None:
    try:
        plugin = LivefixPlugin.create()
        plugin.install()
    except Exception as exc:  # never break the debugger over livefix
        sys.stderr.write(f"livefix: the pydevd plugin is disabled: {type(exc).__name__}: {exc}\n")
        return None
    try:  # restartFrame, livefix/frameInfo, livefix/rerunFrame (docs/adapter.md, "Restart frame")
        for name in ("livefix_frame_analysis", "livefix_frame_call"):
            _load_sibling(name)
        _load_sibling("livefix_frame_requests").FrameRequests(plugin.bridge, plugin.service.engine).install()
    except Exception as exc:  # the rest of livefix works without them; the adapter then never advertises restart
        sys.stderr.write(f"livefix: restart frame is disabled: {type(exc).__name__}: {exc}\n")
    return plugin


def _load_sibling(name: str) -> Any:
    """A module next to this file, by path: when the adapter injects livefix (bootstrap),
    `pydevd_plugins.extensions` is debugpy's package and does not list this directory."""
    import importlib.util

    full = f"{__name__.rpartition('.')[0]}.{name}"
    module = sys.modules.get(full)
    if module is None:
        spec = importlib.util.spec_from_file_location(full, os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise
    return module


PLUGIN = _start()


def bootstrap(options: dict[str, Any] | None = None) -> str:
    """Entry point when the adapter injects this module with an `evaluate` request, into a
    process whose environment lacks livefix (so pydevd never imported the plugin): the
    plugin is installed by the import above; apply the session's `livefix` option and turn
    Nagle off as `on_start_request` would have. Returns a one-line status for the adapter."""
    if PLUGIN is None:
        return "livefix bootstrap failed: the plugin could not start (see the process's stderr)"
    from livefix.service import ServiceOptions

    PLUGIN.service.options = ServiceOptions.from_wire(options)
    PLUGIN.bridge.set_nodelay(PLUGIN.bridge.debugger())
    return "livefix bootstrap ok"
