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
wall, cpu = [], []
for _ in range(samples):
    start, start_cpu = time.perf_counter(), time.process_time()
    work(calls)
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)  # every thread of the process, agent included
wall.sort(); cpu.sort()
print(json.dumps([wall[len(wall) // 2], cpu[len(cpu) // 2]]))
'''

MODES = ("plain", "livefix", "debugpy")


def run(mode: str, calls: int, samples: int, runtime: str) -> tuple[float, float]:
    env = {**os.environ, "LIVEFIX_RUNTIME_DIR": runtime}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode, str(calls), str(samples)], capture_output=True,
                          text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    runtime = tempfile.mkdtemp(prefix="lf-bench-", dir="/tmp")
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            results[mode].append(run(mode, args.calls, args.samples, runtime))
    def median(mode: str, which: int) -> float:
        return statistics.median(sample[which] for sample in results[mode])

    print(f"Call-heavy loop ({args.calls:,} calls), Python {sys.version.split()[0]}, "
          f"median of {args.rounds} processes x {args.samples} runs")
    print("(wall: elapsed time; CPU: the process's CPU time, all threads, which other load on the machine "
          "does not inflate)")
    print()
    print("| mode | wall | vs plain | CPU | vs plain |")
    print("| --- | ---: | ---: | ---: | ---: |")
    labels = {"plain": "plain", "livefix": "`livefix.listen()`, idle", "debugpy": "`debugpy.listen()`, no client"}
    for mode in MODES:
        cells = []
        for which in (0, 1):
            value, base = median(mode, which), median("plain", which)
            cells.append(f"{value * 1000:.1f} ms | {value / base:.2f}x ({(value / base - 1) * 100:+.1f}%)")
        print(f"| {labels[mode]} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
