"""The `livefix` command line: fix a running service from a terminal.

Connects a person (or a script, with `--json`) to one agent (`livefix.listen()`)
or to every worker of a fleet (`--service NAME`), with the same reports and
approval prompts as the editor. Exit codes (also in docs/agent.md):

    0  done
    1  refused or failed: nothing was changed (syntax, notFound, incompatible, busy...)
    2  bad command line
    3  approval required and not given: nothing was changed
    4  verify failed: the change was rolled back
    5  the agent cannot be reached, or refused the token
    6  fleet: a failure could not be fully undone; workers differ (see the report)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from livefix import protocol
from livefix.agent import host_os
from livefix.agent.client import AgentClient, default_token
from livefix.agent.transport import Address, parse_address, runtime_dir
from livefix.errors import LivefixError

if TYPE_CHECKING:
    from livefix.agent.fleet import FleetResult

# What only some commands need (the fleet coordinator, TLS, the evidence tables) is imported
# where it is used: a command's start-up is most of its time (benchmarks/cli_apply.py).

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_APPROVAL, EXIT_VERIFY, EXIT_UNREACHABLE, EXIT_PARTIAL = range(7)


class Usage(Exception):
    """A command line that cannot be acted on (exit 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["run"]:  # its arguments after the script belong to the program: parsed apart
        from livefix.integrations.run import main as run_program

        return run_program(words[1:])
    parser = _parser(words[0] if words and words[0] in _COMMAND_NAMES else None)
    args = parser.parse_args(words)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    out = Output(args.json)
    try:
        code = int(args.run(args, out))
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit
        return code
    except Usage as exc:
        parser.error(str(exc))  # exits with 2
        return EXIT_USAGE
    except LivefixError as error:
        return out.failure(error)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`livefix status --json | head`): what was asked was done or
        # not as the output said; stop writing, quietly (Python's documented way to do so).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception:  # a bug of ours: say so, with what a bug report needs
        import traceback

        traceback.print_exc()
        print("livefix: internal error (the traceback above); nothing more was attempted", file=sys.stderr)
        return EXIT_FAILED


# -- parsing -------------------------------------------------------------------------------


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With `command` (the command being run), only that command's
    parser is built: building all of them took about a tenth of a command's start-up (each
    looks up its translations on disk). None (`livefix --help`, an unknown word) builds all."""
    parser = argparse.ArgumentParser(
        prog="livefix",
        description="Hot-fix a running Python service that called livefix.listen(). TARGET is a pid, "
        "unix:PATH or a socket path, HOST:PORT, or service:NAME (same as --service NAME; then omit TARGET).",
        epilog="exit codes: 0 done, 1 refused/failed (nothing changed), 2 usage, 3 approval required, "
        "4 verify failed or the canary rolled the change back, 5 agent unreachable or token refused, 6 fleet workers differ",
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    common: argparse.ArgumentParser | None = None
    for name, help_text, build in _COMMANDS:
        if command is not None and name != command:
            continue
        if build is None:
            sub.add_parser(name, help=help_text)  # `run` parses its own arguments (see main)
            continue
        if common is None:
            common = _common_options()
        build(sub.add_parser(name, parents=[common], help=help_text))
    return parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--service", metavar="NAME", help="every worker registered under NAME (a fleet)")
    common.add_argument("--json", action="store_true", help="print the response body as JSON, for scripts")
    common.add_argument("--yes", "-y", action="store_true", help="approve a risky change without asking")
    common.add_argument("--token", help="the agent's token (default: $LIVEFIX_TOKEN, $LIVEFIX_TOKEN_FILE, "
                        "then the per-user token file)")
    common.add_argument("--token-file", metavar="PATH", help="read the token from PATH (must be mode 0600)")
    common.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="per request (default 60)")
    common.add_argument("--cafile", metavar="PATH", help="connect with TLS, trusting the CA certificates in PATH")
    common.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system's CAs")
    return common


def _apply_options(apply: argparse.ArgumentParser) -> None:
    apply.add_argument("items", nargs="+", metavar="[TARGET] FILE[::QUALNAME]")
    apply.add_argument("--module", help="the module FILE is in the target (default: found by path)")
    apply.add_argument("--verify", metavar="EXPR", help="an expression that must be true after the change")
    apply.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    apply.add_argument("--migrate", action="append", metavar="CLASS=SPEC", help=MIGRATE_HELP)
    _canary_options(apply)
    _fleet_options(apply)
    apply.set_defaults(run=run_apply)


def _reload_options(reload: argparse.ArgumentParser) -> None:
    reload.add_argument("items", nargs="*", metavar="[TARGET] MODULE")
    reload.add_argument("--package", help="every modified module of a package")
    reload.add_argument("--verify", metavar="EXPR")
    reload.add_argument("--dry-run", action="store_true")
    reload.add_argument("--migrate", action="append", metavar="CLASS=SPEC", help=MIGRATE_HELP)
    _canary_options(reload)
    _fleet_options(reload)
    reload.set_defaults(run=run_reload)


def _rollback_options(rollback: argparse.ArgumentParser) -> None:
    rollback.add_argument("items", nargs="*", metavar="TARGET")
    rollback.add_argument("--to", type=int, metavar="N", help="the generation to return to (0 = as loaded)")
    _fleet_options(rollback)
    rollback.set_defaults(run=run_rollback)


def _watch_options(watch: argparse.ArgumentParser) -> None:
    watch.add_argument("items", nargs="*", metavar="TARGET [GEN | MODULE:QUALNAME ...]")
    watch.add_argument("--once", action="store_true", help="print the figures once and exit")
    watch.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="refresh every SECONDS (default 1)")
    watch.set_defaults(run=run_watch)


def _query_options(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def build(query: argparse.ArgumentParser) -> None:
        query.add_argument("items", nargs="*", metavar="TARGET")
        if name == "frames":
            query.add_argument("--locals", action="store_true", help="include local variables (repr)")
            query.add_argument("--max-frames", type=int, metavar="N")
        else:
            _fleet_options(query)
        query.set_defaults(run=run_query, command=name)

    return build


def _persist_options(persist: argparse.ArgumentParser) -> None:
    persist.add_argument("items", nargs="*", metavar="[TARGET] [QUALNAME ...]")
    persist.add_argument("--dry-run", action="store_true", help="print the unified diff; write nothing")
    persist.set_defaults(run=_persist)


def _persist(args: argparse.Namespace, out: "Output") -> int:
    # Its own module, imported when it runs; given this module, which is `__main__` under
    # `python -m livefix.cli` (a second copy's `Usage` would not be caught by main()).
    from livefix.persist_command import run_persist

    return run_persist(args, out, sys.modules[__name__])


MIGRATE_HELP = (
    "what live instances of a changed class receive: CLASS='{\"attr\": default}' (JSON, set where an "
    "instance lacks it) or CLASS=@FILE (a file defining def migrate(obj)); repeatable"
)


# (name, help, what builds its options); `run` parses its own arguments (main() hands them over).
_COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None] | None], ...] = (
    ("apply", "replace definitions or a module with the code in FILE", _apply_options),
    ("reload", "reload modules whose file changed, as one generation", _reload_options),
    ("rollback", "undo the latest change (or return to --to N)", _rollback_options),
    ("watch", "live figures of a fix (calls, errors, latency before/after) or of functions: "
     "TARGET [GEN | MODULE:QUALNAME ...]", _watch_options),
    ("run", "run a program (script.py or -m MODULE) and reload the modules you save while it runs; "
     "see livefix run --help", None),
    ("history", "the generations applied", _query_options("history")),
    ("frames", "every thread's stack, now", _query_options("frames")),
    ("status", "modules whose file differs from what runs", _query_options("status")),
    ("persist", "write what the process (or every worker of --service) runs and its files do not say yet into "
     "those files, on this machine", _persist_options),
)
_COMMAND_NAMES = frozenset(name for name, _, _ in _COMMANDS)


def _canary_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("canary (judge the new code on live traffic, roll back by itself when worse)")
    group.add_argument("--canary", action="store_true", help="judge the new code for --canary-window seconds")
    group.add_argument("--canary-window", type=float, metavar="SECONDS", help="how long to judge (default 30)")
    group.add_argument("--canary-before", type=float, metavar="SECONDS",
                       help="count the old code's traffic this long before the change")
    group.add_argument("--max-error-rate", type=float, metavar="FRACTION", help="roll back above this error rate (0..1)")
    group.add_argument("--max-p99-ms", type=float, metavar="MS", help="roll back above this p99 latency")
    group.add_argument("--min-calls", type=int, metavar="N", help="calls of the new code before any verdict (default 20)")
    group.add_argument("--no-wait", action="store_true", help="do not wait for the canary's verdict")


def _fleet_options(parser: argparse.ArgumentParser) -> None:
    """Fleets run by other tools (livefix/integrations/dask.py and celery.py), instead of TARGET."""
    parser.add_argument("--dask", metavar="ADDRESS", help="every worker of the Dask cluster whose scheduler is at "
                        "ADDRESS (tcp://host:8786), two-phase")
    parser.add_argument("--celery", metavar="BROKER_URL", help="every process of the Celery workers on BROKER_URL "
                        "(pool processes included), two-phase")


def _fleet(args: argparse.Namespace) -> Any:
    """The fleet a command names: a livefix service, a Dask cluster or a Celery fleet (the
    integration imported only then); each has Fleet's apply, rollback and each."""
    if getattr(args, "dask", None):
        from livefix.integrations.dask import DaskFleet

        return DaskFleet(args.dask, timeout=args.timeout)
    if getattr(args, "celery", None):
        from livefix.integrations.celery import CeleryFleet

        return CeleryFleet(args.celery, timeout=args.timeout)
    from livefix.agent.fleet import Fleet

    return Fleet(args.service, _token(args), timeout=args.timeout)


def canary_request(args: argparse.Namespace) -> dict[str, Any] | None:
    """The request's `canary` object from the command line (None: no canary asked for)."""
    terms = {
        "window": args.canary_window, "before": args.canary_before, "maxErrorRate": args.max_error_rate,
        "maxP99Ms": args.max_p99_ms, "minCalls": args.min_calls,
    }
    given = {key: value for key, value in terms.items() if value is not None}
    if not given and not args.canary:
        return None
    return given


def split_target(args: argparse.Namespace, minimum: int) -> tuple[Address | None, list[str]]:
    """(agent address or None for a fleet, the remaining positional arguments)."""
    items = list(args.items)
    fleets = [name for name in ("service", "dask", "celery") if getattr(args, name, None)]
    if len(fleets) > 1:
        raise Usage(f"give one of --{' or --'.join(fleets)}")
    if fleets:
        if items and _looks_like_target(items[0]):
            raise Usage(f"give a TARGET ({items[0]}) or --{fleets[0]}, not both")
        return None, items
    if not items:
        raise Usage("give a TARGET (pid, unix:PATH, HOST:PORT or service:NAME) or --service NAME")
    target, rest = items[0], items[1:]
    if target.startswith("service:"):
        args.service = target[len("service:"):]
        return None, rest
    if len(rest) < minimum:
        raise Usage("missing arguments after TARGET")
    return resolve_target(target), rest


def _looks_like_target(word: str) -> bool:
    """A pid or an address (what a command takes first without a fleet option)."""
    return word.isdigit() or word.startswith(("unix:", "service:", "tcp:"))


def _no_more(rest: list[str], command: str) -> None:
    if rest:
        raise Usage(f"`livefix {command}` takes no arguments after its TARGET; not {' '.join(rest)}")


def resolve_target(target: str) -> Address:
    """A pid names the agent's default socket (alone, or in a fleet registry)."""
    if target.isdigit():
        root = runtime_dir(create=False)
        try:
            for suffix in (".sock", host_os.ADDRESS_FILE):  # a Unix socket, or a TCP agent's address (Windows)
                candidates = [root / "agents" / f"{target}{suffix}", *sorted((root / "services").glob(f"*/{target}{suffix}"))]
                for path in candidates:
                    if path.exists():
                        published = host_os.read_address(str(path)) if suffix != ".sock" else None
                        return parse_address(published) if published else Address("unix", path=str(path))
        except OSError as error:  # an unreadable runtime directory: said, not a traceback
            raise LivefixError("notFound", f"cannot look for the agent of pid {target} under {root}: "
                               f"{error.strerror or error}", reason="noAgent") from None
        raise LivefixError("notFound", f"no livefix agent for pid {target} under {root} "
                           "(did the process call livefix.listen()? is it another user's?)", reason="noAgent")
    return parse_address(target)


# -- commands --------------------------------------------------------------------------------


def run_apply(args: argparse.Namespace, out: "Output") -> int:
    address, files = split_target(args, minimum=1)
    if not files:
        raise Usage("give at least one FILE[::QUALNAME]")
    changes = [change_from_spec(spec, args.module) for spec in files]
    request: dict[str, Any] = {"changes": changes}
    try:
        return _change(args, out, address, protocol.APPLY, request, "apply")
    except LivefixError as error:
        if error.kind == "notFound" and not args.module and error.details.get("path") in [c.get("path") for c in changes]:
            # FILE is not a module the target runs: most likely a fix written in a file of its own.
            raise LivefixError(error.kind, f"{error.message}; if the file holds a fix for a module, name the module "
                               "with --module MODULE", **error.details) from None
        raise


def run_reload(args: argparse.Namespace, out: "Output") -> int:
    address, modules = split_target(args, minimum=0)
    request: dict[str, Any] = {}
    if modules:
        request["modules"] = modules
    if args.package:
        request["package"] = args.package
    return _change(args, out, address, protocol.RELOAD, request, "reload")


def parse_migrations(specs: list[str]) -> dict[str, Any]:
    """`--migrate Cart='{"discount": 0}'` (attribute defaults, JSON) or `--migrate Cart=@fix.py`
    (a file defining `def migrate(obj)`), repeatable: the request's `migrate` object."""
    result: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise Usage(f"--migrate takes CLASS=JSON or CLASS=@FILE, not {spec!r}")
        if value.startswith("@"):
            try:
                result[name.strip()] = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as error:
                raise Usage(f"--migrate {name}: cannot read {value[1:]}: {error.strerror}") from None
            continue
        try:
            defaults = json.loads(value)
        except ValueError:
            raise Usage(f"--migrate {name}: {value!r} is not JSON (write {name}='{{\"attr\": 0}}' or {name}=@FILE)") from None
        if not isinstance(defaults, dict):
            raise Usage(f"--migrate {name}: give an object of attribute defaults, like {name}='{{\"discount\": 0}}'")
        result[name.strip()] = defaults
    return result


def _change(args: argparse.Namespace, out: "Output", address: Address | None, command: str,
            request: dict[str, Any], action: str) -> int:
    if args.verify:
        request["verify"] = args.verify
    if getattr(args, "migrate", None):
        request["migrate"] = parse_migrations(args.migrate)
    canary = canary_request(args)
    if canary is not None:
        request["canary"] = canary
    if address is None:
        fleet = _fleet(args)
        verify = request.pop("verify", None)
        # A dry run asks for no approval: it changes nothing, and its report shows the risks.
        approved = args.yes or args.dry_run
        result = fleet.apply({**request, "action": action, "approved": approved}, verify=verify, dry_run=args.dry_run)
        if result.error is not None and result.error.kind == "approvalRequired" and out.confirm(result.error):
            result = fleet.apply({**request, "action": action, "approved": True}, verify=verify)
        return out.fleet(result)
    if args.dry_run:
        request["dryRun"] = True
    with _connect(args, address, out) as client:
        body = _approving(client, command, request, args.yes, out)
        code = out.change(body)
        if code == EXIT_OK and (body.get("evidence") or {}).get("canary") is not None and not args.no_wait:
            return out.verdict(_await_verdict(client, int(body["generation"]), out))
        return code


def _await_verdict(client: AgentClient, generation: int, out: "Output") -> dict[str, Any]:
    """Ask for the generation's evidence until its window closed: the canary's verdict."""
    waiting = threading.Event()
    while True:
        body = client.request(protocol.EVIDENCE, {"generation": generation})
        if body.get("state") == "final":
            return body
        if out.interactive:
            print(_evidence_view().render_evidence(body), file=sys.stderr)
        # The agent's figures change continuously; one look a second is what a person reads.
        waiting.wait(min(1.0, max(float(body.get("until", 0)) - time.time(), 0.05)))


def run_watch(args: argparse.Namespace, out: "Output") -> int:
    address, rest = split_target(args, minimum=0)
    if address is None:
        raise Usage("watch follows one process: give its TARGET (pid, unix:PATH or HOST:PORT)")
    targets = [item for item in rest if ":" in item]
    generations = [item for item in rest if ":" not in item]
    if targets and generations:
        raise Usage("watch either a generation (GEN) or functions (MODULE:QUALNAME ...), not both")
    if len(generations) > 1 or (generations and not generations[0].isdigit()):
        raise Usage("give one generation number, or functions as MODULE:QUALNAME")
    pause = threading.Event()
    with _connect(args, address, out) as client:
        if targets:
            already = client.request(protocol.WATCH, {}).get("functions", {})
            client.request(protocol.WATCH, {"targets": targets})
            fresh = [t for t in targets if t.replace(":", ".", 1) not in already]
            if fresh and args.once:
                print(f"livefix: started watching {', '.join(fresh)} just now, so no call is counted yet; "
                      "run without --once to follow it", file=sys.stderr)
        try:
            while True:
                if targets:
                    body = client.request(protocol.WATCH, {})
                    body = {"functions": {k: v for k, v in body.get("functions", {}).items()
                                          if any(k == t.replace(":", ".", 1) for t in targets)}}
                    render = _evidence_view().render_watched
                else:
                    request = {"generation": int(generations[0])} if generations else {}
                    body = client.request(protocol.EVIDENCE, request)
                    render = _evidence_view().render_evidence
                if args.once or args.json:
                    return out.body(body, render)
                print("\x1b[H\x1b[J" if out.interactive else "", end="")
                print(render(body), flush=True)
                if not targets and body.get("state") == "final":
                    # The window closed: exit as the apply would have (4: the canary rolled it back).
                    verdict = (body.get("canary") or {}).get("verdict") or {}
                    return EXIT_VERIFY if verdict.get("outcome") in ("rolledBack", "failed") else EXIT_OK
                pause.wait(max(args.interval, 0.1))
        finally:
            if targets:  # what this command started watching stops with it
                try:
                    client.request(protocol.WATCH, {"targets": targets, "stop": True})
                except LivefixError:
                    pass


def run_rollback(args: argparse.Namespace, out: "Output") -> int:
    address, rest = split_target(args, minimum=0)
    _no_more(rest, "rollback")
    if address is None:
        fleet = _fleet(args)
        result = fleet.rollback(to=args.to, approved=args.yes)
        if result.error is not None and result.error.kind == "approvalRequired" and out.confirm(
            result.error, "Roll back anyway?"
        ):
            result = fleet.rollback(to=args.to, approved=True)
        return out.fleet(result)
    request: dict[str, Any] = {}
    if args.to is not None:
        request["to"] = args.to
    with _connect(args, address, out) as client:
        return out.change(_approving(client, protocol.ROLLBACK, request, args.yes, out, "Roll back anyway?"))


def _approving(
    client: AgentClient, command: str, request: dict[str, Any], yes: bool, out: "Output", question: str = "Apply anyway?"
) -> dict[str, Any]:
    """Send a change; on approvalRequired, ask (when someone can answer) and send it approved."""
    if yes:
        request = {**request, "approved": True}
    try:
        return client.request(command, request)
    except LivefixError as error:
        if error.kind != "approvalRequired" or not out.confirm(error, question):
            raise
        return client.request(command, {**request, "approved": True})


_QUERIES = {"history": protocol.HISTORY, "frames": protocol.CAPTURE_FRAMES, "status": protocol.STATUS}


def run_query(args: argparse.Namespace, out: "Output") -> int:
    address, rest = split_target(args, minimum=0)
    _no_more(rest, args.command)
    request: dict[str, Any] = {}
    if args.command == "frames":
        request["locals"] = bool(args.locals)
        if args.max_frames:
            request["maxFrames"] = args.max_frames
    render = {"history": render_history, "frames": render_frames, "status": render_status}[args.command]
    if address is None:
        fleet = _fleet(args)
        workers = fleet.each(_QUERIES[args.command], request)
        # A fleet's history starts with the fleet's own: the journal later workers replay.
        journal = fleet.journal() if args.command == "history" and workers else None
        if journal is not None and not out.as_json:
            print(render_journal(journal))
        code = out.per_worker(workers, render, args.service or getattr(args, "dask", None) or
                              getattr(args, "celery", None) or "", extra={"journal": journal} if journal else None)
        if args.command == "status" and args.service and code == EXIT_OK:
            return out.fleet_agreement(args.service, workers)
        return code
    with _connect(args, address, out) as client:
        return out.body(client.request(_QUERIES[args.command], request), render)


def _token(args: argparse.Namespace) -> str:
    try:
        return default_token(args.token, args.token_file)
    except LivefixError as error:
        raise LivefixError("invalid", f"no token: {error.message} (set $LIVEFIX_TOKEN or pass --token-file)",
                           reason="noToken") from None


def _connect(args: argparse.Namespace, address: Address, out: "Output") -> AgentClient:
    context = None
    if args.cafile or args.tls:
        import ssl

        context = ssl.create_default_context(cafile=args.cafile)
    return AgentClient(address, _token(args), timeout=args.timeout, ssl_context=context,
                       on_event=out.event)


# -- sources -------------------------------------------------------------------------------------


def change_from_spec(spec: str, module: str | None) -> dict[str, Any]:
    """`FILE` (the whole module) or `FILE::QUALNAME` (one definition, as written in FILE)."""
    path_text, _, qualname = spec.partition("::")
    path = Path(path_text)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LivefixError("notFound", f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    # With --module, FILE is any file holding the fix: the module is named, not found by
    # FILE's path (a path the module does not run from is refused), and FILE's line numbers
    # are not the module's (the target finds the definition in the module's saved file).
    change: dict[str, Any] = {"module": module} if module else {"path": str(path.resolve())}
    if not qualname:
        change["source"] = source
        return change
    source_text, line = definition_source(source, qualname, str(path))
    change.update(qualname=qualname, source=source_text)
    if not module:
        change["line"] = line
    return change


def definition_source(source: str, qualname: str, filename: str) -> tuple[str, int]:
    """The text of definition `qualname` (decorators included, dedented) and its first line."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise LivefixError("syntax", f"{filename}:{exc.lineno}: {exc.msg}", path=filename, line=exc.lineno) from None
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise LivefixError("notFound", f"no definition {qualname} in {filename}", path=filename, qualname=qualname)
        body = node.body
    assert node is not None and node.end_lineno is not None
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = source.splitlines(keepends=True)[first - 1 : node.end_lineno]
    return textwrap.dedent("".join(lines)), first


# -- output ------------------------------------------------------------------------------------------


class Output:
    """Human reports on a terminal, JSON for scripts; decides the exit code."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # Without a terminal (CI, pipes, a closed stdin) nobody can answer a prompt.
        self.interactive = not as_json and all(
            stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout)
        )

    def event(self, name: str, body: dict[str, Any]) -> None:
        pass  # the response carries the same report; events matter to editors, not here

    def change(self, body: dict[str, Any]) -> int:
        if self.as_json:
            _print_json(body)
        else:
            print(body.get("report") or json.dumps(body, indent=2))
        verify = body.get("verify")
        return EXIT_VERIFY if isinstance(verify, dict) and verify.get("passed") is False else EXIT_OK

    def body(self, body: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> int:
        if self.as_json:
            _print_json(body)
        else:
            print(render(body))
        return EXIT_OK

    def per_worker(self, workers: list[Any], render: Callable[[dict[str, Any]], str], fleet: str = "",
                   extra: dict[str, Any] | None = None) -> int:
        failed = [w for w in workers if w.status != "ok"]
        if self.as_json:
            _print_json({**(extra or {}), "workers": [{**w.to_dict(), "body": w.body} for w in workers]})
        else:
            for worker in workers:
                print(f"== worker {worker.pid} ({worker.address}) ==")
                if worker.body is not None:
                    print(textwrap.indent(render(worker.body), "  "))
                else:
                    print(f"  {worker.status}: {(worker.error or {}).get('message', '')}")
        if not workers:
            where = f" {fleet!r}" if fleet else ""
            return self.failure(LivefixError("notFound", f"no worker is registered under service{where}"))
        return EXIT_UNREACHABLE if failed else EXIT_OK

    def fleet_agreement(self, service: str, workers: list[Any]) -> int:
        """After a fleet's status: 6 while a worker does not run the fleet's generation (a
        failed catch-up), 0 otherwise; changes kept for an import do not count as differing
        (the module is not loaded there, so nothing runs the old code)."""
        from livefix.agent.registry import Registry

        fleet_now = int(Registry(service).read_journal().get("generation", 0))
        behind = [w for w in workers if ((w.body or {}).get("agent") or {}).get("fleetGeneration") != fleet_now]
        # A change kept for an import that belongs to an undone fleet generation would land
        # at that import: the worker would then run what the fleet no longer runs.
        stray = {id(w): sorted({p["module"] for p in ((w.body or {}).get("agent") or {}).get("pending", [])
                                if isinstance(p.get("fleetGeneration"), int) and p["fleetGeneration"] > fleet_now})
                 for w in workers}
        if not self.as_json:
            for worker in behind:
                at = ((worker.body or {}).get("agent") or {}).get("fleetGeneration")
                print(f"worker {worker.pid} runs fleet generation {at}, not {fleet_now}: its catch-up failed")
            for worker in workers:
                if stray[id(worker)] and worker not in behind:
                    print(f"worker {worker.pid} still keeps a change of an undone fleet generation for its import of "
                          f"{', '.join(stray[id(worker)])}: `livefix rollback --service {service} --to {fleet_now}` "
                          "withdraws it")
        split = _split_by_files(workers)
        if not self.as_json:
            for line in split:
                print(line)
        return EXIT_PARTIAL if behind or any(stray.values()) or split else EXIT_OK

    def verdict(self, body: dict[str, Any]) -> int:
        """The canary's verdict: 0 when the change stays, 4 when the canary rolled it back."""
        if self.as_json:
            _print_json(body)
        else:
            print(_evidence_view().render_evidence(body))
        verdict = (body.get("canary") or {}).get("verdict") or {}
        return EXIT_VERIFY if verdict.get("outcome") in ("rolledBack", "failed") else EXIT_OK

    def fleet(self, result: FleetResult) -> int:
        if self.as_json:
            _print_json(result.to_dict())
        else:
            print(result.report)
            if result.error is not None and result.error.kind == "approvalRequired":
                print("livefix: re-run with --yes to approve", file=sys.stderr)
        if result.outcome in ("applied", "checked", "unchanged"):
            return EXIT_OK
        if result.outcome == "partial":
            return EXIT_PARTIAL
        if result.error is None:
            return EXIT_FAILED
        code = exit_code(result.error)
        # A worker that died or stopped answering aborts the apply: the fleet was reached and
        # nothing was changed, so that is a refusal (1), not an unreachable agent (5).
        return EXIT_FAILED if code == EXIT_UNREACHABLE and result.outcome in ("aborted", "rolledBack") else code

    def confirm(self, error: LivefixError, question: str = "Apply anyway?") -> bool:
        """Show what needs approval and ask; False when nobody can answer."""
        if not self.interactive:
            return False
        report = error.details.get("report")
        print(report if report else error.message, file=sys.stderr)
        for reason in error.details.get("reasons", []):
            print(f"  - {reason}", file=sys.stderr)
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    def failure(self, error: LivefixError) -> int:
        code = exit_code(error)
        if self.as_json:
            _print_json({"error": error.to_dict()})
        else:
            print(f"livefix: {error.message}", file=sys.stderr)
            if error.kind == "approvalRequired":
                report = error.details.get("report")
                if report:
                    print(report, file=sys.stderr)
                print("livefix: re-run with --yes to approve", file=sys.stderr)
        return code


def exit_code(error: LivefixError) -> int:
    if error.kind == "approvalRequired":
        return EXIT_APPROVAL
    if error.kind == "verifyFailed":
        return EXIT_VERIFY
    reason = error.details.get("reason")
    if reason in ("unauthorized", "unauthenticated", "noToken", "disconnected", "noAgent") or (
        error.kind in ("notFound", "failed") and "address" in error.details
    ):
        return EXIT_UNREACHABLE
    return EXIT_FAILED


def render_journal(journal: dict[str, Any]) -> str:
    """The fleet's generations, as its journal records them (what a worker starting now runs)."""
    lines = [f"fleet generation {journal.get('generation', 0)}"]
    for entry in journal.get("entries", []):
        changes = ", ".join(f"{c.get('module') or c.get('path')}.{c.get('qualname') or '<module>'}"
                            for c in entry.get("changes", [])) or ", ".join(entry.get("modules") or []) or "(reload)"
        lines.append(f"  {entry.get('generation', '?'):>3}  {entry.get('action', ''):<7} {changes}")
    return "\n".join(lines)


def render_history(body: dict[str, Any]) -> str:
    lines = [f"running generation {body.get('generation', 0)}"]
    for entry in body.get("generations", []):
        changes = ", ".join(f"{c.get('module')}.{c.get('qualname')}" for c in entry.get("changes", []))
        lines.append(f"  {entry.get('generation'):>3}  {entry.get('action', ''):<7} {entry.get('status', ''):<10} {changes}")
        if entry.get("reimported"):
            lines.append(f"       (re-imported since: {', '.join(entry['reimported'])} run their files; copies of their "
                         "functions from before run this generation's code)")
    if body.get("pruned"):
        lines.append(f"  ({body['pruned'].get('reason')})")
    return "\n".join(lines)


def render_frames(body: dict[str, Any]) -> str:
    lines = []
    for thread in body.get("threads", []):
        mark = " (livefix)" if thread.get("livefix") else ""
        lines.append(f"thread {thread.get('id')} {thread.get('name')}{mark}")
        for frame in thread.get("frames", []):
            lines.append(f"  {frame.get('qualname') or frame.get('name')}  {frame.get('path')}:{frame.get('line')}")
            for name, value in (frame.get("locals") or {}).items():
                lines.append(f"      {name} = {value}")
    return "\n".join(lines)


def render_status(body: dict[str, Any]) -> str:
    agent = body.get("agent") or {}
    lines = [f"pid {agent.get('pid', '?')}, generation {body.get('generation', 0)}"
             + (f", service {agent['service']} at fleet generation {agent.get('fleetGeneration')}"
                if agent.get("service") else "")]
    for entry in agent.get("catchUp") or []:
        if entry.get("status") == "failed":
            lines.append(f"catch-up of fleet generation {entry.get('generation')} FAILED: "
                         f"{(entry.get('error') or {}).get('message', '')}")
        elif entry.get("status") == "superseded":
            lines.append(f"fleet generation {entry.get('generation')} not replayed, this process runs its file: "
                         f"{entry.get('reason', '')}")
        elif entry.get("status") == "inFile":
            lines.append(f"fleet generation {entry.get('generation')} is in the file: {entry.get('reason', '')}")
    for kept in agent.get("pending") or []:
        lines.append(f"kept until this process imports {kept.get('module')}: {', '.join(kept.get('qualnames', []))} "
                     f"({kept.get('label')})")
    modules = body.get("modules", [])
    if not modules:
        lines.append("no loaded module differs from its file")
    for module in modules:
        lines.append(f"  {module.get('name')} ({module.get('path')})")
        for key in ("changed", "added", "removed", "moved"):
            names = module.get(key) or []
            if names:
                shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                lines.append(f"    {key}: {shown}" + (" (same code, at other lines than the file's)" if key == "moved" else ""))
        if module.get("note"):
            lines.append(f"    {module['note']}")
        if module.get("baseline") == "derived":
            lines.append("    (livefix arrived after this module was loaded: its definitions were checked against the "
                         "running code; module-level statements cannot be)")
    lines.extend(render_unpersisted(body.get("unpersisted") or [], agent))
    return "\n".join(lines)


def render_unpersisted(entries: list[dict[str, Any]], agent: dict[str, Any]) -> list[str]:
    """Status's lines for what runs but no file says yet, with the command that writes it."""
    if not entries:
        return []
    command = (f"livefix persist --service {agent['service']}" if agent.get("service")
               else f"livefix persist {agent['pid']}" if agent.get("pid") else "livefix persist")
    count = len(entries)
    lines = [f"unpersisted: {count} definition{'s' if count != 1 else ''} run{'s' if count == 1 else ''} that "
             f"{'its file does' if count == 1 else 'their files do'} not say yet; `{command}` writes "
             f"{'it' if count == 1 else 'them'} there"]
    for entry in entries:
        why = (" (removed from the process; the file still defines it)" if entry.get("removed") else "") + (
            " (edited in the file since the fix: persisting would overwrite that edit)"
            if entry.get("editedInFile") else "") + (
            f" ({entry['fileError']})" if entry.get("fileError") else "")
        lines.append(f"  {entry.get('module')}.{entry.get('qualname')} (generation {entry.get('generation')}) "
                     f"-> {entry.get('path')}{why}")
    return lines


def _split_by_files(workers: list[Any]) -> list[str]:
    """Fleet generations some workers run and others, started after their file's code changed,
    did not replay (they run the file): the workers differ, whatever their fleet generation
    says. All of them having skipped it (the whole service restarted after a deploy) is no split."""
    agents = {w.pid: ((w.body or {}).get("agent") or {}) for w in workers if w.body}
    lines = []
    skipped: dict[int, list[int]] = {}
    for pid, agent in agents.items():
        for entry in agent.get("catchUp") or []:
            if entry.get("status") == "superseded":
                skipped.setdefault(int(entry.get("generation") or 0), []).append(pid)
    for generation, pids in sorted(skipped.items()):
        running = [pid for pid, agent in agents.items() if pid not in pids
                   and isinstance(agent.get("fleetGeneration"), int) and agent["fleetGeneration"] >= generation]
        if running:
            lines.append(f"workers differ: {', '.join(map(str, running))} run fleet generation {generation}'s change; "
                         f"{', '.join(map(str, pids))} started after its file's code changed and run the file instead "
                         "(restart the others too, so that every worker runs the file)")
    return lines


def _evidence_view() -> Any:
    from livefix import evidence_view

    return evidence_view


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
