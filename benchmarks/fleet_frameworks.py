"""One fix to a fleet that Dask or Celery runs, against restarting those workers, in one run.

Starts, on this machine:
- a `distributed.LocalCluster` of 8 worker processes (nannies; `livefix.integrations.dask`
  registered), and times `dask.apply` (lock, prepare on every worker, commit on every
  worker, the journal in the worker plugin re-registered everywhere), `dask.rollback`, the
  one-phase peer (`Client.run` of `livefix.apply` on every worker: no all-or-nothing, no
  journal) and `client.restart()` (every worker process started again, until all are back);
- Redis (Debian's redis-server) and one `celery worker --pool prefork --concurrency 8`
  (`livefix.integrations.celery.setup`: 9 processes, the main one and 8 pool processes), and
  times `celery.apply` (lock, discovery, prepare, commit, journal), `celery.rollback`, and
  the restart: warm shutdown of the worker, then start it again until it returns a task.
Each apply alternates between two bodies, so every one is a real change. Prints medians, a
table for docs/fleets.md, and asserts only that every apply applied.
Usage: python benchmarks/fleet_frameworks.py [--rounds N] [--restarts N] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

MODULE = "def small(x):\n    return x + 1\n"
BODIES = ("def small(x):\n    return x + 2\n", "def small(x):\n    return x + 1\n")
TASKS = "import os\n\nfrom fleetbench import target\n\n\ndef call(_=None):\n    return os.getpid(), target.small(1)\n"
APP = """\
import os

from celery import Celery

import livefix.integrations.celery as lfc

app = Celery("benchapp", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BROKER"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
lfc.setup(app, approval="never")

from fleetbench import tasks  # noqa: E402

call = app.task(name="benchapp.call")(tasks.call)
"""


def project() -> Path:
    root = Path(tempfile.mkdtemp(prefix="lf-frameworks-"))
    (root / "fleetbench").mkdir()
    (root / "fleetbench" / "__init__.py").write_text("")
    (root / "fleetbench" / "target.py").write_text(MODULE)
    (root / "fleetbench" / "tasks.py").write_text(TASKS)
    (root / "benchapp.py").write_text(APP)
    sys.path.insert(0, str(root))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return root


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def changes() -> Callable[[], list[dict]]:
    counter = iter(range(10**9))
    return lambda: [{"module": "fleetbench.target", "qualname": "small", "source": BODIES[next(counter) % 2]}]


def bench_dask(workers: int, rounds: int, restarts: int) -> dict[str, list[float]]:
    from distributed import Client, LocalCluster

    import livefix
    import livefix.integrations.dask as lfd
    from fleetbench.tasks import call

    cluster = LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        client.wait_for_workers(workers)
        lfd.register(client, modules=["fleetbench.target", "fleetbench.tasks"], approval="never")
        change = changes()

        def apply() -> None:
            result = lfd.apply(client, change())
            assert result.outcome == "applied", result.report

        def rollback() -> None:
            result = lfd.rollback(client)
            assert result.outcome == "applied", result.report

        applies, rollbacks = [], []
        for _ in range(rounds):
            applies += timed(apply, 1)
            rollbacks += timed(rollback, 1)

        def one_phase() -> None:
            answers = client.run(lambda c: livefix.apply(c).generation, change())
            assert len(answers) == workers

        naive = timed(one_phase, rounds)

        def restart() -> None:
            client.restart()  # returns once every worker is back
            assert len(client.run(call)) == workers

        restarted = timed(restart, restarts)
        return {"apply": applies, "rollback": rollbacks, "one-phase": naive, "restart": restarted}
    finally:
        client.close()
        cluster.close()


class RedisServer:
    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root),
                                         "--save", "", "--appendonly", "no", "--loglevel", "notice"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:  # it says when it listens
            if "Ready to accept connections" in line:
                break
        else:
            raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_celery(root: Path, url: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "BENCH_BROKER": url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "benchapp", "worker", "--pool", "prefork", "--concurrency",
         str(concurrency), "-n", "bench@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def stop_celery(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM to the main process: Celery's warm shutdown
        process.wait(60)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # a pool process it left behind
    except ProcessLookupError:
        pass


def bench_celery(root: Path, workers: int, rounds: int, restarts: int) -> dict[str, list[float]]:
    from celery import Celery

    import livefix.integrations.celery as lfc

    redis = RedisServer(root)
    client = Celery("bench-client", broker=redis.url, backend=redis.url)
    worker = start_celery(root, redis.url, workers)
    try:
        client.send_task("benchapp.call").get(timeout=60)
        ready = time.monotonic() + 60
        while len(lfc.status(redis.url)) < workers + 1:  # every pool process has joined the fleet
            assert time.monotonic() < ready, "the pool processes did not join the fleet"
        change = changes()

        def apply() -> None:
            result = lfc.apply(redis.url, change())
            assert result.outcome == "applied" and len(result.workers) == workers + 1, result.report

        def rollback() -> None:
            result = lfc.rollback(redis.url)
            assert result.outcome == "applied", result.report

        applies, rollbacks = [], []
        for _ in range(rounds):
            applies += timed(apply, 1)
            rollbacks += timed(rollback, 1)

        def restart() -> None:
            nonlocal worker
            stop_celery(worker)
            worker = start_celery(root, redis.url, workers)
            client.send_task("benchapp.call").get(timeout=120)  # serving tasks again

        restarted = timed(restart, restarts)
        return {"apply": applies, "rollback": rollbacks, "restart": restarted}
    finally:
        stop_celery(worker)
        redis.stop()


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    root = project()
    try:
        dask = bench_dask(args.workers, args.rounds, args.restarts)
        celery = bench_celery(root, args.workers, args.rounds, args.restarts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.workers
    print(f"\nmedians of {args.rounds} applies and rollbacks, {args.restarts} restarts; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"| how (one function) | Dask `LocalCluster`, {n} worker processes | Celery prefork, {n} pool processes + main |")
    print("| --- | ---: | ---: |")
    print(f"| `livefix apply`, two-phase (all or nothing, journalled) | {ms(dask['apply'])} | {ms(celery['apply'])} |")
    print(f"| `livefix rollback` | {ms(dask['rollback'])} | {ms(celery['rollback'])} |")
    print(f"| one-phase `livefix.apply` in every process (`Client.run`; no all-or-nothing, no catch-up) "
          f"| {ms(dask['one-phase'])} | n/a: Celery's control reaches main processes only |")
    print(f"| restart the workers (until they serve tasks again) | {ms(dask['restart'])} | {ms(celery['restart'])} |")
    ratio = [statistics.median(t["restart"]) / statistics.median(t["apply"]) for t in (dask, celery)]
    print(f"| restart / two-phase apply | {ratio[0]:.0f}x | {ratio[1]:.0f}x |")

if __name__ == "__main__":
    main()
