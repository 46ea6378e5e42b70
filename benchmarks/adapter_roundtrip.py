"""Round trip of DAP requests through livefix's adapter and through stock debugpy's, in one run.

For each adapter (`python -m livefix.adapter`, `python -m debugpy.adapter`) and each
debuggee (idle; one thread spinning in pure Python), launch a real debuggee over stdio and
time, from the client's send to the client's receipt of the response:
- `threads` (answered by pydevd: shows the transport itself),
- `livefix/history` (answered by the livefix plugin: transport + plugin),
- `livefix/apply` of one small function (alternating two bodies, so each one is a change).
Through stock debugpy's adapter the livefix plugin still answers (it is installed in this
environment) but the session is not a livefix one, so pydevd's socket keeps Nagle on.

Prints a table of medians and ratios (stock / livefix); asserts nothing.
Usage: python benchmarks/adapter_roundtrip.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.dap import DapClient  # noqa: E402

MODULE = '''\
def small(x):
    return x + 1
'''

PROGRAM = '''\
import sys, threading, time
import target

def spin():
    total = 0
    while True:
        for i in range(10000):
            total += i * i
        total %= 1000003

if "--cpu" in sys.argv:
    threading.Thread(target=spin, name="spinner", daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
'''

ADAPTERS = {
    "livefix": [sys.executable, "-m", "livefix.adapter"],
    "debugpy": [sys.executable, "-m", "debugpy.adapter"],
}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def time_request(dap: DapClient, command: str, arguments: dict | None = None) -> float:
    start = time.perf_counter()
    response = dap.request(command, arguments)
    elapsed = time.perf_counter() - start
    if not response.get("success"):
        raise RuntimeError(f"{command} failed: {response.get('message')}")
    return elapsed


def measure(adapter: str, cpu: bool, workdir: Path, rounds: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    arguments = {
        "program": str(workdir / "program.py"), "cwd": str(workdir), "console": "internalConsole",
        "args": ["--cpu"] if cpu else [], "justMyCode": True,
    }
    if adapter == "livefix":
        arguments["livefix"] = {"approval": "never"}
    with DapClient.stdio(ADAPTERS[adapter], env=env, cwd=str(workdir)) as dap:
        dap.launch(arguments)
        dap.wait_output("ready")
        bodies = [MODULE, MODULE.replace("x + 1", "x + 2")]
        change = {"module": "target", "qualname": "small", "line": 1}
        for _ in range(5):  # warm up both sides (imports, caches, first-use paths)
            time_request(dap, "threads")
            time_request(dap, "livefix/history")
        results = {
            "threads": median_ms([time_request(dap, "threads") for _ in range(rounds)]),
            "livefix/history": median_ms([time_request(dap, "livefix/history") for _ in range(rounds)]),
            "livefix/apply": median_ms([apply_once(dap, dict(change, source=bodies[(i + 1) % 2])) for i in range(rounds)]),
        }
    return results


def apply_once(dap: DapClient, change: dict) -> float:
    """One timed apply; then (untimed) its trailing events, so requests do not overlap them."""
    mark = dap.mark()
    elapsed = time_request(dap, "livefix/apply", {"changes": [change]})
    dap.wait_event("output", lambda e: e["body"].get("category") == "console", since=mark)
    return elapsed


def engine_alone(workdir: Path, rounds: int) -> float:
    """The same apply through livefix.service in a plain process (no debugger, no transport)."""
    import subprocess

    code = (
        "import statistics, sys, time, livefix, target\n"
        "from livefix.service import Service, ServiceOptions\n"
        "service = Service(livefix.install(), ServiceOptions(approval='never'), emit=lambda *a: None)\n"
        f"bodies = [{MODULE!r}, {MODULE.replace('x + 1', 'x + 2')!r}]\n"
        "samples = []\n"
        f"for i in range({rounds}):\n"
        "    start = time.perf_counter()\n"
        "    service.handle('livefix/apply', {'changes': [{'module': 'target', 'qualname': 'small', 'line': 1,"
        " 'source': bodies[(i + 1) % 2]}]})\n"
        "    samples.append(time.perf_counter() - start)\n"
        "print(statistics.median(samples) * 1000)\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=str(workdir), env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "target.py").write_text(MODULE)
        (workdir / "program.py").write_text(PROGRAM)
        table = {}
        for cpu in (False, True):
            for adapter in ADAPTERS:
                table[(adapter, cpu)] = measure(adapter, cpu, workdir, args.rounds)
        alone = engine_alone(workdir, args.rounds)
    print(f"DAP round trip, median of {args.rounds} (ms), Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print()
    print("| request | debuggee | livefix adapter | stock debugpy adapter | stock / livefix |")
    print("|---|---|---:|---:|---:|")
    for cpu in (False, True):
        for request in ("threads", "livefix/history", "livefix/apply"):
            ours, stock = table[("livefix", cpu)][request], table[("debugpy", cpu)][request]
            print(f"| `{request}` | {'CPU-bound' if cpu else 'idle'} | {ours:.2f} | {stock:.2f} | {stock / ours:.1f}x |")
    print()
    print(f"For scale: the same apply through livefix.service in a plain process (no debugger): {alone:.2f} ms")


if __name__ == "__main__":
    main()
