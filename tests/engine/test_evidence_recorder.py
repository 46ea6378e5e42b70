"""The evidence recorder against the real interpreter hooks: sys.monitoring on 3.12+, profile hooks on 3.10/3.11."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from typing import Any, Iterator

import pytest

from livefix.engine.evidence import LATENCY_SAMPLES, Recorder, summarize

MONITORING = sys.version_info >= (3, 12)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    before = sys.getprofile()
    rec = Recorder()
    yield rec
    rec.close()
    assert sys.getprofile() is before


def flaky(i: int) -> int:
    if i % 3 == 0:
        raise ValueError(i)
    return i


def call_all(func: Any, n: int) -> None:
    for i in range(n):
        try:
            func(i)
        except Exception:
            pass


def depth(n: int) -> int:
    return 0 if n == 0 else depth(n - 1) + 1


def numbers(n: int) -> Iterator[int]:
    for i in range(n):
        yield i


def failing_generator() -> Iterator[int]:
    yield 1
    raise KeyError("x")


def plain(x: int) -> int:
    return x + 1


def thrower() -> None:
    raise IndexError


def test_exact_calls_and_errors(recorder: Recorder) -> None:
    assert recorder.figures(flaky.__code__) is None
    recorder.watch(flaky.__code__)
    call_all(flaky, 300)
    fig = recorder.figures(flaky.__code__)
    assert fig is not None
    assert (fig["calls"], fig["errors"], fig["running"]) == (300, 100, 0)
    assert fig["errorRate"] == pytest.approx(1 / 3)
    assert fig["p50Ms"] is not None and fig["p99Ms"] is not None and 0 <= fig["p50Ms"] <= fig["p99Ms"]
    assert fig["errorTypes"] == ({"ValueError": 100} if MONITORING else None)
    assert fig["since"] > 1.6e9


def test_empty_figures_and_summary(recorder: Recorder) -> None:
    recorder.watch(plain.__code__)
    fig = recorder.figures(plain.__code__)
    assert fig is not None and fig["calls"] == 0 and fig["errorRate"] == 0.0 and fig["p50Ms"] is None
    plain(1)
    text = summarize(fig, recorder.figures(plain.__code__))
    assert text.startswith("before: 0 calls, 0 errors (0.0%), p50 -; after: 1 calls, 0 errors (0.0%), p50 ")


def test_before_and_after_a_swap_are_separate(recorder: Recorder) -> None:
    namespace: dict[str, Any] = {}
    exec("def f(i):\n    if i % 3 == 0:\n        raise ValueError(i)\n    return i\n", namespace)
    exec("def f(i):\n    return i\n", namespace)
    func = types.FunctionType(flaky.__code__, globals(), "func")
    old, new = flaky.__code__, namespace["f"].__code__
    recorder.watch(old)
    recorder.watch(new)
    call_all(func, 30)
    func.__code__ = new  # what livefix does: the same function object now runs new code
    call_all(func, 12)
    before, after = recorder.figures(old), recorder.figures(new)
    assert before is not None and after is not None
    assert (before["calls"], before["errors"]) == (30, 10)
    assert (after["calls"], after["errors"], after["errorRate"]) == (12, 0, 0.0)


def test_exact_counts_from_four_threads(recorder: Recorder) -> None:
    recorder.watch(flaky.__code__)
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        call_all(flaky, 3000)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fig = recorder.figures(flaky.__code__)
    assert fig is not None
    assert (fig["calls"], fig["errors"], fig["running"]) == (12000, 4000, 0)


def test_threads_that_existed_before_watch_are_counted(recorder: Recorder) -> None:
    go, done, release = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:
        go.wait()
        call_all(plain, 500)
        done.set()
        release.wait()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        recorder.watch(plain.__code__)
        assert recorder.all_threads  # CPython 3.10/3.11 reach existing threads through the C API
        go.set()
        assert done.wait(10)
        fig = recorder.figures(plain.__code__)
        assert fig is not None and fig["calls"] == 500
        recorder.close()  # hooks come out of the other thread too, while it still runs
        assert recorder.watching() == 0
    finally:
        release.set()
        thread.join()


def test_running_counts_calls_in_flight(recorder: Recorder) -> None:
    entered, release = threading.Event(), threading.Event()

    def blocked() -> None:
        entered.set()
        release.wait()

    recorder.watch(blocked.__code__)
    thread = threading.Thread(target=blocked)
    thread.start()
    assert entered.wait(10)
    fig = recorder.figures(blocked.__code__)
    assert fig is not None and (fig["calls"], fig["running"]) == (1, 1)
    release.set()
    thread.join()
    fig = recorder.figures(blocked.__code__)
    assert fig is not None and (fig["calls"], fig["running"]) == (1, 0)


def test_calls_in_flight_when_watching_begins_count_as_running(recorder: Recorder) -> None:
    entered, release = threading.Event(), threading.Event()

    def old_code() -> None:
        entered.set()
        release.wait()

    thread = threading.Thread(target=old_code)
    thread.start()
    assert entered.wait(10)
    recorder.watch(old_code.__code__)  # as at apply time: a thread still runs the old code
    fig = recorder.figures(old_code.__code__)
    assert fig is not None and (fig["calls"], fig["running"]) == (0, 1)
    release.set()
    thread.join()
    fig = recorder.figures(old_code.__code__)
    assert fig is not None and (fig["calls"], fig["running"], fig["errors"]) == (0, 0, 0)


def test_recursion(recorder: Recorder) -> None:
    recorder.watch(depth.__code__)
    assert depth(20) == 20
    fig = recorder.figures(depth.__code__)
    assert fig is not None and (fig["calls"], fig["errors"], fig["running"]) == (21, 0, 0)


def test_generators_count_one_call_from_start_to_end(recorder: Recorder) -> None:
    recorder.watch(numbers.__code__)
    recorder.watch(failing_generator.__code__)
    assert list(numbers(5)) == [0, 1, 2, 3, 4]
    it = numbers(3)
    next(it)
    mid = recorder.figures(numbers.__code__)
    assert mid is not None and (mid["calls"], mid["running"]) == (2, 1)
    assert list(it) == [1, 2]
    with pytest.raises(KeyError):
        list(failing_generator())
    fig, bad = recorder.figures(numbers.__code__), recorder.figures(failing_generator.__code__)
    assert fig is not None and (fig["calls"], fig["errors"], fig["running"]) == (2, 0, 0)
    assert bad is not None and (bad["calls"], bad["errors"], bad["running"]) == (1, 1, 0)
    if MONITORING:
        assert bad["errorTypes"] == {"KeyError": 1}


def test_closed_generator_is_not_an_error(recorder: Recorder) -> None:
    def guarded() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            pass

    recorder.watch(guarded.__code__)
    it = guarded()
    next(it)
    it.close()
    fig = recorder.figures(guarded.__code__)
    # 3.10/3.11 see an exception leave the finally block but not its type: GeneratorExit cannot be told apart.
    assert fig is not None and (fig["calls"], fig["errors"], fig["running"]) == (1, 0 if MONITORING else 1, 0)


def test_closed_bare_generator(recorder: Recorder) -> None:
    recorder.watch(numbers.__code__)
    it = numbers(3)
    next(it)
    it.close()
    fig = recorder.figures(numbers.__code__)
    assert fig is not None and (fig["calls"], fig["errors"]) == (1, 0)
    # 3.13 closes a generator with no try/with around its yield without running it (no event at all);
    # 3.10's profile hook reports that exit exactly like a yield: the call keeps counting as running.
    assert fig["running"] == (1 if sys.version_info >= (3, 13) or sys.version_info < (3, 11) else 0)


def test_coroutine_latency_covers_its_awaits(recorder: Recorder) -> None:
    async def handler(gate: asyncio.Future[int]) -> int:
        await asyncio.sleep(0.02)  # the latency being measured
        return await gate

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        gates = [loop.create_future() for _ in range(3)]
        tasks = [asyncio.ensure_future(handler(g)) for g in gates]
        await asyncio.sleep(0)
        started = recorder.figures(handler.__code__)
        assert started is not None and (started["calls"], started["running"]) == (3, 3)
        for i, gate in enumerate(gates):
            gate.set_result(i)
        return await asyncio.gather(*tasks)

    recorder.watch(handler.__code__)
    assert asyncio.run(main()) == [0, 1, 2]
    fig = recorder.figures(handler.__code__)
    assert fig is not None and (fig["calls"], fig["errors"], fig["running"]) == (3, 0, 0)
    assert fig["p50Ms"] is not None and fig["p50Ms"] >= 15


def test_cancelled_coroutine_ends(recorder: Recorder) -> None:
    async def waiter(gate: asyncio.Event) -> None:
        await gate.wait()

    async def main() -> None:
        task = asyncio.ensure_future(waiter(asyncio.Event()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    recorder.watch(waiter.__code__)
    asyncio.run(main())
    fig = recorder.figures(waiter.__code__)
    assert fig is not None and (fig["calls"], fig["errors"], fig["running"]) == (1, 1, 0)
    if MONITORING:
        assert fig["errorTypes"] == {"CancelledError": 1}


def test_watch_is_refcounted_and_unwatch_keeps_figures(recorder: Recorder) -> None:
    recorder.watch(plain.__code__)
    recorder.watch(plain.__code__)
    recorder.watch(flaky.__code__)
    assert recorder.watching() == 2
    plain(1)
    recorder.unwatch(plain.__code__)
    plain(1)
    assert recorder.watching() == 2
    recorder.unwatch(plain.__code__)
    recorder.unwatch(plain.__code__)  # one too many: ignored
    assert recorder.watching() == 1
    plain(1)
    fig = recorder.figures(plain.__code__)
    assert fig is not None and fig["calls"] == 2
    recorder.watch(plain.__code__)  # watching again continues the same figures
    plain(1)
    fig = recorder.figures(plain.__code__)
    assert fig is not None and fig["calls"] == 3


def test_nothing_left_installed(recorder: Recorder) -> None:
    recorder.watch(plain.__code__)
    if MONITORING:
        assert "livefix" in [sys.monitoring.get_tool(i) for i in (2, 3, 4, 5)]
    else:
        assert sys.getprofile() is not None and threading.getprofile() is not None
    recorder.unwatch(plain.__code__)  # the last one: hooks come out without close()
    assert_clean()
    recorder.watch(plain.__code__)
    recorder.watch(flaky.__code__)
    recorder.close()
    assert_clean()
    assert recorder.watching() == 0
    plain(1)
    fig = recorder.figures(plain.__code__)
    assert fig is not None and fig["calls"] == 0


def assert_clean() -> None:
    if MONITORING:
        assert [sys.monitoring.get_tool(i) for i in (2, 3, 4, 5)] == [None] * 4
    else:
        assert sys.getprofile() is None and threading.getprofile() is None


def test_tool_id_taken_by_someone_else_is_skipped(recorder: Recorder) -> None:
    if not MONITORING:
        pytest.skip("sys.monitoring is 3.12+")
    sys.monitoring.use_tool_id(5, "someone")
    try:
        recorder.watch(plain.__code__)
        assert sys.monitoring.get_tool(5) == "someone" and sys.monitoring.get_tool(4) == "livefix"
        plain(1)
        recorder.close()
        assert sys.monitoring.get_tool(5) == "someone" and sys.monitoring.get_tool(4) is None
    finally:
        sys.monitoring.free_tool_id(5)


def test_existing_profile_function_is_chained_and_restored() -> None:
    if MONITORING:
        pytest.skip("3.12+ uses sys.monitoring, not the profile hook")
    seen: list[str] = []

    def profiler(frame: types.FrameType, event: str, arg: Any) -> None:
        if frame.f_code is plain.__code__:
            seen.append(event)

    sys.setprofile(profiler)
    try:
        rec = Recorder()
        rec.watch(plain.__code__)
        plain(1)
        rec.close()
        assert sys.getprofile() is profiler
        assert seen == ["call", "return"]
        fig = rec.figures(plain.__code__)
        assert fig is not None and fig["calls"] == 1
    finally:
        sys.setprofile(None)


def test_unwatched_exceptions_do_not_count(recorder: Recorder) -> None:
    recorder.watch(plain.__code__)
    for _ in range(100):
        try:
            thrower()
        except IndexError:
            pass
    plain(1)
    fig = recorder.figures(plain.__code__)
    assert fig is not None and (fig["calls"], fig["errors"]) == (1, 0)
    assert recorder.figures(thrower.__code__) is None


class Exploding(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: object, value: object) -> None:
        raise RuntimeError("boom")

    def pop(self, *args: object) -> Any:
        raise RuntimeError("boom")


def test_no_exception_escapes_the_callbacks(recorder: Recorder) -> None:
    recorder.watch(flaky.__code__)
    recorder._stats[flaky.__code__].inflight = Exploding()  # sabotage the bookkeeping
    assert flaky(1) == 1
    with pytest.raises(ValueError):
        flaky(3)  # the user's own exception still comes through, unchanged


def test_latency_samples_are_bounded(recorder: Recorder) -> None:
    recorder.watch(plain.__code__)
    for i in range(LATENCY_SAMPLES + 500):
        plain(i)
    assert len(recorder._stats[plain.__code__].latencies) == LATENCY_SAMPLES
    fig = recorder.figures(plain.__code__)
    assert fig is not None and fig["calls"] == LATENCY_SAMPLES + 500
