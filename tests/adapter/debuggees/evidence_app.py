"""Debuggee for the live-evidence tests: a worker thread calls shop.price(1) about every 2 ms
(busy enough for a canary to judge within a second) and prints `price=<value> n=<calls>`
every 25th call, so a test sees which code answers."""

import threading
import time

import shop


def work():
    n = 0
    while True:
        n += 1
        value = shop.price(1)
        if n % 25 == 0:
            # One write per line (text and newline together), so lines never interleave.
            print(f"price={value} n={n}\n", end="", flush=True)
        time.sleep(0.002)  # the program's own pacing


threading.Thread(target=work, name="worker", daemon=True).start()
print("ready\n", end="", flush=True)
while True:
    time.sleep(1)
