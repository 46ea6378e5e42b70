"""The adapter route on every other supported CPython pyenv provides (3.10, 3.12, 3.13).

The debuggee runs on that interpreter, with the adapter's debugpy (as debugpy always does)
and without livefix in its environment, so livefix arrives by `evaluate` injection (before
the program starts); then breakpoint-then-fix must work as on 3.11, with the fix saved to
disk first (3.12+ debug with sys.monitoring, not settrace).
Interpreters that are absent are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from adapter_support import definition, edit, find_marker, launch_args, wait_price



def pyenv_python(version: str) -> str | None:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    found = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout.split()
    matching = sorted((v for v in found if v.startswith(version + ".")), key=lambda v: [int(p) for p in v.split(".")])
    if not matching:
        return None
    root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
    path = Path(root) / "versions" / matching[-1] / "bin" / "python"
    return str(path) if path.exists() else None


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_breakpoint_then_fix_on_another_python(adapter, workdir: Path, version: str) -> None:
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} from pyenv on this machine")
    shop = workdir / "shop.py"
    old_line = find_marker(shop, "price_body")
    dap = adapter()
    dap.launch(launch_args(workdir, python=python, livefix={"approval": "never"}), breakpoints={str(shop): [old_line]})
    thread_id = dap.wait_stopped()["body"]["threadId"]
    assert dap.call("evaluate", {"expression": "__import__('sys').version_info[:2]", "context": "repl"})["result"] == \
        "(%s, %s)" % tuple(version.split("."))
    # The fix, saved: one line longer, so its last line exists only in the new code.
    edit(shop, "    total = qty * RATE  # @price_body\n    return total\n",
         "    bonus = 5\n    total = qty * RATE  # @price_body\n    return total + bonus  # @new_only\n")
    new_line = find_marker(shop, "new_only")
    assert new_line > old_line + 1  # past the end of the old body
    body = dap.call("livefix/apply", {"changes": [definition(shop, "price")]})
    assert [t["id"] for t in body["impact"]["threads"]] == [thread_id]
    dap.set_breakpoints(shop, [new_line])
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    wait_price(dap, 10, since=mark)  # the paused frame finished on the old code
    stopped = dap.wait_stopped(since=mark)
    frame = dap.top_frame(stopped["body"]["threadId"])
    assert (frame["name"], frame["line"]) == ("price", new_line)
    dap.set_breakpoints(shop, [])
    mark = dap.mark()
    dap.call("continue", {"threadId": stopped["body"]["threadId"]})
    wait_price(dap, 15, since=mark)
