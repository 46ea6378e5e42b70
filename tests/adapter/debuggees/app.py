"""Debuggee: a worker thread prints shop.price(1) every 50 ms, forever."""

import threading
import time

import shop


def work():
    n = 0
    while True:
        n += 1
        print(f"price={shop.price(1)} n={n}", flush=True)  # @print
        time.sleep(0.05)


threading.Thread(target=work, name="worker", daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
