"""Helpers shared by the adapter tests (fixtures are in conftest.py)."""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support`

from support.dap import DEFAULT_TIMEOUT, DapClient, DapError, DapTimeout, find_marker  # noqa: E402,F401

DEBUGGEES = Path(__file__).resolve().parent / "debuggees"
ADAPTER = [sys.executable, "-m", "livefix.adapter"]






def clean_env() -> dict[str, str]:
    """The environment for adapters and debuggees: nothing pointing at the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch_args(workdir: Path, program: str = "app.py", livefix: Any = None, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "livefix test", "type": "python", "request": "launch",
        "program": str(workdir / program), "cwd": str(workdir), "console": "internalConsole",
        "justMyCode": True, "env": {"PYTHONUNBUFFERED": "1"},
    }
    if livefix is not None:
        args["livefix"] = livefix
    args.update(extra)
    return args


def definition(path: Path, qualname: str) -> dict[str, Any]:
    """The change for `qualname` as it is now in the file: {module, qualname, source, line}."""
    text = path.read_text()
    tree = ast.parse(text)
    node: Any = tree
    for part in qualname.split("."):
        node = next(
            n for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part
        )
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    lines = text.splitlines(keepends=True)[first - 1 : node.end_lineno]
    return {"module": path.stem, "path": str(path), "qualname": qualname, "source": "".join(lines), "line": first}


def edit(path: Path, old: str, new: str) -> None:
    """Save an edit to a debuggee file, as an editor would (exactly one occurrence)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def wait_price(dap: DapClient, value: int, since: int = 0, prefix: str = "price", timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until the debuggee prints `<prefix>=<value>` after event index `since`."""
    dap.wait_output(rf"^{prefix}={value}\b", since=since, timeout=timeout)


def next_price(dap: DapClient, prefix: str = "price", timeout: float = DEFAULT_TIMEOUT) -> int:
    """The value in the next `<prefix>=N` line printed from now on (proof of current behaviour)."""
    mark = dap.mark()
    return int(dap.wait_output(rf"^{prefix}=(\d+)", since=mark, timeout=timeout).group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessOutput:
    """Collects a subprocess's stdout lines on a thread; wait for a regex with a timeout."""

    def __init__(self, process: subprocess.Popen[str], stream: Any = None) -> None:
        self.process = process
        self.stream = stream if stream is not None else process.stdout
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.stream is not None
        for line in self.stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def wait(self, pattern: str, since: int = 0, timeout: float = DEFAULT_TIMEOUT) -> str:

        regex = re.compile(pattern)

        def found() -> str | None:
            return next((line for line in self.lines[since:] if regex.search(line)), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None or self.process.poll() is not None, timeout) or not found():
                raise DapTimeout(f"process output never matched {pattern!r}; last lines: {self.lines[-5:]}")
            return found()  # type: ignore[return-value]
