"""Sample program for the end-to-end test: prints a price in a loop until told to stop."""

import os
import sys
import time


def total(price, quantity):
    # Bug: ignores the quantity.
    return price


def main():
    stop_file = sys.argv[1] if len(sys.argv) > 1 else ""
    tick = 0
    while not (stop_file and os.path.exists(stop_file)):
        print(f"tick {tick} total={total(5, 3)}", flush=True)
        tick += 1
        time.sleep(0.2)


if __name__ == "__main__":
    main()
