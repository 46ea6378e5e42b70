"""Debuggee without a debugger: opts in with livefix.listen(address, token), prints shop.price(1)."""

import sys
import threading
import time

import livefix
import shop

livefix.listen(sys.argv[1], token=sys.argv[2])


def work():
    while True:
        print(f"price={shop.price(1)}\n", end="", flush=True)
        time.sleep(0.05)


threading.Thread(target=work, name="worker", daemon=True).start()
print("ready\n", end="", flush=True)
while True:
    time.sleep(1)
