"""The demo's service: three worker threads serving orders, with the livefix agent listening.

Run by run_demo.py; prints one line per order, and `READY <agent address>` once listening."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import livefix  # noqa: E402
import pricing  # noqa: E402

stop = threading.Event()
print_lock = threading.Lock()


def worker(worker_id: int) -> None:
    order = worker_id * 1000
    while not stop.is_set():
        order += 1
        line = pricing.serve(order, 100.0)
        with print_lock:
            print(f"[worker-{worker_id}] {line}", flush=True)
        stop.wait(0.15)  # a service's pace, not synchronisation


def main() -> None:
    agent = livefix.listen()  # one line: the agent serves livefix requests on a private socket
    print(f"READY {agent.address}", flush=True)
    threads = [threading.Thread(target=worker, args=(n,), name=f"worker-{n}") for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    sys.stdin.read()  # run until the demo closes our stdin
    stop.set()
    for thread in threads:
        thread.join()
    agent.close()


if __name__ == "__main__":
    main()
