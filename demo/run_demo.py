"""The livefix demo: a threaded service fixed while it runs, then rolled back and fixed again.

Three worker threads serve orders through `pricing.discounted`, which has a bug. livefix
captures what the threads are doing, applies the fix in place (no restart, the order
counter keeps counting), verifies it, rolls it back, and re-applies it from the fixed file
on disk with a diff-based reload.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import livefix

FIX = '''\
def discounted(price: float, discount: float) -> float:
    return round(price - price * discount, 2)
'''


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="livefix-demo-"))
    shutil.copy(Path(__file__).with_name("pricing.py"), work / "pricing.py")
    sys.path.insert(0, str(work))
    livefix.install()  # record module sources from here on, so reloads diff against what runs
    import pricing

    stop = threading.Event()
    lines: list[str] = []
    line_added = threading.Condition()

    def worker(worker_id: int) -> None:
        order = worker_id * 1000
        while not stop.is_set():
            order += 1
            text = pricing.serve(order, 100.0)
            with line_added:
                lines.append(f"[worker-{worker_id}] {text}")
                line_added.notify_all()
            stop.wait(0.2)  # a service's pace, not synchronisation

    def next_lines(count: int) -> list[str]:
        with line_added:
            start = len(lines)
            line_added.wait_for(lambda: len(lines) >= start + count, timeout=10)
            return lines[start : start + count]

    threads = [threading.Thread(target=worker, args=(n,), name=f"worker-{n}", daemon=True) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    try:
        print("== before: the running service charges 110.00 for a 10% discount")
        print("\n".join(next_lines(3)))

        print("\n== what the threads are doing (captured without stopping them)")
        for thread in livefix.capture_frames(max_frames=3)["threads"]:
            if thread["name"].startswith("worker"):
                top = " <- ".join(f"{f['qualname']}:{f['line']}" for f in thread["frames"])
                print(f"  {thread['name']}: {top}")

        print("\n== livefix.apply: replace pricing.discounted in place, verified")
        result = livefix.apply(
            [{"module": "pricing", "qualname": "discounted", "source": FIX}],
            verify="discounted(100.0, 0.10) == 90.0",
        )
        print(result.report)
        served = pricing.ORDERS_SERVED
        print("\n".join(next_lines(3)))

        print("\n== livefix.rollback: back to what was loaded")
        print(livefix.rollback().report)
        print("\n".join(next_lines(3)))

        print("\n== the fix saved to pricing.py, then livefix.reload_module (diff-based, state kept)")
        path = work / "pricing.py"
        path.write_text(path.read_text().replace("price + price * discount", "price - price * discount"))
        print("modified:", [(m["name"], m["changed"]) for m in livefix.modified_modules()])
        print(livefix.reload_module("pricing").report)
        print("\n".join(next_lines(3)))
        print(f"\norders served without a restart: {pricing.ORDERS_SERVED} (counter kept: {pricing.ORDERS_SERVED >= served})")
        print("history:", [(g["generation"], g["action"], g["status"]) for g in livefix.history()["generations"]])
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        shutil.rmtree(work, ignore_errors=True)
    fixed = lines[-1].endswith("-> 90.00")
    print("\nDEMO OK: the running service was fixed live" if fixed else "\nDEMO FAILED")
    sys.exit(0 if fixed else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
