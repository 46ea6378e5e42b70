"""`livefix run [--watch PATH ...] script.py [args]` and `livefix run -m module [args]`.

Runs the program in this process with livefix installed before its first import (and the
agent listening, unless `--no-agent`), watches the program's own source tree, and reloads
the modules saved there, diff-based, one generation per batch of saves, with one line per
module on stderr. A bad save (a syntax error, a change that cannot be made in place) is
reported with file:line and the program keeps running the code it had.

File events come from inotify on Linux, from watchfiles elsewhere when it is installed
(`pip install livefix[watch]`), else from stat'ing the program's own files four times a second.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import livefix
from livefix.engine import Engine
from livefix.engine.sources import read_source
from livefix.errors import LivefixError
from livefix.integrations.project_files import ProjectFiles
from livefix.integrations.reloader import Reloader, file_differs

DEBOUNCE_SECONDS = 0.05  # an editor's save-rename-save, or a "save all", is one change
POLL_SECONDS = 0.25
# An editor that saves in place truncates the file, then writes it: a file found empty right
# after a save is most likely being written, so it is given this long to be written before it
# is reported (as "the new source is empty") rather than being reported at once and then
# reloaded a moment later (found on a loaded machine: watchfiles saw the two writes apart).
SETTLE_SECONDS = 1.0
ARM_SECONDS = 5.0  # at most this long for the watcher to be armed before the program runs

USAGE = "livefix run [--watch PATH ...] [--no-agent] [--verify EXPR] [--approval never|risky] [--quiet] " \
        "(script.py | -m module) [args ...]"


@dataclass
class Program:
    """What to run: a script file or a module, with its arguments."""

    path: str  # the file executed as __main__
    argv: list[str]
    spec: Any = None  # the module's spec (-m), None for a script
    roots: list[str] = field(default_factory=list)  # watched when no --watch is given


def main(argv: Sequence[str]) -> int:
    options, program_args = _split(list(argv))
    parser = _parser()
    args = parser.parse_args(options)
    try:
        program = _program(args.module, program_args if args.module else [args.script or "", *program_args])
    except LivefixError as error:
        parser.error(error.message)  # exits with 2
    roots = [os.path.realpath(p) for p in args.watch] or program.roots
    for root in roots:
        if not os.path.exists(root):
            parser.error(f"--watch {root}: no such file or directory")
    engine = livefix.install()
    address = None if args.no_agent else _start_agent()

    def approve_hint(modules: list[str], gaps: list[str]) -> str:
        # The engine holds the script's top-level code on the agent's reload too (script_guard).
        if address is None:
            return "restart the program to pick it up"
        command = f"livefix reload {os.getpid()} {' '.join(modules)}"
        if gaps:  # live instances lack an attribute: the approval should carry a migration
            return f"approve it with a migration: {command} --migrate '{gaps[0]}={{\"ATTRIBUTE\": VALUE}}' --yes"
        return f"approve it with: {command} --yes"

    watcher = Watcher(engine, roots, args, approve_hint=approve_hint)
    _say(args, f"livefix: watching {', '.join(_display(r) for r in roots)} ({watcher.backend})"
         + (f"; agent at {address}" if address else ""))
    return _run(engine, program, watcher)


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """livefix's options, then what belongs to the program (from the script or `-m MODULE` on)."""
    with_value = {"--watch", "--verify", "--approval", "--watcher"}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "-m":
            return argv[: index + 2], argv[index + 2 :]
        if word in with_value:
            index += 2
        elif word.startswith("-") and word != "-":
            index += 1
        else:
            return argv[:index] + ["--", word], argv[index + 1 :]
    return argv, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livefix run", usage=USAGE, description=(
        "Run a Python program and reload the modules you save while it runs (diff-based, state kept)."))
    parser.add_argument("script", nargs="?", help="the script to run (or -m MODULE)")
    parser.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m does")
    parser.add_argument("--watch", action="append", default=[], metavar="PATH",
                        help="watch PATH (repeatable; default: the script's directory or the package's root)")
    parser.add_argument("--no-agent", action="store_true", help="do not start the livefix agent in the program")
    parser.add_argument("--verify", metavar="EXPR", help="after each reload, evaluate EXPR in the program's "
                        "__main__ namespace; when false or raising, the reload is rolled back")
    parser.add_argument("--approval", choices=("never", "risky"), default="never",
                        help="risky: hold back changes that need approval (threads on the old code, changed "
                        "signatures, removals, live instances lacking an attribute) instead of applying them")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    parser.add_argument("--watcher", choices=("auto", "watchfiles", "inotify", "stat"),
                        default=os.environ.get("LIVEFIX_WATCHER", "auto"),
                        help="where file events come from (default: $LIVEFIX_WATCHER or auto: inotify on Linux, "
                        "watchfiles elsewhere when installed, else stat polling)")
    return parser


def _program(module: str | None, argv: list[str]) -> Program:
    if module is not None:
        sys.path.insert(0, os.getcwd())  # python -m puts the working directory first
        try:
            spec = importlib.util.find_spec(module)
            if spec is not None and spec.submodule_search_locations is not None:
                spec = importlib.util.find_spec(module + ".__main__")
        except (ImportError, ValueError) as error:
            raise LivefixError("notFound", f"cannot find module {module!r}: {error}") from None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise LivefixError("notFound", f"no Python source module named {module!r}")
        top = spec.name.split(".")[0]
        root = os.path.dirname(os.path.realpath(spec.origin))
        for _ in spec.name.split(".")[1:]:
            root = os.path.dirname(root)
        package_root = os.path.join(root, top) if spec.name != top else root
        return Program(spec.origin, [spec.origin, *argv], spec, [package_root if os.path.isdir(package_root) else root])
    if not argv or not argv[0]:
        raise LivefixError("invalid", "name a script to run, or -m MODULE")
    path = os.path.realpath(argv[0])
    if not os.path.isfile(path):
        raise LivefixError("notFound", f"no such script: {argv[0]}")
    sys.path.insert(0, os.path.dirname(path))  # as python does for a script
    return Program(path, [argv[0], *argv[1:]], None, [os.path.dirname(path)])


def _start_agent() -> str | None:
    try:
        return str(livefix.listen().address)
    except Exception as error:  # never keep the program from starting because of livefix
        print(f"livefix: the agent did not start ({error}); reloading on save still works", file=sys.stderr)
        return None


def _run(engine: Engine, program: Program, watcher: "Watcher") -> int:
    text = read_source(program.path)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=program.path, __builtins__=__builtins__, __cached__=None)
    if program.spec is not None:
        module.__dict__.update(__spec__=program.spec, __loader__=program.spec.loader, __package__=program.spec.parent)
    else:
        module.__dict__.update(__spec__=None, __package__=None)
    code = compile(text, program.path, "exec", dont_inherit=True)
    engine.sources.record("__main__", program.path, text)  # what runs is exactly this text
    sys.modules["__main__"] = module
    sys.argv = program.argv
    watcher.start()
    try:
        exec(code, module.__dict__)
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else _print_exit(exit.code))
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        # As python prints it: from the program's own frames (the first one here is livefix's exec).
        traceback.print_exception(type(error), error, error.__traceback__.tb_next if error.__traceback__ else None)
        return 1
    finally:
        watcher.stop()
    return 0


def _print_exit(message: Any) -> int:
    print(message, file=sys.stderr)
    return 1


class Watcher:
    """The thread that turns saves under the watched roots into reloads."""

    def __init__(
        self, engine: Engine, roots: list[str], args: argparse.Namespace, approve_hint: Callable[[list[str], list[str]], str]
    ) -> None:
        self.args = args
        self.roots = roots
        self.reloader = Reloader(engine, verify=_in_main(args.verify) if args.verify else None, approval=args.approval,
                                 approve_hint=approve_hint, display=_display)
        # On Linux, inotify read directly sees a save about 20 ms sooner than watchfiles'
        # thread (benchmarks/watch_latency.py); watchfiles serves macOS and Windows.
        wanted = args.watcher == "watchfiles" or (args.watcher == "auto" and not sys.platform.startswith("linux"))
        self._watchfiles = _watchfiles() if wanted else None
        if args.watcher == "watchfiles" and self._watchfiles is None:
            raise SystemExit("livefix run: --watcher watchfiles, but watchfiles is not installed (pip install livefix[watch])")
        self.files = ProjectFiles(self._under_roots, use_events=self._watchfiles is None and args.watcher != "stat",
                                  differs=lambda name: file_differs(engine, name))
        self._stop = threading.Event()
        self._armed = threading.Event()  # the watcher sees saves from now on
        self._thread = threading.Thread(target=self._loop, name="livefix-watch", daemon=True)

    @property
    def backend(self) -> str:
        return "watchfiles" if self._watchfiles is not None else self.files.backend

    def _under_roots(self, real_path: str) -> bool:
        return any(real_path == root or real_path.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots)

    def start(self) -> None:
        """Start watching; returns once saves are seen (watchfiles arms its watcher in its own
        thread: a save made before that was missed, found in CI), or after ARM_SECONDS."""
        self._thread.start()
        self._armed.wait(ARM_SECONDS)

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        try:
            if self._watchfiles is not None:
                self._loop_watchfiles()
            else:
                self._loop_files()
        except Exception:  # a bug of ours must not take the program down: say it, stop watching
            traceback.print_exc()
            print("livefix: internal error in the watcher (above); saves are no longer reloaded", file=sys.stderr)

    def _loop_watchfiles(self) -> None:
        # yield_on_timeout: the first (empty) answer says the watcher is armed; saves made
        # before that are found by looking at every file once, then.
        for changes in self._watchfiles.watch(  # type: ignore[union-attr]
            *self.roots, debounce=1600, step=int(DEBOUNCE_SECONDS * 1000), stop_event=self._stop,
            watch_filter=self._watchfiles.PythonFilter(), raise_interrupt=False,  # type: ignore[union-attr]
            rust_timeout=100, yield_on_timeout=True,
        ):
            self.files.refresh()
            if not self._armed.is_set():
                self._armed.set()
                self._reload(self.files.changed())
            if changes:
                self._reload(self.files.changed({os.path.realpath(path) for _, path in changes}))

    def _loop_files(self) -> None:
        interval = POLL_SECONDS if self.files.backend == "stat" else 1.0
        self._armed.set()  # inotify's watches and stat's stamps were taken when ProjectFiles was made
        while not self._stop.is_set():
            self.files.wait(interval)
            self.files.refresh()
            names = self.files.changed()
            while names:  # more saves within the debounce window join this batch
                self.files.wait(DEBOUNCE_SECONDS)
                more = self.files.changed()
                if not more:
                    break
                names += [n for n in more if n not in names]
            if names and not self._stop.is_set():
                self._reload(names)

    def _reload(self, names: list[str]) -> None:
        if not names:
            return
        self._settle(names)
        outcome = self.reloader.reload(names)
        if not self.args.quiet:
            for line in outcome.lines:
                print(line, file=sys.stderr, flush=True)
        for line in outcome.errors:
            print(line, file=sys.stderr, flush=True)


    def _settle(self, names: list[str]) -> None:
        """Wait (up to SETTLE_SECONDS) while a saved file is empty: its writer is not done."""
        paths = {path for path in (_file_of(name) for name in names) if path is not None}
        waited = False
        for _ in range(int(SETTLE_SECONDS / DEBOUNCE_SECONDS)):
            if not any(_is_empty(path) for path in paths) or self._stop.wait(DEBOUNCE_SECONDS):
                break
            waited = True
        if waited:
            self.files.changed(paths)  # the write that followed is part of this reload, not the next


def _file_of(name: str) -> str | None:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) if module is not None else None
    return os.path.realpath(path) if path else None


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


def _in_main(expression: str) -> Callable[[], Any]:
    """`--verify EXPR`, evaluated in the program's `__main__` whichever modules a save reloads."""
    code = compile(expression, "<livefix verify>", "eval", dont_inherit=True)

    def check() -> Any:
        return eval(code, sys.modules["__main__"].__dict__)

    check.__qualname__ = expression  # how the report names the check
    return check


def _watchfiles() -> Any:
    try:
        import watchfiles
    except ImportError:
        return None
    return watchfiles


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line, file=sys.stderr, flush=True)


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
