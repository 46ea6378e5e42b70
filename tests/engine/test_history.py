"""Generations: history, rollback to any point, verify with automatic rollback, dry runs."""

from __future__ import annotations

import pytest

from livefix.errors import LivefixError


def change(module, body):
    return [{"module": module.__name__, "qualname": "value", "source": f"def value():\n    return {body}\n"}]


@pytest.fixture
def m(ws):
    return ws.module("def value():\n    return 0\n")


def test_history_and_rollback_to_a_generation(engine, m):
    for n in (1, 2, 3):
        assert engine.apply(change(m, n)).generation == n
    history = engine.history()
    assert history["generation"] == 3
    assert [(g["generation"], g["status"], g["action"]) for g in history["generations"]] == [
        (1, "active", "apply"), (2, "active", "apply"), (3, "active", "apply")]
    engine.rollback(to=1)
    assert m.value() == 1 and engine.generation == 1
    assert [g["status"] for g in engine.history()["generations"]] == ["active", "rolledBack", "rolledBack"]
    result = engine.rollback()
    assert m.value() == 0 and result.generation == 0 and "Rolled back to generation 0" in result.report
    with pytest.raises(LivefixError) as info:
        engine.rollback()
    assert info.value.kind == "nothingToRollBack"
    assert engine.apply(change(m, 4)).generation == 4 and m.value() == 4


def test_rollback_to_an_unknown_generation(engine, m):
    engine.apply(change(m, 1))
    with pytest.raises(LivefixError) as info:
        engine.rollback(to=7)
    assert info.value.kind == "notFound" and m.value() == 1


def test_rollback_removes_added_definitions(engine, m):
    engine.apply([{"module": m.__name__, "qualname": "extra", "source": "def extra():\n    return 1\n"}])
    assert m.extra() == 1
    result = engine.rollback()
    assert not hasattr(m, "extra") and result.applied == [{"module": m.__name__, "qualname": "extra", "kind": "removed"}]


def test_failing_verify_rolls_back(engine, m):
    engine.apply(change(m, 1))
    with pytest.raises(LivefixError) as info:
        engine.apply(change(m, 2), verify="value() == 3")
    assert info.value.kind == "verifyFailed" and m.value() == 1 and engine.generation == 1
    with pytest.raises(LivefixError) as info:
        engine.apply(change(m, "1 / 0"), verify="value()")
    assert info.value.kind == "verifyFailed" and "ZeroDivisionError" in info.value.message and m.value() == 1
    result = engine.apply(change(m, 5), verify=lambda: m.value() == 5)
    assert result.verify == {"check": result.verify["check"], "passed": True} and "verify passed" in result.report
    assert [g["generation"] for g in engine.history()["generations"]] == [1, 2]


def test_dry_run_changes_nothing(engine, m):
    result = engine.apply(change(m, 9), dry_run=True)
    assert result.dry_run and result.applied == [{"module": m.__name__, "qualname": "value", "kind": "replaced"}]
    assert m.value() == 0 and engine.generation == 0 and engine.history()["generations"] == []


def test_stale_plan_is_refused(engine, m):
    plan = engine.prepare(change(m, 1))
    engine.apply(change(m, 2))
    with pytest.raises(LivefixError) as info:
        engine.commit(plan)
    assert info.value.kind == "busy" and m.value() == 2


def test_report_says_what_happened(engine, m):
    result = engine.apply(change(m, 1), verify="value() == 1")
    assert result.report.splitlines()[0] == f"Applying fix to {m.__name__}.value"
    assert result.report.splitlines()[-1] == "Applied generation 1: 1 replaced, 0 added, 0 removed; verify passed"
    body = result.to_body()
    assert body["sources"] == [{"module": m.__name__, "path": m.__file__, "qualname": "value",
                                "source": "def value():\n    return 1\n", "generation": 1}]


@pytest.mark.parametrize("bad", [-1, 2.5, "100", True])
def test_a_bad_history_limit_is_refused_and_changes_nothing(bad, monkeypatch):
    import importlib.machinery

    import livefix
    from livefix.engine import core

    monkeypatch.setattr(core, "_default", None)  # a process where livefix was not installed yet
    hook = importlib.machinery.SourceFileLoader.exec_module
    with pytest.raises(LivefixError) as info:
        livefix.install(history_limit=bad)
    assert info.value.kind == "invalid" and "history_limit" in info.value.message
    assert core._default is None and importlib.machinery.SourceFileLoader.exec_module is hook


def test_history_limit_is_set_by_install(monkeypatch):
    import livefix
    from livefix.engine import core

    monkeypatch.setattr(core, "_default", None)
    engine = livefix.install(history_limit=7)
    try:
        assert engine.history_limit == 7
    finally:
        engine.sources.uninstall()


def test_evidence_window_is_set_by_install_and_checked(monkeypatch):
    import livefix
    from livefix.engine import core

    monkeypatch.setattr(core, "_default", None)
    with pytest.raises(LivefixError) as info:
        livefix.install(evidence_window=-1)
    assert info.value.kind == "invalid" and "evidence_window" in info.value.message
    assert core._default is None  # refused before anything was installed
    engine = livefix.install(evidence_window=5)
    try:
        assert engine.watches.window == 5.0
    finally:
        engine.watches.close()
        engine.sources.uninstall()


def test_a_forked_child_can_fix_even_if_a_thread_held_the_engine_at_the_fork(tmp_path):
    """Pre-fork servers and Celery pools fork while other threads run: the child's engine
    must not inherit a lock that no thread of the child will ever release."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    if not hasattr(os, "fork"):
        import pytest

        pytest.skip("no fork on this platform")
    (tmp_path / "forked_mod.py").write_text("def f():\n    return 1\n")
    script = textwrap.dedent(f"""
        import os, sys, threading
        sys.path.insert(0, {str(tmp_path)!r})
        import livefix
        livefix.install()
        import forked_mod
        engine = livefix.default_engine()
        engine._lock.acquire()  # a thread in the middle of a fix at the moment of the fork
        pid = os.fork()
        if pid == 0:
            livefix.apply([{{"module": "forked_mod", "qualname": "f", "source": "def f():\\n    return 2\\n"}}])
            os._exit(0 if forked_mod.f() == 2 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.stdout.strip() == "0", done.stderr
