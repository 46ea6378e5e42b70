"""Fixing running programs through the adapter: the custom livefix requests, end to end.

Real `python -m livefix.adapter` over stdio, real debugpy, real debuggee processes
(`debuggees/app.py` prints `price=<shop.price(1)>` from a worker thread every 50 ms).
Fixes are saved to the debuggee's copy of `shop.py` first, as an editor would, and sent
as the definition's source and line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from adapter_support import definition, edit, find_marker, next_price, wait_price


DOUBLE = ("total = qty * RATE  # @price_body", "total = qty * RATE * 2  # @price_body")


def fix_price(workdir: Path) -> dict:
    """Save the doubled price to shop.py; the change for it."""
    edit(workdir / "shop.py", *DOUBLE)
    return definition(workdir / "shop.py", "price")


def test_fix_a_running_threaded_program(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)
    mark = dap.mark()
    body = dap.call("livefix/apply", {"changes": [fix_price(workdir)]})
    assert body["generation"] == 1
    assert [(a["module"], a["qualname"], a["kind"]) for a in body["applied"]] == [("shop", "price", "replaced")]
    assert "Applied generation 1" in body["report"]
    wait_price(dap, 20, since=mark)
    # The event and the console output every client shows.
    event = dap.wait_event("livefix/applied", since=mark)["body"]
    assert (event["action"], event["generation"], event["report"]) == ("apply", 1, body["report"])
    dap.wait_output(re.escape(body["report"].splitlines()[-1]), since=mark, categories=["console"])


def test_dry_run_changes_nothing(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    body = dap.call("livefix/apply", {"changes": [fix_price(workdir)], "dryRun": True})
    assert body["dryRun"] is True
    assert [a["qualname"] for a in body["applied"]] == ["price"]
    assert next_price(dap) == 10
    assert dap.call("livefix/history")["generation"] == 0


def test_breakpoint_then_fix(session, workdir: Path) -> None:
    """Stopped inside the function being fixed: apply, continue; old frame finishes old, next call is new."""
    shop = workdir / "shop.py"
    old_line = find_marker(shop, "price_body")
    dap = session(livefix={"approval": "risky"}, breakpoints={str(shop): [old_line]}, ready=None)
    thread_id = dap.wait_stopped()["body"]["threadId"]
    assert dap.top_frame(thread_id)["line"] == old_line

    edit(shop, "    total = qty * RATE  # @price_body\n",
         "    bonus = qty * RATE  # @price_new\n    total = qty * RATE + bonus  # @price_body\n")
    change = definition(shop, "price")
    refused = dap.fail("livefix/apply", {"changes": [change]})
    assert refused["body"]["livefix"]["kind"] == "approvalRequired"
    impact = refused["body"]["livefix"]["impact"]
    assert [t["id"] for t in impact["threads"] if "shop.price" in t["qualnames"]] == [thread_id]

    body = dap.call("livefix/apply", {"changes": [change], "approved": True})
    assert [t["id"] for t in body["impact"]["threads"]] == [thread_id]
    assert "finish" in body["report"] and "old" in body["report"], body["report"]

    new_line = find_marker(shop, "price_new")
    dap.set_breakpoints(shop, [new_line])
    mark = dap.mark()
    dap.call("continue", {"threadId": thread_id})
    wait_price(dap, 10, since=mark)  # the stopped frame finished on the old code
    stopped = dap.wait_stopped(since=mark)
    frame = dap.top_frame(stopped["body"]["threadId"])
    assert (frame["name"], frame["line"]) == ("price", new_line)  # the new body, at the right line

    dap.set_breakpoints(shop, [])
    mark = dap.mark()
    dap.call("continue", {"threadId": stopped["body"]["threadId"]})
    wait_price(dap, 20, since=mark)


def test_rollback_and_history(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    assert dap.fail("livefix/rollback")["body"]["livefix"]["kind"] == "nothingToRollBack"
    mark = dap.mark()
    dap.call("livefix/apply", {"changes": [fix_price(workdir)]})
    wait_price(dap, 20, since=mark)
    # the apply's own event may come after the new price: wait for it before marking
    assert dap.wait_event("livefix/applied", since=mark)["body"]["action"] == "apply"

    mark = dap.mark()
    body = dap.call("livefix/rollback")
    assert body["generation"] == 0
    assert [(a["qualname"], a["kind"]) for a in body["applied"]] == [("price", "replaced")]
    wait_price(dap, 10, since=mark)
    event = dap.wait_event("livefix/applied", since=mark)["body"]
    assert (event["action"], event["generation"]) == ("rollback", 0)
    dap.wait_output(re.escape(body["report"].splitlines()[-1]), since=mark, categories=["console"])

    history = dap.call("livefix/history")
    assert history["generation"] == 0
    [generation] = history["generations"]
    assert (generation["generation"], generation["action"], generation["status"]) == (1, "apply", "rolledBack")
    assert [c["qualname"] for c in generation["changes"]] == ["price"]
    assert isinstance(generation["time"], float)


def _by_name(threads: list[dict]) -> dict[str, dict]:
    return {t["name"]: t for t in threads}


def test_capture_frames_while_running(session) -> None:
    dap = session()
    wait_price(dap, 10)
    threads = {t["id"]: t["name"] for t in dap.threads()}
    body = dap.call("livefix/captureFrames", {"locals": True, "maxFrames": 5})
    captured = {t["id"]: t for t in body["threads"]}
    # Same ids as the DAP `threads` response, and none of the debugger's own threads.
    assert {i: t["name"] for i, t in captured.items()} == threads
    worker = _by_name(body["threads"])["worker"]
    assert "work" in [f["qualname"] for f in worker["frames"]]
    work = next(f for f in worker["frames"] if f["qualname"] == "work")
    assert work["module"] == "__main__" and work["path"].endswith("app.py") and "n" in work["locals"]
    assert len(worker["frames"]) <= 5
    only = dap.call("livefix/captureFrames", {"threadIds": [worker["id"]]})
    assert [t["id"] for t in only["threads"]] == [worker["id"]]
    # The main thread runs the program's module code, under debugpy's and runpy's runner frames.
    main = _by_name(body["threads"])["MainThread"]
    assert [(f["qualname"], f["path"].endswith("app.py")) for f in main["frames"]] == [("<module>", True)]


def test_capture_frames_while_paused(session, workdir: Path) -> None:
    shop = workdir / "shop.py"
    line = find_marker(shop, "price_body")
    dap = session(breakpoints={str(shop): [line]}, ready=None)
    thread_id = dap.wait_stopped()["body"]["threadId"]
    body = dap.call("livefix/captureFrames", {"threadIds": [thread_id], "locals": True})
    [thread] = body["threads"]
    top = thread["frames"][0]
    assert (thread["id"], top["qualname"], top["module"], top["line"]) == (thread_id, "price", "shop", line)
    assert top["locals"]["qty"] == "1"
    assert thread_id in [t["id"] for t in dap.threads()]


def test_status_then_reload(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    assert dap.call("livefix/status")["modules"] == []
    edit(workdir / "shop.py", *DOUBLE)
    status = dap.call("livefix/status")
    assert [(m["name"], m["changed"]) for m in status["modules"]] == [("shop", ["price"])]
    assert next_price(dap) == 10  # status changes nothing

    mark = dap.mark()
    body = dap.call("livefix/reload", {"modules": ["shop"]})
    assert [(a["module"], a["qualname"], a["kind"]) for a in body["applied"]] == [("shop", "price", "replaced")]
    wait_price(dap, 20, since=mark)
    assert dap.wait_event("livefix/applied", since=mark)["body"]["action"] == "reload"
    assert dap.call("livefix/status")["modules"] == []


# In the debuggee: is shop's running source remembered as identical to shop.py as it is now?
REMEMBERED_CLEAN = (
    "(lambda store, shop: store.matches_file(store.get(shop), __import__('livefix.engine.sources', fromlist=['_'])"
    ".file_stamp(shop.__file__)))(__import__('livefix.engine', fromlist=['_']).default_engine().sources, __import__('shop'))"
)


def test_status_sees_every_change_after_a_remembered_clean_file(session, workdir: Path) -> None:
    """status remembers a module found identical to its file by the file's stamp, so that
    an unchanged file is not read again; whatever changes afterwards is still seen."""
    shop = workdir / "shop.py"
    saved = shop.stat()
    old = saved.st_mtime_ns - 3600 * 10**9  # saved an hour ago: a file saved just now is never remembered
    os.utime(shop, ns=(old, old))
    dap = session(livefix={"approval": "never"})
    evaluate = lambda expression: dap.call("evaluate", {"expression": expression, "context": "repl"})["result"]  # noqa: E731
    assert dap.call("livefix/status")["modules"] == []
    assert evaluate(REMEMBERED_CLEAN) == "True"  # the next status does not read shop.py
    assert dap.call("livefix/status")["modules"] == []

    # The same size and the same modification time: only the inode change time tells.
    original = shop.read_text()
    same_size = original.replace("total = qty * RATE", "total = qty + RATE")
    assert len(same_size) == len(original)
    shop.write_text(same_size)
    os.utime(shop, ns=(old, old))
    assert (shop.stat().st_mtime_ns, shop.stat().st_size) == (old, saved.st_size)
    assert [(m["name"], m["changed"]) for m in dap.call("livefix/status")["modules"]] == [("shop", ["price"])]

    shop.write_text(original)  # back as it runs: clean again, remembered again
    os.utime(shop, ns=(old, old))
    assert dap.call("livefix/status")["modules"] == []
    assert evaluate(REMEMBERED_CLEAN) == "True"
    # What runs changes and the file does not: shop is listed, its file untouched since.
    mark = dap.mark()
    dap.call("livefix/apply", {"changes": [{"module": "shop", "qualname": "price", "source": "def price(qty):\n    return 7\n"}]})
    wait_price(dap, 7, since=mark)
    assert [(m["name"], m["changed"]) for m in dap.call("livefix/status")["modules"]] == [("shop", ["price"])]
    dap.call("livefix/rollback")
    assert dap.call("livefix/status")["modules"] == []


PRICE = "def price(qty):\n    return 5\n"
BAD_CHANGES = {
    "syntax": ({"changes": [{"module": "shop", "qualname": "price", "source": "def price(qty):\n    return (\n"}]}, "line"),
    "notFound": ({"changes": [{"module": "no_such_module", "qualname": "price", "source": PRICE}]}, "module"),
    "incompatible": (
        {"changes": [{"module": "shop", "qualname": "Point", "source":
                      "class Point:\n    __slots__ = ('x', 'y')\n\n    def __init__(self, x):\n        self.x = x\n"}]},
        "qualname",
    ),
    "verifyFailed": ({"changes": [{"module": "shop", "qualname": "price", "source": PRICE}], "verify": "price(1) == 999"}, "verify"),
    "unsupported": ({"changes": [{"module": "builtins", "qualname": "len", "source": "def len(x):\n    return 5\n"}]}, "module"),
    "invalid": ({"changes": [{"module": "shop", "qualname": "price", "source": "def cost(qty):\n    return 5\n"}]}, "qualname"),
    "approvalRequired": ({"changes": [{"module": "shop", "qualname": "price", "source": "def price(qty, extra=0):\n    return 5\n"}]}, "impact"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CHANGES))
def test_every_error_kind_is_a_dap_error_and_changes_nothing(session, kind: str) -> None:
    # "risky" only where approval is the point: elsewhere the worker thread, if caught inside
    # price() at that instant, would turn the expected error into approvalRequired.
    dap = session(livefix={"approval": "risky" if kind == "approvalRequired" else "never"})
    wait_price(dap, 10)
    arguments, detail = BAD_CHANGES[kind]
    mark = dap.mark()
    response = dap.fail("livefix/apply", arguments)
    error = response["body"]["livefix"]
    assert error["kind"] == kind, error
    assert detail in error, error  # the structured details of that kind
    assert "\n" not in response["message"] and response["message"]
    assert response["body"]["error"]["showUser"] is True
    # Proof nothing changed: the program still prints the old price, no generation exists.
    assert next_price(dap) == 10
    assert dap.call("livefix/history")["generation"] == 0
    assert not [e for e in dap.events[mark:] if e.get("event") == "livefix/applied"]


@pytest.mark.parametrize("policy, harmless_needs_approval, signature_needs_approval", [
    ("never", False, False), ("risky", False, True), ("always", True, True),
])
def test_approval_policy(session, workdir: Path, policy, harmless_needs_approval, signature_needs_approval) -> None:
    dap = session(livefix={"approval": policy})
    shop = workdir / "shop.py"
    harmless = fix_price(workdir)
    edit(shop, "def price(qty):", "def price(qty, extra=0):")
    risky = definition(shop, "price")
    for change, needs, value in ((harmless, harmless_needs_approval, 20), (risky, signature_needs_approval, 20)):
        if needs:
            refused = dap.fail("livefix/apply", {"changes": [change]})
            assert refused["body"]["livefix"]["kind"] == "approvalRequired"
            assert refused["body"]["livefix"]["reasons"]
        mark = dap.mark()
        dap.call("livefix/apply", {"changes": [change], "approved": True} if needs else {"changes": [change]})
        wait_price(dap, value, since=mark)
    assert dap.call("livefix/history")["generation"] == 2


def test_audit_log(session, workdir: Path) -> None:
    audit = workdir / "audit.jsonl"
    dap = session(livefix={"approval": "never", "auditLog": "audit.jsonl"})  # relative to the launch cwd
    change = fix_price(workdir)
    dap.call("livefix/apply", {"changes": [change]})
    # Refused before anything runs (syntax): audited as refused; a failed verify as failed.
    dap.fail("livefix/apply", {"changes": [{"module": "shop", "qualname": "price", "source": "def price(:\n"}]})
    dap.fail("livefix/apply", {"changes": [dict(change, source=change["source"].replace("* 2", "* 4"))], "verify": "price(1) == 0"})
    dap.call("livefix/rollback")
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(entry["action"], entry["result"]) for entry in lines] == [
        ("apply", "ok"), ("apply", "refused"), ("apply", "failed"), ("rollback", "ok")]
    assert lines[0]["generation"] == 1
    assert lines[0]["changes"][0]["sha256"] == hashlib.sha256(change["source"].encode()).hexdigest()
    assert lines[1]["error"]["kind"] == "syntax"
    assert lines[2]["error"]["kind"] == "verifyFailed"


def test_concurrent_requests_are_serialised_or_busy(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    change = fix_price(workdir)
    other = dict(change, source=change["source"].replace("* 2", "* 3"))
    seqs = [dap.send("livefix/apply", {"changes": [change]}), dap.send("threads"),
            dap.send("livefix/apply", {"changes": [other]}), dap.send("livefix/history")]
    first, threads, second, history = [dap.response(seq) for seq in seqs]
    assert threads["success"]
    outcomes = [r["body"]["generation"] if r["success"] else r["body"]["livefix"]["kind"] for r in (first, second)]
    assert outcomes in ([1, 2], [1, "busy"], ["busy", 1]), outcomes
    assert history["body"]["generation"] == max(o for o in outcomes if isinstance(o, int))
    expected = 30 if outcomes == [1, 2] else (20 if outcomes[0] == 1 else 30)
    assert next_price(dap) == expected


def test_busy_while_the_process_changes_its_own_code(session, workdir: Path) -> None:
    """Another livefix operation in progress (the program's own livefix.apply): `busy`, nothing changed."""
    dap = session(program="inprocess_app.py", livefix={"approval": "never"})
    wait_price(dap, 10)
    mark = dap.mark()
    (workdir / "go").touch()
    dap.wait_output("verify holding the engine", since=mark)
    response = dap.fail("livefix/apply", {"changes": [fix_price(workdir)]})
    assert response["body"]["livefix"]["kind"] == "busy"
    mark = dap.mark()
    (workdir / "release").touch()
    dap.wait_output("in-process fix applied", since=mark)
    wait_price(dap, 3, since=mark)  # the program's own fix, not ours
    assert [g["changes"][0]["qualname"] for g in dap.call("livefix/history")["generations"]] == ["price"]


def test_debugpy_launch_options_pass_through(adapter, workdir: Path) -> None:
    """`module`, `args`, `env`, `justMyCode` reach debugpy untouched next to the `livefix` option."""
    dap = adapter()
    dap.launch({
        "type": "python", "request": "launch", "module": "app", "cwd": str(workdir), "console": "internalConsole",
        "args": ["--flag", "two words"], "env": {"LIVEFIX_TEST_VALUE": "42"}, "justMyCode": False,
        "livefix": {"approval": "never"},
    })
    dap.wait_output("ready")
    probe = "(__import__('sys').argv[1:], __import__('os').environ.get('LIVEFIX_TEST_VALUE'))"
    assert dap.call("evaluate", {"expression": probe, "context": "repl"})["result"] == "(['--flag', 'two words'], '42')"
    mark = dap.mark()
    dap.call("livefix/apply", {"changes": [fix_price(workdir)]})
    wait_price(dap, 20, since=mark)
