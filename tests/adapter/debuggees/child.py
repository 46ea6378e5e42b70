"""Debuggee child process: prints its shop.price(2) forever."""

import os
import time

import shop

print(f"child started pid={os.getpid()}\n", end="", flush=True)
while True:
    print(f"child price={shop.price(2)}\n", end="", flush=True)
    time.sleep(0.1)
