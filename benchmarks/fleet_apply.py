"""Fleet apply of one function to 16 workers: median total time, and its peers, in one run.

Starts real worker processes that call `livefix.listen(service="bench")`, then times:
- `Fleet.apply` (what `livefix apply --service` does after start-up): lock, connect and
  authenticate to every worker, prepare everywhere, commit everywhere, journal;
- the naive peer: `livefix/apply` on each worker in turn (no all-or-nothing);
- the whole `livefix apply --service bench` command (Python start-up included), fewer rounds.
Each round alternates between two bodies, so every apply is a real change.
Prints medians and ratios; asserts nothing.
Usage: python benchmarks/fleet_apply.py [--workers N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r'''
import sys
sys.path.insert(0, sys.argv[1])
import target, livefix
livefix.listen(service="bench", token="benchmark", approval="never")
print("ready", flush=True)
sys.stdin.read()
'''

MODULE = "def small(x):\n    return x + 1\n"
BODIES = ("def small(x):\n    return x + 2\n", "def small(x):\n    return x + 1\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cli-rounds", type=int, default=5)
    args = parser.parse_args()

    runtime = tempfile.mkdtemp(prefix="lf-bench-", dir="/tmp")
    os.environ["LIVEFIX_RUNTIME_DIR"] = runtime
    os.environ["LIVEFIX_TOKEN"] = "benchmark"
    app = Path(runtime) / "app"
    app.mkdir()
    (app / "target.py").write_text(MODULE)

    from livefix.agent.client import AgentClient
    from livefix.agent.fleet import Fleet
    from livefix.agent.registry import Registry

    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(app)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for _ in range(args.workers)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        fleet = Fleet("bench", "benchmark")
        counter = iter(range(10**9))

        def change() -> dict:
            return {"module": "target", "qualname": "small", "source": BODIES[next(counter) % 2]}

        fleet_times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            result = fleet.apply({"action": "apply", "changes": [change()]})
            fleet_times.append(time.perf_counter() - start)
            assert result.outcome == "applied", result.report

        members = Registry("bench").members()
        sequential_times = []
        for _ in range(args.rounds):
            body = {"changes": [change()]}
            start = time.perf_counter()
            for member in members:
                with AgentClient(f"unix:{member.path}", "benchmark") as client:
                    client.request("livefix/apply", body)
            sequential_times.append(time.perf_counter() - start)

        fix = Path(runtime) / "fix.py"
        cli_times = []
        for _ in range(args.cli_rounds):
            fix.write_text(BODIES[next(counter) % 2])
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "livefix.cli", "apply", "--service", "bench",
                                   f"{fix}::small", "--module", "target", "--json"], capture_output=True, text=True)
            cli_times.append(time.perf_counter() - start)
            assert done.returncode == 0 and json.loads(done.stdout)["outcome"] == "applied", done.stdout + done.stderr
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    fleet_ms = statistics.median(fleet_times) * 1000
    print(f"Apply one function to {args.workers} workers, Python {sys.version.split()[0]}, "
          f"median of {args.rounds} applies ({args.cli_rounds} for the command)")
    print()
    print("| how | median total | vs two-phase fleet apply |")
    print("| --- | ---: | ---: |")
    rows = [
        ("two-phase `Fleet.apply` (all or nothing)", fleet_ms),
        ("`livefix/apply` on each worker in turn (no all-or-nothing)", statistics.median(sequential_times) * 1000),
        ("`livefix apply --service` command, start-up included", statistics.median(cli_times) * 1000),
    ]
    for label, ms in rows:
        print(f"| {label} | {ms:.1f} ms | {ms / fleet_ms:.2f}x |")


if __name__ == "__main__":
    main()
