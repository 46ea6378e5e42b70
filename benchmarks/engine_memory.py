"""Memory benchmark: RSS growth and op times over many apply/rollback cycles, livefix against the peers.

A module of 3,000 generated functions (the reload benchmark's generator) is loaded in a fresh
subprocess per tool; then, per cycle, `f_00100` (near the top) is changed to a version with one
more line, so that every definition below it moves down a line, and changed back:

- livefix: `livefix.apply([{"module", "qualname": "f_00100", "source"}])`, then
  `livefix.rollback()` (`livefix.install()` runs before the import); a second livefix row
  installs with `history_limit` equal to the cycle count, so nothing is pruned from the history
  and its growth per cycle is what one kept generation costs;
- jurigged: its in-process API, `jurigged.recode.make_recoder(f).patch(new)` and
  `.patch(original)` (through the file, `Watcher.refresh`, one such edit takes tens of seconds
  at this size; see docs/benchmarks.md);
- importlib.reload, pydevd xreload and the reload benchmark's minimal in-place reloader: the
  new text is written to the file and the module reloaded, then the original text and
  reloaded again (only the reload call is timed).

Every 10 cycles the worker runs `gc.collect()` and reads its resident set size from
/proc/self/statm (outside the timed calls); the table shows the growth from cycle 50 to the
last cycle, per cycle, the median and p99 of each op, and for livefix the size of
`json.dumps(livefix.history())`. Peers stop adding cycles after `--budget` seconds; livefix
runs every cycle. Prints a table; asserts nothing.

    python benchmarks/engine_memory.py              # 1,000 cycles, 3,000 functions
    python benchmarks/engine_memory.py --quick      # 200 cycles, 1,000 functions, 10 s per peer
    python benchmarks/engine_memory.py --tools livefix --cycles 5000
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import reload_worker  # noqa: E402  (the module generator and the minimal reloader, shared with the reload benchmark)

TOOLS = ("livefix", "livefix-unpruned", "jurigged", "importlib", "xreload", "minimal")
LIVEFIX = ("livefix", "livefix-unpruned")
TITLES = {
    "livefix": "livefix apply / rollback",
    "livefix-unpruned": "livefix, history_limit=cycles (nothing pruned)",
    "jurigged": "jurigged Recoder.patch / patch back",
    "importlib": "importlib.reload (file)",
    "xreload": "pydevd xreload (file)",
    "minimal": "minimal in-place (file)",
}
EDITED = 100  # f_00100: near the top, so ~97% of the module sits below it
PROBE_BELOW = 200  # a function below the edit, whose first line tells whether the module moved
WARM_CYCLE = 50  # growth is measured from here, after one-time allocations (caches, first parse)
SAMPLE_EVERY = 10
TARGET_KB_PER_CYCLE = 50.0


# --------------------------------------------------------------------------- worker (one tool, one process)


def rss_kb() -> int:
    """The resident set size now (not the peak that getrusage reports)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def function_source(edited: bool) -> str:
    extra = "    x = x + 1000\n" if edited else ""
    return f"def f_{EDITED:05d}(x):\n{extra}    return x * {EDITED % 97 + 2} + 1\n"


def expected(edited: bool, x: int = 10) -> int:
    """What f_00100(x) returns in the original and in the changed version."""
    return ((x + 1000) if edited else x) * (EDITED % 97 + 2) + 1


def edited_text(original: str) -> str:
    old = function_source(False)
    assert original.count(old) == 1
    return original.replace(old, function_source(True))


class FileEdits:
    """A peer that reloads the module from its file: write the version, then reload (timed)."""

    def __init__(self, path: str, original: str, reload: Callable[[ModuleType], Any]) -> None:
        self.path = path
        self.texts = {False: original, True: edited_text(original)}
        self.reload = reload
        self.stamp = int(time.time()) - 100_000  # whole seconds, strictly increasing: mtime-based checks see each write

    def op(self, module: ModuleType, edited: bool) -> float:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.texts[edited])
        self.stamp += 1
        os.utime(self.path, ns=(self.stamp * 10**9, self.stamp * 10**9))
        start = time.perf_counter()
        self.reload(module)
        return time.perf_counter() - start


def make_ops(tool: str, path: str, original: str, cycles: int) -> tuple[Callable[[], None], Callable[[ModuleType], Callable[[bool], float]]]:
    """(set up before the import, after the import: the timed op `edited -> seconds`)."""
    if tool in LIVEFIX:
        import livefix

        def livefix_ops(module: ModuleType) -> Callable[[bool], float]:
            change = [{"module": module.__name__, "qualname": f"f_{EDITED:05d}", "source": function_source(True)}]

            def op(edited: bool) -> float:
                start = time.perf_counter()
                if edited:
                    livefix.apply(change)
                else:
                    livefix.rollback()
                return time.perf_counter() - start

            return op

        # The default keeps the newest 100 rolled-back generations; "unpruned" keeps every one,
        # so its growth per cycle is what one generation in the history costs.
        def install() -> None:
            livefix.install(**({"history_limit": cycles} if tool == "livefix-unpruned" else {}))

        return install, livefix_ops
    if tool == "jurigged":
        import jurigged
        from jurigged.recode import make_recoder

        def watch() -> None:
            jurigged.watch(pattern=os.path.join(os.path.dirname(path), "*.py"), logger=lambda event: None,
                           autostart=False)

        def jurigged_ops(module: ModuleType) -> Callable[[bool], float]:
            recoder = make_recoder(getattr(module, f"f_{EDITED:05d}"))

            def op(edited: bool) -> float:
                start = time.perf_counter()
                recoder.patch(function_source(edited))
                return time.perf_counter() - start

            return op

        return watch, jurigged_ops
    reloaders: dict[str, Callable[[], Callable[[ModuleType], Any]]] = {
        "importlib": lambda: importlib.reload,
        "xreload": lambda: _xreload(),
        "minimal": lambda: reload_worker.MinimalTool().reload,
    }
    reload = reloaders[tool]()

    def file_ops(module: ModuleType) -> Callable[[bool], float]:
        edits = FileEdits(path, original, reload)
        return lambda edited: edits.op(module, edited)

    return lambda: None, file_ops


def _xreload() -> Callable[[ModuleType], Any]:
    import debugpy

    sys.path.insert(0, os.path.join(os.path.dirname(debugpy.__file__), "_vendored", "pydevd"))
    from _pydevd_bundle import pydevd_reload  # type: ignore[import-not-found]

    return pydevd_reload.xreload


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def work(tool: str, functions: int, cycles: int, budget: float, workdir: str) -> None:
    name = "lfmem_mod"
    path = os.path.join(workdir, name + ".py")
    original = reload_worker.module_source(functions)
    with open(path, "w", encoding="utf-8") as f:
        f.write(original)
    before, after_import = make_ops(tool, path, original, cycles)
    sys.path.insert(0, workdir)
    before()
    module = importlib.import_module(name)
    op = after_import(module)
    lines = reload_worker.first_lines(original)
    edited_name, probe = f"f_{EDITED:05d}", f"f_{PROBE_BELOW:05d}"
    history = None
    if tool in LIVEFIX:
        import livefix

        history = livefix.history
    gc.collect()
    emit({"event": "ready", "rss_kb": rss_kb()})
    started = time.perf_counter()
    applies: list[float] = []
    rollbacks: list[float] = []
    moved = not_restored = 0
    for cycle in range(1, cycles + 1):
        applies.append(op(True) * 1000)
        got = getattr(module, edited_name)(10)
        if got != expected(True):
            emit({"event": "wrong", "cycle": cycle, "what": f"after the change {edited_name}(10) returned {got}"})
            return
        moved += getattr(module, probe).__code__.co_firstlineno == lines[probe] + 1
        rollbacks.append(op(False) * 1000)
        got = getattr(module, edited_name)(10)
        if got != expected(False):
            emit({"event": "wrong", "cycle": cycle, "what": f"after the change back {edited_name}(10) returned {got}"})
            return
        not_restored += any(getattr(module, n).__code__.co_firstlineno != lines[n] for n in (edited_name, probe))
        if cycle % SAMPLE_EVERY == 0 or cycle == cycles:
            gc.collect()
            record: dict[str, Any] = {"event": "sample", "cycle": cycle, "rss_kb": rss_kb(), "apply_ms": applies,
                                      "rollback_ms": rollbacks, "moved": moved, "not_restored": not_restored}
            if history is not None:
                t0 = time.perf_counter()
                entries = history()
                record["history_bytes"] = len(json.dumps(entries))
                record["history_ms"] = (time.perf_counter() - t0) * 1000
                record["history_generations"] = len(entries.get("generations", ()))
            emit(record)
            applies, rollbacks, moved, not_restored = [], [], 0, 0
            if time.perf_counter() - started > budget:
                break
    # After the last change back, every function must start where the file has it.
    off = [q for q, fn in reload_worker.running_functions(module) if lines.get(q, fn.__code__.co_firstlineno) != fn.__code__.co_firstlineno]
    emit({"event": "done", "lines_off": len(off), "lines_example": off[:3]})


# --------------------------------------------------------------------------- driver


def run_tool(script: str, tool: str, functions: int, cycles: int, budget: float, timeout: float) -> dict[str, Any]:
    """One worker; its streamed samples survive a kill at `timeout`."""
    env = dict(os.environ)
    if tool in LIVEFIX:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="livefix-mem-") as workdir, tempfile.TemporaryFile("w+") as out, \
            tempfile.TemporaryFile("w+") as err:
        cmd = [sys.executable, script, "--worker", tool, "--functions", str(functions),
               "--cycles", str(cycles), "--budget", str(budget), "--workdir", workdir]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=tempfile.gettempdir())
        killed = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        records = []
        for line in out:
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        stderr = err.read()
    return summarise(tool, records, killed, proc.returncode, stderr)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def summarise(tool: str, records: list[dict[str, Any]], killed: bool, code: int, stderr: str) -> dict[str, Any]:
    samples = [r for r in records if r.get("event") == "sample"]
    row: dict[str, Any] = {"tool": tool, "cycles": samples[-1]["cycle"] if samples else 0, "killed": killed}
    for r in records:
        if r.get("event") in ("wrong", "done"):
            row.update({k: v for k, v in r.items() if k != "event"})
    if not samples:
        row["error"] = "killed before the first sample" if killed else (
            (stderr.strip().splitlines() or [f"exit code {code}"])[-1])
        return row
    applies = [ms for s in samples for ms in s["apply_ms"]]
    rollbacks = [ms for s in samples for ms in s["rollback_ms"]]
    row.update(apply_median=statistics.median(applies), apply_p99=p99(applies),
               rollback_median=statistics.median(rollbacks), rollback_p99=p99(rollbacks),
               moved=sum(s["moved"] for s in samples), not_restored=sum(s["not_restored"] for s in samples))
    # From cycle 50 to the last one; a run that stops before cycle 60 from its first sample.
    last = samples[-1]
    base = next((s for s in samples if s["cycle"] >= WARM_CYCLE and last["cycle"] - s["cycle"] >= SAMPLE_EVERY),
                samples[0])
    row.update(rss_base_kb=base["rss_kb"], rss_base_cycle=base["cycle"], rss_last_kb=last["rss_kb"])
    if last["cycle"] > base["cycle"]:
        row["kb_per_cycle"] = (last["rss_kb"] - base["rss_kb"]) / (last["cycle"] - base["cycle"])
    if "history_bytes" in last:
        row.update(history_bytes=last["history_bytes"], history_ms=last["history_ms"],
                   history_generations=last["history_generations"],
                   history_bytes_per_cycle=(last["history_bytes"] - base["history_bytes"]) / max(1, last["cycle"] - base["cycle"]))
    return row


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def table(rows: list[dict[str, Any]], cycles: int) -> list[str]:
    header = ["tool", "cycles", "apply median (ms)", "apply p99 (ms)", "rollback median (ms)", "rollback p99 (ms)",
              "RSS at start of growth (MB)", "RSS at end (MB)", "RSS growth per cycle (kB)", "history JSON at end (kB)",
              "lines after the change / back"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "|".join("---:" for _ in header[1:-1]) + "|---|"]
    for row in rows:
        if "apply_median" not in row:
            lines.append(f"| {TITLES[row['tool']]} | {row['cycles']} | " + " | ".join(
                [row.get("error") or row.get("what") or "-"] + ["-"] * (len(header) - 3)) + " |")
            continue
        growth = row.get("kb_per_cycle")
        note = "" if row["cycles"] >= cycles else (" (killed)" if row["killed"] else " (budget)")
        history = f"{row['history_bytes'] / 1024:,.0f}" if "history_bytes" in row else "-"
        done = row["cycles"]
        moved = "below moved" if row["moved"] == done else "below not moved" if row["moved"] == 0 else f"below moved {row['moved']}/{done}"
        restored = "restored" if row["not_restored"] == 0 and not row.get("lines_off") else (
            f"NOT restored ({row.get('lines_off', '?')} functions off at the end)")
        lines.append("| " + " | ".join([
            TITLES[row["tool"]] + (" **wrong**" if "what" in row else ""),
            f"{done:,}{note}",
            fmt_ms(row["apply_median"]), fmt_ms(row["apply_p99"]),
            fmt_ms(row["rollback_median"]), fmt_ms(row["rollback_p99"]),
            f"{row['rss_base_kb'] / 1024:,.1f} (cycle {row['rss_base_cycle']})",
            f"{row['rss_last_kb'] / 1024:,.1f}",
            f"{growth:,.1f}" if growth is not None else "-",
            history,
            f"{moved}; {restored}",
        ]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 cycles, 1,000 functions, 10 s per peer")
    parser.add_argument("--cycles", type=int, help="apply/rollback cycles (default 1,000)")
    parser.add_argument("--functions", type=int, help="functions in the generated module (default 3,000)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma list from {','.join(TOOLS)}")
    parser.add_argument("--budget", type=float, help="seconds after which a peer adds no more cycles (default 60)")
    parser.add_argument("--timeout", type=float, help="seconds after which any worker is killed (default 900)")
    parser.add_argument("--json", help="also write every tool's summary to this file")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cycles = args.cycles or (200 if args.quick else 1000)
    functions = args.functions or (1000 if args.quick else 3000)
    budget = args.budget or (10.0 if args.quick else 60.0)
    timeout = args.timeout or (120.0 if args.quick else 900.0)
    if functions <= PROBE_BELOW:
        parser.error(f"--functions must be above {PROBE_BELOW}")
    if args.worker:
        # livefix runs every cycle (the timeout is its only bound); peers stop at the budget.
        work(args.worker, functions, cycles, timeout if args.worker in LIVEFIX else budget, args.workdir)
        return 0

    chosen = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := [t for t in chosen if t not in TOOLS]:
        parser.error(f"unknown tools {unknown}; choose from {','.join(TOOLS)}")
    tools = [t for t in TOOLS if t in chosen]
    from engine_reload import git_commit, versions  # the driver only: workers run from a snapshot without it

    print(f"# memory benchmark: {versions(['jurigged', 'xreload'])}, {functions:,} functions, {cycles:,} cycles "
          f"(peers stop after {budget:g} s), RSS growth from cycle {WARM_CYCLE}", flush=True)
    if any(t in LIVEFIX for t in tools):
        print(f"# livefix from {REPO} at commit {git_commit()}", flush=True)
    started = time.monotonic()
    rows = []
    # Workers run this script (and the generator it shares) as they were when the run started.
    with tempfile.TemporaryDirectory(prefix="livefix-mem-worker-") as snapshot:
        script = shutil.copy(os.path.abspath(__file__), snapshot)
        shutil.copy(os.path.join(HERE, "reload_worker.py"), snapshot)
        for tool in tools:
            t0 = time.monotonic()
            row = run_tool(script, tool, functions, cycles, budget, timeout + 60)
            rows.append(row)
            print(f"#   {tool:<16} {row['cycles']:>5} cycles in {time.monotonic() - t0:5.1f} s  "
                  f"{row.get('error') or row.get('what') or ''}", flush=True)
    print(f"\n## {cycles:,} cycles of: change f_{EDITED:05d} to a version with one more line, then back "
          f"({functions:,} functions)\n")
    print("\n".join(table(rows, cycles)))
    mine = next((r for r in rows if r["tool"] == "livefix"), None)
    if mine is not None and "apply_median" in mine:
        growth = mine.get("kb_per_cycle")
        checks = [
            ("RSS growth under 50 kB per cycle", growth is not None and growth < TARGET_KB_PER_CYCLE,
             f"{growth:,.1f} kB" if growth is not None else "not measured"),
            ("rollback median no slower than apply", mine["rollback_median"] <= mine["apply_median"],
             f"{mine['rollback_median']:.2f} vs {mine['apply_median']:.2f} ms"),
            ("every function back at its file line after the last rollback", not mine.get("lines_off"),
             f"{mine.get('lines_off', 0)} off"),
        ]
        print("\nlivefix targets: " + "; ".join(f"{what}: {'met' if ok else 'MISSED'} ({value})"
                                                for what, ok, value in checks))
        if "history_bytes" in mine:
            print(f"livefix history: {mine['history_bytes']:,} bytes of JSON after {mine['cycles']:,} cycles "
                  f"({mine['history_bytes_per_cycle']:,.0f} bytes per cycle from cycle {mine['rss_base_cycle']}), "
                  f"{mine['history_generations']:,} generations listed; history() + json.dumps took "
                  f"{mine['history_ms']:.1f} ms")
    unpruned = next((r for r in rows if r["tool"] == "livefix-unpruned" and "kb_per_cycle" in r), None)
    if unpruned is not None:
        print(f"livefix with nothing pruned: {unpruned['kb_per_cycle']:,.1f} kB of RSS and "
              f"{unpruned.get('history_bytes_per_cycle', 0):,.0f} bytes of history JSON per cycle "
              f"({unpruned.get('history_generations', 0):,} generations listed)")
    print(f"\n# total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
