"""Sample program with a child process: both print the discount rate in a loop until a stop file appears."""

import os
import subprocess
import sys
import time

import discount


def main():
    stop_file = sys.argv[1]
    role = "child" if sys.argv[2:] == ["child"] else "parent"
    child = None
    if role == "parent":
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), stop_file, "child"])
    tick = 0
    while not os.path.exists(stop_file):
        print(f"{role} tick {tick} rate={discount.rate()}", flush=True)
        tick += 1
        time.sleep(0.1)  # pacing of the sample program's output, not test synchronisation
    if child is not None:
        child.wait()


if __name__ == "__main__":
    main()
