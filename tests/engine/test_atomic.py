"""Atomicity under load: threads calling the targets while hundreds of apply/rollback cycles run."""

from __future__ import annotations

import operator
import threading

SOURCE = """
GENERATION = 0

def first():
    return 0

def second():
    return 0

def pair():
    return first(), second()
"""


def test_no_thread_ever_sees_half_a_generation(ws, engine):
    m = ws.module(SOURCE)
    codes = operator.attrgetter("__code__")
    stop = threading.Event()
    errors: list[BaseException] = []
    mixed: list[tuple[object, ...]] = []
    observations = [0, 0]

    def observe() -> None:
        # Reads both code objects from one C-level call: no thread switch can fall between
        # the two reads, so a mixed pair could only come from a half-applied generation.
        read_both = lambda: tuple(map(codes, (m.first, m.second)))  # noqa: E731
        try:
            while not stop.is_set():
                pair = read_both()
                if pair[0].co_consts[-1:] != pair[1].co_consts[-1:]:  # the generation's return value
                    mixed.append(pair)
                observations[0] += 1
        except BaseException as error:  # noqa: BLE001 - report anything to the test
            errors.append(error)

    def call() -> None:
        try:
            while not stop.is_set():
                a, b = m.pair()
                assert isinstance(a, int) and isinstance(b, int)
                observations[1] += 1
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=observe) for _ in range(2)] + [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for cycle in range(1, 201):
            engine.apply(
                [
                    {"module": m.__name__, "qualname": "first", "source": f"def first():\n    return {cycle}\n"},
                    {"module": m.__name__, "qualname": "second", "source": f"def second():\n    return {cycle}\n"},
                ]
            )
            assert m.pair() == (cycle, cycle)
            if cycle % 3 == 0:
                engine.rollback()
                assert m.first() == m.second()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    assert not mixed, f"{len(mixed)} mixed observations"
    assert observations[0] > 0 and observations[1] > 0
    assert len(engine.history()["generations"]) == 200
