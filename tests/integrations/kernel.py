"""A real Jupyter kernel for the notebook tests: ipykernel started with this interpreter in
a project folder, driven cell by cell through jupyter_client, and what each cell showed
(streams, result, error) collected from iopub as a notebook front end collects it.

A cell is over when both its execute_reply (shell channel) and its `idle` status (iopub)
have arrived: ipykernel flushes the cell's streams before it publishes `idle`, so nothing
the cell printed can arrive later. Waits are blocking reads with a deadline, never sleeps.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

WAIT = 60.0  # generous: the machine is shared; a cell waits on its messages, not on the clock
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class CellResult:
    """What a notebook shows under one cell."""

    stdout: str
    stderr: str
    result: str | None  # the text/plain of the cell's value (Out[n]), None when it has none
    error: str | None  # the traceback as shown (colours removed), None when the cell raised nothing


class _ThisInterpreter(KernelManager):
    """Start ipykernel with the interpreter running the tests, whatever kernelspecs exist."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]


class Kernel:
    """One running kernel whose working directory is `project` (so `import x` finds x.py there)."""

    def __init__(self, project: Path) -> None:
        # Unix sockets (no TCP ports to race for), in a short path: socket paths are limited to ~100 bytes.
        self._runtime = Path(tempfile.mkdtemp(prefix="lfk-", dir="/tmp"))
        self.manager = _ThisInterpreter(transport="ipc", ip=str(self._runtime / "k"))
        self.manager.connection_file = str(self._runtime / "kernel.json")
        env = dict(os.environ)
        env["IPYTHONDIR"] = str(self._runtime / "ipython")  # no profile or startup files of the machine's user
        env.pop("PYTHONSTARTUP", None)
        self.client: BlockingKernelClient | None = None
        try:
            self.manager.start_kernel(cwd=str(project), env=env)
            self.client = self.manager.client()
            self.client.start_channels()
            self.client.wait_for_ready(timeout=WAIT)
        except BaseException:
            self.shutdown()
            raise

    def execute(self, code: str, timeout: float = WAIT) -> CellResult:
        """Run one cell and return what it showed."""
        assert self.client is not None
        msg_id = self.client.execute(code, store_history=True)
        deadline = time.monotonic() + timeout
        stdout: list[str] = []
        stderr: list[str] = []
        result: str | None = None
        error: str | None = None
        idle = False
        while not idle:
            message = self._next(self.client.get_iopub_msg, deadline, code)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                (stdout if content["name"] == "stdout" else stderr).append(content["text"])
            elif kind == "execute_result":
                result = content["data"].get("text/plain")
            elif kind == "error":
                error = _ANSI.sub("", "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        while True:
            reply = self._next(self.client.get_shell_msg, deadline, code)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        return CellResult("".join(stdout), "".join(stderr), result, error)

    def _next(self, read: Any, deadline: float, code: str) -> dict[str, Any]:
        # Read in short blocking slices so that a kernel that died is reported as such,
        # not as a timeout a minute later.
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the kernel did not finish the cell within {WAIT} s:\n{code}")
            try:
                return read(timeout=min(left, 1.0))
            except queue.Empty:
                if not self.manager.is_alive():
                    raise RuntimeError(f"the kernel died while running the cell:\n{code}") from None

    def shutdown(self) -> None:
        try:
            if self.client is not None:
                self.client.stop_channels()
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(self._runtime, ignore_errors=True)
