"""How long a migration stops the world: 10^6 objects on the heap, live instances migrated.

livefix walks every object before the swap (other threads keep running between its
steps) and, inside the swap's atomic window, only the objects made since (the youngest
GC generation). The peer is the straightforward design, walking the whole heap inside
the window. No Python reloader migrates instances at all (jurigged, IPython autoreload,
importlib.reload leave them as they were), so that is the only comparison.

Usage: python benchmarks/instances_pause.py [--objects N] [--instances N] [--runs N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livefix.engine import Engine  # noqa: E402

APP = """
class Cart:
    def __init__(self, owner):
        self.owner = owner

    def total(self):
        return 0
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    sys.path.insert(0, str(root))
    (root / "pause_app.py").write_text(textwrap.dedent(APP))
    engine = Engine()
    engine.install()
    import pause_app  # noqa: E402

    heap = [[i] for i in range(args.objects)]  # container objects: tracked by the collector
    carts = [pause_app.Cart(i) for i in range(args.instances)]
    new = APP.replace("        self.owner = owner\n", "        self.owner = owner\n        self.discount = 0\n")
    naive, scan, window, commit = [], [], [], []
    for _ in range(args.runs):
        began = time.perf_counter()
        found = [o for o in gc.get_objects() if type(o) is pause_app.Cart]
        for cart in found:
            cart.__dict__.setdefault("discount", 0)
        naive.append((time.perf_counter() - began) * 1000)
        for cart in carts:
            cart.__dict__.pop("discount", None)
        began = time.perf_counter()
        result = engine.reload_module("pause_app", source=new, migrate={"Cart": {"discount": 0}})
        commit.append((time.perf_counter() - began) * 1000)
        entry = result.migrated[0]
        assert entry["instances"] == args.instances, entry
        scan.append(entry["scanMs"])
        window.append(entry["windowMs"])
        engine.rollback()
    print(f"Python {sys.version.split()[0]}: {len(heap):,} objects on the heap, {len(carts):,} live Cart instances; "
          f"median of {args.runs} runs")
    print()
    print("| step | median ms |")
    print("|---|---|")
    print(f"| peer design: whole-heap walk + migrate inside the atomic window (pause) | {statistics.median(naive):.2f} |")
    print(f"| livefix: walk + migrate before the swap (other threads run) | {statistics.median(scan):.2f} |")
    print(f"| livefix: catch-up inside the atomic window (pause) | {statistics.median(window):.3f} |")
    print(f"| livefix: whole reload with migration (prepare + commit) | {statistics.median(commit):.2f} |")
    print()
    print(f"pause ratio, peer / livefix: {statistics.median(naive) / max(statistics.median(window), 1e-6):.0f}x")


if __name__ == "__main__":
    main()
