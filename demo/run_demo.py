"""The livefix demo: a running threaded service fixed from the terminal, without a restart.

Starts demo/service.py (three worker threads pricing orders with a bug, `livefix.listen()`
at start-up), then drives it with the `livefix` command line as a developer would:
frames, apply with verify, history, rollback, then the fix saved to the file and a
diff-based reload. The service's own output shows the price before and after each step.
"""

from __future__ import annotations

import os
import queue
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

DEMO = Path(__file__).resolve().parent


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="livefix-demo-"))
    for name in ("service.py", "pricing.py", "fix.py"):
        shutil.copy(DEMO / name, work / name)
    env = dict(os.environ, LIVEFIX_RUNTIME_DIR=str(work / "run"), LIVEFIX_TOKEN=secrets.token_hex(16),
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    service = subprocess.Popen([sys.executable, str(work / "service.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in service.stdout], daemon=True).start()

    def service_says(count: int) -> list[str]:
        return [lines.get(timeout=15) for _ in range(count)]

    def drain() -> None:
        while not lines.empty():
            lines.get_nowait()

    def livefix(*args: str) -> int:
        command = [sys.executable, "-m", "livefix.cli", *args]
        print(f"\n$ livefix {shlex.join(args)}", flush=True)
        return subprocess.run(command, env=env, cwd=work).returncode

    try:
        ready = service_says(1)[0]
        assert ready.startswith("READY "), ready
        pid = str(service.pid)
        print(f"== a service is running (pid {pid}); its orders get 10% off, but it charges more:")
        print("\n".join(service_says(3)))

        livefix("frames", pid, "--max-frames", "3")

        print("\n== the fix, written in fix.py (pricing.py itself is not touched yet):")
        print((work / "fix.py").read_text().rstrip())
        livefix("apply", pid, "fix.py::discounted", "--module", "pricing",
                "--verify", "discounted(100.0, 0.10) == 90.0")
        drain()
        print("\n== the same process, no restart:")
        print("\n".join(service_says(3)))

        print("\n== every fix can be undone: back to the code the service started with")
        livefix("rollback", pid)
        drain()
        print("\n== the same process, on its old code again:")
        print("\n".join(service_says(3)))

        pricing = work / "pricing.py"
        pricing.write_text(pricing.read_text().replace("price + price * discount", "price - price * discount"))
        print("\n== the fix saved to pricing.py; what differs between the file and what runs:")
        livefix("status", pid)
        livefix("reload", pid, "pricing")
        drain()
        after = service_says(3)
        print("\n".join(after))
        livefix("history", pid)
    finally:
        service.stdin.close()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
        shutil.rmtree(work, ignore_errors=True)
    fixed = all(line.endswith("-> 90.00") for line in after)
    print("\nDEMO OK: the running service was fixed live" if fixed else "\nDEMO FAILED: the service still misprices")
    return 0 if fixed else 1


if __name__ == "__main__":
    sys.exit(main())
