"""The fleet registry: one directory per service name, one socket file per worker.

Connects workers (`listen(service=NAME)`) and coordinators (`livefix ... --service
NAME`). `<runtime>/services/NAME/` holds `<pid>.sock` for every live worker, a lock
file, and `journal.json`: the changes the fleet is running (fleet generation and
the active applies, oldest first). A coordinator holds the lock for one whole
two-phase apply; a worker holds it while it catches up with the journal and
creates its socket, so a worker is either seen by an apply or started after it,
never half-way. On Windows (or with LIVEFIX_HOST_OS=windows) a worker publishes
`<pid>.addr` (its loopback TCP address) instead of a socket file (see host_os).
Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from livefix.agent import host_os
from livefix.agent.transport import ensure_private_dir, runtime_dir
from livefix.errors import LivefixError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
JOURNAL = "journal.json"
LOCK = ".lock"


@dataclass(frozen=True)
class Member:
    """One registered worker."""

    pid: int
    path: str  # its socket file, or its `.addr` file
    address: str = ""  # what a client connects to: unix:PATH or tcp:HOST:PORT


class Registry:
    """The directory of one service name."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        if not _NAME.match(name) or name in (".", ".."):
            raise LivefixError("invalid", f"a service name is 1-64 letters, digits, `.`, `_` or `-`, not {name!r}")
        self.name = name
        self.dir = (root or runtime_dir()) / "services" / name
        ensure_private_dir(self.dir.parent)
        ensure_private_dir(self.dir)
        # flock is per open file description, so threads of one process share nothing here.
        self._thread_lock = threading.Lock()

    def socket_path(self, pid: int | None = None) -> str:
        return str(self.dir / f"{pid or os.getpid()}.sock")

    def address_path(self, pid: int | None = None) -> str:
        """Where a worker listening on TCP (Windows) publishes its address."""
        return str(self.dir / f"{pid or os.getpid()}{host_os.ADDRESS_FILE}")

    def members(self) -> list[Member]:
        """Every registered worker, oldest pid first; entries of dead processes are removed."""
        found = []
        for entry in sorted([*self.dir.glob("*.sock"), *self.dir.glob(f"*{host_os.ADDRESS_FILE}")], key=lambda p: p.name):
            try:
                pid = int(entry.name.split(".", 1)[0])
                if entry.suffix == ".sock":
                    if not stat.S_ISSOCK(entry.lstat().st_mode):
                        continue
                    address = f"unix:{entry}"
                else:
                    address = host_os.read_address(str(entry)) or ""
                    if not address:
                        continue
            except (ValueError, OSError):
                continue
            if not host_os.process_alive(pid):
                with contextlib.suppress(OSError):
                    entry.unlink()
                continue
            found.append(Member(pid, str(entry), address))
        return sorted(found, key=lambda m: m.pid)

    def unregister(self, path: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

    @contextlib.contextmanager
    def locked(self, timeout: float | None = 30.0) -> Iterator[None]:
        """Hold the service's lock (exclusive across processes)."""
        with self._thread_lock:
            fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _flock(fd, timeout, self.name)
                try:
                    yield
                finally:
                    host_os.unlock(fd)
            finally:
                os.close(fd)

    # -- journal: what a worker that starts now must run --------------------------

    def read_journal(self) -> dict[str, Any]:
        try:
            with open(self.dir / JOURNAL, encoding="utf-8") as handle:
                journal = json.load(handle)
        except FileNotFoundError:
            return {"generation": 0, "entries": []}
        except (OSError, ValueError) as exc:
            raise LivefixError("failed", f"the journal of service {self.name} is unreadable: {exc}") from None
        if not isinstance(journal, dict) or not isinstance(journal.get("entries"), list):
            raise LivefixError("failed", f"the journal of service {self.name} is malformed")
        return journal

    def write_journal(self, journal: dict[str, Any]) -> None:
        """Replace the journal atomically (a crash leaves the old or the new one)."""
        tmp = self.dir / f".{JOURNAL}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(journal, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.dir / JOURNAL)

    def record_apply(self, entry: dict[str, Any]) -> int:
        """Append an apply to the journal; the new fleet generation."""
        journal = self.read_journal()
        generation = int(journal.get("generation", 0)) + 1
        journal["entries"].append({**entry, "generation": generation, "time": time.time()})
        journal["generation"] = generation
        self.write_journal(journal)
        return generation

    def record_rollback(self, to: int | None) -> int:
        """Drop the rolled-back applies (the latest one, or all after `to`); the fleet generation."""
        journal = self.read_journal()
        entries = journal["entries"]
        if to is None:
            entries = entries[:-1]
        else:
            entries = [e for e in entries if int(e.get("generation", 0)) <= to]
        journal["entries"] = entries
        journal["generation"] = int(entries[-1]["generation"]) if entries else 0
        self.write_journal(journal)
        return journal["generation"]


def _flock(fd: int, timeout: float | None, name: str) -> None:
    if timeout is None:
        host_os.lock(fd, blocking=True)
        return
    if host_os.lock(fd, blocking=False):
        return
    # flock has no timeout: wait on a helper thread, bounded by an Event. The helper
    # locks a duplicate of fd (same open file description, so the lock is ours too)
    # and owns that duplicate, so giving up never leaves it with a recycled fd number.
    done = threading.Event()
    state = {"abandoned": False, "failure": None}
    guard = threading.Lock()
    dup = os.dup(fd)

    def take() -> None:
        try:
            host_os.lock(dup, blocking=True)
        except OSError as exc:
            state["failure"] = exc
        with guard:
            if state["abandoned"] and state["failure"] is None:
                host_os.unlock(dup)
            os.close(dup)
            done.set()

    threading.Thread(target=take, name="livefix-registry-lock", daemon=True).start()
    if not done.wait(timeout):
        with guard:
            if not done.is_set():
                state["abandoned"] = True
                raise LivefixError("busy", f"another livefix operation holds service {name!r}; try again", service=name)
    if state["failure"] is not None:
        raise LivefixError("failed", f"cannot lock service {name!r}: {state['failure']}")
