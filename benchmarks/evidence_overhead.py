"""What the evidence recorder costs the code it watches, and everything else, vs its peers.

Workloads (each a loop in the target process):
  small   `return x + 1` called --calls times: the worst case, a call is all there is
  medium  a function doing ~N microseconds of work (a loop over a list): "realistic size"
  raise   a function whose exception unwinds through two frames, caught by the caller:
          exception-heavy code that is NOT watched (the PY_UNWIND / profile hook cost)
Modes:
  plain     recorder never created
  idle      Recorder() exists, watches nothing
  watched   the workload's function is watched
  other     a different function is watched (the cost paid by everything else)
  cprofile  cProfile.Profile enabled (the standard library's peer)
  wrapper   the function wrapped by a hand-written counting/timing decorator
Each mode runs in its own subprocess (a profile hook or monitoring tool stays out of the
others); modes are interleaved over rounds so machine noise falls on all alike. Prints the
median of every timing and the ratio to plain, to paste into a README; asserts nothing.
Usage: python benchmarks/evidence_overhead.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROGRAM = r'''
import functools, json, sys, time
workload, mode, calls, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def small(x):
    return x + 1

DATA = list(range(200))
def medium(x):
    total = 0
    for v in DATA:
        total += v * x
    return total

def deep():
    raise KeyError(1)
def middle():
    deep()
def raising(x):
    try:
        middle()
    except KeyError:
        return x

def elsewhere(x):
    return x

func = {"small": small, "medium": medium, "raise": raising}[workload]
n = {"small": calls, "medium": calls // 100, "raise": calls // 10}[workload]

def wrap(f):
    stats = {"calls": 0, "errors": 0, "time": 0.0}
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        stats["calls"] += 1
        start = time.perf_counter()
        try:
            return f(*args, **kwargs)
        except Exception:
            stats["errors"] += 1
            raise
        finally:
            stats["time"] += time.perf_counter() - start
    return wrapper

if mode == "wrapper":
    func = wrap(func)
if mode in ("idle", "watched", "other"):
    from livefix.engine.evidence import Recorder
    recorder = Recorder()
    if mode == "watched":
        recorder.watch(func.__code__)
    elif mode == "other":
        recorder.watch(elsewhere.__code__)
if mode == "cprofile":
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()

def loop(f, n):
    for i in range(n):
        f(i)

loop(func, n // 10)  # warm up (specialisation, caches)
times = []
for _ in range(samples):
    t0 = time.perf_counter()
    loop(func, n)
    times.append(time.perf_counter() - t0)
if mode == "cprofile":
    profiler.disable()
if mode == "watched":
    assert recorder.figures(func.__code__)["calls"] >= n, "not counted"
print(json.dumps({"best": min(times), "n": n}))
'''

PLAN = {
    "small": ["plain", "idle", "watched", "other", "cprofile", "wrapper"],
    "medium": ["plain", "watched", "other", "cprofile", "wrapper"],
    "raise": ["plain", "idle", "other", "cprofile"],
}


def run(workload: str, mode: str, calls: int, samples: int) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, workload, mode, str(calls), str(samples)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["best"], data["n"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=3, help="timed loops per process (the best is kept)")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for workload, modes in PLAN.items():
            for mode in modes:
                best, n = run(workload, mode, args.calls, args.samples)
                results.setdefault((workload, mode), []).append(best)
                sizes[workload] = n
    version = ".".join(map(str, sys.version_info[:3]))
    backend = "sys.monitoring" if sys.version_info >= (3, 12) else "profile hook"
    print(f"Python {version} ({backend}); median of {args.rounds} runs, each the best of {args.samples} loops\n")
    print("| workload | mode | total ms | ns/call | vs plain | added ns/call |")
    print("|---|---|---:|---:|---:|---:|")
    for workload, modes in PLAN.items():
        n = sizes[workload]
        base = statistics.median(results[(workload, "plain")])
        for mode in modes:
            t = statistics.median(results[(workload, mode)])
            print(
                f"| {workload} ({n:,} calls) | {mode} | {t * 1e3:.1f} | {t / n * 1e9:.0f} | "
                f"{t / base:.2f}x | {(t - base) / n * 1e9:+.0f} |"
            )
    def per_call(workload: str, mode: str) -> float:
        return statistics.median(results[(workload, mode)]) / sizes[workload]

    added = per_call("small", "watched") - per_call("small", "plain")  # the medium rows are noisier
    print(
        f"\nmedium body: {per_call('medium', 'plain') * 1e6:.1f} us per call. Watching adds ~{added * 1e9:.0f} ns "
        f"per call (small), so a body of >= {max(added, 0) / 0.05 * 1e6:.1f} us keeps a watched function under 5%."
    )

if __name__ == "__main__":
    main()
