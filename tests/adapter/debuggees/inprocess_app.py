"""Debuggee that changes its own code with livefix's in-process API while being debugged.

When the file `go` appears next to it, a thread calls livefix.apply with a verify check
that holds the engine (announcing it, then waiting for the file `release`): meanwhile any
other livefix operation in this process must be refused with `busy`.
"""

import os
import threading
import time

import livefix
import shop

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_for_file(name):
    while not os.path.exists(os.path.join(HERE, name)):
        time.sleep(0.02)


def hold_the_engine():
    print("verify holding the engine\n", end="", flush=True)
    wait_for_file("release")
    return True


def in_process_fix():
    wait_for_file("go")
    livefix.apply(
        [{"module": "shop", "qualname": "price", "source": "def price(qty):\n    return qty * 3\n", "line": 6}],
        verify=hold_the_engine,
    )
    print("in-process fix applied\n", end="", flush=True)


def work():
    while True:
        print(f"price={shop.price(1)}\n", end="", flush=True)
        time.sleep(0.05)


threading.Thread(target=in_process_fix, name="fixer", daemon=True).start()
threading.Thread(target=work, name="worker", daemon=True).start()
print("ready\n", end="", flush=True)
while True:
    time.sleep(1)
