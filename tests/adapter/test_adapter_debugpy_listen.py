"""Attaching: to a process started with `python -m debugpy --listen`, and to child processes.

Real debugpy in real processes: `--listen` starts debugpy's own adapter inside the target,
so this also proves the livefix plugin serves any DAP client and adapter, not only ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_support import (
    DapClient, ProcessOutput, clean_env, definition, edit, free_port, wait_price,
)

DOUBLE = ("total = qty * RATE  # @price_body", "total = qty * RATE * 2  # @price_body")


def start_listening(workdir: Path, processes: list, bytecode: bool | None = None) -> tuple[int, ProcessOutput]:
    port = free_port()
    env = clean_env()
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "debugpy", "--listen", f"127.0.0.1:{port}", str(workdir / "app.py")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(workdir),
    )
    processes.append(process)
    output = ProcessOutput(process)
    output.wait(r"^ready")
    return port, output


def attach_args(port: int, **extra) -> dict:
    return {"name": "attach", "type": "python", "request": "attach",
            "connect": {"host": "127.0.0.1", "port": port}, "justMyCode": True, **extra}


def test_attach_fix_disconnect_and_the_process_runs_on_fixed(workdir: Path, processes: list) -> None:
    port, output = start_listening(workdir, processes)
    output.wait(r"^price=10 ")
    with DapClient.tcp("127.0.0.1", port) as dap:
        dap.attach(attach_args(port, livefix={"approval": "never"}))
        edit(workdir / "shop.py", *DOUBLE)
        mark = output.mark()
        body = dap.call("livefix/apply", {"changes": [definition(workdir / "shop.py", "price")]})
        assert body["generation"] == 1
        output.wait(r"^price=20 ", since=mark)
        dap.disconnect()
    mark = output.mark()
    output.wait(r"^price=20 ", since=mark)  # still running, still fixed, with no client
    assert processes[0].poll() is None


@pytest.mark.parametrize("bytecode", [False, True], ids=["no-bytecode", "bytecode"])
def test_file_saved_before_attach_is_reported_and_reloaded(workdir: Path, processes: list, bytecode: bool) -> None:
    """The fix was saved while the program ran, before any debugger attached: the first
    livefix request after attach must see it, with or without a bytecode cache."""
    port, output = start_listening(workdir, processes, bytecode=bytecode)
    output.wait(r"^price=10 ")
    cache = list((workdir / "__pycache__").glob("shop.*.pyc")) if (workdir / "__pycache__").exists() else []
    assert bool(cache) == bytecode
    edit(workdir / "shop.py", *DOUBLE)
    stamp = (workdir / "shop.py").stat().st_mtime + 2  # newer than the cache, whatever the clock's grain
    os.utime(workdir / "shop.py", (stamp, stamp))
    with DapClient.tcp("127.0.0.1", port) as dap:
        dap.attach(attach_args(port, livefix={"approval": "never"}))
        (shop,) = [m for m in dap.call("livefix/status")["modules"] if m["name"] == "shop"]
        assert shop["changed"] == ["price"]
        mark = output.mark()
        body = dap.call("livefix/reload", {"modules": ["shop"]})
        assert body["generation"] == 1 and [a["qualname"] for a in body["applied"]] == ["price"]
        output.wait(r"^price=20 ", since=mark)
        assert [m for m in dap.call("livefix/status")["modules"] if m["name"] == "shop"] == []
        dap.disconnect()


def test_attach_with_a_bad_livefix_option_is_refused_by_the_plugin(workdir: Path, processes: list) -> None:
    """Through debugpy's stock adapter the plugin itself checks the option."""
    port, output = start_listening(workdir, processes)
    with DapClient.tcp("127.0.0.1", port) as dap:
        dap.initialize()
        response = dap.fail("attach", attach_args(port, livefix={"approval": "sometimes"}))
        assert "approval must be one of never, risky, always" in response["message"]
    mark = output.mark()
    output.wait(r"^price=10 ", since=mark)  # the process runs on, unchanged


def test_child_process_answers_livefix_requests_for_itself(session, workdir: Path) -> None:
    dap = session(program="parent.py", livefix={"approval": "never"}, ready=r"^parent pid=")
    wait_price(dap, 10, prefix="parent price")
    config = dap.wait_event("debugpyAttach")["body"]
    assert config["livefix"] == {"approval": "never"}  # the child inherits the session's option
    child = DapClient.tcp(config["connect"]["host"], config["connect"]["port"], name="child")
    try:
        child.attach(config)
        wait_price(dap, 20, prefix="child price")
        edit(workdir / "shop.py", *DOUBLE)
        mark = dap.mark()
        body = child.call("livefix/apply", {"changes": [definition(workdir / "shop.py", "price")]})
        assert body["generation"] == 1
        wait_price(dap, 40, since=mark, prefix="child price")  # the child runs the fix
        mark = dap.mark()
        wait_price(dap, 10, since=mark, prefix="parent price")  # the parent does not
        assert child.call("livefix/history")["generation"] == 1
        assert dap.call("livefix/history")["generation"] == 0
    finally:
        child.close()


def test_client_that_disconnects_mid_apply_leaves_one_whole_generation(workdir: Path, processes: list) -> None:
    """The connection drops right after an apply is sent: old or new generation, never a mix."""
    port, output = start_listening(workdir, processes)
    shop = workdir / "shop.py"
    # Two definitions in one generation: a mix would show one changed and not the other.
    edit(shop, *DOUBLE)
    edit(shop, '__slots__ = ("x",)', '__slots__ = ("x",)\n    kind = "new"')
    with DapClient.tcp("127.0.0.1", port) as dap:
        dap.attach(attach_args(port, livefix={"approval": "never"}))
        dap.send("livefix/apply", {"changes": [definition(shop, "price"), definition(shop, "Point")]})
    # The client is gone (closed without waiting). A new client looks at the process.
    with DapClient.tcp("127.0.0.1", port) as dap:
        dap.attach(attach_args(port, livefix={"approval": "never"}))
        generation = dap.call("livefix/history")["generation"]
        frame_probe = dap.call("evaluate", {"expression": "(__import__('shop').price(1), getattr(__import__('shop').Point, 'kind', None))", "context": "repl"})
        dap.disconnect()
    assert (generation, frame_probe["result"]) in ((0, "(10, None)"), (1, "(20, 'new')")), (generation, frame_probe)
    mark = output.mark()
    output.wait(r"^price=%d " % (10 if generation == 0 else 20), since=mark)
