"""`%load_ext livefix`: IPython and every Jupyter kernel reload the user's changed modules
before each cell, diff-based (state kept, classes and enums keep their identity, line
numbers follow the file), with one short line per reload, errors shown without breaking
the cell, and the `%livefix` magic for status, history, rollback, off/on and apply.

What a cell costs: see `project_files` (one non-blocking read on Linux when nothing was
saved; otherwise a stat of the project's own files only, never of the libraries').
"""

from __future__ import annotations

import ast
import inspect
import os
import shlex
import sys
import textwrap
import time
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

import livefix
from livefix.engine import Engine
from livefix.errors import LivefixError
from livefix.integrations.project_files import ProjectFiles
from livefix.integrations.reloader import Reloader, file_differs

_OWN_DIRECTORY = os.path.dirname(os.path.realpath(livefix.__file__)) + os.sep  # the livefix package itself

USAGE = """\
%livefix status            what is watched, what differs from its file, the generation
%livefix history           the generations applied in this kernel
%livefix rollback [N]      undo the latest generation (or return to generation N; 0 = as loaded)
%livefix off | on          pause or resume reloading before each cell
%livefix reload            reload every project module that differs from its file, now
%livefix apply MOD:NAME    put NAME as defined in this notebook into module MOD
%%livefix apply MOD[:NAME] put the cell's definitions into module MOD (the cell is not run)"""

# One extension per shell; keyed by the shell so that `%reload_ext` finds the one to replace.
_extensions: dict[int, "NotebookReloader"] = {}


class NotebookReloader:
    """The extension's root object for one shell."""

    def __init__(self, shell: Any, engine: Engine) -> None:
        self.shell = shell
        self.engine = engine
        self.enabled = True
        # LIVEFIX_WATCHER=stat: stat the project's files before each cell instead of inotify.
        events = os.environ.get("LIVEFIX_WATCHER", "auto") != "stat"
        self.files = ProjectFiles(self._is_project, use_events=events, differs=lambda name: file_differs(engine, name))
        self.reloader = Reloader(engine)
        self._autoreload_warned = False

    def _is_project(self, real_path: str) -> bool:
        return not self.engine.sources.is_library(real_path) and not real_path.startswith(_OWN_DIRECTORY)

    # -- the cell hooks -----------------------------------------------------------------

    def pre_run_cell(self, info: Any = None) -> None:
        try:
            self._warn_if_autoreload()
            if not self.enabled:
                return
            names = self.files.changed()
            if names:
                self._show(self.reloader.reload(names))
        except Exception as error:  # never break the user's cell because of livefix
            print(f"livefix: internal error before this cell ({type(error).__name__}: {error}); "
                  "the cell runs on the code it had", file=sys.stderr)

    def post_run_cell(self, result: Any = None) -> None:
        try:
            self.files.refresh()  # modules the cell imported: their files are stamped now
        except Exception:
            pass

    def _show(self, outcome: Any) -> None:
        for line in outcome.lines:
            print(line, flush=True)
        for line in outcome.errors:
            print(line, file=sys.stderr, flush=True)  # flushed: shown before the cell's own output

    def _warn_if_autoreload(self) -> None:
        magics = self.shell.magics_manager.registry.get("AutoreloadMagics")
        reloader = getattr(magics, "_reloader", None)
        on = bool(getattr(reloader, "enabled", False))
        if on and not self._autoreload_warned:
            print("livefix: %autoreload is on as well, and both reload the same modules (autoreload re-runs "
                  "them, so objects stop agreeing): turn it off with %autoreload off", file=sys.stderr)
        self._autoreload_warned = on

    # -- the magic ------------------------------------------------------------------------

    def command(self, line: str, cell: str | None) -> None:
        verb = line.split()[0] if line.split() else ""
        try:
            try:
                words = shlex.split(line)
            except ValueError as error:  # an unclosed quote
                raise LivefixError("invalid", f"cannot read the command line ({error})") from None
            rest = words[1:]
            if cell is not None:
                if verb != "apply" or len(rest) != 1:
                    raise LivefixError("invalid", "the cell form is %%livefix apply MODULE[:NAME]")
                self._apply_cell(rest[0], cell)
            elif verb == "status" and not rest:
                print(self.status())
            elif verb == "history" and not rest:
                print(self.history())
            elif verb == "rollback" and len(rest) <= 1:
                self._rollback(rest)
            elif verb in ("off", "on") and not rest:
                self.enabled = verb == "on"
                print(f"livefix: reloading before each cell is {verb}"
                      + (" (saved files are reloaded before the next cell)" if verb == "on" else ""))
            elif verb == "reload" and not rest:
                self.files.changed()  # stamps renewed: the next cell does not reload them again
                names = [entry["name"] for entry in self.engine.modified_modules(modules=self._project_modules())
                         if not entry.get("note")]
                self._show(self.reloader.reload(names)) if names else print("livefix: every project module matches its file")
            elif verb == "apply" and len(rest) == 1:
                self._apply_defined(rest[0])
            elif verb in ("", "help"):
                print(USAGE)
            else:
                known = verb in ("status", "history", "rollback", "off", "on", "reload", "apply")
                raise LivefixError("invalid", (f"wrong arguments for {verb}" if known else f"no such command {verb!r}")
                                   + "\n" + USAGE)
        except LivefixError as error:
            print(self._command_error(verb, cell is not None, error), file=sys.stderr)

    def _command_error(self, verb: str, in_cell: bool, error: LivefixError) -> str:
        """A refused magic, named by what the user ran (or the file the engine names)."""
        if error.details.get("path"):
            line = self.reloader.describe_error(error, error.details.get("module"))
            return line.replace(" (still running the code it had)", "") + " (nothing was changed)"
        where = f"%{'%' if in_cell else ''}livefix {verb}".rstrip()
        if in_cell and error.details.get("line"):
            where += f" (cell line {error.details['line']})"
        kind = {"syntax": "syntax error"}.get(error.kind, error.kind)
        return f"livefix: {where}: {kind}: {error.message} (nothing was changed)"

    def _project_modules(self) -> list[str]:
        self.files.refresh()
        return sorted(name for names in self.files.names.values() for name in names if name in sys.modules)

    def status(self) -> str:
        names = self._project_modules()
        lines = [
            f"livefix: reloading before each cell is {'on' if self.enabled else 'off'}; "
            f"{len(names)} project module{'s' if len(names) != 1 else ''} watched ({self.files.backend}); "
            f"generation {self.engine.generation}"
        ]
        for entry in self.engine.modified_modules(modules=names):
            what = entry["changed"] + entry["added"] + entry["removed"]
            detail = ", ".join(what) if what else entry.get("note") or "lines moved"
            lines.append(f"  {self.reloader.display(entry['path'])} differs from what runs: {detail}")
        return "\n".join(lines)

    def history(self) -> str:
        body = self.engine.history()
        if not body["generations"]:
            return "livefix: no generation yet (the code runs as loaded)"
        lines = []
        for entry in body["generations"]:
            changes = ", ".join(f"{c['module']}.{c['qualname']} {c['kind']}" for c in entry["changes"][:4])
            more = len(entry["changes"]) - 4
            when = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
            lines.append(f"gen {entry['generation']} {when} {entry['action']} [{entry['status']}] "
                         f"{changes or 'lines moved'}{f' and {more} more' if more > 0 else ''}")
        return "\n".join(lines)

    def _rollback(self, rest: list[str]) -> None:
        if rest and not rest[0].isdigit():
            raise LivefixError("invalid", f"rollback takes a generation number, not {rest[0]!r}")
        result = self.engine.rollback(to=int(rest[0]) if rest else None)
        print(f"livefix: {result.report.splitlines()[-1]}; the files keep their text "
              "(%livefix status lists what differs; save a file again to reload it)")

    def _apply_defined(self, target: str) -> None:
        module, qualname = _split_target(target, need_name=True)
        name = qualname.rsplit(".", 1)[-1]
        value = self.shell.user_ns.get(name)
        if value is None:
            raise LivefixError("notFound", f"this notebook defines no {name!r} to apply", qualname=qualname)
        try:
            source = textwrap.dedent(inspect.getsource(value))
        except (OSError, TypeError):
            raise LivefixError("notFound", f"the source of {name!r} is not available (define it in a cell)",
                               qualname=qualname) from None
        self._apply([{"module": module, "qualname": qualname, "source": source}])

    def _apply_cell(self, target: str, cell: str) -> None:
        module, qualname = _split_target(target, need_name=False)
        try:
            tree = ast.parse(cell)
        except SyntaxError as error:
            raise LivefixError("syntax", f"the cell does not parse: {error.msg}", line=error.lineno) from None
        definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if not definitions or len(definitions) != len(tree.body):
            raise LivefixError("invalid", "%%livefix apply takes a cell of definitions only (def or class)")
        if qualname and len(definitions) != 1:
            raise LivefixError("invalid", f"the cell defines {len(definitions)} things; name none of them to apply all")
        lines = cell.splitlines(True)
        changes = []
        for node in definitions:
            name = qualname or node.name
            existing = _resolve(sys.modules[module], name)
            if isinstance(node, ast.ClassDef) and isinstance(existing, type) and _only_definitions(node):
                # A class cell of methods patches those methods: the methods it leaves out are
                # not removed (a notebook cell shows the part being worked on, not the class).
                for member in node.body:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        changes.append({"module": module, "qualname": f"{name}.{member.name}",
                                        "source": textwrap.dedent(_segment(lines, member))})
                continue
            changes.append({"module": module, "qualname": name, "source": _segment(lines, node)})
        self._apply(changes)

    def _apply(self, changes: list[dict[str, Any]]) -> None:
        result = self.engine.apply(changes)
        removed = [f"{e['module']}.{e['qualname']}" for e in result.applied if e["kind"] == "removed"]
        print(f"livefix: {result.report.splitlines()[-1]}"
              + (f" (removed: {', '.join(removed)})" if removed else "")
              + "; its file still has the old text (%livefix status shows it; a save of the file reloads the "
              "file's version)")


def _segment(lines: list[str], node: ast.stmt) -> str:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    return "".join(lines[first - 1 : node.end_lineno])


def _only_definitions(node: ast.ClassDef) -> bool:
    body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(
        getattr(node.body[0], "value", None), ast.Constant) else node.body
    return bool(body) and all(isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) for member in body)


def _resolve(module: Any, qualname: str) -> Any:
    owner = module
    for part in qualname.split("."):
        owner = getattr(owner, "__dict__", {}).get(part)
        if owner is None:
            return None
    return owner


def _split_target(target: str, need_name: bool) -> tuple[str, str | None]:
    module, _, qualname = target.partition(":")
    if not module or (need_name and not qualname):
        raise LivefixError("invalid", f"name the target as MODULE:NAME, not {target!r}")
    if module not in sys.modules:
        raise LivefixError("notFound", f"module {module!r} is not loaded in this kernel", module=module)
    return module, qualname or None


@magics_class
class LivefixMagics(Magics):
    def __init__(self, shell: Any, extension: NotebookReloader) -> None:
        super().__init__(shell)
        self.extension = extension

    @line_cell_magic
    def livefix(self, line: str, cell: str | None = None) -> None:
        """Reload the project's changed modules before each cell; see `%livefix help`."""
        self.extension.command(line, cell)


def load(shell: Any) -> NotebookReloader:
    unload(shell)
    extension = NotebookReloader(shell, livefix.install())
    shell.events.register("pre_run_cell", extension.pre_run_cell)
    shell.events.register("post_run_cell", extension.post_run_cell)
    shell.register_magics(LivefixMagics(shell, extension))
    _extensions[id(shell)] = extension
    names = extension._project_modules()
    print(f"livefix: project modules are reloaded before each cell ({len(names)} loaded now, "
          f"changes seen by {extension.files.backend}); %livefix for status, history, rollback")
    extension._warn_if_autoreload()
    # Saved before livefix arrived: said now, since the next cell reloads only what is saved from now on.
    differing = [e for e in shell_safe(lambda: extension.engine.modified_modules(modules=names)) or [] if not e.get("note")]
    if differing:
        files = ", ".join(extension.reloader.display(e["path"]) for e in differing)
        print(f"livefix: {files} already differ{'s' if len(differing) == 1 else ''} from what runs (saved before "
              "%load_ext livefix): %livefix reload brings them in", file=sys.stderr, flush=True)
    return extension


def shell_safe(call: Any) -> Any:
    try:
        return call()
    except Exception:  # a status that fails must not fail %load_ext
        return None


def unload(shell: Any) -> None:
    extension = _extensions.pop(id(shell), None)
    if extension is None:
        return
    for event, callback in (("pre_run_cell", extension.pre_run_cell), ("post_run_cell", extension.post_run_cell)):
        try:
            shell.events.unregister(event, callback)
        except ValueError:
            pass
    extension.files.close()
