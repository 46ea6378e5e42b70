"""One benchmark cell in a fresh process: one reloader, one module size, one heap size.

`engine_reload.py` starts this script once per (tool, size, heap) so that the tools never
share a process (import hooks, caches and gc state of one would bias another). The worker:

1. keeps `--heap` extra small objects alive (gc-tracked lists, as a real app's data would be),
2. writes a generated module of `--size` top-level functions (plus one class with methods per
   20 functions) to a fresh temporary directory,
3. sets the tool up the way a user does *before* importing the module (livefix.install(),
   jurigged's watcher registration, IPython's autoreload extension state),
4. imports the module, then per repetition edits one function body on disk (same line count,
   `+ 1` <-> `+ 2`, alternating) and times only the tool's call that brings the module in line
   with the file (wall time, and the process's CPU time),
5. checks after every reload that the edit took effect (calls the function through the module),
   and prints one JSON line per repetition, so the parent keeps partial results of a cell it
   has to time out.

Only the standard library is imported here until the chosen tool is set up, so every tool
starts from the same interpreter state.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

FUNCS_PER_CLASS = 20
TOOLS = ("importlib", "ipython-deduper", "ipython-superreload", "xreload", "jurigged", "livefix")


# --------------------------------------------------------------------------- workload


def target_index(size: int) -> int:
    """The edited function sits in the middle of the module, not at either end."""
    return size // 2


def module_source(size: int, target_const: int) -> str:
    """A module of `size` functions and size/20 classes; only the target's constant varies.

    Every function body differs (its own multiplier), so no two code objects are equal and a
    tool cannot shortcut by deduplicating constants. Module-level state (`counter`, `cache`)
    is there so the module looks like real code that a reload must not reset.
    """
    target = target_index(size)
    lines = [
        f'"""Generated reload benchmark module: {size} functions, {size // FUNCS_PER_CLASS} classes."""',
        "",
        "counter = 0",
        "cache = {}",
        "",
    ]
    for i in range(size):
        const = target_const if i == target else 1
        lines += ["", f"def f_{i:05d}(x):", f"    return x * {i % 97 + 2} + {const}", ""]
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
                f"        return self.v * self.scale + {k}",
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
    return "\n".join(lines) + "\n"


def expected(size: int, target_const: int, x: int = 10) -> int:
    """What the target function must return once the edit with `target_const` is live."""
    return x * (target_index(size) % 97 + 2) + target_const


class ModuleFile:
    """The generated module on disk, with strictly increasing whole-second mtimes.

    Edits keep the file size identical, so two edits within one second would look unchanged to
    mtime-based tools (IPython's autoreload, importlib's .pyc check). Each write therefore
    stamps the file one second later than the previous one.
    """

    def __init__(self, size: int, directory: str) -> None:
        self.size = size
        self.dir = directory
        self.name = f"lfbench_mod_{size}"
        self.path = os.path.join(self.dir, self.name + ".py")
        self._stamp = int(time.time()) - 100_000
        self.write(1)

    def write(self, target_const: int) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(module_source(self.size, target_const))
        self._stamp += 1
        os.utime(self.path, ns=(self._stamp * 10**9, self._stamp * 10**9))


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
        # The deduper patches the existing function object; superreload re-executes the
        # module and puts a new function object in its namespace.
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
        "livefix": LivefixTool,
    }
    return factories[name]()


# --------------------------------------------------------------------------- run


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def run(tool_name: str, size: int, heap: int, reps: int, budget: float, workdir: str, profile: str | None) -> None:
    live_heap = [[i] for i in range(heap)]  # gc-tracked, like an app's own data
    file = ModuleFile(size, workdir)
    tool = make_tool(tool_name)
    sys.path.insert(0, file.dir)
    tool.prepare(file)
    module = importlib.import_module(file.name)
    held = getattr(module, f"f_{target_index(size):05d}")  # a `from m import f` copy
    tool.attach(module)
    gc.collect()
    emit({"event": "ready", "tool": tool_name, "size": size, "heap": len(live_heap)})

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    # Repetition 0 is the first edit of the session (one-time costs, e.g. jurigged's lazy
    # parse of the original file); 1..reps are the steady state that the table reports.
    for rep in range(reps + 1):
        const = 2 if rep % 2 == 0 else 1
        file.write(const)
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
        if error is None:
            got = getattr(module, f"f_{target_index(size):05d}")(10)
            if got != expected(size, const):
                error = f"edit not applied: f(10) returned {got}, expected {expected(size, const)}"
        emit(
            {
                "event": "rep",
                "rep": rep,
                "ms": ms,
                "cpu_ms": cpu_ms,
                "error": error,
                # Only edits to `+ 2` tell an updated held copy (`+ 1`) from a stale one.
                "held_updated": held(10) == expected(size, const) if const == 2 and error is None else None,
            }
        )
        if error is not None:
            break
        if rep > 0 and time.perf_counter() - started > budget:
            break
    if profiler is not None:
        profiler.dump_stats(profile)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=TOOLS, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--heap", type=int, default=0)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--budget", type=float, default=60.0, help="stop adding reps after this many seconds")
    parser.add_argument("--workdir", help="empty directory for the generated module (default: a new temporary one)")
    parser.add_argument("--profile", help="write cProfile stats of the timed reloads to this file")
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="livefix-bench-")
    run(args.tool, args.size, args.heap, args.reps, args.budget, workdir, args.profile)


if __name__ == "__main__":
    main()
