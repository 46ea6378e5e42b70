"""Capturing every thread's frames without stopping anything, and the impact report."""

from __future__ import annotations

import threading

SOURCE = """
import threading

def work(entered, release):
    secret = {"token": "x" * 500}
    entered.set()
    release.wait(30)
    return "old"

class Worker:
    def run(self, entered, release):
        return work(entered, release)
"""


def start_worker(m):
    entered, release = threading.Event(), threading.Event()
    results = []
    thread = threading.Thread(target=lambda: results.append(m.Worker().run(entered, release)), name="busy-worker")
    thread.start()
    assert entered.wait(10)
    return thread, release, results


def test_capture_frames_of_a_running_thread(ws, engine):
    m = ws.module(SOURCE)
    thread, release, _ = start_worker(m)
    try:
        captured = engine.capture_frames(include_locals=True)
        worker = next(t for t in captured["threads"] if t["name"] == "busy-worker")
        assert worker["id"] == thread.ident
        top = [f for f in worker["frames"] if f["module"] == m.__name__]
        assert [f["qualname"] for f in top][:2] == ["work", "Worker.run"]
        assert top[0]["path"] == m.__file__ and top[0]["line"] == 7
        secret = top[0]["locals"]["secret"]
        assert secret.startswith("{'token': 'xxx") and "..." in secret and len(secret) < 200  # bounded repr
        assert any(t.get("livefix") for t in captured["threads"])  # the capturing thread is marked
        limited = engine.capture_frames(thread_ids=[thread.ident], max_frames=1)
        assert [len(t["frames"]) for t in limited["threads"]] == [1]
    finally:
        release.set()
        thread.join(10)


def test_impact_names_threads_running_old_code_which_finish_on_it(ws, engine):
    m = ws.module(SOURCE)
    thread, release, results = start_worker(m)
    try:
        new = 'def work(entered, release):\n    return "new"\n'
        plan = engine.prepare([{"module": m.__name__, "qualname": "work", "source": new}])
        assert plan.impact["threads"] == [{"id": thread.ident, "name": "busy-worker", "qualnames": [f"{m.__name__}.work"]}]
        assert any("busy-worker" in reason for reason in plan.risks())
        result = engine.commit(plan)
        assert "1 thread is executing the old version and will finish on it" in result.report
        assert m.work(None, None) == "new"
    finally:
        release.set()
        thread.join(10)
    assert results == ["old"]  # the running frame finished on the old code


def test_signature_changes_and_removals_are_risks(ws, engine):
    m = ws.module("def f(a):\n    return a\n\ndef g():\n    return 1\n")
    plan = engine.prepare([{"module": m.__name__, "qualname": "f", "source": "def f(a, b):\n    return a + b\n"}])
    assert plan.impact["signatureChanges"] == [f"{m.__name__}.f"]
    plan = engine.prepare([{"module": m.__name__, "source": "def f(a):\n    return a\n"}])
    assert plan.impact["removals"] == [f"{m.__name__}.g"]
    assert plan.risks() == [f"it removes {m.__name__}.g", f"it replaces the whole of {m.__name__} with the source sent"]
