"""What an idle agent costs a service: a call-heavy loop, plain vs livefix.listen() vs debugpy.listen().

Each mode runs in its own subprocess (a tracer, once installed, cannot be fully
removed): the process starts the mode, then times the same call-heavy loop several
times and reports its median. Modes are interleaved over rounds so that machine noise
falls on all of them alike. Prints medians and ratios to plain; asserts nothing.
Usage: python benchmarks/agent_overhead.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PROGRAM = r'''
import json, sys, time, threading
mode, calls, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def add(x):
    return x + 1

def work(n):
    total = 0
    for _ in range(n):
        total = add(total)
    return total

if mode == "livefix":
    import livefix
    livefix.listen(token="benchmark")
elif mode == "debugpy":
    import debugpy
    debugpy.listen(("127.0.0.1", 0))

work(calls)  # warm up
times = []
for _ in range(samples):
    start = time.perf_counter()
    work(calls)
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps(times[len(times) // 2]))
'''

MODES = ("plain", "livefix", "debugpy")


def run(mode: str, calls: int, samples: int, runtime: str) -> float:
    env = {**os.environ, "LIVEFIX_RUNTIME_DIR": runtime}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode, str(calls), str(samples)], capture_output=True,
                          text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    runtime = tempfile.mkdtemp(prefix="lf-bench-", dir="/tmp")
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            results[mode].append(run(mode, args.calls, args.samples, runtime))
    plain = statistics.median(results["plain"])
    print(f"Call-heavy loop ({args.calls:,} calls), Python {sys.version.split()[0]}, "
          f"median of {args.rounds} processes x {args.samples} runs")
    print()
    print("| mode | median loop time | vs plain |")
    print("| --- | ---: | ---: |")
    labels = {"plain": "plain", "livefix": "`livefix.listen()`, idle", "debugpy": "`debugpy.listen()`, no client"}
    for mode in MODES:
        median = statistics.median(results[mode])
        overhead = f"{median / plain:.2f}x ({(median / plain - 1) * 100:+.1f}%)"
        print(f"| {labels[mode]} | {median * 1000:.1f} ms | {overhead} |")


if __name__ == "__main__":
    main()
