"""Sample program for the end-to-end test: prints an order total in a loop until a stop file appears."""

import os
import sys
import time

import pricing


def main():
    stop_file = sys.argv[1] if len(sys.argv) > 1 else ""
    tick = 0
    while not (stop_file and os.path.exists(stop_file)):
        print(f"tick {tick} total={pricing.total(5, 3)}", flush=True)
        tick += 1
        time.sleep(0.1)  # pacing of the sample program's output, not test synchronisation


if __name__ == "__main__":
    main()
