"""Did the fix work? Before/after figures of a fix, watched functions, and the canary.

The calls are made by the test itself, between prepare and commit (the old code) and after
the commit (the new code), so the figures are exact; the canary's verdict is awaited on its
own event (`watches.wait`), never by sleeping.
"""

from __future__ import annotations

import gc
import sys
import threading

import pytest

import livefix
from livefix.errors import LivefixError
from tests.engine.conftest import state_of

SERVICE = """
def handle(order_id):
    if order_id % 7 == 0:
        raise ValueError("bad order")
    return order_id


def checkout(order_id):
    return handle(order_id)
"""

FIXED = "def handle(order_id):\n    return order_id\n"
SLOW = "def handle(order_id):\n    __import__('time').sleep(0.004)\n    return order_id\n"
FLAKY = "def handle(order_id):\n    if order_id % 2:\n        raise KeyError(order_id)\n    return order_id\n"


def traffic(module, count, start=0):
    """What the service's users would send: `count` orders, failures counted."""
    failed = 0
    for order_id in range(start, start + count):
        try:
            module.checkout(order_id)
        except (ValueError, KeyError):
            failed += 1
    return failed


def change(module, source):
    return [{"module": module.__name__, "qualname": "handle", "source": source}]


@pytest.fixture
def engine(engine):
    """Every fix watched for 30 s: the default on 3.12+, `install(evidence_window=30)` before."""
    engine.watches.window = 30.0
    return engine


def test_fixes_are_watched_by_default_only_where_it_is_cheap(ws):
    from livefix.engine import Engine

    fresh = Engine()
    try:
        assert fresh.watches.window == (30.0 if sys.version_info >= (3, 12) else 0.0)
        with pytest.raises(LivefixError) as raised:
            fresh.evidence()
        if sys.version_info < (3, 12):
            assert "a fix is watched when it has a canary" in str(raised.value)
    finally:
        fresh.watches.close()


def test_the_fix_report_has_the_error_rate_before_and_after(ws, engine):
    module = ws.module(SERVICE)
    plan = engine.prepare(change(module, FIXED))
    assert traffic(module, 100) == 15  # order ids 0, 7, ..., 98
    result = engine.commit(plan)
    assert result.evidence["state"] == "watching" and result.evidence["window"] == 30
    assert traffic(module, 100, start=100) == 0
    body = engine.evidence()
    figures = body["functions"][f"{module.__name__}.handle"]
    assert (figures["before"]["calls"], figures["before"]["errors"]) == (100, 15)
    assert figures["before"]["errorRate"] == pytest.approx(0.15)
    assert (figures["after"]["calls"], figures["after"]["errors"]) == (100, 0)
    assert body["report"].startswith(f"{module.__name__}.handle: error rate 0% (was 15%), p99 ")
    assert body["report"].endswith("100 calls")
    assert engine.history()["generations"][0]["evidence"]["report"] == body["report"]
    snake = livefix._snake(body)["functions"][f"{module.__name__}.handle"]["before"]
    assert snake["error_rate"] == pytest.approx(0.15) and "p99_ms" in snake and "p50_ms" in snake


def test_a_slower_fix_is_rolled_back_by_the_canary_with_the_figures(ws, engine):
    module = ws.module(SERVICE)
    verdicts = []
    engine.watches.listeners.append(verdicts.append)
    plan = engine.prepare(change(module, SLOW), canary={"window": 60, "min_calls": 5})
    traffic(module, 50)
    result = engine.commit(plan)
    traffic(module, 10, start=1)
    body = engine.watches.wait(result.generation, timeout=60)
    verdict = body["canary"]["verdict"]
    assert verdict["outcome"] == "rolledBack"
    assert verdict["report"].startswith(f"Canary rolled back generation {result.generation}: {module.__name__}.handle: p99 ")
    assert "slower" in verdict["report"]
    assert verdicts == [verdict]
    assert engine.generation == 0
    assert engine.history()["generations"][0]["status"] == "rolledBack"
    with pytest.raises(ValueError):
        module.checkout(7)  # the old code runs again


def test_an_error_rate_above_the_canary_threshold_rolls_back(ws, engine):
    module = ws.module(SERVICE)
    result = engine.apply(change(module, FLAKY), canary={"max_error_rate": 0.1, "min_calls": 10, "compare": False})
    traffic(module, 20, start=1)
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "rolledBack"
    assert "error rate 50% is above the canary's 10%" in verdict["report"]


def test_a_canary_that_holds_passes_at_the_end_of_its_window(ws, engine):
    module = ws.module(SERVICE)
    plan = engine.prepare(change(module, FIXED), canary={"window": 0.5, "minCalls": 5})
    traffic(module, 30)
    result = engine.commit(plan)
    traffic(module, 30, start=1)
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "passed"
    assert "error rate 0% (was 17%)" in verdict["report"]  # 5 of order ids 0..29 fail
    assert engine.generation == result.generation


def test_a_canary_with_too_few_calls_says_it_could_not_judge(ws, engine):
    module = ws.module(SERVICE)
    result = engine.apply(change(module, FIXED), canary={"window": 0.2})
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "inconclusive"
    assert "could not judge: the new code ran 0 times" in verdict["report"]
    assert engine.generation == result.generation  # kept


def test_a_canary_with_nothing_to_compare_with_says_so(ws, engine):
    """New code ran enough, but the old code was not seen and no threshold was given."""
    module = ws.module(SERVICE)
    result = engine.apply(change(module, FIXED), canary={"window": 0.3, "min_calls": 5})
    traffic(module, 10, start=1)
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "inconclusive"
    assert "nothing to compare with (the old code ran 0 times" in verdict["report"]


def test_the_before_window_counts_real_traffic_on_the_old_code(ws, engine):
    module = ws.module(SERVICE)
    stop, started = threading.Event(), threading.Event()

    def users() -> None:
        order_id = 0
        while not stop.is_set():
            traffic(module, 1, start=order_id)
            order_id += 1
            started.set()

    plan = engine.prepare(change(module, FIXED), canary={"before": 0.2, "window": 0.2})
    worker = threading.Thread(target=users)
    worker.start()
    try:
        started.wait(10)
        result = engine.commit(plan)  # waits out the before window first
    finally:
        stop.set()
        worker.join()
    before = engine.watches.wait(result.generation, 60)["functions"][f"{module.__name__}.handle"]["before"]
    assert before["calls"] > 0 and before["errors"] > 0


def test_a_canary_does_not_roll_back_over_a_newer_generation(ws, engine):
    module = ws.module(SERVICE)
    plan = engine.prepare(change(module, SLOW), canary={"window": 60, "min_calls": 5})
    traffic(module, 10)
    result = engine.commit(plan)
    engine.apply([{"module": module.__name__, "qualname": "checkout",
                   "source": "def checkout(order_id):\n    return handle(order_id) * 1\n"}])
    traffic(module, 10, start=1)
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "failed"
    assert f"generation {result.generation + 1} was applied after it" in verdict["report"]
    assert engine.generation == result.generation + 1


def test_rolling_back_by_hand_closes_the_canary(ws, engine):
    module = ws.module(SERVICE)
    result = engine.apply(change(module, FIXED), canary={"window": 60})
    engine.rollback()
    body = engine.watches.wait(result.generation, timeout=60)
    assert body["state"] == "final"
    assert body["canary"]["verdict"]["outcome"] == "rolledBackByUser"


def test_nothing_is_watched_once_the_window_closed(ws, engine):
    module = ws.module(SERVICE)
    plan = engine.prepare(change(module, FIXED), canary={"window": 0.1})
    result = engine.commit(plan)
    engine.watches.wait(result.generation, timeout=60)
    del plan
    gc.collect()
    assert engine.watches.recorder.watching() == 0


def test_a_plan_never_committed_stops_counting(ws, engine):
    module = ws.module(SERVICE)
    plan = engine.prepare(change(module, FIXED))
    assert engine.watches.recorder.watching() == 1
    del plan
    gc.collect()
    assert engine.watches.recorder.watching() == 0


@pytest.mark.parametrize(
    "canary, words",
    [
        ({"window": 0}, "window must be more than 0"),
        ({"max_error_rate": 2}, "fraction of calls"),
        ({"nope": 1}, "no setting 'nope'"),
        ({"min_calls": 0}, "min_calls must be a whole number"),
        ("soon", "must be an object"),
        ({"before": -1}, "before must be a number >= 0"),
    ],
)
def test_a_bad_canary_is_refused_and_changes_nothing(ws, engine, canary, words):
    module = ws.module(SERVICE)
    snapshot = state_of(module)
    with pytest.raises(LivefixError) as raised:
        engine.apply(change(module, FIXED), canary=canary)
    assert raised.value.kind == "invalid" and words in str(raised.value)
    assert state_of(module) == snapshot
    assert engine.generation == 0


def test_a_watched_function_is_followed_across_a_fix(ws, engine):
    module = ws.module(SERVICE)
    engine.watches.window = 0  # only the explicit watch counts here
    engine.watch(f"{module.__name__}:handle")
    traffic(module, 7)
    engine.apply(change(module, FIXED))
    traffic(module, 3, start=1)
    versions = engine.watched()["functions"][f"{module.__name__}.handle"]
    assert [(v["calls"], v["errors"]) for v in versions] == [(7, 1), (3, 0)]
    engine.unwatch(f"{module.__name__}:handle")
    assert engine.watches.recorder.watching() == 0
    with pytest.raises(LivefixError) as raised:
        engine.unwatch(f"{module.__name__}:handle")
    assert raised.value.kind == "notFound"


@pytest.mark.parametrize("target, kind", [("nomodule:f", "notFound"), ("no-colon", "invalid"), (42, "unsupported")])
def test_watching_something_that_is_not_a_function_is_refused(ws, engine, target, kind):
    ws.module(SERVICE)
    with pytest.raises(LivefixError) as raised:
        engine.watch(target)
    assert raised.value.kind == kind


def test_evidence_of_a_generation_that_was_not_watched(ws, engine):
    with pytest.raises(LivefixError) as raised:
        engine.evidence()
    assert "no fix has been watched" in str(raised.value)
    module = ws.module(SERVICE)
    engine.apply(change(module, FIXED))
    with pytest.raises(LivefixError) as raised:
        engine.evidence(7)
    assert raised.value.kind == "notFound" and "watched: 1" in str(raised.value)


def test_code_that_fails_more_often_than_it_works_is_rolled_back_even_with_nothing_to_compare(ws, engine):
    module = ws.module(SERVICE)
    broken = "def handle(order_id):\n    raise LookupError(order_id)\n"
    result = engine.apply(change(module, broken), canary={"min_calls": 5})
    traffic_failures = 0
    for order_id in range(1, 6):
        try:
            module.checkout(order_id)
        except LookupError:
            traffic_failures += 1
    assert traffic_failures == 5
    verdict = engine.watches.wait(result.generation, timeout=60)["canary"]["verdict"]
    assert verdict["outcome"] == "rolledBack"
    assert "error rate 100%, more than half the calls fail" in verdict["report"]
    assert verdict["rollback"]["generation"] == 0  # what runs now, for clients following livefix/applied


def test_a_service_fixed_many_times_keeps_one_evidence_thread_and_no_code_per_closed_window(ws, engine):
    module = ws.module(SERVICE)
    threads_before = threading.active_count()
    engine.history_limit = 5
    for number in range(60):
        engine.apply(change(module, f"def handle(order_id):\n    return order_id + {number}\n"), canary={"window": 60})
        engine.rollback()
    assert threading.active_count() <= threads_before + 1
    assert len(engine.watches._generations) <= 5 + 1  # only what the history keeps
    for watch in engine.watches._generations.values():
        assert watch.closed.wait(60)
        assert all(pair.old is None and pair.new is None for pair in watch.pairs)
    gc.collect()  # a finished plan releases its old code when collected; some sit in reference cycles
    assert engine.watches.recorder.watching() <= 1  # at most the last plan's old code, until it goes


def test_unwatch_returns_what_was_counted(ws, engine):
    module = ws.module(SERVICE)
    engine.watch(f"{module.__name__}:handle")
    traffic(module, 14)
    counted = engine.unwatch(f"{module.__name__}:handle")["functions"][f"{module.__name__}.handle"]
    assert [(v["calls"], v["errors"]) for v in counted] == [(14, 2)]


def test_the_apply_report_says_the_canary_is_judging(ws, engine):
    module = ws.module(SERVICE)
    result = engine.apply(change(module, FIXED), canary={"window": 5})
    assert "canary: judging the new code for 5 s; it rolls back by itself if worse" in result.report
