"""Live evidence and canaries through the adapter: real `python -m livefix.adapter`, real debugpy.

The debuggee (`debuggees/evidence_app.py`) calls `shop.price(1)` from a worker thread about
every 2 ms and prints `price=<value>` every 25th call. Fixes are saved to the debuggee's copy
of `shop.py` first, as an editor would, and sent as the definition's source and line.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

from adapter_support import DEFAULT_TIMEOUT, DapClient, definition, edit, wait_price

PROGRAM = "evidence_app.py"
BODY = "    total = qty * RATE  # @price_body\n"
# The regression under test: every call 20 ms slower (and a price that shows who answers).
SLOW = "    import time\n\n    time.sleep(0.02)\n    total = qty * RATE * 3  # @price_body\n"
DOUBLE = "    total = qty * RATE * 2  # @price_body\n"


def evidence_until(dap: DapClient, what: str, holds: Callable[[dict[str, Any]], bool],
                   arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask `livefix/evidence` until its body satisfies `holds` (a deadline, no fixed sleep)."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    pause = threading.Event()
    while True:
        body = dap.call("livefix/evidence", arguments or {})
        if holds(body):
            return body
        assert time.monotonic() < deadline, f"the evidence never showed {what}: {body}"
        pause.wait(0.05)


def test_slow_fix_is_rolled_back_by_its_canary(session, workdir: Path) -> None:
    dap = session(PROGRAM, livefix={"approval": "never"})
    wait_price(dap, 10)
    shop = workdir / "shop.py"
    edit(shop, BODY, SLOW)
    mark = dap.mark()
    body = dap.call("livefix/apply", {"changes": [definition(shop, "price")],
                                      "canary": {"before": 1, "window": 10, "maxP99Ms": 10}})
    assert body["generation"] == 1
    assert body["evidence"]["state"] == "watching"
    assert body["evidence"]["canary"]["maxP99Ms"] == 10

    event = dap.wait_event("livefix/canary", since=mark)["body"]
    assert (event["outcome"], event["generation"]) == ("rolledBack", 1)
    assert re.fullmatch(r"Canary rolled back generation 1: shop\.price: p99 \d+ ms is above the canary's 10 ms"
                        r" \(was [\d.]+ ms\)", event["report"]), event["report"]
    assert event["reasons"] == [event["report"].split(": ", 1)[1]]
    figures = event["evidence"]["shop.price"]
    assert figures["after"]["calls"] >= 20 and figures["after"]["p99Ms"] >= 20, figures
    # Every client shows the verdict in its console, as it shows apply reports.
    dap.wait_output(re.escape(event["report"]), since=mark, categories=["console"])

    # The figures stay readable after the window closed, before and after the fix.
    evidence = evidence_until(dap, "the final figures", lambda b: b["state"] == "final", {"generation": 1})
    assert evidence["canary"]["verdict"]["outcome"] == "rolledBack"
    before, after = evidence["functions"]["shop.price"]["before"], evidence["functions"]["shop.price"]["after"]
    assert before["calls"] >= 20 and before["errors"] == 0 and before["p99Ms"] < after["p99Ms"], before
    assert after["calls"] >= 20 and after["errors"] == 0 and after["p99Ms"] >= 20, after
    assert re.search(r"shop\.price: error rate 0% \(was 0%\), p99 \d+ ms \(was [\d.]+ ms\), [\d,]+ calls",
                     evidence["report"]), evidence["report"]

    history = dap.call("livefix/history")
    assert history["generation"] == 0
    [entry] = history["generations"]
    assert (entry["generation"], entry["status"]) == (1, "rolledBack")
    # The old code answers again (the slow code's price was 30).
    rolled_back = dap.mark()
    wait_price(dap, 10, since=rolled_back)
    assert "price=30" not in dap.output(rolled_back, ["stdout"])


def test_plain_apply_counts_the_new_code(session, workdir: Path) -> None:
    dap = session(PROGRAM, livefix={"approval": "never"})
    wait_price(dap, 10)
    shop = workdir / "shop.py"
    edit(shop, BODY, DOUBLE)
    # A plain fix is not watched unless asked, and the process says so by name.
    unwatched = dap.fail("livefix/evidence", {})
    assert "a fix is watched when it has a canary" in unwatched["body"]["livefix"]["message"]
    mark = dap.mark()
    arguments: dict = {"changes": [definition(shop, "price")]}
    arguments["canary"] = {"window": 30, "compare": False}  # asked for: watched, judged on nothing but failures
    body = dap.call("livefix/apply", arguments)
    assert body["generation"] == 1
    assert body["evidence"]["state"] == "watching"
    assert "canary" in body["evidence"]
    wait_price(dap, 20, since=mark)

    evidence = evidence_until(dap, "calls of the new code", lambda b: b["functions"]["shop.price"]["after"]["calls"] > 0)
    assert (evidence["generation"], evidence["state"]) == (1, "watching")
    assert evidence["since"] <= time.time() < evidence["until"]
    after = evidence["functions"]["shop.price"]["after"]
    assert after["errors"] == 0 and after["errorRate"] == 0
    assert "before" in evidence["functions"]["shop.price"]
    assert re.search(r"shop\.price: error rate 0%.*[\d,]+ calls?", evidence["report"]), evidence["report"]
    by_number = dap.call("livefix/evidence", {"generation": 1})
    assert (by_number["generation"], by_number["since"]) == (1, evidence["since"])
    assert by_number["functions"]["shop.price"]["after"]["calls"] >= after["calls"]  # still counting

    # A generation that was never watched, and nonsense, are refused with the error model.
    missing = dap.fail("livefix/evidence", {"generation": 7})
    assert missing["body"]["livefix"]["kind"] == "notFound"
    bad = dap.fail("livefix/evidence", {"generation": "one"})
    assert bad["body"]["livefix"]["kind"] == "invalid"
