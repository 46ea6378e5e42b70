"""Requests that are refused before anything changes, through the real adapter.

Real `python -m livefix.adapter` over stdio, real debugpy, real debuggee (`debuggees/app.py`
prints `price=<shop.price(1)>` every 50 ms). Every refusal is a structured DAP error, and the
debuggee proves nothing changed: it still prints the old price, runs generation 0, and
`shop` still defines everything it did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter_support import DapClient, definition, edit, next_price, wait_price

PRICE = "def price(qty):\n    return 5\n"
# What `shop` defines, read in the debuggee: a whole-module replacement would drop some.
SHOP_NAMES = "sorted(n for n in vars(__import__('shop')) if not n.startswith('__'))"


def _unchanged(dap: DapClient, names: str, mark: int) -> None:
    assert next_price(dap) == 10
    assert dap.call("livefix/history")["generation"] == 0
    assert dap.call("evaluate", {"expression": SHOP_NAMES, "context": "repl"})["result"] == names
    assert not [e for e in dap.events[mark:] if e.get("event") == "livefix/applied"]


def _refused(dap: DapClient, arguments: dict[str, Any]) -> dict[str, Any]:
    names = dap.call("evaluate", {"expression": SHOP_NAMES, "context": "repl"})["result"]
    mark = dap.mark()
    response = dap.fail("livefix/apply", arguments)
    error = response["body"]["livefix"]
    assert error["kind"] == "invalid", error
    assert response["message"] and "\n" not in response["message"]
    assert response["body"]["error"]["showUser"] is True
    _unchanged(dap, names, mark)
    return error


@pytest.mark.parametrize("qualname", ["", "  ", None, 7])
def test_empty_or_non_text_qualname_is_not_the_whole_module(session, qualname) -> None:
    """Under `never`, `qualname: ""` used to replace the whole module (dropping `Point`, `RATE`)."""
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)
    error = _refused(dap, {"changes": [{"module": "shop", "qualname": qualname, "source": PRICE}]})
    assert "qualname" in error["message"] and error["index"] == 0


@pytest.mark.parametrize("line", [0, -1, True, "3"])
def test_line_below_one_is_refused(session, workdir: Path, line) -> None:
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)
    change = dict(definition(workdir / "shop.py", "price"), source=PRICE, line=line)
    error = _refused(dap, {"changes": [change]})
    assert "line" in error["message"]


def test_module_and_path_that_disagree_are_refused(session, workdir: Path) -> None:
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)
    # `shop` runs shop.py; app.py is another file of this process (the running script).
    error = _refused(dap, {"changes": [{"module": "shop", "path": str(workdir / "app.py"), "qualname": "price", "source": PRICE}]})
    assert (error["module"], error["path"], error["moduleFile"]) == ("shop", str(workdir / "app.py"), str(workdir / "shop.py"))
    assert "disagree" in error["message"]


@pytest.mark.parametrize("limit, changes", [
    ("maxSourceBytes", [{"module": "shop", "qualname": "price",
                         "source": "def price(qty):\n    return 5\n" + "# padding\n" * 110_000}]),
    # Under the limit in characters, over it in bytes (3 bytes each in UTF-8).
    ("maxSourceBytes", [{"module": "shop", "qualname": "price",
                         "source": "def price(qty):\n    return 5\n# " + "\u20ac" * 400_000 + "\n"}]),
    ("maxChanges", [{"module": "shop", "qualname": "price", "source": PRICE}] * 257),
])
def test_the_agents_limits_hold_in_the_adapter(session, limit: str, changes: list) -> None:
    dap = session(livefix={"approval": "never"})
    wait_price(dap, 10)
    error = _refused(dap, {"changes": changes})
    assert error["limit"] == limit


def test_whole_module_apply_needs_approval(session, workdir: Path) -> None:
    """A change without `qualname` replaces everything the module defines: risky, even when
    no thread runs it and no signature changes; approved, it goes ahead. (A reload, the
    module brought in line with its own file, is not: tests/engine/test_bad_input.py.)"""
    dap = session(livefix={"approval": "risky"})
    wait_price(dap, 10)
    shop = workdir / "shop.py"
    edit(shop, "total = qty * RATE  # @price_body", "total = qty * RATE * 2  # @price_body")
    change = {"module": "shop", "source": shop.read_text()}
    names = dap.call("evaluate", {"expression": SHOP_NAMES, "context": "repl"})["result"]
    mark = dap.mark()
    refused = dap.fail("livefix/apply", {"changes": [change]})
    error = refused["body"]["livefix"]
    assert error["kind"] == "approvalRequired"
    assert any("replaces the whole of shop" in reason for reason in error["reasons"]), error["reasons"]
    _unchanged(dap, names, mark)

    mark = dap.mark()
    body = dap.call("livefix/apply", {"changes": [change], "approved": True})
    assert [(a["qualname"], a["kind"]) for a in body["applied"]] == [("price", "replaced")]
    wait_price(dap, 20, since=mark)
