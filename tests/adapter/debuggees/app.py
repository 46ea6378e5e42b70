"""Debuggee: a worker thread prints shop.price(1) every 50 ms, forever."""

import threading
import time

import shop


# Each line is printed with one write (text and newline together): print()'s separate
# newline write would let the worker's and the main thread's lines interleave.


def work():
    n = 0
    while True:
        n += 1
        print(f"price={shop.price(1)} n={n}\n", end="", flush=True)  # @print
        time.sleep(0.05)


threading.Thread(target=work, name="worker", daemon=True).start()
print("ready\n", end="", flush=True)
while True:
    time.sleep(1)
