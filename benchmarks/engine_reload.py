"""Reload benchmark: livefix against the Python reloaders, on the same work, in one run.

Measures the time to bring a loaded module in line with its edited file (one function body
changed on disk, same line count) for `importlib.reload`, IPython's autoreload (its default
`DeduperReloader` path and the full `superreload`), debugpy's vendored pydevd `xreload`,
jurigged, and `livefix.reload_module`. Modules of 200, 2,000 and 10,000 top-level functions
(plus one class per 20 functions), without and with 10^6 extra live objects on the heap.

Every (tool, size, heap) cell runs in its own fresh subprocess (`reload_worker.py`), one
after the other, so tools never share a process or compete for the 2 cores. The table shows
the median of the steady-state repetitions (the first edit of a session is reported apart);
a tool whose edit did not take effect is shown as failed, never timed.

    python benchmarks/engine_reload.py            # full run, < 10 minutes
    python benchmarks/engine_reload.py --quick    # smoke run
    python benchmarks/engine_reload.py --tools importlib,xreload,livefix

Needs the `bench` extra (`pip install ".[bench]"`): IPython, jurigged, debugpy. livefix is
imported from this checkout's source tree, so the table measures the printed commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "reload_worker.py")

PEERS = ("importlib", "ipython-deduper", "ipython-superreload", "xreload", "jurigged")
TOOLS = (*PEERS, "livefix")
TITLES = {
    "importlib": "importlib.reload",
    "ipython-deduper": "IPython deduper",
    "ipython-superreload": "IPython superreload",
    "xreload": "pydevd xreload",
    "jurigged": "jurigged",
    "livefix": "livefix",
}
# Speed-up over the fastest peer, and growth from 200 to 10,000 functions, that livefix aims at.
TARGET_SPEEDUP = 4.0
TARGET_GROWTH = 10.0


@dataclass
class Cell:
    """What one worker reported for one (tool, size, heap)."""

    tool: str
    size: int
    heap: int
    steady_ms: list[float] = field(default_factory=list)
    steady_cpu_ms: list[float] = field(default_factory=list)
    first_ms: float | None = None
    error: str | None = None
    timed_out: float | None = None  # seconds the unfinished reload had run when the worker was killed
    held_updated: bool | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.steady_ms) if self.steady_ms and not self.error else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.steady_cpu_ms) if self.steady_cpu_ms and not self.error else None

    def value(self, metric: str) -> float | None:
        return self.cpu_median if metric == "cpu" else self.median


def parse_record(line: str) -> dict | None:
    """One JSON line of the worker; None for other output or a line cut short by a kill."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def run_cell(tool: str, size: int, heap: int, reps: int, budget: float, timeout: float,
             profile: str | None = None) -> Cell:
    """Run one worker; keep what it printed even if it has to be killed at `timeout`."""
    cell = Cell(tool, size, heap)
    workdir = tempfile.TemporaryDirectory(prefix="livefix-bench-")  # removed even if the worker is killed
    cmd = [sys.executable, WORKER, "--tool", tool, "--size", str(size), "--heap", str(heap),
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
        elif rec["rep"] == 0:
            cell.first_ms = rec["ms"]
        else:
            cell.steady_ms.append(rec["ms"])
            cell.steady_cpu_ms.append(rec["cpu_ms"])
        if rec.get("held_updated") is not None:
            helds.append(rec["held_updated"])
    cell.held_updated = all(helds) if helds else None
    if cell.timed_out is None and proc.returncode != 0 and not cell.error:
        last = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        cell.error = f"worker crashed: {last[0]}"
    return cell


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
    if cell.error:
        return "failed"
    if cell.value(metric) is None:
        if cell.timed_out is not None:
            # Killed during the first steady edit: the session's first edit is the better hint.
            first = f" (first edit {cell.first_ms / 1000:.1f} s)" if cell.first_ms else ""
            return f">{cell.timed_out:.0f} s{first}"
        return "-"
    text = fmt_ms(cell.value(metric))
    return text if len(cell.steady_ms) >= reps else f"{text} (n={len(cell.steady_ms)})"


def fmt_heap(heap: int) -> str:
    if heap == 0:
        return "0"
    exp = len(str(heap)) - 1
    return f"10^{exp}" if heap == 10**exp else f"{heap:,}"


def fastest_peer(cells: dict[str, Cell], tools: list[str], metric: str) -> tuple[str, float] | None:
    timed = [(ms, t) for t in tools if t in PEERS and t in cells and (ms := cells[t].value(metric))]
    if not timed:
        return None
    ms, tool = min(timed)
    return tool, ms


def main_table(results: dict[tuple[int, int], dict[str, Cell]], sizes: list[int], heaps: list[int],
               tools: list[str], reps: int, metric: str) -> list[str]:
    """Rows = size x heap; one median column per tool; ratios when livefix ran."""
    with_livefix = "livefix" in tools
    header = ["functions", "heap objects", *(f"{TITLES[t]} (ms)" for t in tools)]
    if with_livefix:
        header += ["fastest peer / livefix", f"livefix vs {sizes[0]:,}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for size in sizes:
        for heap in heaps:
            cells = results[(size, heap)]
            row = [f"{size:,}", fmt_heap(heap), *(fmt_cell(cells.get(t), reps, metric) for t in tools)]
            if with_livefix:
                mine = cells["livefix"].value(metric)
                peer = fastest_peer(cells, tools, metric)
                base = results[(sizes[0], heap)]["livefix"].value(metric)
                if mine and peer:
                    row.append(f"{peer[1] / mine:.1f}x ({TITLES[peer[0]]})")
                elif mine and (bounds := [c.timed_out for t, c in cells.items() if t in PEERS and c.timed_out]):
                    # Every peer timed out: its unfinished time is a lower bound of the ratio.
                    row.append(f">{min(bounds) * 1000 / mine:.0f}x (all peers timed out)")
                else:
                    row.append("-")
                row.append(f"{mine / base:.1f}x" if mine and base else "-")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def first_edit_table(results: dict[tuple[int, int], dict[str, Cell]], sizes: list[int],
                     heaps: list[int], tools: list[str]) -> list[str]:
    """The first edit after import (one-time costs such as jurigged's lazy parse)."""
    header = ["functions", "heap objects", *(f"{TITLES[t]} (ms)" for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for size in sizes:
        for heap in heaps:
            cells = results[(size, heap)]
            row = [f"{size:,}", fmt_heap(heap)]
            for t in tools:
                c = cells.get(t)
                if c is None:
                    row.append("-")
                elif c.error:
                    row.append("failed")
                elif c.first_ms is None and c.timed_out is not None:
                    row.append(f">{c.timed_out:.0f} s")
                else:
                    row.append(fmt_ms(c.first_ms))
            lines.append("| " + " | ".join(row) + " |")
    return lines


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    engine = git("log", "-1", "--format=%h", "--", "livefix/__init__.py", "livefix/errors.py", "livefix/engine")
    head += f" (engine last changed in {engine})" if engine else ""
    # Only what the worker imports: livefix/__init__.py, errors.py and the engine.
    dirty = git("status", "--porcelain", "--", "livefix/__init__.py", "livefix/errors.py", "livefix/engine")
    return head + ("+uncommitted engine changes" if dirty else "")


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
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 200 and 2,000, heap 10^5, 5 reps")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma list from {','.join(TOOLS)}")
    parser.add_argument("--sizes", help="comma list of function counts (default 200,2000,10000)")
    parser.add_argument("--heap", type=int, help="extra live objects for the heap rows (default 10^6)")
    parser.add_argument("--reps", type=int, help="steady-state repetitions per cell (default 15)")
    parser.add_argument("--budget", type=float, help="seconds after which a worker adds no more reps")
    parser.add_argument("--timeout", type=float, help="seconds after which a cell is killed and shown as '>N s'")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile the livefix worker at its slowest cell (auto: when a target is missed)")
    parser.add_argument("--json", help="also write every cell's raw numbers to this file")
    args = parser.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {','.join(TOOLS)}")
    tools = [t for t in TOOLS if t in tools]  # fixed column order
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([200, 2000] if args.quick else [200, 2000, 10000])
    heap = args.heap if args.heap is not None else (100_000 if args.quick else 1_000_000)
    heaps = [0, heap] if heap else [0]
    # Fast tools get all their reps (their ms-scale medians need them on a shared machine);
    # slow ones stop adding reps at the budget, and a cell is killed at the timeout.
    reps = args.reps or (5 if args.quick else 15)
    budget = args.budget or (5.0 if args.quick else 10.0)
    timeout = args.timeout or (20.0 if args.quick else 40.0)

    print(f"# reload benchmark: {versions(tools)}, {os.cpu_count()} CPUs", flush=True)
    if "livefix" in tools:
        print(f"# livefix from {REPO} at commit {git_commit()}", flush=True)
    print(f"# sizes {sizes}, heaps {heaps}, {reps} steady reps/cell (fewer past {budget:.0f} s), "
          f"cells killed after {timeout:.0f} s", flush=True)
    started = time.monotonic()
    results: dict[tuple[int, int], dict[str, Cell]] = {}
    for size in sizes:
        for h in heaps:
            results[(size, h)] = {}
            for tool in tools:
                cell = run_cell(tool, size, h, reps, budget, timeout)
                results[(size, h)][tool] = cell
                note = cell.error or (f"killed after {timeout:.0f} s, reload unfinished after {cell.timed_out:.0f} s"
                                      if cell.timed_out is not None else "")
                print(f"#   {size:>6} fns, heap {fmt_heap(h):>5}, {tool:<20} "
                      f"median {fmt_ms(cell.median):>8} ms  first {fmt_ms(cell.first_ms):>8} ms  {note}",
                      flush=True)

    print("\n## Reload time, median of steady-state edits (wall ms; lower is better)\n")
    print("\n".join(main_table(results, sizes, heaps, tools, reps, "wall")))
    print("\n## CPU time of the reloading process, median of the same edits (ms)\n")
    print("\n".join(main_table(results, sizes, heaps, tools, reps, "cpu")))
    print("\n## First edit after import (ms)\n")
    print("\n".join(first_edit_table(results, sizes, heaps, tools)))
    held = [f"{TITLES[t]}: {'yes' if c.held_updated else 'no'}" for t in tools
            if (c := results[(sizes[0], 0)].get(t)) and c.held_updated is not None]
    print(f"\nA `from module import f` copy sees the edit: {'; '.join(held)}.")
    failures = [c for cells in results.values() for c in cells.values() if c.error]
    for c in failures:
        print(f"failed: {TITLES[c.tool]} at {c.size:,} functions, heap {fmt_heap(c.heap)}: {c.error}")

    missed = False
    if "livefix" in tools:
        missed = report_targets(results, sizes, heaps, tools, "wall")
        report_targets(results, sizes, heaps, tools, "cpu")
    if "livefix" in tools and (args.profile == "always" or (args.profile == "auto" and missed)):
        # Profile where livefix is slowest: that is where a fix pays most.
        timed = [(c.median, key) for key, cells in results.items() if (c := cells["livefix"]).median]
        size, h = max(timed)[1] if timed else (sizes[-1], heaps[-1])
        profile_livefix(size, h, reps, budget, timeout)
    print(f"\n# total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([c.__dict__ | {"median": c.median, "cpu_median": c.cpu_median} for cells in results.values() for c in cells.values()],
                      f, indent=1)
    return 0


def report_targets(results: dict[tuple[int, int], dict[str, Cell]], sizes: list[int], heaps: list[int],
                   tools: list[str], metric: str) -> bool:
    """Print whether livefix meets its targets by `metric`; True if any is missed."""
    missed = []
    for (size, h), cells in results.items():
        mine = cells["livefix"].value(metric)
        peer = fastest_peer(cells, tools, metric)
        if mine is None:
            missed.append(f"livefix has no time at {size:,}/{fmt_heap(h)}")
        elif peer and peer[1] / mine < TARGET_SPEEDUP:
            missed.append(f"{size:,} fns heap {fmt_heap(h)}: {peer[1] / mine:.1f}x over {TITLES[peer[0]]} "
                          f"(target {TARGET_SPEEDUP:.0f}x)")
    for h in heaps:
        small = results[(sizes[0], h)]["livefix"].value(metric)
        large = results[(sizes[-1], h)]["livefix"].value(metric)
        if small and large and large / small > TARGET_GROWTH:
            missed.append(f"heap {fmt_heap(h)}: {sizes[-1]:,} vs {sizes[0]:,} functions is "
                          f"{large / small:.1f}x (target within {TARGET_GROWTH:.0f}x)")
    print(f"\nTargets by {metric} time (livefix >= {TARGET_SPEEDUP:.0f}x faster than the fastest peer everywhere; "
          f"{sizes[-1]:,} vs {sizes[0]:,} functions within {TARGET_GROWTH:.0f}x): "
          + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return bool(missed)


def profile_livefix(size: int, heap: int, reps: int, budget: float, timeout: float) -> None:
    """cProfile of the livefix worker's timed reloads at the given cell, top 15 entries."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "livefix.prof")
        cell = run_cell("livefix", size, heap, reps, budget, timeout, profile=path)
        print(f"\n## cProfile of livefix.reload_module, {size:,} functions, heap {fmt_heap(heap)}, "
              f"{len(cell.steady_ms)} steady reloads (profiled times are inflated)\n")
        if os.path.exists(path):
            print_profile(path)
        else:
            print(f"no profile written: {cell.error or 'worker timed out'}")


if __name__ == "__main__":
    sys.exit(main())
