"""The editor side of a livefix debug session: debugpy's `Client` plus livefix.

Everything a client sends is handled by debugpy's own `Client` except:
- `launch`/`attach`: the `livefix` option is validated and normalised first;
- `livefix/*` requests: checked against the agent's limits (`livefix.protocol.check_limits`),
  then forwarded to the debuggee's pydevd plugin like any unknown request, but the
  debuggee's error responses reach the client with their body (`body.livefix`,
  `body.error`), and a debuggee without livefix is reported as `unsupported`;
- `restartFrame`, and `canRestart` on `stackTrace` frames: only once the debuggee was found
  to serve it (`livefix.adapter.restart_frame`), forwarded like a livefix request.
The adapter's own refusals go through `livefix.dap.error_response`, the same shape the
plugin uses.
"""

from __future__ import annotations

from typing import Any

from debugpy.adapter import clients, components, servers

from livefix import dap, protocol
from livefix.adapter import bootstrap, debugpy_hooks, options, restart_frame
from livefix.adapter.agent_session import AgentSession
from livefix.errors import LivefixError

LIVEFIX_PREFIX = "livefix/"

message_handler = components.Component.message_handler


class LivefixClient(clients.Client):
    """debugpy's client component, with livefix's option check and request forwarding."""

    # Class-level defaults: debugpy starts handling messages inside Client.__init__.
    _agent: AgentSession | None = None  # set when attached to a livefix agent
    _bootstrap_tried = False  # livefix injection is attempted once per session
    _restart_frames = False  # the debuggee serves restartFrame (advertised with a capabilities event)

    def __init__(self, sock: Any) -> None:
        if sock != "stdio":
            debugpy_hooks.set_nodelay(sock)
        super().__init__(sock)

    # -- start requests ----------------------------------------------------------------------

    @message_handler
    def launch_request(self, request: Any) -> Any:
        if not self._accept_livefix_option(request):
            return None
        return super().launch_request(request)

    @message_handler
    def attach_request(self, request: Any) -> Any:
        if not self._accept_livefix_option(request):
            return None
        if options.agent_address(request.arguments[options.OPTION]) is not None:
            return self._attach_agent(request)
        return super().attach_request(request)

    def _attach_agent(self, request: Any) -> Any:
        """`attach` to a livefix agent: a livefix-only session, no debugpy server involved."""
        if self._initialize_request is None:
            self._refuse(request, LivefixError("invalid", "Session is not initialized yet"))
            return None
        settings = request.arguments[options.OPTION]
        try:
            self._agent = AgentSession(
                settings["connect"], settings.get("token"), settings.get("tokenFile"), self.channel.send_event,
            )
        except LivefixError as error:
            self._refuse(request, error)
            return None
        except Exception as exc:
            debugpy_hooks.log_exception("livefix: could not attach to the agent")
            self._refuse(request, LivefixError("failed", f"Could not attach to the livefix agent: {type(exc).__name__}: {exc}"))
            return None
        # No debuggee will ever connect to this adapter: let its main loop end with us.
        servers.dont_wait_for_first_connection()
        self.start_request = request
        self.has_started = True
        self.channel.send_event("initialized")
        return {}

    @message_handler
    def configurationDone_request(self, request: Any) -> Any:
        if self._agent is not None:
            return {}
        if self.server and self.start_request is not None and not self.has_started:
            self._ensure_plugin()
        return super().configurationDone_request(request)

    def _ensure_plugin(self) -> None:
        """Before the program runs: inject livefix now if the debuggee lacks it, so its
        engine records module sources before user code imports anything (and edits saved
        later are seen as changes)."""
        try:
            probe = debugpy_hooks.send(self.server, protocol.HISTORY, {})
            if _plugin_absent(probe):
                self._bootstrap()
            self._advertise_restart()
        except Exception:  # the session must start regardless; livefix requests will say why
            debugpy_hooks.log_exception("livefix: probing the debuggee for livefix failed")

    def _advertise_restart(self) -> None:
        """Turn `supportsRestartFrame` on (a DAP `capabilities` event) when the debuggee
        serves restartFrame; debugpy's own `initialize` answer said false."""
        if restart_frame.debuggee_serves_restart(self.server):
            self._restart_frames = True
            self.channel.send_event("capabilities", {"capabilities": {"supportsRestartFrame": True}})

    @message_handler
    def stackTrace_request(self, request: Any) -> Any:
        if not self._restart_frames or self._agent is not None or not self.server:
            return self.request(request)  # as any other request
        answer = debugpy_hooks.forward(self.server, request)
        if not answer.success:
            debugpy_hooks.respond_error(request, dap.one_line(answer.message), dict(answer.body or {}))
            return None
        body = dict(answer.body)
        try:
            restart_frame.mark_restartable(self.server, request.arguments, body)
        except Exception:  # the stack matters more than the marks: no restart offered then
            debugpy_hooks.log_exception("livefix: marking restartable frames failed")
            for frame in body.get("stackFrames") or []:
                frame["canRestart"] = False
        return body

    @message_handler
    def disconnect_request(self, request: Any) -> Any:
        agent = self._agent
        if agent is not None:
            self._agent = None
            agent.close()
        return super().disconnect_request(request)

    def _accept_livefix_option(self, request: Any) -> bool:
        arguments = request.arguments
        cwd = arguments.get("cwd") if isinstance(arguments.get("cwd"), str) else None
        try:
            normalised = options.normalise(arguments.get(options.OPTION), cwd)
            if request.command == "launch" and options.agent_address(normalised) is not None:
                raise LivefixError("invalid", "livefix.connect (a livefix agent) is for attach, not launch", option=options.OPTION)
        except LivefixError as error:
            self._refuse(request, error)
            return False
        arguments[options.OPTION] = normalised
        return True

    # -- livefix requests ----------------------------------------------------------------------

    @message_handler
    def request(self, request: Any) -> Any:
        agent = self._agent
        if agent is None and not request.command.startswith(LIVEFIX_PREFIX) and request.command != restart_frame.RESTART_FRAME:
            return super().request(request)  # plain DAP: debugpy's own forwarding
        try:
            if agent is not None:
                return agent.handle(request.command, dict(request.arguments))
            return self._livefix_request(request)
        except LivefixError as error:
            self._refuse(request, error)
        except Exception as exc:  # never leave a request unanswered, never kill the adapter
            debugpy_hooks.log_exception(f"livefix: {request.command} failed in the adapter")
            self._refuse(request, LivefixError(
                "internal", f"{request.command} failed in the adapter: {type(exc).__name__}: {exc}", command=request.command,
            ))
        return None

    def _livefix_request(self, request: Any) -> Any:
        """Forward a livefix request to the debuggee's plugin; its answer, errors with their body."""
        known = (*protocol.COMMANDS, *restart_frame.COMMANDS)
        if request.command not in (*known, restart_frame.RESTART_FRAME):
            raise LivefixError(
                "invalid", f"Unknown livefix request {request.command!r} (known: {', '.join(known)})",
                command=request.command,
            )
        if not self.server:
            raise LivefixError("invalid", f"{request.command} needs a debuggee: send it after launch/attach", command=request.command)
        if request.command == restart_frame.RESTART_FRAME and not self._restart_frames:
            # pydevd leaves a restartFrame it cannot serve unanswered: never forward it then.
            raise LivefixError(
                "unsupported", "restartFrame is not available: the debugged process's livefix does not serve it "
                "(supportsRestartFrame was never turned on)", command=request.command,
            )
        # The agent's limits, before megabytes of source cross to the debuggee and are parsed there.
        protocol.check_limits(request.arguments)
        if request.command in restart_frame.ANSWERED_LATER:
            # Answered by the paused thread, after whatever it is doing (a rerun: user code,
            # maybe stopped at a breakpoint of its own): the adapter's message loop must not
            # wait (continue, pause, disconnect must get through). This also keeps a
            # restart's response ahead of its `stopped` event: debugpy hands the debuggee's
            # next message on only once the response callback returned.
            return debugpy_hooks.forward_later(self.server, request, lambda answer: self._answer_later(request, answer))
        answer = debugpy_hooks.forward(self.server, request)
        if _plugin_absent(answer) and self._bootstrap():
            answer = debugpy_hooks.forward(self.server, request)
        if answer.success:
            return answer.body
        if isinstance(answer.body, dict) and "livefix" in answer.body:
            # Built by the plugin with livefix.dap already: pass it on as it is.
            debugpy_hooks.respond_error(request, dap.one_line(answer.message), dict(answer.body))
            return None
        raise _debuggee_failure(request.command, answer)

    def _answer_later(self, request: Any, answer: debugpy_hooks.Forwarded) -> None:
        """The debuggee's answer to a request forwarded without waiting (on a debugpy thread)."""
        try:
            if answer.success:
                request.respond(answer.body)
            elif isinstance(answer.body, dict) and "livefix" in answer.body:
                debugpy_hooks.respond_error(request, dap.one_line(answer.message), dict(answer.body))
            else:
                self._refuse(request, _debuggee_failure(request.command, answer))
        except Exception:  # the client may be gone; nothing else to tell
            debugpy_hooks.log_exception(f"livefix: answering {request.command} failed")

    def _bootstrap(self) -> bool:
        """Inject livefix into a debuggee lacking it (once per session; see bootstrap.py)."""
        if self._bootstrap_tried:
            return False
        self._bootstrap_tried = True
        start = self.start_request.arguments if self.start_request is not None else {}
        session_options = dict(start.get(options.OPTION) or {})
        if session_options.get("bootstrap") is False:
            return False
        try:
            expression = bootstrap.expression(session_options)
        except RuntimeError:
            return False
        result = debugpy_hooks.send(self.server, "evaluate", {"expression": expression, "context": "repl"})
        return result.success and bootstrap.succeeded(result.body)

    def _refuse(self, request: Any, error: LivefixError) -> None:
        message, body = dap.error_response(error)
        debugpy_hooks.respond_error(request, message, body)


def _plugin_absent(answer: debugpy_hooks.Forwarded) -> bool:
    # pydevd refuses a command no plugin registered with "Unable to create message from dict".
    return not answer.success and (
        "Unable to create message" in answer.message or "not available in PyDevJsonCommandProcessor" in answer.message
    )


def _debuggee_failure(command: str, answer: debugpy_hooks.Forwarded) -> LivefixError:
    """A failure that did not come from the livefix plugin, in livefix's error model."""
    if answer.disconnected:
        return LivefixError("failed", f"The debugged process disconnected before answering {command}", command=command)
    if _plugin_absent(answer):
        return LivefixError(
            "unsupported",
            "livefix is not installed in the debugged process's Python environment "
            "(install livefix there, next to debugpy), and could not be injected into it",
            command=command,
        )
    return LivefixError("internal", f"{command} failed in the debugged process: {answer.message}", command=command)
