"""Debuggee: prints its own shop.price(1) and runs child.py as a subprocess."""

import os
import subprocess
import sys
import time

import shop

child = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")])
print(f"parent pid={os.getpid()} child pid={child.pid}\n", end="", flush=True)
try:
    while True:
        print(f"parent price={shop.price(1)}\n", end="", flush=True)
        time.sleep(0.1)
finally:
    child.kill()
