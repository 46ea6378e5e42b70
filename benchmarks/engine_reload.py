"""Reload benchmark: livefix against the Python reloaders, on the same edits, in one run.

Measures the time to bring a loaded module in line with its edited file for
`importlib.reload`, IPython's autoreload (its default `DeduperReloader` path and the full
`superreload`), debugpy's vendored pydevd `xreload`, jurigged, a minimal in-place reloader
written in the worker (the reference livefix must stay within 3x of), and
`livefix.reload_module`. Four edit shapes (`--shapes`): one function body (`one`), a function
near the top that gains a line plus a method of the last class that calls it (`two`), every
function (`all`), and a function cut from the middle and pasted at the end (`moved`). Modules
of 200, 2,000 and 10,000 top-level functions (plus one class per 20 functions), without and
with 10^6 extra live objects on the heap.

Every (tool, shape, size, heap) cell runs in its own fresh subprocess (`reload_worker.py`),
one after the other, so tools never share a process or compete for the 2 cores. The tables
show the median of the steady-state repetitions (the first edit of a session is reported
apart); a tool that raised is shown as failed and one whose result is wrong as wrong, never
timed; a reload after which some function's `co_firstlineno` is not its line in the file is
timed and marked `(wrong lines)`.

    python benchmarks/engine_reload.py            # full run, < 15 minutes
    python benchmarks/engine_reload.py --quick    # smoke run, < 2 minutes
    python benchmarks/engine_reload.py --shapes one,moved --tools importlib,minimal,livefix

Needs the `bench` extra (`pip install ".[bench]"`): IPython, jurigged, debugpy. livefix is
imported from this checkout's source tree, so the table measures the printed commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata

from bench_common import parse_list

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "reload_worker.py")

SHAPES = ("one", "two", "all", "moved")  # as in reload_worker.SHAPES
SHAPE_TITLES = {
    "one": "one function, same line count",
    "two": "two distant sites (a function near the top gains a line; a method at the bottom calls it)",
    "all": "every function (formatter-wide edit)",
    "moved": "a function cut from the middle and pasted at the end (and its constant edited)",
}
# The tools a user could reach for; "fastest peer" is the fastest of these that got the edit right.
PEERS = ("importlib", "ipython-deduper", "ipython-superreload", "xreload", "jurigged")
MINIMAL = "minimal"
TOOLS = (*PEERS, MINIMAL, "livefix")
TITLES = {
    "importlib": "importlib.reload",
    "ipython-deduper": "IPython deduper",
    "ipython-superreload": "IPython superreload",
    "xreload": "pydevd xreload",
    "jurigged": "jurigged",
    "minimal": "minimal in-place",
    "livefix": "livefix",
}
FUNCS_PER_CLASS = 20  # as in reload_worker: each class holds 4 functions (__init__, get, make, double)
# What livefix aims at, per cell: this much faster than the fastest peer that gets the edit
# right, within this factor of the minimal in-place reloader, and this growth from the
# smallest to the largest module.
TARGET_SPEEDUP = 10.0
TARGET_MINIMAL = 3.0
TARGET_GROWTH = 10.0


@dataclass
class Cell:
    """What one worker reported for one (tool, shape, size, heap)."""

    tool: str
    shape: str
    size: int
    heap: int
    steady_ms: list[float] = field(default_factory=list)
    steady_cpu_ms: list[float] = field(default_factory=list)
    first_ms: float | None = None
    error: str | None = None  # the tool raised or reported a failure
    wrong: str | None = None  # the tool finished but the module does not run the edit
    lines_wrong: int = 0  # most functions with a wrong co_firstlineno after any one reload
    lines_example: str | None = None
    timed_out: float | None = None  # seconds the unfinished reload had run when the worker was killed
    skipped: float | None = None  # not run: seconds one edit was expected to take at least
    held_updated: bool | None = None
    seconds: float = 0.0  # how long the worker ran, start-up included

    @property
    def median(self) -> float | None:
        return statistics.median(self.steady_ms) if self.steady_ms and self.right else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.steady_cpu_ms) if self.steady_cpu_ms and self.right else None

    @property
    def right(self) -> bool:
        return not self.error and not self.wrong

    def value(self, metric: str) -> float | None:
        return self.cpu_median if metric == "cpu" else self.median

    def per_edit_ms(self) -> float | None:
        """The best guess of one steady edit's time, for deciding whether a larger cell is worth running."""
        if self.median is not None:
            return self.median
        bounds = [ms for ms in (self.first_ms, (self.timed_out or 0) * 1000, (self.skipped or 0) * 1000) if ms]
        return max(bounds) if bounds else None


Results = dict[tuple[str, int, int], dict[str, Cell]]


def parse_record(line: str) -> dict | None:
    """One JSON line of the worker; None for other output or a line cut short by a kill."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def run_cell(tool: str, shape: str, size: int, heap: int, reps: int, budget: float, timeout: float,
             worker: str = WORKER, profile: str | None = None) -> Cell:
    """Run one worker; keep what it printed even if it has to be killed at `timeout`."""
    cell = Cell(tool, shape, size, heap)
    workdir = tempfile.TemporaryDirectory(prefix="livefix-bench-")  # removed even if the worker is killed
    cmd = [sys.executable, worker, "--tool", tool, "--shape", shape, "--size", str(size), "--heap", str(heap),
           "--reps", str(reps), "--budget", str(budget), "--workdir", workdir.name]
    if profile:
        cmd += ["--profile", profile]
    env = dict(os.environ)
    if tool == "livefix":
        # Measure this checkout's engine, whatever version is installed in the environment.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    with workdir, tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=tempfile.gettempdir())
        killed_at = None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed_at = time.monotonic()
        finally:  # also on Ctrl-C: never leave a worker behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        records = [rec for line in out if (rec := parse_record(line)) is not None]
        stderr = err.read()
    if killed_at is not None:
        begins = [r["monotonic"] for r in records if r.get("event") == "begin"]
        # Killed before the first edit (import, heap): the whole cell's timeout is the bound.
        cell.timed_out = killed_at - begins[-1] if begins else timeout
    helds = []
    for rec in records:
        if rec.get("event") != "rep":
            continue
        if rec["error"]:
            cell.error = rec["error"]
        elif rec["wrong"]:
            cell.wrong = rec["wrong"]
        elif rec["rep"] == 0:
            cell.first_ms = rec["ms"]
        else:
            cell.steady_ms.append(rec["ms"])
            cell.steady_cpu_ms.append(rec["cpu_ms"])
        if (rec.get("lines_wrong") or 0) > cell.lines_wrong:
            cell.lines_wrong, cell.lines_example = rec["lines_wrong"], rec["lines_example"]
        if rec.get("held_updated") is not None:
            helds.append(rec["held_updated"])
    cell.held_updated = all(helds) if helds else None
    if cell.timed_out is None and proc.returncode != 0 and cell.right:
        last = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        cell.error = f"worker crashed: {last[0]}"
    return cell


def worth_running(tool: str, shape: str, size: int, sizes: list[int], results: Results, timeout: float) -> float | None:
    """None to run the cell, or the seconds one edit is expected to take at least if not.

    Every peer re-reads and re-executes or re-parses the whole module, so the part of its time
    that depends on the module grows at least linearly with the number of functions; the part
    that depends on the heap (IPython's superreload walks it) does not, so the estimate scales
    the smaller module's fastest row, whatever its heap. When it says the first and one steady
    edit cannot both finish before the timeout, the cell could only show `>N s`, so it is not
    run. livefix and the minimal reloader always run.
    """
    index = sizes.index(size)
    if tool not in PEERS or index == 0:
        return None
    smaller = sizes[index - 1]
    ran = [cells[tool] for (s, n, _), cells in results.items() if s == shape and n == smaller and tool in cells]
    per_edit = [ms for c in ran if c.right and (ms := c.per_edit_ms()) is not None]
    if not per_edit or len(per_edit) < len(ran):  # wrong or failed at the smaller size: let it show again
        return None
    expected = min(per_edit) / 1000 * size / smaller
    return expected if 2 * expected > timeout else None


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def fmt_cell(cell: Cell | None, reps: int, metric: str) -> str:
    if cell is None:
        return "-"
    if cell.skipped is not None:
        return f"not run (>{cell.skipped:.0f} s)"
    if cell.error:
        return "failed"
    if cell.wrong:
        return "wrong"
    if cell.value(metric) is None:
        if cell.timed_out is not None:
            # Killed during the first steady edit: the session's first edit is the better hint.
            first = f" (first edit {cell.first_ms / 1000:.1f} s)" if cell.first_ms else ""
            return f">{cell.timed_out:.0f} s{first}" if cell.timed_out >= 10 else f">{cell.timed_out:.1f} s{first}"
        return "-"
    text = fmt_ms(cell.value(metric))
    text = text if len(cell.steady_ms) >= reps else f"{text} (n={len(cell.steady_ms)})"
    return text + (" (wrong lines)" if cell.lines_wrong else "")


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def fmt_heap(heap: int) -> str:
    if heap == 0:
        return "0"
    exp = len(str(heap)) - 1
    return f"10^{exp}" if heap == 10**exp else f"{heap:,}"


def fastest_peer(cells: dict[str, Cell], tools: list[str], metric: str) -> tuple[str, float] | None:
    """The fastest peer that got the edit right (minimal in-place is the reference, not a peer)."""
    timed = [(ms, t) for t in tools if t in PEERS and t in cells and (ms := cells[t].value(metric))]
    if not timed:
        return None
    ms, tool = min(timed)
    return tool, ms


def peer_ratio(cells: dict[str, Cell], tools: list[str], metric: str) -> str:
    mine = cells["livefix"].value(metric) if "livefix" in cells else None
    if mine is None:
        return "-"
    peer = fastest_peer(cells, tools, metric)
    if peer:
        return f"{fmt_ratio(peer[1] / mine)} ({TITLES[peer[0]]})"
    bounds = [c.timed_out or c.skipped for t, c in cells.items() if t in PEERS and c.right and (c.timed_out or c.skipped)]
    if bounds:  # every right peer timed out or was not run: its time is a lower bound of the ratio
        return f">{min(bounds) * 1000 / mine:.0f}x (peers timed out)"
    return "- (no peer right)"


def minimal_ratio(cells: dict[str, Cell], metric: str) -> float | None:
    mine = cells["livefix"].value(metric) if "livefix" in cells else None
    ref = cells[MINIMAL].value(metric) if MINIMAL in cells else None
    return mine / ref if mine and ref else None


def growth(results: Results, shape: str, size: int, heap: int, sizes: list[int], metric: str) -> float | None:
    mine = results[(shape, size, heap)]["livefix"].value(metric)
    base = results[(shape, sizes[0], heap)]["livefix"].value(metric)
    return mine / base if mine and base else None


def main_table(results: Results, shapes: list[str], sizes: list[int], heaps: list[int], tools: list[str],
               reps: int, metric: str) -> list[str]:
    """Rows = shape x size x heap; one median column per tool; ratios when livefix ran."""
    with_livefix = "livefix" in tools
    header = ["shape", "functions", "heap objects", *(f"{TITLES[t]} (ms)" for t in tools)]
    if with_livefix:
        header += ["fastest peer / livefix"]
        if MINIMAL in tools:
            header += ["livefix / minimal"]
        header += [f"livefix vs {sizes[0]:,}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i > 0 else "---" for i in range(len(header))) + "|"]
    for shape in shapes:
        for size in sizes:
            for heap in heaps:
                cells = results[(shape, size, heap)]
                row = [shape, f"{size:,}", fmt_heap(heap), *(fmt_cell(cells.get(t), reps, metric) for t in tools)]
                if with_livefix:
                    row.append(peer_ratio(cells, tools, metric))
                    if MINIMAL in tools:
                        ratio = minimal_ratio(cells, metric)
                        row.append(fmt_ratio(ratio) if ratio else "-")
                    ratio = growth(results, shape, size, heap, sizes, metric)
                    row.append(fmt_ratio(ratio) if ratio else "-")
                lines.append("| " + " | ".join(row) + " |")
    return lines


def first_edit_table(results: Results, shapes: list[str], sizes: list[int], heaps: list[int],
                     tools: list[str]) -> list[str]:
    """The first edit after import (one-time costs such as jurigged's lazy parse)."""
    header = ["shape", "functions", "heap objects", *(f"{TITLES[t]} (ms)" for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i > 0 else "---" for i in range(len(header))) + "|"]
    for shape in shapes:
        for size in sizes:
            for heap in heaps:
                cells = results[(shape, size, heap)]
                row = [shape, f"{size:,}", fmt_heap(heap)]
                for t in tools:
                    c = cells.get(t)
                    if c is None:
                        row.append("-")
                    elif c.skipped is not None:
                        row.append("not run")
                    elif c.error:
                        row.append("failed")
                    elif c.wrong:
                        row.append("wrong")
                    elif c.first_ms is None and c.timed_out is not None:
                        row.append(f">{c.timed_out:.0f} s")
                    else:
                        row.append(fmt_ms(c.first_ms))
                lines.append("| " + " | ".join(row) + " |")
    return lines


def correctness_table(results: Results, shapes: list[str], sizes: list[int], tools: list[str]) -> list[str]:
    """Per tool and shape: edit right, line numbers right, and whether held objects see the edit."""
    header = ["tool", *shapes]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for tool in tools:
        row = [TITLES[tool]]
        for shape in shapes:
            cells = [c for (s, _, _), by_tool in results.items() if s == shape and (c := by_tool.get(tool))]
            ran = [c for c in cells if c.skipped is None and (c.first_ms is not None or c.steady_ms or not c.right)]
            if not ran:
                row.append("-")
                continue
            failed = [c for c in ran if c.error]
            wrong = [c for c in ran if c.wrong]
            if failed:
                row.append(f"failed ({failed[0].size:,} fns)")
                continue
            if wrong:
                row.append(f"wrong ({wrong[0].size:,} fns)")
                continue
            off = [c for c in ran if c.lines_wrong]
            if off:
                c = min(off, key=lambda c: c.size)
                total = c.size + 4 * (c.size // FUNCS_PER_CLASS)
                text = f"right; wrong lines ({c.lines_wrong:,} of {total:,} at {c.size:,} fns)"
            else:
                text = "right; lines right"
            helds = [c.held_updated for c in ran if c.held_updated is not None]
            if helds:
                text += "; held copies " + ("updated" if all(helds) else "stale")
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def targets_table(results: Results, shapes: list[str], sizes: list[int], heaps: list[int], tools: list[str],
                  metric: str) -> tuple[list[str], list[str]]:
    """Per cell: livefix's targets, met or missed; and the list of misses."""
    header = ["shape", "functions", "heap objects", f">= {TARGET_SPEEDUP:.0f}x fastest right peer",
              f"<= {TARGET_MINIMAL:.0f}x minimal in-place", f"<= {TARGET_GROWTH:.0f}x vs {sizes[0]:,} functions",
              "edit right", "lines right"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i > 0 else "---" for i in range(len(header))) + "|"]
    missed: list[str] = []

    def judge(ok: bool | None, text: str, what: str, where: str) -> str:
        if ok is None:
            return "-"
        if not ok:
            missed.append(f"{where}: {what} {text}")
        return " ".join(filter(None, ("met" if ok else "MISSED", text)))

    for shape in shapes:
        for size in sizes:
            for heap in heaps:
                cells = results[(shape, size, heap)]
                mine = cells["livefix"]
                where = f"{shape} {size:,} fns heap {fmt_heap(heap)}"
                value = mine.value(metric)
                peer = fastest_peer(cells, tools, metric)
                speed = peer[1] / value if peer and value else None
                ref = minimal_ratio(cells, metric) if MINIMAL in tools else None
                grow = growth(results, shape, size, heap, sizes, metric) if size != sizes[0] else None
                row = [shape, f"{size:,}", fmt_heap(heap)]
                row.append(judge(speed >= TARGET_SPEEDUP if speed else None, fmt_ratio(speed) if speed else "",
                                 "speed-up over the fastest right peer", where))
                row.append(judge(ref <= TARGET_MINIMAL if ref else None, fmt_ratio(ref) if ref else "",
                                 "time over minimal in-place", where))
                row.append(judge(grow <= TARGET_GROWTH if grow else None, fmt_ratio(grow) if grow else "",
                                 f"growth over {sizes[0]:,} functions", where))
                if mine.skipped is None and (mine.error or mine.wrong):
                    row.append(judge(False, mine.error or mine.wrong or "", "edit", where))
                elif value is None and mine.timed_out is not None:
                    missed.append(f"{where}: livefix timed out after {mine.timed_out:.0f} s")
                    row.append(f"MISSED (timed out after {mine.timed_out:.0f} s)")
                else:
                    row.append("met" if value is not None else "-")
                row.append(judge(not mine.lines_wrong, f"({mine.lines_wrong:,} functions off)" if mine.lines_wrong else "",
                                 "line numbers", where) if (value is not None or mine.first_ms is not None) else "-")
                lines.append("| " + " | ".join(row) + " |")
    return lines, missed


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    engine = git("log", "-1", "--format=%h", "--", "livefix/__init__.py", "livefix/errors.py", "livefix/engine")
    head += f" (engine last changed in {engine})" if engine else ""
    # Only what the worker imports: livefix/__init__.py, errors.py and the engine.
    dirty = git("status", "--porcelain", "--", "livefix/__init__.py", "livefix/errors.py", "livefix/engine")
    return head + ("+uncommitted engine changes" if dirty else "")


def engine_fingerprint() -> str:
    """A hash of the engine's source, to tell whether it changed while the benchmark ran."""
    digest = hashlib.sha1()
    package = os.path.join(REPO, "livefix")
    engine = os.path.join(package, "engine")
    names = [os.path.join(package, "__init__.py"), os.path.join(package, "errors.py")]
    names += sorted(os.path.join(engine, n) for n in os.listdir(engine) if n.endswith(".py"))
    for name in names:
        with open(name, "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


def versions(tools: list[str]) -> str:
    dists = {"ipython-deduper": "ipython", "ipython-superreload": "ipython", "xreload": "debugpy",
             "jurigged": "jurigged"}
    seen = []
    for t in tools:
        d = dists.get(t)
        if d and d not in [s.split(" ")[0] for s in seen]:
            try:
                seen.append(f"{d} {metadata.version(d)}")
            except metadata.PackageNotFoundError:
                seen.append(f"{d} (not installed)")
    return ", ".join([f"Python {platform.python_version()}", *seen])


def print_profile(path: str, limit: int = 15) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: sizes 200 and 2,000, heap 10^5, 5 reps, 1.5 s budget, 10 s timeout")
    parser.add_argument("--tools", help=f"comma list from {','.join(TOOLS)} (default: all)")
    parser.add_argument("--shapes", help=f"comma list of edit shapes from {','.join(SHAPES)} (default: all)")
    parser.add_argument("--sizes", help="comma list of function counts (default 200,2000,10000)")
    parser.add_argument("--heap", type=int, help="extra live objects for the heap rows (default 10^6; 0: no heap rows)")
    parser.add_argument("--reps", type=int, help="steady-state repetitions per cell (default 15)")
    parser.add_argument("--budget", type=float, help="seconds after which a worker adds no more reps (default 3)")
    parser.add_argument("--timeout", type=float,
                        help="seconds after which a cell is killed and shown as '>N s' (default 25)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile the livefix worker at its slowest cell (auto: when a target is missed)")
    parser.add_argument("--json", help="also write every cell's raw numbers to this file")
    args = parser.parse_args(argv)

    tools = parse_list(args.tools, TOOLS, "tools", parser)
    shapes = parse_list(args.shapes, SHAPES, "shapes", parser)
    sizes = sorted(int(s) for s in args.sizes.split(",")) if args.sizes else ([200, 2000] if args.quick else [200, 2000, 10000])
    if min(sizes) < FUNCS_PER_CLASS:
        parser.error(f"sizes must be at least {FUNCS_PER_CLASS} (one class per {FUNCS_PER_CLASS} functions)")
    heap = args.heap if args.heap is not None else (100_000 if args.quick else 1_000_000)
    heaps = [0, heap] if heap else [0]
    # Fast tools get all their reps (their ms-scale medians need them on a shared machine);
    # slow ones stop adding reps at the budget, a cell is killed at the timeout, and a peer
    # whose smaller cell says it cannot finish two edits before the timeout is not run.
    reps = args.reps or (5 if args.quick else 15)
    budget = args.budget or (1.5 if args.quick else 3.0)
    timeout = args.timeout or (10.0 if args.quick else 25.0)

    print(f"# reload benchmark: {versions(tools)}, {os.cpu_count()} CPUs", flush=True)
    fingerprint = engine_fingerprint() if "livefix" in tools else None
    if "livefix" in tools:
        print(f"# livefix from {REPO} at commit {git_commit()}", flush=True)
    print(f"# shapes {shapes}, sizes {sizes}, heaps {heaps}, {reps} steady reps/cell (fewer past {budget:g} s), "
          f"cells killed after {timeout:g} s", flush=True)
    started = time.monotonic()
    # Every cell runs the worker as it was when the run started, even if the checkout changes meanwhile.
    snapshot = tempfile.TemporaryDirectory(prefix="livefix-bench-worker-")
    worker = shutil.copy(WORKER, snapshot.name)
    try:
        return run(args, tools, shapes, sizes, heaps, reps, budget, timeout, fingerprint, started, worker)
    finally:
        snapshot.cleanup()


def run(args: argparse.Namespace, tools: list[str], shapes: list[str], sizes: list[int], heaps: list[int], reps: int,
        budget: float, timeout: float, fingerprint: str | None, started: float, worker: str) -> int:
    """Run every cell, then print the tables, the targets and (when one is missed) a profile."""
    results: Results = {}
    for shape in shapes:
        for size in sizes:
            for h in heaps:
                results[(shape, size, h)] = {}
                for tool in tools:
                    expected = worth_running(tool, shape, size, sizes, results, timeout)
                    if expected is not None:
                        cell = Cell(tool, shape, size, h, skipped=expected)
                        note = f"not run: at least {expected:.0f} s per edit expected"
                    else:
                        cell_started = time.monotonic()
                        cell = run_cell(tool, shape, size, h, reps, budget, timeout, worker)
                        cell.seconds = time.monotonic() - cell_started
                        note = cell.error or cell.wrong or (
                            f"killed after {timeout:g} s, reload unfinished after {cell.timed_out:.0f} s"
                            if cell.timed_out is not None else "")
                        if cell.lines_wrong and cell.right:
                            note = f"wrong lines: {cell.lines_wrong:,} functions, e.g. {cell.lines_example}"
                    results[(shape, size, h)][tool] = cell
                    print(f"#   {shape:<5} {size:>6} fns, heap {fmt_heap(h):>5}, {tool:<20} "
                          f"median {fmt_ms(cell.median):>8} ms  first {fmt_ms(cell.first_ms):>8} ms  "
                          f"[{cell.seconds:4.1f} s]  {note}",
                          flush=True)

    print("\n## Reload time, median of steady-state edits (wall ms; lower is better)\n")
    print("\n".join(main_table(results, shapes, sizes, heaps, tools, reps, "wall")))
    print("\n## CPU time of the reloading process, median of the same edits (ms)\n")
    print("\n".join(main_table(results, shapes, sizes, heaps, tools, reps, "cpu")))
    print("\n## First edit after import (ms)\n")
    print("\n".join(first_edit_table(results, shapes, sizes, heaps, tools)))
    print("\n## Does the tool get the edit right? (values through the module; for `moved` also through a "
          "`from module import f` copy; `co_firstlineno` of every function against the file)\n")
    print("\n".join(correctness_table(results, shapes, sizes, tools)))
    problems = [c for cells in results.values() for c in cells.values() if c.error or c.wrong]
    if problems:
        print()
    for c in problems:
        print(f"{'failed' if c.error else 'wrong'}: {TITLES[c.tool]}, {c.shape}, {c.size:,} functions, "
              f"heap {fmt_heap(c.heap)}: {c.error or c.wrong}")

    missed = False
    if "livefix" in tools:
        lines, misses = targets_table(results, shapes, sizes, heaps, tools, "wall")
        print("\n## livefix's targets per cell (wall time)\n")
        print("\n".join(lines))
        missed = bool(misses)
        summary = (f"livefix >= {TARGET_SPEEDUP:.0f}x faster than the fastest peer that gets the edit right, "
                   f"<= {TARGET_MINIMAL:.0f}x minimal in-place, {sizes[-1]:,} vs {sizes[0]:,} functions within "
                   f"{TARGET_GROWTH:.0f}x, edit and line numbers right")
        print(f"\nTargets by wall time ({summary}): " + ("met" if not misses else f"MISSED in {len(misses)} places"))
        _, cpu_misses = targets_table(results, shapes, sizes, heaps, tools, "cpu")
        print("Targets by cpu time: " + ("met" if not cpu_misses else f"MISSED in {len(cpu_misses)} places"))
    if "livefix" in tools and (args.profile == "always" or (args.profile == "auto" and missed)):
        # Profile where livefix is slowest among the cells it finished: that is where a fix pays most.
        timed = [(c.median, key) for key, cells in results.items() if (c := cells["livefix"]).median]
        if timed:
            shape, size, h = max(timed)[1]
            profile_livefix(shape, size, h, reps, budget, timeout, worker)
    if fingerprint is not None and engine_fingerprint() != fingerprint:
        print(f"\n# WARNING: the engine's source changed during the run (now {git_commit()}): "
              "livefix's cells measured different code")
    print(f"\n# total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([c.__dict__ | {"median": c.median, "cpu_median": c.cpu_median}
                       for cells in results.values() for c in cells.values()], f, indent=1)
    return 0


def profile_livefix(shape: str, size: int, heap: int, reps: int, budget: float, timeout: float, worker: str) -> None:
    """cProfile of the livefix worker's timed reloads at the given cell, top 15 entries."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "livefix.prof")
        cell = run_cell("livefix", shape, size, heap, reps, budget, timeout, worker, profile=path)
        print(f"\n## cProfile of livefix.reload_module, shape {shape}, {size:,} functions, heap {fmt_heap(heap)}, "
              f"{len(cell.steady_ms)} steady reloads (profiled times are inflated)\n")
        if os.path.exists(path):
            print_profile(path)
        else:
            print(f"no profile written: {cell.error or cell.wrong or 'worker timed out'}")


if __name__ == "__main__":
    sys.exit(main())
