"""One benchmark cell in a fresh process: one reloader, one edit shape, one module size, one heap size.

`engine_reload.py` starts this script once per (tool, shape, size, heap) so that the tools
never share a process (import hooks, caches and gc state of one would bias another). The worker:

1. keeps `--heap` extra small objects alive (gc-tracked lists, as a real app's data would be),
2. writes a generated module of `--size` top-level functions (plus one class with methods per
   20 functions) to a fresh temporary directory,
3. sets the tool up the way a user does *before* importing the module (livefix.install(),
   jurigged's watcher registration, IPython's autoreload extension state),
4. imports the module, then per repetition writes the edit of `--shape` to disk (the edited
   and the original version alternate, so every repetition is a real change) and times only
   the tool's call that brings the module in line with the file (wall time, and the process's
   CPU time),
5. checks after every reload, outside the timed region, that the edit took effect (calls the
   edited definitions through the module, and for `moved` through a copy taken before the
   edits) and that every function's `co_firstlineno` is its line in the file, and prints one
   JSON line per repetition, so the parent keeps partial results of a cell it has to time out.

The edit shapes (`SHAPES`):
  one    one function in the middle, same line count (`+ 1` <-> `+ 2`);
  two    a function near the top gains a line and a method of the last class (its caller)
         changes, so every definition in between moves down a line;
  all    every top-level function and every `get` method changes its constant (a
         formatter-wide edit), same line count;
  moved  the middle function is cut and pasted at the end of the module (its constant edited
         too, so a copy that kept the old object shows whether it was updated), then moved back.

Only the standard library is imported here until the chosen tool is set up, so every tool
starts from the same interpreter state.
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import json
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

FUNCS_PER_CLASS = 20
TOP_INDEX = 1  # the function near the top that `two` edits (and the last class's `get` calls)
SHAPES = ("one", "two", "all", "moved")
TOOLS = ("importlib", "ipython-deduper", "ipython-superreload", "xreload", "jurigged", "minimal", "livefix")


# --------------------------------------------------------------------------- workload


def target_index(size: int) -> int:
    """The function `one` edits and `moved` moves sits in the middle, not at either end."""
    return size // 2


def last_class(size: int) -> int:
    return size // FUNCS_PER_CLASS - 1


def module_source(size: int, shape: str = "one", edited: bool = False) -> str:
    """A module of `size` functions and size/20 classes, original or with `shape`'s edit.

    Every function body differs (its own multiplier), so no two code objects are equal and a
    tool cannot shortcut by deduplicating constants. Module-level state (`counter`, `cache`)
    is there so the module looks like real code that a reload must not reset.
    """
    target, top, last = target_index(size), TOP_INDEX, last_class(size)
    moved = edited and shape == "moved"

    def function(i: int) -> list[str]:
        const = 2 if edited and (shape == "all" or (shape in ("one", "moved") and i == target)) else 1
        extra = ["    x = x + 1000"] if edited and shape == "two" and i == top else []
        return ["", f"def f_{i:05d}(x):", *extra, f"    return x * {i % 97 + 2} + {const}", ""]

    def get_body(k: int) -> str:
        if edited and shape == "two" and k == last:
            return f"        return self.v * self.scale + {k} + f_{top:05d}(0)"
        return f"        return self.v * self.scale + {k + 1 if edited and shape == 'all' else k}"

    lines = [
        f'"""Generated reload benchmark module: {size} functions, {size // FUNCS_PER_CLASS} classes."""',
        "",
        "counter = 0",
        "cache = {}",
        "",
    ]
    for i in range(size):
        if not (moved and i == target):
            lines += function(i)
        if i % FUNCS_PER_CLASS == FUNCS_PER_CLASS - 1:
            k = i // FUNCS_PER_CLASS
            lines += [
                "",
                f"class C_{k:04d}:",
                f"    scale = {k % 7 + 1}",
                "",
                "    def __init__(self, v):",
                "        self.v = v",
                "",
                "    def get(self):",
                get_body(k),
                "",
                "    @classmethod",
                "    def make(cls, v):",
                "        return cls(v)",
                "",
                "    @property",
                "    def double(self):",
                "        return self.v * 2",
                "",
            ]
    if moved:
        lines += function(target)
    return "\n".join(lines) + "\n"


def f_value(size: int, shape: str, edited: bool, i: int, x: int = 10) -> int:
    """What f_i(x) returns in the given version of the module."""
    const = 2 if edited and (shape == "all" or (shape in ("one", "moved") and i == target_index(size))) else 1
    if edited and shape == "two" and i == TOP_INDEX:
        x += 1000
    return x * (i % 97 + 2) + const


def get_value(size: int, shape: str, edited: bool, k: int, v: int = 10) -> int:
    """What C_k(v).get() returns in the given version of the module."""
    value = v * (k % 7 + 1) + k
    if edited and shape == "all":
        value += 1
    if edited and shape == "two" and k == last_class(size):
        value += f_value(size, shape, edited, TOP_INDEX, 0)
    return value


def first_lines(source: str) -> dict[str, int]:
    """qualname -> the line a function's code starts at: its first decorator, else `def`."""
    lines: dict[str, int] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines[prefix + node.name] = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(ast.parse(source).body, "")
    return lines


def running_functions(module: ModuleType) -> Iterator[tuple[str, types.FunctionType]]:
    """(qualname, function) for every function of the module and method of its classes."""
    for name, value in list(module.__dict__.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            yield name, value
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for attr, member in list(vars(value).items()):
                function = plain_function(member)
                if function is not None:
                    yield f"{name}.{attr}", function


def plain_function(member: Any) -> types.FunctionType | None:
    """The function behind a class attribute (method, classmethod, staticmethod, property)."""
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    return member if isinstance(member, types.FunctionType) else None


class ModuleFile:
    """The generated module on disk, with strictly increasing whole-second mtimes.

    Most edits keep the file size identical, so two edits within one second would look
    unchanged to mtime-based tools (IPython's autoreload, importlib's .pyc check). Each write
    therefore stamps the file one second later than the previous one.
    """

    def __init__(self, size: int, shape: str, directory: str) -> None:
        self.size = size
        self.shape = shape
        self.dir = directory
        self.name = f"lfbench_mod_{size}"
        self.path = os.path.join(self.dir, self.name + ".py")
        self._stamp = int(time.time()) - 100_000
        self.texts = {edited: module_source(size, shape, edited) for edited in (False, True)}
        # Parsed once per version, before any timing: the line every function must start at.
        self.lines = {edited: first_lines(text) for edited, text in self.texts.items()}
        self.write(False)

    def write(self, edited: bool) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.texts[edited])
        self._stamp += 1
        os.utime(self.path, ns=(self._stamp * 10**9, self._stamp * 10**9))


class Checks:
    """What must hold after a reload to the given version; built before the first edit."""

    def __init__(self, module: ModuleType, file: ModuleFile) -> None:
        self.file = file
        size = file.size
        self.target = f"f_{target_index(size):05d}"
        # `from module import f` copies and an instance made before any edit.
        self.held_f = getattr(module, self.target if file.shape != "two" else f"f_{TOP_INDEX:05d}")
        self.held_obj = getattr(module, f"C_{last_class(size):04d}")(10)

    def wrong(self, module: ModuleType, edited: bool) -> str | None:
        """Why the module does not run the edited version, or None when it does."""
        size, shape = self.file.size, self.file.shape
        if shape == "one":
            probes = [target_index(size)]
        elif shape == "two":
            probes = [TOP_INDEX]
        elif shape == "moved":
            probes = [target_index(size)]
        else:
            probes = list(range(size))
        for i in probes:
            got = getattr(module, f"f_{i:05d}")(10)
            want = f_value(size, shape, edited, i)
            if got != want:
                return f"f_{i:05d}(10) returned {got}, expected {want}"
        classes = [last_class(size)] if shape == "two" else range(size // FUNCS_PER_CLASS) if shape == "all" else []
        for k in classes:
            got = getattr(module, f"C_{k:04d}")(10).get()
            want = get_value(size, shape, edited, k)
            if got != want:
                return f"C_{k:04d}(10).get() returned {got}, expected {want}"
        if shape == "moved":
            want = f_value(size, shape, edited, target_index(size))
            if self.held_f(10) != want:
                return f"a `from module import {self.target}` copy returned {self.held_f(10)}, expected {want}"
        return None

    def held_updated(self, edited: bool) -> bool | None:
        """Whether objects taken before the edits see it (only an edited version tells)."""
        if not edited:
            return None
        size, shape = self.file.size, self.file.shape
        index = TOP_INDEX if shape == "two" else target_index(size)
        ok = self.held_f(10) == f_value(size, shape, edited, index)
        if shape == "two":
            ok = ok and self.held_obj.get() == get_value(size, shape, edited, last_class(size))
        return ok

    def wrong_lines(self, module: ModuleType, edited: bool) -> tuple[int, str | None]:
        """How many functions' co_firstlineno is not their first line in the file, and one example."""
        expected = self.file.lines[edited]
        count, example = 0, None
        for qualname, function in running_functions(module):
            want = expected.get(qualname)
            got = function.__code__.co_firstlineno
            if want is not None and got != want:
                count += 1
                example = example or f"{qualname} starts at line {got}, the file has it at {want}"
        return count, example


# --------------------------------------------------------------------------- tools
# Each tool: prepare(file) runs before the import; attach(module) right after it (untimed);
# reload(module) is the timed call; problem(module) names a wrong path taken, or None.


class Tool:
    name = ""

    def prepare(self, file: ModuleFile) -> None:
        pass

    def attach(self, module: ModuleType) -> None:
        pass

    def reload(self, module: ModuleType) -> None:
        raise NotImplementedError

    def problem(self, module: ModuleType) -> str | None:
        return None


class ImportlibTool(Tool):
    """The standard library: re-executes the module; held references keep the old code."""

    name = "importlib"

    def reload(self, module: ModuleType) -> None:
        importlib.reload(module)


class IPythonTool(Tool):
    """IPython's autoreload engine (`ModuleReloader`), driven as its extension drives it.

    `%aimport mod` + `%autoreload 1` mode: only the benchmarked module is checked, so the
    time is that module's reload, not a stat() of every module in sys.modules. The timed call
    is `ModuleReloader.check()`, which the extension runs before each cell. `full=True` is
    `%autoreload --full` (deduper disabled, `superreload` always).
    """

    def __init__(self, full: bool) -> None:
        self.full = full
        self.name = "ipython-superreload" if full else "ipython-deduper"

    def prepare(self, file: ModuleFile) -> None:
        from IPython.extensions.autoreload import ModuleReloader

        self.reloader = ModuleReloader()
        self.reloader.deduper_reloader.enabled = not self.full
        self.reloader.enabled = True
        self.reloader.check_all = False
        self.reloader.autoload_obj = False
        self.reloader.mark_module_reloadable(file.name)
        self.name_in_dict = f"f_{target_index(file.size):05d}"

    def attach(self, module: ModuleType) -> None:
        # The next cell's pre-run check records the mtime and the deduper's source snapshot.
        self.reloader.check()
        self.original = module.__dict__[self.name_in_dict]

    def reload(self, module: ModuleType) -> None:
        self.reloader.check()

    def problem(self, module: ModuleType) -> str | None:
        if self.reloader.failed:
            return f"autoreload reported a failure: {self.reloader.failed}"
        # The deduper patches the existing function objects; superreload re-executes the
        # module and puts new function objects in its namespace.
        same = module.__dict__[self.name_in_dict] is self.original
        if not self.full and not same:
            return "deduper fell back to superreload"
        return None


class XreloadTool(Tool):
    """debugpy's vendored pydevd `xreload`, imported the way pydevd itself imports it."""

    name = "xreload"

    def prepare(self, file: ModuleFile) -> None:
        import debugpy

        vendored = os.path.join(os.path.dirname(debugpy.__file__), "_vendored", "pydevd")
        sys.path.insert(0, vendored)
        from _pydevd_bundle import pydevd_reload  # type: ignore[import-not-found]

        self.xreload: Callable[[ModuleType], bool] = pydevd_reload.xreload

    def reload(self, module: ModuleType) -> None:
        self.changed = self.xreload(module)

    def problem(self, module: ModuleType) -> str | None:
        return None if self.changed else "xreload reported no change"


class JuriggedTool(Tool):
    """jurigged registered and watching before the import, as `jurigged.watch()` sets it up.

    The watcher's file-system observer is not started: its handler would call
    `Watcher.refresh(path)` on a timer thread after a debounce. The benchmark calls that same
    `refresh(path)` synchronously, so exactly the processing of one file change is timed.
    """

    name = "jurigged"

    def prepare(self, file: ModuleFile) -> None:
        import jurigged

        self.events: list[Any] = []
        self.path = file.path
        self.watcher = jurigged.watch(
            pattern=os.path.join(file.dir, "*.py"), logger=self.events.append, autostart=False
        )

    def reload(self, module: ModuleType) -> None:
        self.events.clear()
        self.watcher.refresh(self.path)

    def problem(self, module: ModuleType) -> str | None:
        errors = [e for e in self.events if isinstance(e, BaseException)]
        return f"jurigged logged {errors[0]!r}" if errors else None


_MISSING = object()


class MinimalTool(Tool):
    """The smallest correct in-place reloader: the reference livefix must stay within 3x of.

    Compile the whole file, run it in a scratch namespace (module state is left alone), and
    give every function of the module, and every method of its classes, the scratch version's
    code and defaults where the code differs (code equality includes the first line, so moved
    definitions get their new line numbers). Objects keep their identity, so held references
    see the edit. New top-level functions are added, bound to the module's globals; nothing
    is removed. A change of free variables makes the `__code__` assignment raise.
    """

    name = "minimal"

    def reload(self, module: ModuleType) -> None:
        path = module.__file__
        assert path is not None
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
        scratch: dict[str, Any] = {"__name__": module.__name__, "__file__": path}
        exec(code, scratch)
        namespace = module.__dict__
        for name, new in scratch.items():
            old = namespace.get(name, _MISSING)
            if isinstance(new, types.FunctionType):
                if isinstance(old, types.FunctionType):
                    self.swap(old, new)
                elif old is _MISSING:
                    namespace[name] = types.FunctionType(new.__code__, namespace, name, new.__defaults__, new.__closure__)
            elif isinstance(new, type) and isinstance(old, type) and new.__module__ == module.__name__:
                for attr, member in vars(new).items():
                    new_function, current = plain_function(member), old.__dict__.get(attr, _MISSING)
                    old_function = plain_function(current)
                    if new_function is not None and old_function is not None:
                        self.swap(old_function, new_function)
                    elif new_function is not None and current is _MISSING:
                        setattr(old, attr, member)

    @staticmethod
    def swap(old: types.FunctionType, new: types.FunctionType) -> None:
        if old.__code__ != new.__code__:
            old.__code__ = new.__code__
        old.__defaults__, old.__kwdefaults__ = new.__defaults__, new.__kwdefaults__


class LivefixTool(Tool):
    """livefix: `install()` before the import, `reload_module(module)` per edit."""

    name = "livefix"

    def prepare(self, file: ModuleFile) -> None:
        import livefix

        self.livefix = livefix
        livefix.install()

    def reload(self, module: ModuleType) -> None:
        self.livefix.reload_module(module)


def make_tool(name: str) -> Tool:
    factories: dict[str, Callable[[], Tool]] = {
        "importlib": ImportlibTool,
        "ipython-deduper": lambda: IPythonTool(full=False),
        "ipython-superreload": lambda: IPythonTool(full=True),
        "xreload": XreloadTool,
        "jurigged": JuriggedTool,
        "minimal": MinimalTool,
        "livefix": LivefixTool,
    }
    return factories[name]()


# --------------------------------------------------------------------------- run


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def run(tool_name: str, shape: str, size: int, heap: int, reps: int, budget: float, workdir: str,
        profile: str | None) -> None:
    live_heap = [[i] for i in range(heap)]  # gc-tracked, like an app's own data
    file = ModuleFile(size, shape, workdir)
    tool = make_tool(tool_name)
    sys.path.insert(0, file.dir)
    tool.prepare(file)
    module = importlib.import_module(file.name)
    checks = Checks(module, file)
    tool.attach(module)
    gc.collect()
    emit({"event": "ready", "tool": tool_name, "shape": shape, "size": size, "heap": len(live_heap)})

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    # Repetition 0 is the first edit of the session (one-time costs, e.g. jurigged's lazy
    # parse of the original file); 1..reps are the steady state that the table reports.
    for rep in range(reps + 1):
        edited = rep % 2 == 0
        file.write(edited)
        # time.monotonic() is system-wide, so the parent can tell how long an unfinished
        # reload had been running when it had to kill this worker.
        emit({"event": "begin", "rep": rep, "monotonic": time.monotonic()})
        if profiler is not None and rep > 0:
            profiler.enable()
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            tool.reload(module)
            error = None
        except Exception as exc:  # a peer that raises is reported as failed, not timed
            error = f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - t0) * 1000
        # CPU time of this process (all its threads): unlike wall time, it does not count the
        # time the reload waited for a core that another process held.
        cpu_ms = (time.process_time() - c0) * 1000
        if profiler is not None:
            profiler.disable()
        if error is None:
            error = tool.problem(module)
        wrong = lines_wrong = lines_example = None
        if error is None:
            try:
                wrong = checks.wrong(module, edited)
                lines_wrong, lines_example = checks.wrong_lines(module, edited)
            except Exception as exc:  # e.g. a definition the reload lost
                wrong = f"checking the module raised {type(exc).__name__}: {exc}"
        emit(
            {
                "event": "rep",
                "rep": rep,
                "ms": ms,
                "cpu_ms": cpu_ms,
                "error": error,
                "wrong": wrong,
                "lines_wrong": lines_wrong,
                "lines_example": lines_example,
                "held_updated": checks.held_updated(edited) if error is None and wrong is None else None,
            }
        )
        if error is not None or wrong is not None:
            break
        if rep > 0 and time.perf_counter() - started > budget:
            break
    if profiler is not None:
        profiler.dump_stats(profile)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=TOOLS, required=True)
    parser.add_argument("--shape", choices=SHAPES, default="one")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--heap", type=int, default=0)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--budget", type=float, default=60.0, help="stop adding reps after this many seconds")
    parser.add_argument("--workdir", help="empty directory for the generated module (default: a new temporary one)")
    parser.add_argument("--profile", help="write cProfile stats of the timed reloads to this file")
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="livefix-bench-")
    run(args.tool, args.shape, args.size, args.heap, args.reps, args.budget, workdir, args.profile)


if __name__ == "__main__":
    main()
