"""The adapter attached to a livefix agent (`livefix.listen()` in the target, no debugger).

`attach` with `"livefix": {"connect": ..., "token": ...}`: a real agent in a real process,
the real adapter over stdio, the agent engineer's client underneath.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

from adapter_support import ProcessOutput, clean_env, definition, edit


DOUBLE = ("total = qty * RATE  # @price_body", "total = qty * RATE * 2  # @price_body")


def start_agent_app(workdir: Path, processes: list) -> tuple[str, str, ProcessOutput]:
    address, token = f"unix:{workdir}/agent.sock", secrets.token_hex(16)
    process = subprocess.Popen(
        [sys.executable, str(workdir / "agent_app.py"), address, token],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(), cwd=str(workdir),
    )
    processes.append(process)
    output = ProcessOutput(process)
    output.wait(r"^ready")
    return address, token, output


def test_attach_to_an_agent_fix_and_disconnect(adapter, workdir: Path, processes: list) -> None:
    address, token, output = start_agent_app(workdir, processes)
    output.wait(r"^price=10$")
    dap = adapter()
    dap.attach({"name": "agent", "type": "python", "request": "attach", "livefix": {"connect": address, "token": token}})
    assert "worker" in [t["name"] for t in dap.threads()]
    edit(workdir / "shop.py", *DOUBLE)
    mark, events = output.mark(), dap.mark()
    body = dap.call("livefix/apply", {"changes": [definition(workdir / "shop.py", "price")]})
    assert body["generation"] == 1
    output.wait(r"^price=20$", since=mark)
    assert dap.wait_event("livefix/applied", since=events)["body"]["generation"] == 1
    dap.wait_output(re.escape(body["report"].splitlines()[-1]), since=events, categories=["console"])
    # Errors keep their shape on this route too.
    refused = dap.fail("livefix/apply", {"changes": [{"module": "nosuch", "qualname": "f", "source": "def f():\n    pass\n"}]})
    assert refused["body"]["livefix"]["kind"] == "notFound"
    assert dap.fail("stepIn", {"threadId": 1})["body"]["livefix"]["kind"] == "unsupported"
    dap.disconnect()
    mark = output.mark()
    output.wait(r"^price=20$", since=mark)  # the service runs on, fixed
    assert processes[0].poll() is None


def test_attach_to_an_agent_with_a_wrong_token_is_refused(adapter, workdir: Path, processes: list) -> None:
    address, _token, output = start_agent_app(workdir, processes)
    dap = adapter()
    dap.initialize()
    response = dap.fail("attach", {"livefix": {"connect": address, "token": "not-the-token"}})
    assert (response["body"]["livefix"]["kind"], response["body"]["livefix"]["reason"]) == ("invalid", "unauthorized")
    assert "token" in response["message"]
    mark = output.mark()
    output.wait(r"^price=10$", since=mark)
