"""Notebook benchmark: `%load_ext livefix` against IPython's `%autoreload 2`, in one run.

Two questions, each answered in a real `InteractiveShell` in a fresh subprocess per tool
(never a mocked one):

1. Does the edit take effect the way a notebook user expects? Edit scenarios like the
   engine's realistic tests: a class keeps its identity (an instance made before the edit
   runs the new method), a dataclass method changes, a dataclass gains a field with a
   default, an enum member keeps its identity, `from mod import f` copies (in another
   module and in the notebook) run the new code, module state set from the notebook
   survives, a function below an edit that adds lines reports the file's line, an
   `lru_cache` function returns the new result, a syntax error is reported and its fix
   reloaded. Each cell: ok, wrong (what) or error (what the tool said).
2. What does a cell cost when nothing changed? The tool's own cell hooks (pre_run_cell and
   the post-cell hooks), timed one by one around `shell.run_cell("pass")`, and the whole
   `run_cell("pass")`, with N library modules plus 20 project modules loaded
   (`libraries`) or N project modules (`project`), for no extension, livefix (inotify, and
   its stat backend), `%autoreload 2` (IPython's default, the deduper) and
   `%autoreload 2 --full` (superreload only).

livefix is imported from this checkout's source tree. No timed assertions: it prints medians,
ratios and markdown tables.

    python benchmarks/notebook_reload.py                 # < 3 minutes
    python benchmarks/notebook_reload.py --sizes 200,2000,10000 --cells 1000
    python benchmarks/notebook_reload.py --only overhead --tools none,livefix,autoreload
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from bench_common import checkout, parse_list

HERE = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(HERE))

TOOLS = ("none", "livefix", "livefix-stat", "autoreload", "autoreload-full")
TITLES = {
    "none": "no extension",
    "livefix": "livefix (inotify)",
    "livefix-stat": "livefix (stat)",
    "autoreload": "%autoreload 2",
    "autoreload-full": "%autoreload 2 --full",
}
CORRECTNESS_TOOLS = ("livefix", "autoreload", "autoreload-full")  # "none" reloads nothing
LAYOUTS = ("libraries", "project")
PROJECT_MODULES_WITH_LIBRARIES = 20
MODULES_PER_PACKAGE = 100
TARGET_US = 1000.0  # livefix's per-cell target at 2,000 modules


# -- the edit scenarios ------------------------------------------------------------------


@dataclass
class Step:
    """Write these files, run a cell (the tool reloads before it), then evaluate the checks."""

    files: dict[str, str]
    checks: list[tuple[str, Any]]  # (expression in the notebook's namespace, expected value)
    expect_report: bool = False  # the tool should say something went wrong (a syntax error)


@dataclass
class Scenario:
    name: str
    title: str
    files: dict[str, str]
    setup: str  # the notebook cell that imports the modules and makes the live objects
    steps: list[Step]
    # Run a cell between the import and the first save (a person looks at something first).
    # IPython's deduper reads a module's text in the cell after its import; a save before that
    # falls back to the full superreload for the module's first edit.
    idle_cell: bool = True


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise ValueError(needle)


CART = _dedent("""
    class Cart:
        def __init__(self):
            self.items = [1, 2, 3]

        def total(self):
            return sum(self.items)
""")
POINT = _dedent("""
    from dataclasses import dataclass


    @dataclass
    class Point:
        x: int
        y: int

        def norm1(self):
            return abs(self.x) + abs(self.y)
""")
POINT_FIELD = POINT.replace("    y: int\n", "    y: int\n    z: int = 0\n").replace(
    "abs(self.x) + abs(self.y)", "abs(self.x) + abs(self.y) + abs(self.z)")
COLOR = _dedent("""
    import enum


    class Color(enum.Enum):
        RED = 1
        GREEN = 2

        def label(self):
            return self.name.lower()
""")
RATE = _dedent("""
    def rate():
        return 1
""")
RATE_USER = _dedent("""
    from nb_rate import rate

    HANDLERS = {"rate": rate}


    def price(x):
        return x * rate()
""")
STATE = _dedent("""
    count = 0
    CACHE = {}


    def bump():
        global count
        count += 1
        return count
""")
LINES = _dedent("""
    def top():
        return 1


    def below():
        raise ValueError("below")
""")
LINES_V2 = LINES.replace("    return 1\n", "    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n")
CACHED = _dedent("""
    import functools


    @functools.lru_cache(maxsize=None)
    def price(x):
        return x * 2
""")
SYNTAX = _dedent("""
    def value():
        return 1


    def other():
        return 0
""")

# Helpers the checks call, defined in the notebook by the setup cell.
NOTEBOOK_HELPERS = _dedent("""
    import traceback as _tb

    def _raise_line(f):
        try:
            f()
        except Exception as error:
            return _tb.extract_tb(error.__traceback__)[-1].lineno
        return None
""")

SCENARIOS = [
    Scenario(
        "class", "class identity kept (instance made before the edit)", {"nb_class.py": CART},
        "import nb_class as m\nc = m.Cart()\nCart0 = m.Cart",
        [Step({"nb_class.py": CART.replace("return sum(self.items)", "return sum(self.items) * 10")},
              [("c.total()", 60), ("isinstance(c, m.Cart)", True), ("m.Cart is Cart0", True),
               ("isinstance(m.Cart(), Cart0)", True)])],
    ),
    Scenario(
        "dataclass_method", "dataclass method changed", {"nb_point.py": POINT},
        "import nb_point as m\np = m.Point(1, 2)\nPoint0 = m.Point",
        [Step({"nb_point.py": POINT.replace("abs(self.x) + abs(self.y)", "(abs(self.x) + abs(self.y)) * 10")},
              [("p.norm1()", 30), ("isinstance(p, m.Point)", True), ("m.Point is Point0", True),
               ("p == m.Point(1, 2)", True)])],
    ),
    Scenario(
        "dataclass_field", "dataclass gains a field with a default", {"nb_field.py": POINT},
        "import nb_field as m\np = m.Point(1, 2)\nPoint0 = m.Point",
        [Step({"nb_field.py": POINT_FIELD},
              [("p.z", 0), ("p.norm1()", 3), ("m.Point(1, 2, 5).z", 5), ("repr(p)", "Point(x=1, y=2, z=0)"),
               ("isinstance(p, m.Point)", True), ("m.Point is Point0", True)])],
    ),
    Scenario(
        "enum", "enum identity after a method edit", {"nb_color.py": COLOR},
        "import nb_color as m\nold = m.Color.RED\nColor0 = m.Color",
        [Step({"nb_color.py": COLOR.replace("self.name.lower()", "self.name.title()")},
              [("old.label()", "Red"), ("old is m.Color.RED", True), ("m.Color(1) is old", True),
               ("m.Color is Color0", True)])],
    ),
    Scenario(
        "from_import", "`from mod import f` copies run the new code", {"nb_rate.py": RATE, "nb_rate_user.py": RATE_USER},
        "from nb_rate import rate\nimport nb_rate_user as user",
        [Step({"nb_rate.py": RATE.replace("return 1", "return 10")},
              [("rate()", 10), ("user.price(2)", 20), ("user.HANDLERS['rate']()", 10)])],
    ),
    Scenario(
        "state", "module state kept (set from the notebook)", {"nb_state.py": STATE},
        "import nb_state as m\nfor _ in range(3):\n    m.bump()\nm.CACHE['k'] = 'v'",
        [Step({"nb_state.py": STATE.replace("count += 1", "count += 10")},
              [("m.count", 3), ("m.CACHE", {"k": "v"}), ("m.bump()", 13)])],
    ),
    Scenario(
        "state_first", "module state kept, saved right after the import cell", {"nb_state_first.py": STATE},
        "import nb_state_first as m\nfor _ in range(3):\n    m.bump()\nm.CACHE['k'] = 'v'",
        [Step({"nb_state_first.py": STATE.replace("count += 1", "count += 10")},
              [("m.count", 3), ("m.CACHE", {"k": "v"}), ("m.bump()", 13)])],
        idle_cell=False,
    ),
    Scenario(
        "lines", "line numbers right below an edit that adds lines", {"nb_lines.py": LINES},
        "import nb_lines as m\nfrom nb_lines import below",
        [Step({"nb_lines.py": LINES_V2},
              [("m.top()", 6), ("m.below.__code__.co_firstlineno", line_of(LINES_V2, "def below")),
               ("_raise_line(below)", line_of(LINES_V2, "raise ValueError")),
               ("m.top.__code__.co_firstlineno", line_of(LINES_V2, "def top"))])],
    ),
    Scenario(
        "lru_cache", "`functools.lru_cache` function changed", {"nb_cached.py": CACHED},
        "import nb_cached as m\nfrom nb_cached import price\nm.price(3)",
        [Step({"nb_cached.py": CACHED.replace("x * 2", "x * 20")}, [("m.price(3)", 60), ("price(3)", 60)])],
    ),
    Scenario(
        "syntax", "syntax error reported, then its fix reloaded", {"nb_syntax.py": SYNTAX},
        "import nb_syntax as m",
        [Step({"nb_syntax.py": SYNTAX.replace("def value():", "def value(:")}, [("m.value()", 1)], expect_report=True),
         Step({"nb_syntax.py": SYNTAX.replace("return 1", "return 2")}, [("m.value()", 2), ("m.other()", 0)])],
    ),
]


# -- inside the worker: a real shell, one tool --------------------------------------------


def make_shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # never the user's history database
    return InteractiveShell.instance(config=config)


def run_cell(shell: Any, code: str) -> tuple[Any, str, str]:
    """Run one cell as a notebook would; what it and the tool's hooks printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = shell.run_cell(code, store_history=False)
    return result, out.getvalue(), err.getvalue()


def load_tool(shell: Any, tool: str) -> str:
    """Load the tool the way a user does; returns what it printed."""
    cells = {
        "none": [],
        "livefix": ["%load_ext livefix"],
        "livefix-stat": ["%load_ext livefix"],
        "autoreload": ["%load_ext autoreload", "%autoreload 2"],
        "autoreload-full": ["%load_ext autoreload", "%autoreload 2 --full"],
    }[tool]
    printed = []
    for cell in cells:
        result, out, err = run_cell(shell, cell)
        if not result.success:
            raise SystemExit(f"{cell!r} failed: {result.error_in_exec or result.error_before_exec}\n{err}")
        printed.append(out + err)
    if tool == "livefix-stat":
        # The extension has no switch for its backend: give it the ProjectFiles it builds,
        # with inotify off (what it falls back to without inotify: macOS, Windows, no watches).
        from livefix.integrations import ipython as extension_module
        from livefix.integrations.project_files import ProjectFiles
        from livefix.integrations.reloader import file_differs

        extension = extension_module._extensions[id(shell)]
        extension.files.close()
        extension.files = ProjectFiles(extension._is_project, use_events=False,
                                       differs=lambda name: file_differs(extension.engine, name))
        assert extension.files.backend == "stat"
    return "".join(printed)


def write_files(root: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def tool_reported(tool: str, out: str, err: str) -> str | None:
    """The first line of what the tool said went wrong before the cell, if anything."""
    for line in (out + err).splitlines():
        if (tool.startswith("livefix") and line.startswith("livefix:") and line in err) or (
            tool.startswith("autoreload") and ("[autoreload of" in line or "Failed to reload" in line)
        ):
            return line.strip()
    return None


def worker_correctness(args: argparse.Namespace) -> None:
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    root = os.path.join(args.workdir, "project")
    write_files(root, scenario.files)
    sys.path.insert(0, root)
    shell = make_shell()
    load_tool(shell, args.tool)
    for code in (NOTEBOOK_HELPERS, scenario.setup, *(["pass"] if scenario.idle_cell else [])):
        result, out, err = run_cell(shell, code)
        if not result.success:
            emit({"status": "error", "what": f"setup failed: {result.error_in_exec!r} {err.strip()[-300:]}"})
            return
    reports: list[str] = []
    for index, step in enumerate(scenario.steps):
        time.sleep(0.05)  # a person's edit comes later than the import: mtimes differ (coarse clock)
        write_files(root, step.files)
        result, out, err = run_cell(shell, "pass")
        report = tool_reported(args.tool, out, err)
        if report:
            reports.append(report)
        wrong = []
        for expression, expected in step.checks:
            try:
                value = eval(expression, shell.user_global_ns, shell.user_ns)
            except Exception as error:
                message = str(error)
                wrong.append(f"`{expression}` raised {type(error).__name__}: "
                             f"{message[:70]}{'...' if len(message) > 70 else ''}")
                continue
            if value != expected or type(value) is not type(expected):
                wrong.append(f"`{expression}` {value!r} (expected {expected!r})")
        where = f"after edit {index + 1}: " if len(scenario.steps) > 1 else ""
        if step.expect_report and not report:
            wrong.append("the syntax error was not reported")
        if wrong:
            status = "error" if report and not step.expect_report else "wrong"
            what = report if status == "error" else "; ".join(wrong)
            emit({"status": status, "what": where + what, "details": wrong, "reports": reports,
                  "output": (out + err)[-2000:]})
            return
    emit({"status": "ok", "what": "", "reports": reports})


# -- inside the worker: what a cell costs ------------------------------------------------


class HookTimer:
    """Wraps the tool's cell hooks so each call's time adds to the current cell's total."""

    def __init__(self) -> None:
        self.pre = 0.0
        self.post = 0.0

    def wrap(self, event: str, callback: Any) -> Any:
        clock = time.perf_counter
        pre = event in ("pre_run_cell", "pre_execute")

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return callback(*args, **kwargs)
            finally:
                if pre:
                    self.pre += clock() - began
                else:
                    self.post += clock() - began

        return timed

    def take(self) -> tuple[float, float]:
        values = (self.pre, self.post)
        self.pre = self.post = 0.0
        return values


def module_names(root: str) -> list[str]:
    """The importable module names under a generated tree (packages of MODULES_PER_PACKAGE)."""
    names = []
    for package in sorted(os.listdir(root)):
        if not os.path.isdir(os.path.join(root, package)):
            continue
        names.append(package)
        names += [f"{package}.{f[:-3]}" for f in sorted(os.listdir(os.path.join(root, package)))
                  if f.endswith(".py") and f != "__init__.py"]
    return names


def worker_overhead(args: argparse.Namespace) -> None:
    trees = [os.path.join(args.workdir, t) for t in args.trees.split(",")]
    for tree in trees:
        sys.path.insert(0, tree)
    os.chdir(os.path.join(args.workdir, "cwd"))  # not a module directory
    shell = make_shell()
    before = {event: list(callbacks) for event, callbacks in shell.events.callbacks.items()}
    load_tool(shell, args.tool)
    timer = HookTimer()
    hooks = []
    for event, callbacks in shell.events.callbacks.items():
        for index, callback in enumerate(callbacks):
            if callback not in before.get(event, []):
                callbacks[index] = timer.wrap(event, callback)
                hooks.append(f"{event}: {getattr(callback, '__qualname__', callback)}")
    names = [n for tree in trees for n in module_names(tree)]
    shell.user_ns["_names"] = names
    timer.take()
    began = time.perf_counter()
    result, out, err = run_cell(shell, "import importlib\nfor _n in _names:\n    importlib.import_module(_n)")
    import_s = time.perf_counter() - began
    if not result.success:
        raise SystemExit(f"import cell failed: {result.error_in_exec!r}\n{err}")
    import_hooks = sum(timer.take())
    first_began = time.perf_counter()
    run_cell(shell, "pass")
    first_cell = time.perf_counter() - first_began
    first_hooks = sum(timer.take())
    pre_us, all_us, cell_us = [], [], []
    deadline = time.perf_counter() + args.budget
    for count in range(args.cells):
        began = time.perf_counter()
        result, out, err = run_cell(shell, "pass")
        elapsed = time.perf_counter() - began
        pre, post = timer.take()
        if out or err:  # nothing changed: a tool that prints here did something it should not
            emit({"event": "unexpected output", "text": (out + err)[:500]})
        cell_us.append(elapsed * 1e6)
        pre_us.append(pre * 1e6)
        all_us.append((pre + post) * 1e6)
        if count >= 30 and time.perf_counter() > deadline:
            break
    # Then the case the hooks exist for: one project module saved, the next cell reloads it.
    target = next(n for n in names if n.startswith("proj_") and "." in n)
    path = sys.modules[target].__file__
    with open(path, encoding="utf-8") as f:
        original = f.read()
    edit_ms, edit_right = [], True
    try:
        for rep in range(1, 4) if args.tool != "none" else ():
            time.sleep(0.05)  # a later save than the last one: mtimes differ on a coarse clock
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace("return x + VALUE", f"return x + VALUE + {1000 * rep}"))
            timer.take()
            run_cell(shell, "pass")
            edit_ms.append(sum(timer.take()) * 1000)
            module = sys.modules[target]
            edit_right = edit_right and module.f0(0) == module.VALUE + 1000 * rep
    finally:  # the next tool's process imports the same tree
        with open(path, "w", encoding="utf-8") as f:
            f.write(original)
    emit({
        "event": "overhead", "modules": len(sys.modules), "imported": len(names), "hooks": hooks,
        "import_s": import_s, "after_import_ms": (import_hooks + first_hooks) * 1000, "first_cell_ms": first_cell * 1000,
        "pre_us": pre_us, "hooks_us": all_us, "cell_us": cell_us, "edit_ms": edit_ms, "edit_right": edit_right,
        "backend": _livefix_backend(shell) if args.tool.startswith("livefix") else None,
    })


def _livefix_backend(shell: Any) -> str:
    from livefix.integrations import ipython as extension_module

    extension = extension_module._extensions[id(shell)]
    return f"{extension.files.backend}, {len(extension.files.names)} project files"


def emit(record: dict[str, Any]) -> None:
    print("@@" + json.dumps(record), flush=True)


# -- the driver -----------------------------------------------------------------------------


GENERATED = '''"""Generated module {index}."""
import os

VALUE = {index}


def f0(x):
    return x + VALUE


def f1(x):
    return f0(x) * 2


def f2(path):
    return os.path.join(path, str(VALUE))


class Thing:
    def __init__(self):
        self.value = VALUE

    def get(self):
        return self.value
'''


def generate_tree(root: str, prefix: str, count: int) -> None:
    """`count` modules in packages of MODULES_PER_PACKAGE (each package's __init__ counts too)."""
    index = 0
    package_number = 0
    while index < count:
        package = os.path.join(root, f"{prefix}_{package_number:03d}")
        os.makedirs(package)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write('"""A generated package."""\n')
        index += 1
        for number in range(MODULES_PER_PACKAGE - 1):
            if index >= count:
                break
            with open(os.path.join(package, f"mod_{number:03d}.py"), "w") as f:
                f.write(GENERATED.format(index=index))
            index += 1
        package_number += 1


def worker_command(mode: str, **options: Any) -> list[str]:
    command = [sys.executable, HERE, "--worker", mode]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


def run_worker(command: list[str], timeout: float, workdir: str) -> tuple[list[dict[str, Any]], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)  # this checkout's livefix
    env["IPYTHONDIR"] = os.path.join(workdir, "ipython")  # no profile, startup files or history of the user's
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:g} s"
    records = [json.loads(line[2:]) for line in done.stdout.splitlines() if line.startswith("@@")]
    problem = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return records, problem


def correctness(tools: list[str], timeout: float) -> dict[tuple[str, str], dict[str, Any]]:
    results = {}
    for scenario in SCENARIOS:
        for tool in tools:
            with tempfile.TemporaryDirectory(prefix="livefix-nb-") as workdir:
                records, problem = run_worker(
                    worker_command("correctness", tool=tool, scenario=scenario.name, workdir=workdir), timeout, workdir)
            record = records[-1] if records else {"status": "error", "what": f"worker failed: {problem}"}
            results[(scenario.name, tool)] = record
            print(f"#   {scenario.name:<17} {tool:<16} {record['status']:<6} {record.get('what', '')[:150]}", flush=True)
    return results


def cell_text(record: dict[str, Any]) -> str:
    if record["status"] == "ok":
        return "ok"
    what = record.get("what", "").replace("|", "\\|").replace("\n", " ")
    return f"{record['status']} ({what[:240]}{'...' if len(what) > 240 else ''})"


def correctness_table(results: dict[tuple[str, str], dict[str, Any]], tools: list[str]) -> list[str]:
    header = ["edit", *(TITLES[t] for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for scenario in SCENARIOS:
        row = [scenario.title, *(cell_text(results[(scenario.name, t)]) for t in tools)]
        lines.append("| " + " | ".join(row) + " |")
    totals = ["**right**", *(f"**{sum(results[(s.name, t)]['status'] == 'ok' for s in SCENARIOS)} of {len(SCENARIOS)}**"
                             for t in tools)]
    lines.append("| " + " | ".join(totals) + " |")
    return lines


@dataclass
class Overhead:
    tool: str
    layout: str
    size: int
    record: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    def median(self, key: str) -> float | None:
        values = self.record.get(key)
        return statistics.median(values) if values else None


def overhead(tools: list[str], layouts: list[str], sizes: list[int], cells: int, budget: float,
             timeout: float, workdir: str) -> dict[tuple[str, int, str], Overhead]:
    results: dict[tuple[str, int, str], Overhead] = {}
    os.makedirs(os.path.join(workdir, "cwd"), exist_ok=True)
    for layout in layouts:
        for size in sizes:
            trees = []
            if layout == "libraries":
                site = os.path.join("lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
                lib = os.path.join(f"libraries-{size}", site)
                generate_tree(os.path.join(workdir, lib), "fakelib", size)
                proj = f"libraries-{size}-project"
                generate_tree(os.path.join(workdir, proj), "proj", PROJECT_MODULES_WITH_LIBRARIES)
                trees = [lib, proj]
            else:
                proj = f"project-{size}"
                generate_tree(os.path.join(workdir, proj), "proj", size)
                trees = [proj]
            for tool in tools:
                cell = Overhead(tool, layout, size)
                began = time.monotonic()
                records, cell.problem = run_worker(
                    worker_command("overhead", tool=tool, trees=",".join(trees), workdir=workdir, cells=cells,
                                   budget=budget), timeout, workdir)
                for record in records:
                    if record.get("event") == "overhead":
                        cell.record = record
                    elif record.get("event") == "unexpected output":
                        print(f"#   note: {TITLES[tool]} printed during an idle cell: {record['text'][:200]!r}")
                results[(layout, size, tool)] = cell
                hooks = cell.median("hooks_us")
                print(f"#   {layout:<9} {size:>6} modules  {tool:<16} hooks {fmt_us(hooks):>8} us  "
                      f"run_cell {fmt_us(cell.median('cell_us')):>8} us  "
                      f"({cell.record.get('modules', '?')} in sys.modules, {len(cell.record.get('cell_us', []))} cells"
                      f"{', ' + cell.record['backend'] if cell.record.get('backend') else ''}) "
                      f"[{time.monotonic() - began:.1f} s] {cell.problem}", flush=True)
            for tree in trees:
                shutil.rmtree(os.path.join(workdir, tree.split(os.sep)[0]), ignore_errors=True)
    return results


def fmt_us(us: float | None) -> str:
    if us is None:
        return "-"
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def _header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]


def _added(layout: str, size: int) -> str:
    return f"{size:,} library + {PROJECT_MODULES_WITH_LIBRARIES} project" if layout == "libraries" else f"{size:,} project"


def overhead_table(results: dict[tuple[str, int, str], Overhead], tools: list[str], layouts: list[str],
                   sizes: list[int], key: str) -> list[str]:
    """Rows = layout x size; one median column per tool; then each peer over livefix (inotify).
    For the whole cell (`cell_us`) the no-extension column comes first and each tool shows what
    it adds to it."""
    shown = [t for t in tools if key == "cell_us" or t != "none"]
    peers = [t for t in shown if t.startswith("autoreload")]
    ratios = "livefix" in shown
    lines = _header(["layout", "modules added", "in sys.modules", *(f"{TITLES[t]} (us)" for t in shown),
                     *(f"{TITLES[p]} / livefix" for p in peers if ratios)])
    for layout in layouts:
        for size in sizes:
            cells = {t: results[(layout, size, t)] for t in tools if (layout, size, t) in results}
            total = max((c.record.get("modules", 0) for c in cells.values()), default=0)
            base = cells["none"].median(key) if key == "cell_us" and "none" in cells else None
            row = [layout, _added(layout, size), f"{total:,}"]
            for t in shown:
                value = cells[t].median(key) if t in cells else None
                if value is None:
                    row.append("failed" if t in cells else "-")
                elif base is not None and t != "none":
                    row.append(f"{fmt_us(value)} ({'+' if value >= base else '-'}{fmt_us(abs(value - base))})")
                else:
                    row.append(fmt_us(value))
            mine = cells["livefix"].median(key) if "livefix" in cells else None
            for p in peers if ratios else ():
                theirs = cells[p].median(key) if p in cells else None
                row.append(fmt_ratio(theirs / mine) if mine and theirs else "-")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def after_import_table(results: dict[tuple[str, int, str], Overhead], tools: list[str], layouts: list[str],
                       sizes: list[int]) -> list[str]:
    """The one-off cost of taking in newly imported modules, and a cell that reloads one saved module."""
    shown = [t for t in tools if t != "none"]
    lines = _header(["layout", "modules added", *(f"{TITLES[t]}: after import (ms)" for t in shown),
                     *(f"{TITLES[t]}: one module saved (ms)" for t in shown)])
    for layout in layouts:
        for size in sizes:
            row = [layout, _added(layout, size)]
            cells = [results.get((layout, size, t)) for t in shown]
            for cell in cells:
                value = cell.record.get("after_import_ms") if cell else None
                row.append(f"{value:.1f}" if value is not None else "-")
            for cell in cells:
                values = cell.record.get("edit_ms") if cell else None
                if not values:
                    row.append("-")
                else:
                    row.append(f"{statistics.median(values):.1f}" + ("" if cell.record.get("edit_right") else " (NOT reloaded)"))
            lines.append("| " + " | ".join(row) + " |")
    return lines


def targets(results: dict[tuple[str, int, str], Overhead], layouts: list[str], sizes: list[int]) -> list[str]:
    lines = []
    big = [s for s in sizes if s >= 2000]
    for tool in ("livefix", "livefix-stat"):
        for layout in layouts:
            for size in big:
                cell = results.get((layout, size, tool))
                value = cell.median("hooks_us") if cell else None
                if value is None:
                    continue
                verdict = "met" if value < TARGET_US else "MISSED"
                lines.append(f"{TITLES[tool]}, {layout}, {size:,} modules: {fmt_us(value)} us per cell "
                             f"(target < {TARGET_US:,.0f} us): {verdict}")
    return lines


def versions() -> str:
    found = []
    for dist in ("ipython",):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join([f"Python {platform.python_version()}", *found])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("correctness", "overhead"), help="run one half only")
    parser.add_argument("--tools", help=f"comma list from {','.join(TOOLS)} (default: all)")
    parser.add_argument("--layouts", help=f"comma list from {','.join(LAYOUTS)} (default: both)")
    parser.add_argument("--sizes", default="200,2000", help="modules added per layout (default 200,2000)")
    parser.add_argument("--cells", type=int, default=300, help="idle cells timed per process (default 300)")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="seconds after which a process times no more idle cells (at least 30; default 3)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a worker is killed")
    parser.add_argument("--json", help="also write the raw results to this file")
    # Inside a worker process:
    parser.add_argument("--worker", choices=("correctness", "overhead"), help=argparse.SUPPRESS)
    parser.add_argument("--tool", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--trees", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "correctness":
        worker_correctness(args)
        return 0
    if args.worker == "overhead":
        worker_overhead(args)
        return 0

    tools = parse_list(args.tools, TOOLS, "tools", parser)
    layouts = parse_list(args.layouts, LAYOUTS, "layouts", parser)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    started = time.monotonic()
    print(f"# notebook benchmark: {versions()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"# livefix from {REPO} at commit {checkout()}", flush=True)
    raw: dict[str, Any] = {}
    if args.only != "overhead":
        chosen = [t for t in tools if t in CORRECTNESS_TOOLS]
        print("# correctness: one fresh process per (scenario, tool)", flush=True)
        results = correctness(chosen, args.timeout)
        print("\n## Does the edit take effect? (one real InteractiveShell per cell; ok / wrong (what) / error)\n")
        print("\n".join(correctness_table(results, chosen)))
        raw["correctness"] = {f"{s}/{t}": r for (s, t), r in results.items()}
    if args.only != "correctness":
        print(f"\n# overhead: layouts {layouts}, sizes {sizes}, up to {args.cells} idle cells or {args.budget:g} s "
              "per process", flush=True)
        with tempfile.TemporaryDirectory(prefix="livefix-nb-") as workdir:
            measured = overhead(tools, layouts, sizes, args.cells, args.budget, args.timeout, workdir)
        print("\n## Per-cell cost of the tool's cell hooks when nothing changed (median us per cell; lower is better)\n")
        print("\n".join(overhead_table(measured, tools, layouts, sizes, "hooks_us")))
        print("\n## The same, pre_run_cell hook alone (median us)\n")
        print("\n".join(overhead_table(measured, tools, layouts, sizes, "pre_us")))
        print("\n## Whole `shell.run_cell(\"pass\")` (median us; in brackets: added over no extension)\n")
        print("\n".join(overhead_table(measured, tools, layouts, sizes, "cell_us")))
        print("\n## One-off: the hooks of the cell that imports the modules plus the next cell; and the hooks of a "
              "cell after one project module was saved (median of 3 saves) (ms)\n")
        print("\n".join(after_import_table(measured, tools, layouts, sizes)))
        lines = targets(measured, layouts, sizes)
        if lines:
            print()
            print("\n".join(lines))
        raw["overhead"] = {f"{k[0]}/{k[1]}/{k[2]}": {**v.record, "problem": v.problem} for k, v in measured.items()}
    print(f"\n# total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
