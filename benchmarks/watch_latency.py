"""Watch-mode benchmark: `livefix run app.py` against `python -m jurigged app.py`, in one run.

Both run the same program, which answers one query per line on stdin with one JSON line on
stdout, so the benchmark asks it what it runs every millisecond while it edits the program's
files. Measured per save: the save-to-live latency, from the moment the file is written (or,
for an editor-style save, renamed into place) to the first answer showing the new behaviour;
and whether what runs then is right. The edits: a function body (`body`), two places at once
(a function near the top gains lines, one at the bottom uses it: `two`), a definition cut and
pasted elsewhere (`moved`), a syntax error then its fix (`syntax`), a method of a class with a
live instance (`method`), an editor-style save that writes a temporary file and renames it
over the module (`rename`), and a function of the script itself (`script`).

livefix is run with each of its file-event backends (`--watcher watchfiles|inotify|stat`);
jurigged with its defaults (watchdog, 50 ms debounce). One program process per tool runs
every edit (a fresh one if the program died). livefix is imported from this checkout.
Nothing is asserted: medians, ratios and markdown tables are printed.

    python benchmarks/watch_latency.py                  # < 3 minutes
    python benchmarks/watch_latency.py --reps 15 --tools livefix-watchfiles,jurigged
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from bench_common import checkout, parse_list

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOOLS = ("livefix-watchfiles", "livefix-inotify", "livefix-stat", "jurigged")
TITLES = {
    "livefix-watchfiles": "livefix run (watchfiles)",
    "livefix-inotify": "livefix run (inotify)",
    "livefix-stat": "livefix run (stat)",
    "jurigged": "jurigged",
}
POLL_SECONDS = 0.001  # between two questions to the program
READY_SECONDS = 1.5  # after the program says it is ready, before the first save (watchers start)

APP = '''"""The watched program: one answer per line read on stdin."""
import json
import sys

import body
import broken
import cart
import moved
import renamed
import two
from moved import moved_fn as held_moved

CART = cart.Cart()  # a live instance, made before any edit
REGISTRY = {{"moved": moved.moved_fn}}  # a callback registry holding the function


def script_value():
    return {r}


def answer(what):
    if what == "body":
        return {{"value": body.value()}}
    if what == "two":
        return {{"value": two.combined(), "below_line": two.below.__code__.co_firstlineno}}
    if what == "moved":
        return {{"value": moved.moved_fn(), "held_copy": held_moved(), "registry_copy": REGISTRY["moved"](),
                "moved_fn_line": moved.moved_fn.__code__.co_firstlineno,
                "anchor_line": moved.anchor.__code__.co_firstlineno}}
    if what == "syntax":
        return {{"value": broken.value()}}
    if what == "method":
        return {{"value": CART.total(), "isinstance": isinstance(CART, cart.Cart)}}
    if what == "rename":
        return {{"value": renamed.value()}}
    if what == "script":
        return {{"value": script_value()}}
    return {{"ready": True}}


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        try:
            reply = answer(line.strip())
        except Exception as error:
            reply = {{"error": f"{{type(error).__name__}}: {{error}}"}}
        sys.stdout.write("@@" + json.dumps(reply) + "\\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
'''


def filler(prefix: str, count: int) -> str:
    """Functions around the edited ones: a module of realistic size, not a one-liner."""
    return "".join(f"\n\ndef {prefix}_{i:02d}(x):\n    total = x\n    for k in range({i}):\n        total += k\n"
                   f"    return total\n" for i in range(count))


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise ValueError(needle)


def body_text(r: int) -> str:
    return f"def value():\n    return {r}\n" + filler("f", 30)


def two_text(r: int) -> str:
    added = "".join(f"    x{i} = {i}\n" for i in range(r))  # version r: r more lines at the top
    return (f"def helper():\n{added}    return {r}\n" + filler("g", 30)
            + f"\n\ndef combined():\n    return helper() * 100 + {r}\n\n\ndef below():\n    return 0\n")


def moved_text(r: int) -> str:
    moved_fn = f"def moved_fn():\n    return {r}\n"
    rest = filler("h", 15).lstrip("\n") + "\n\ndef anchor():\n    return 0\n"
    return moved_fn + "\n\n" + rest if r % 2 else rest + "\n\n" + moved_fn  # cut and pasted at each save


def broken_text(r: int) -> str:
    return body_text(r)


def cart_text(r: int) -> str:
    return (f"class Cart:\n    def __init__(self):\n        self.items = [1, 2, 3]\n\n"
            f"    def total(self):\n        return sum(self.items) + {r} * 100\n" + filler("c", 20))


@dataclass
class Scenario:
    name: str
    title: str
    path: str  # the file the edit saves
    text: Callable[[int], str]
    expect: Callable[[int, str], dict[str, Any]]  # version, its text -> the answer it must give
    rename: bool = False  # an editor-style save: write a temporary file, rename it over the module
    broken_first: bool = False  # save a syntax error first, then the fix


SCENARIOS = [
    Scenario("body", "function body changed", "body.py", body_text, lambda r, t: {"value": r}),
    Scenario("two", "two places (a function gains lines at the top, its caller at the bottom changes)", "two.py",
             two_text, lambda r, t: {"value": r * 100 + r, "below_line": line_of(t, "def below")}),
    Scenario("moved", "definition cut and pasted elsewhere (value changed too)", "moved.py", moved_text,
             lambda r, t: {"value": r, "held_copy": r, "registry_copy": r, "moved_fn_line": line_of(t, "def moved_fn"),
                           "anchor_line": line_of(t, "def anchor")}),
    Scenario("syntax", "syntax error saved, then the fix", "broken.py", broken_text, lambda r, t: {"value": r},
             broken_first=True),
    Scenario("method", "method of a class with a live instance", "cart.py", cart_text,
             lambda r, t: {"value": 6 + 100 * r, "isinstance": True}),
    Scenario("rename", "editor-style atomic save (write a temporary file, rename it)", "renamed.py", body_text,
             lambda r, t: {"value": r}, rename=True),
    Scenario("script", "function in the script itself (app.py)", "app.py", lambda r: APP.format(r=r),
             lambda r, t: {"value": r}),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def write_app(root: str) -> None:
    files = {"app.py": APP.format(r=0), "body.py": body_text(0), "two.py": two_text(0), "moved.py": moved_text(0),
             "broken.py": broken_text(0), "cart.py": cart_text(0), "renamed.py": body_text(0)}
    for name, text in files.items():
        with open(os.path.join(root, name), "w", encoding="utf-8") as f:
            f.write(text)


# -- the program under a tool ---------------------------------------------------------------


class Program:
    """The app under one tool: questions on stdin, answers on stdout, the tool's lines kept."""

    def __init__(self, tool: str, root: str, runtime: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)  # this checkout's livefix
        env["LIVEFIX_RUNTIME_DIR"] = runtime  # the agent's token and address files, not the user's
        env["PYTHONUNBUFFERED"] = "1"
        if tool == "jurigged":
            command = [sys.executable, "-m", "jurigged", "app.py"]
        else:
            command = [sys.executable, "-c", "import sys; from livefix.cli import main; sys.exit(main())",
                       "run", "--watcher", tool.split("-", 1)[1], "app.py"]
        self.proc = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self._buffer = b""
        self.output: list[tuple[float, str]] = []  # (time, line) the tool printed, stdout or stderr
        self._lock = threading.Lock()
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr.start()

    def _read_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):  # type: ignore[union-attr]
            with self._lock:
                self.output.append((time.perf_counter(), raw.decode(errors="replace").rstrip()))

    def lines_since(self, since: float) -> list[str]:
        with self._lock:
            return [line for when, line in self.output if when >= since and line.strip()]

    def ask(self, what: str, timeout: float = 2.0) -> dict[str, Any] | None:
        """One question, one answer (None: the program is dead or did not answer in time)."""
        try:
            os.write(self.proc.stdin.fileno(), (what + "\n").encode())  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return None
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        deadline = time.perf_counter() + timeout
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith("@@"):
                    return json.loads(text[2:])
                with self._lock:  # jurigged prints its errors on stdout
                    self.output.append((time.perf_counter(), text))
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.join(timeout=2)


@dataclass
class Result:
    tool: str
    scenario: str
    latencies_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)  # until line numbers and held copies were right too
    status: str = "ok"  # ok | wrong | error | not live
    what: str = ""
    reported: str = ""  # the tool's line about the syntax error
    lines: list[str] = field(default_factory=list)  # what the tool printed during the scenario

    @property
    def median(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None


def save(path: str, text: str, rename: bool) -> float:
    """Save like an editor; the time the save happens (for a rename save: the rename)."""
    if rename:
        temporary = path + ".tmp"  # not a .py file: watchers of Python files ignore it
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        began = time.perf_counter()
        os.replace(temporary, path)
        return began
    began = time.perf_counter()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return began


def wait_live(program: Program, scenario: Scenario, expected: dict[str, Any], began: float,
              timeout: float) -> tuple[float | None, float | None, dict[str, Any] | None]:
    """Ask until the answer's value is the new one, then until everything in it is right
    (line numbers, held copies): (ms to the value, ms to everything or None, the last answer)."""
    last, live = None, None
    while time.perf_counter() - began < timeout:
        answer = program.ask(scenario.name)
        now = time.perf_counter()
        if answer is None:
            return live, None, last
        last = answer
        if live is None and answer.get("value") == expected["value"]:
            live = (now - began) * 1000
        if live is not None and all(answer.get(k) == v for k, v in expected.items()):
            return live, (now - began) * 1000, answer
        time.sleep(POLL_SECONDS)
    return live, None, last


def describe(answer: dict[str, Any] | None, expected: dict[str, Any]) -> str:
    if answer is None:
        return "no answer"
    if "error" in answer:
        return answer["error"]
    return "; ".join(f"{key} {answer.get(key)!r}, expected {value!r}" for key, value in expected.items()
                     if answer.get(key) != value)


def run_scenario(program: Program, root: str, scenario: Scenario, reps: int, timeout: float, settle: float,
                 broken_wait: float, tool: str) -> Result:
    result = Result(tool, scenario.name)
    jitter = random.Random(f"{tool}/{scenario.name}")
    path = os.path.join(root, scenario.path)
    started = time.perf_counter()
    for r in range(1, reps + 1):
        if scenario.broken_first:
            broken = scenario.text(r).replace("def value():", "def value(:", 1)
            saved = save(path, broken, scenario.rename)
            previous = scenario.expect(r - 1, scenario.text(r - 1))
            while time.perf_counter() - saved < broken_wait:  # the program keeps running the code it had
                answer = program.ask(scenario.name)
                if answer is None or answer.get("value") != previous["value"]:
                    result.status = "error" if answer is None or "error" in answer else "wrong"
                    result.what = f"after the syntax error was saved: {describe(answer, previous)}"
                    return finish(result, program, started)
                time.sleep(0.01)
            reported = [line for line in program.lines_since(saved) if "broken.py" in line or "SyntaxError" in line]
            if not reported:
                result.status, result.what = "wrong", "the syntax error was not reported"
            elif not result.reported:
                result.reported = reported[0].strip()
        text = scenario.text(r)
        expected = scenario.expect(r, text)
        began = save(path, text, scenario.rename)
        latency, complete, answer = wait_live(program, scenario, expected, began, timeout)
        if complete is not None and len(expected) > 1:
            result.complete_ms.append(complete)
        if latency is None:
            result.status = "error" if answer is None or "error" in (answer or {}) or not program.alive() else "not live"
            result.what = (f"save {r}: " + ("the program died" if not program.alive() else
                           f"not live after {timeout:g} s: {describe(answer, expected)}"))
            return finish(result, program, started)
        result.latencies_ms.append(latency)
        # The next save is a separate one for every watcher (their debounce windows); the jitter
        # keeps saves from falling at the same phase of a watcher's polling period every time.
        time.sleep(settle + jitter.uniform(0, 0.25))
        answer = program.ask(scenario.name)  # everything the edit should change, once the tool is done
        wrong = describe(answer, expected)
        if wrong and result.status == "ok":
            result.status, result.what = "wrong", f"save {r}: {wrong}"
    return finish(result, program, started)


def finish(result: Result, program: Program, started: float) -> Result:
    result.lines = program.lines_since(started)
    return result


def run_tool(tool: str, scenarios: list[Scenario], reps: int, timeout: float, settle: float, broken_wait: float,
             log: Callable[[str], None]) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="livefix-watch-") as root, \
            tempfile.TemporaryDirectory(prefix="livefix-runtime-") as runtime:
        write_app(root)
        program = None
        try:
            for scenario in scenarios:
                if program is None or not program.alive():
                    if program is not None:
                        program.stop()
                        write_app(root)  # a fresh program starts from the first version of every file
                    program = start(tool, root, runtime)
                    if program is None:
                        results.append(Result(tool, scenario.name, status="error", what="the program did not start"))
                        continue
                result = run_scenario(program, root, scenario, reps, timeout, settle, broken_wait, tool)
                results.append(result)
                log(f"#   {tool:<19} {scenario.name:<7} median {fmt_ms(result.median):>7} ms  "
                    f"[{', '.join(fmt_ms(v) for v in result.latencies_ms)}]  {result.status} {result.what[:120]}")
        finally:
            if program is not None:
                program.stop()
    return results


def start(tool: str, root: str, runtime: str) -> Program | None:
    program = Program(tool, root, runtime)
    if program.ask("ready", timeout=30) is None:
        print(f"# {tool} did not start:\n" + "\n".join(line for _, line in program.output), file=sys.stderr)
        program.stop()
        return None
    time.sleep(READY_SECONDS)  # the watcher thread has found the program's modules
    return program


# -- the tables -----------------------------------------------------------------------------


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def latency_table(results: dict[tuple[str, str], Result], tools: list[str], scenarios: list[Scenario],
                  reps: int) -> list[str]:
    mine = [t for t in tools if t in ("livefix-watchfiles", "livefix-inotify")]
    ratios = "jurigged" in tools
    header = ["edit", *(f"{TITLES[t]} (ms)" for t in tools), *(f"jurigged / {TITLES[t]}" for t in mine if ratios)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    rows = [(s.name, [results.get((t, s.name)) for t in tools]) for s in scenarios]
    for name, cells in rows:
        row = [name]
        for cell in cells:
            if cell is None:
                row.append("-")
            elif cell.median is None:
                row.append(cell.status)
            else:
                note = "" if len(cell.latencies_ms) >= reps else f" (n={len(cell.latencies_ms)})"
                note += " (wrong)" if cell.status == "wrong" else ""
                row.append(f"{fmt_ms(cell.median)}{note}")
        theirs = results.get(("jurigged", name))
        for t in mine if ratios else ():
            cell = results.get((t, name))
            if cell and cell.median and theirs and theirs.median:
                row.append(fmt_ratio(theirs.median / cell.median))
            else:
                row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    every = {t: [v for s in scenarios if (c := results.get((t, s.name))) for v in c.latencies_ms] for t in tools}
    row = ["**every save**"]
    for t in tools:
        row.append(f"**{fmt_ms(statistics.median(every[t]))}** (n={len(every[t])})" if every[t] else "-")
    for t in mine if ratios else ():
        if every[t] and every["jurigged"]:
            row.append(f"**{fmt_ratio(statistics.median(every['jurigged']) / statistics.median(every[t]))}**")
        else:
            row.append("-")
    lines.append("| " + " | ".join(row) + " |")
    return lines


def complete_table(results: dict[tuple[str, str], Result], tools: list[str], scenarios: list[Scenario]) -> list[str]:
    """For the edits that check more than the value: when the line numbers and held copies were right too."""
    header = ["edit", *(f"{TITLES[t]}: value / everything (ms)" for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    for s in scenarios:
        if len(s.expect(1, s.text(1))) < 2:
            continue
        row = [s.name]
        for t in tools:
            cell = results.get((t, s.name))
            if cell is None or cell.median is None:
                row.append("-" if cell is None else cell.status)
                continue
            everything = fmt_ms(statistics.median(cell.complete_ms)) if cell.complete_ms else "never"
            if cell.complete_ms and len(cell.complete_ms) < len(cell.latencies_ms):
                everything += f" (n={len(cell.complete_ms)})"
            row.append(f"{fmt_ms(cell.median)} / {everything}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def spread_table(results: dict[tuple[str, str], Result], tools: list[str], scenarios: list[Scenario]) -> list[str]:
    header = ["tool", "saves live", "min (ms)", "median (ms)", "max (ms)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|"]
    for t in tools:
        values = [v for s in scenarios if (c := results.get((t, s.name))) for v in c.latencies_ms]
        if values:
            lines.append(f"| {TITLES[t]} | {len(values)} | {fmt_ms(min(values))} | {fmt_ms(statistics.median(values))} "
                         f"| {fmt_ms(max(values))} |")
        else:
            lines.append(f"| {TITLES[t]} | 0 | - | - | - |")
    return lines


def correctness_table(results: dict[tuple[str, str], Result], tools: list[str], scenarios: list[Scenario]) -> list[str]:
    header = ["edit", *(TITLES[t] for t in tools)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for s in scenarios:
        row = [s.title]
        for t in tools:
            cell = results.get((t, s.name))
            if cell is None:
                row.append("-")
            elif cell.status == "ok":
                row.append("ok")
            else:
                what = cell.what.replace("|", "\\|")
                row.append(f"{cell.status} ({what[:150]}{'...' if len(what) > 150 else ''})")
        lines.append("| " + " | ".join(row) + " |")
    totals = ["**right**"]
    for t in tools:
        right = sum(1 for s in scenarios if (c := results.get((t, s.name))) and c.status == "ok")
        totals.append(f"**{right} of {len(scenarios)}**")
    lines.append("| " + " | ".join(totals) + " |")
    return lines


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for dist in ("jurigged", "watchdog", "watchfiles"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", help=f"comma list from {','.join(TOOLS)} (default: all)")
    parser.add_argument("--edits", help=f"comma list from {','.join(BY_NAME)} (default: all)")
    parser.add_argument("--reps", type=int, default=5, help="saves per edit and tool (default 5)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds a save has to go live (default 3)")
    parser.add_argument("--settle", type=float, default=0.3, help="seconds between two saves (default 0.3)")
    parser.add_argument("--broken-wait", type=float, default=0.4,
                        help="seconds the syntax error stays saved before the fix (default 0.4)")
    parser.add_argument("--json", help="also write every save's latency to this file")
    parser.add_argument("--show-output", action="store_true", help="print what each tool printed per edit")
    args = parser.parse_args(argv)
    tools = parse_list(args.tools, TOOLS, "tools", parser)
    scenarios = [BY_NAME[n] for n in parse_list(args.edits, tuple(BY_NAME), "edits", parser)]
    if "livefix-watchfiles" in tools and importlib.util.find_spec("watchfiles") is None:
        parser.error("watchfiles is not installed: pip install 'livefix[watch]' (or leave livefix-watchfiles out)")

    started = time.monotonic()
    print(f"# watch benchmark: {versions()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"# livefix from {REPO} at commit {checkout()}")
    print(f"# {args.reps} saves per edit, a question every {POLL_SECONDS * 1000:g} ms, "
          f"{args.settle:g} s between saves, not live after {args.timeout:g} s", flush=True)
    results: dict[tuple[str, str], Result] = {}
    for tool in tools:
        for result in run_tool(tool, scenarios, args.reps, args.timeout, args.settle, args.broken_wait,
                               lambda line: print(line, flush=True)):
            results[(tool, result.scenario)] = result
    if args.show_output:
        for (tool, name), result in results.items():
            print(f"\n# {tool} / {name} printed:")
            for line in result.lines[:20]:
                print(f"#   {line}")

    print("\n## Save-to-live latency, median per edit (ms; lower is better)\n")
    print("\n".join(latency_table(results, tools, scenarios, args.reps)))
    print("\n## Until everything the edit changes is right: line numbers, held copies, the live instance "
          "(median ms to the new value / to everything)\n")
    print("\n".join(complete_table(results, tools, scenarios)))
    print("\n## Spread over every save\n")
    print("\n".join(spread_table(results, tools, scenarios)))
    print("\n## Does the running program do what the saved file says? (ok / wrong (what) / not live / error)\n")
    print("\n".join(correctness_table(results, tools, scenarios)))
    reports = [(t, results[(t, "syntax")].reported) for t in tools if (t, "syntax") in results]
    if any(r for _, r in reports):
        print("\nWhat each tool said about the syntax error:")
        for tool, line in reports:
            print(f"- {TITLES[tool]}: {line[:200] or '(nothing)'}")
    print(f"\n# total {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([r.__dict__ for r in results.values()], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
