"""`livefix apply PID fix.py::f` to one worker, end to end: medians and peers, in one run.

The command's own time is mostly Python's start-up and its imports, so it is measured as a
user runs it, in a new process each time, beside:
- the floor: `python -c pass` (the interpreter starting and stopping, nothing of livefix);
- the same request from a process that is already running (`AgentClient`, no start-up);
- the alternative livefix saves: restarting the worker (a new process until it serves again);
- optionally the command as it was at an earlier commit (`--baseline REF`).
Each is run twice: from sources with no bytecode cache (PYTHONDONTWRITEBYTECODE=1, as in
most container images and on these machines) and with bytecode compiled (as `pip install`
leaves it). Each apply alternates between two bodies, so every one is a real change.
Prints medians and ratios; asserts nothing.
Usage: python benchmarks/cli_apply.py [--rounds N] [--baseline REF]
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import REPO, checkout, git  # noqa: E402

WORKER = r'''
import sys
sys.path.insert(0, sys.argv[1])
import target, livefix
livefix.listen(token="benchmark", approval="never")
print("ready", flush=True)
sys.stdin.read()
'''

# The `livefix` console script pip installs beside this interpreter (what users type; it imports
# livefix from PYTHONPATH first, so each copy below is what runs), else `python -m livefix.cli`.
SCRIPT = os.path.join(os.path.dirname(sys.executable), "livefix")
COMMAND = [sys.executable, SCRIPT] if os.path.exists(SCRIPT) else [sys.executable, "-m", "livefix.cli"]

MODULE = "def small(x):\n    return x + 1\n"
BODIES = ("def small(x):\n    return x + 2\n", "def small(x):\n    return x + 1\n")


def copy_package(destination: Path, ref: str | None) -> Path:
    """livefix/ (at `ref`, or as checked out now) under `destination`, importable from there."""
    destination.mkdir(parents=True)
    if ref is None:
        # Without the checkout's own bytecode caches (tests leave some): "from sources" means it.
        shutil.copytree(Path(REPO) / "livefix", destination / "livefix", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", ref, "livefix"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline", metavar="REF", help="also run the command as it was at this commit")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="lf-cli-bench-", dir="/tmp"))
    runtime = scratch / "run"
    runtime.mkdir(mode=0o700)
    app = scratch / "app"
    app.mkdir()
    (app / "target.py").write_text(MODULE)
    fix = scratch / "fix.py"
    env = dict(os.environ, LIVEFIX_RUNTIME_DIR=str(runtime), LIVEFIX_TOKEN="benchmark", PYTHONDONTWRITEBYTECODE="1")
    os.environ.update(LIVEFIX_RUNTIME_DIR=str(runtime), LIVEFIX_TOKEN="benchmark")

    # Each command runs livefix from its own copy, so bytecode can be compiled into one
    # copy and not the other, and an earlier commit can run beside this one.
    trees = {"now": copy_package(scratch / "now", None)}
    if args.baseline:
        trees[args.baseline] = copy_package(scratch / "baseline", args.baseline)
    compiled = {}
    for label, tree in list(trees.items()):
        compiled[label] = copy_package(scratch / f"compiled-{len(compiled)}", None if label == "now" else args.baseline)
        compileall.compile_dir(str(compiled[label] / "livefix"), quiet=1)

    def start_worker() -> subprocess.Popen:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(app)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=dict(env, PYTHONPATH=str(trees["now"])),
                                  cwd=scratch)
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        return worker

    counter = iter(range(10**9))
    worker = start_worker()
    times: dict[str, list[float]] = {}
    try:
        def command(label: str, tree: Path) -> None:
            fix.write_text(BODIES[next(counter) % 2])
            start = time.perf_counter()
            done = subprocess.run([*COMMAND, "apply", str(worker.pid), f"{fix}::small",
                                   "--module", "target", "--json"], capture_output=True, text=True,
                                  env=dict(env, PYTHONPATH=str(tree)), cwd=scratch)  # not the checkout's livefix/
            times.setdefault(label, []).append(time.perf_counter() - start)
            assert done.returncode == 0 and json.loads(done.stdout)["generation"] > 0, done.stdout + done.stderr

        from livefix.agent.client import AgentClient

        for _ in range(args.rounds):  # interleaved, so the machine's noise falls on all alike
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, cwd=scratch, check=True)
            times.setdefault("floor", []).append(time.perf_counter() - start)
            for label in trees:
                command(f"source:{label}", trees[label])
                command(f"compiled:{label}", compiled[label])
            start = time.perf_counter()
            with AgentClient(f"unix:{runtime / 'agents' / f'{worker.pid}.sock'}", "benchmark") as client:
                client.request("livefix/apply", {"changes": [
                    {"module": "target", "qualname": "small", "source": BODIES[next(counter) % 2]}]})
            times.setdefault("client", []).append(time.perf_counter() - start)
        for _ in range(max(3, args.rounds // 4)):
            start = time.perf_counter()
            worker.kill()
            worker.wait()
            worker = start_worker()
            times.setdefault("restart", []).append(time.perf_counter() - start)
    finally:
        worker.kill()
        worker.wait()
        shutil.rmtree(scratch, ignore_errors=True)

    medians = {label: statistics.median(values) * 1000 for label, values in times.items()}
    reference = medians["compiled:now"]
    print(f"`livefix apply PID fix.py::small` to one worker, Python {sys.version.split()[0]}, "
          f"checkout {checkout()}, median of {args.rounds} runs (restart: {len(times['restart'])}); the command "
          f"run as `{' '.join(os.path.basename(word) for word in COMMAND)}`")
    print()
    print("| how | median | vs the command (bytecode compiled) |")
    print("| --- | ---: | ---: |")
    rows = [
        ("`python -c pass` (the interpreter's start-up alone)", "floor"),
        ("the command, bytecode compiled (as `pip install` leaves it)", "compiled:now"),
        ("the command, from sources without bytecode (`PYTHONDONTWRITEBYTECODE=1`)", "source:now"),
    ]
    if args.baseline:
        short = git("rev-parse", "--short", args.baseline) or args.baseline
        rows += [
            (f"the command at {short}, bytecode compiled", f"compiled:{args.baseline}"),
            (f"the command at {short}, from sources without bytecode", f"source:{args.baseline}"),
        ]
    rows += [
        ("the same apply from a running process (`AgentClient`, no start-up)", "client"),
        ("restarting the worker instead (kill, start, until it serves)", "restart"),
    ]
    for text, label in rows:
        print(f"| {text} | {medians[label]:.1f} ms | {medians[label] / reference:.2f}x |")


if __name__ == "__main__":
    main()
