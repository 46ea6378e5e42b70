"""Fixing a definition whose place in the file moved: breakpoints, tracebacks and errors
must name the lines of the saved file, end to end.

The editor saves `shop.py` with three comment lines added above `def price` and a new
body, then sends the definition's new source (with or without its `line`). What runs must
then sit at the lines the user sees: a breakpoint on a line of the new body stops there,
stack frames and tracebacks report it, and a syntax error names the file line of the bad
line. Real `python -m livefix.adapter` over stdio, real debugpy, real debuggee processes
(`debuggees/app.py` prints `price=<shop.price(1)> n=<count>` from a worker thread every
50 ms); breakpoint lines come from `# @marker` comments in the saved file.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import pytest

from adapter_support import DapClient, definition, edit, find_marker, next_price, wait_price


OLD_PRICE = "def price(qty):\n    total = qty * RATE  # @price_body\n    return total\n"
NOTES = "# Prices are per unit; the bonus doubles\n# the rate for every unit bought (ticket\n# SHOP-12).\n"
NEW_PRICE = (
    "def price(qty):\n"
    "    bonus = qty * RATE * 2  # @moved_bonus\n"
    "    total = qty * RATE + bonus  # @price_body\n"
    "    return total\n"
)
NEW_VALUE = 30  # price(1) with the new body; the old one is 10

# Bad new bodies: one the parser rejects, one only the compiler rejects (ast.parse accepts
# `break` outside a loop; compile() refuses it), each with its marker on the bad line.
BAD_BODIES = {
    "parse": "def price(qty):\n    total = qty * RATE RATE  # @bad_line\n    return total\n",
    "compile": "def price(qty):\n    total = qty * RATE\n    break  # @bad_line\n    return total\n",
}


def save_moved_price(shop: Path, new_price: str = NEW_PRICE) -> None:
    """Save shop.py as an editor would: notes above `def price`, which gets `new_price`."""
    original = find_marker(shop, "price_body")
    edit(shop, OLD_PRICE, NOTES + new_price)
    assert find_marker(shop, "price_body" if "@price_body" in new_price else "bad_line") > original


def change_for(shop: Path, with_line: bool) -> dict[str, Any]:
    """The change for `price` as saved, with or without its `line`."""
    change = definition(shop, "price")
    if not with_line:
        del change["line"]
    return change


def bad_change_for(shop: Path, source: str, with_line: bool) -> dict[str, Any]:
    """definition() for a file that does not parse: `source` is saved verbatim in it."""
    text = shop.read_text()
    assert text.count(source) == 1
    change = {"module": "shop", "path": str(shop), "qualname": "price", "source": source}
    if with_line:
        change["line"] = text[: text.index(source)].count("\n") + 1
    return change


def wait_stopped_or_calls(dap: DapClient, since: int, calls: int = 5) -> dict[str, Any] | None:
    """The first `stopped` event after `since`, or None once the worker has printed `calls`
    more prices without stopping (proof that a breakpoint is not hit, without a timeout)."""
    price_line = re.compile(r"^price=\d+ n=\d+$", re.MULTILINE)

    def stopped_or_enough(message: dict[str, Any]) -> bool:
        if message.get("event") == "stopped":
            return True
        if message.get("event") != "output":
            return False
        upto = next(i for i, e in enumerate(dap.events) if e is message)
        text = "".join(e["body"].get("output", "") for e in dap.events[since : upto + 1] if e.get("event") == "output")
        return len(price_line.findall(text)) >= calls

    found = dap.wait_event(predicate=stopped_or_enough, since=since)
    return found if found.get("event") == "stopped" else None


def evaluate(dap: DapClient, expression: str, frame_id: int | None = None) -> Any:
    """The value of a Python literal expression evaluated in the debuggee."""
    arguments: dict[str, Any] = {"expression": expression, "context": "repl"}
    if frame_id is not None:
        arguments["frameId"] = frame_id
    return ast.literal_eval(dap.call("evaluate", arguments)["result"])


def same_file(a: str, b: Path) -> bool:
    return os.path.exists(a) and os.path.samefile(a, b)


@pytest.mark.parametrize("with_line", [True, False], ids=["with_line", "without_line"])
def test_breakpoint_in_a_fixed_definition_that_moved(session, workdir: Path, with_line: bool) -> None:
    """The new body runs at the saved file's lines: a breakpoint there stops there, and
    stack frames and tracebacks name those lines.

    Without `line`, the definition's text is still in the saved file, so the fix must land
    at the file's position too: a debugger user sets breakpoints in the file they saved,
    not in a copy of it as it was when the program started."""
    shop = workdir / "shop.py"
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)

    save_moved_price(shop)
    def_line = definition(shop, "price")["line"]
    bonus_line = find_marker(shop, "moved_bonus")
    total_line = find_marker(shop, "price_body")
    change = change_for(shop, with_line)
    mark = dap.mark()
    body = dap.call("livefix/apply", {"changes": [change]})
    assert [(a["module"], a["qualname"], a["kind"]) for a in body["applied"]] == [("shop", "price", "replaced")]
    wait_price(dap, NEW_VALUE, since=mark)  # the new behaviour is live

    # Everything that reports a line, compared at once so that one run shows every wrong
    # line: the function's code, a traceback, the paused frame, and the code below price
    # (unchanged, but the saved file has it lower now, and the process should agree).
    bonus_text = "bonus = qty * RATE * 2  # @moved_bonus"
    expected: dict[str, Any] = {
        "code (first line, lines)": (def_line, [def_line, bonus_line, total_line, total_line + 1]),
        "Point.__init__ first line": definition(shop, "Point.__init__")["line"],
        "traceback of price(None)": ("TypeError", [("price", bonus_line, bonus_text)]),
        "breakpoint hit": True,
        "stackTrace top frame": ("price", bonus_line, True),
        "stackTrace caller": ("work", find_marker(workdir / "app.py", "print")),
        "captureFrames top frame": ("price", bonus_line),
        "traceback.extract_stack() while paused": [("price", bonus_line, bonus_text)],
    }
    observed: dict[str, Any] = {}

    code = "(lambda f: (f.__code__.co_firstlineno, sorted({l for _, _, l in f.__code__.co_lines() if l})))"
    observed["code (first line, lines)"] = evaluate(dap, f"{code}(__import__('shop').price)")
    observed["Point.__init__ first line"] = evaluate(dap, "__import__('shop').Point.__init__.__code__.co_firstlineno")
    # price(None) fails on its first line; run on a pool thread, whose future keeps the exception.
    observed["traceback of price(None)"] = evaluate(dap, (
        "(lambda e: (type(e).__name__, [(f.name, f.lineno, f.line) for f in __import__('traceback').extract_tb("
        "e.__traceback__) if f.filename.endswith('shop.py')]))(__import__('concurrent.futures').futures"
        ".ThreadPoolExecutor(1).submit(__import__('shop').price, None).exception())"
    ))

    mark = dap.mark()
    dap.set_breakpoints(shop, [bonus_line])
    stopped = wait_stopped_or_calls(dap, since=mark)
    observed["breakpoint hit"] = stopped is not None
    if stopped is not None:
        thread_id = stopped["body"]["threadId"]
        [top, caller, *_] = dap.call("stackTrace", {"threadId": thread_id})["stackFrames"]
        observed["stackTrace top frame"] = (top["name"], top["line"], same_file(top["source"]["path"], shop))
        observed["stackTrace caller"] = (caller["name"], caller["line"])
        captured = dap.call("livefix/captureFrames", {"threadIds": [thread_id]})["threads"][0]["frames"][0]
        observed["captureFrames top frame"] = (captured["qualname"], captured["line"])
        # Evaluated on the paused thread: the paused price frame is on the evaluation's stack.
        observed["traceback.extract_stack() while paused"] = evaluate(dap, (
            "[(f.name, f.lineno, f.line) for f in __import__('traceback').extract_stack() "
            "if f.filename.endswith('shop.py')]"
        ), frame_id=top["id"])
        dap.set_breakpoints(shop, [])
        mark = dap.mark()
        dap.call("continue", {"threadId": thread_id})
    else:
        dap.set_breakpoints(shop, [])
        mark = dap.mark()
    assert observed == expected

    wait_price(dap, NEW_VALUE, since=mark)
    # What runs is what was saved: no drift between the file and the process.
    assert dap.call("livefix/status")["modules"] == []


def python_syntax_error(path: Path) -> SyntaxError:
    """What Python itself reports for the saved file: the positions the user sees."""
    try:
        compile(path.read_text(), str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        return error
    raise AssertionError(f"{path} compiles")


@pytest.mark.parametrize("with_line", [True, False], ids=["with_line", "without_line"])
@pytest.mark.parametrize("bad", sorted(BAD_BODIES))
def test_syntax_error_in_a_definition_that_moved_names_the_file_line(
    session, workdir: Path, bad: str, with_line: bool
) -> None:
    """The `syntax` error names the bad line where the saved file has it (the line the
    editor underlines and a person goes to), its column and its text; nothing changes."""
    shop = workdir / "shop.py"
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)

    save_moved_price(shop, BAD_BODIES[bad])
    bad_line = find_marker(shop, "bad_line")
    python = python_syntax_error(shop)
    assert python.lineno == bad_line and "@bad_line" in (python.text or "")
    mark = dap.mark()
    response = dap.fail("livefix/apply", {"changes": [bad_change_for(shop, BAD_BODIES[bad], with_line)]})
    error = response["body"]["livefix"]
    assert (error["kind"], response["body"]["error"]["id"]) == ("syntax", 7100), error
    observed = {
        "line": error.get("line"), "column": error.get("column"), "text": error.get("text"),
        "same path": same_file(error.get("path") or "", shop),
        "message names the file line": f"shop.py:{bad_line}:" in response["message"],
    }
    expected = {
        "line": bad_line, "column": python.offset, "text": (python.text or "").rstrip("\n"),
        "same path": True, "message names the file line": True,
    }
    assert observed == expected, response["message"]

    # Nothing changed: no generation, no event, the old behaviour.
    assert dap.call("livefix/history")["generation"] == 0
    assert not [e for e in dap.events[mark:] if e.get("event") == "livefix/applied"]
    assert next_price(dap) == 10
