"""Changes kept until their module is imported (a fleet worker that has not loaded the app
yet, a worker respawned after the fix): applied the moment the import completes."""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading

import pytest

from livefix.errors import LivefixError

PRICING = """\
RATE = 2


def total(n):
    return n * RATE


def label(n):
    return f"{total(n)} EUR"
"""

FIX = "def total(n):\n    return n * RATE * 10\n"


def write(ws, name: str, text: str = PRICING) -> None:
    (ws.root / f"{name}.py").write_text(textwrap.dedent(text))
    importlib.invalidate_caches()
    ws.names.append(name)


def test_a_change_to_a_module_not_imported_yet_applies_at_its_import(ws, engine):
    write(ws, "pend_a")
    outcomes = []
    kept = engine.pending.defer([{"module": "pend_a", "qualname": "total", "source": FIX}], "fleet generation 1",
                                on_done=outcomes.append)
    assert kept == ["pend_a"] and "pend_a" not in sys.modules
    assert engine.pending.pending() == [
        {"module": "pend_a", "qualnames": ["total"], "label": "fleet generation 1",
         "since": engine.pending.pending()[0]["since"]}
    ]
    module = importlib.import_module("pend_a")
    assert module.total(1) == 20 and module.label(1) == "20 EUR"  # callers inside the module see it too
    assert [o["status"] for o in outcomes] == ["applied"] and outcomes[0]["generation"] == 1
    assert engine.pending.pending() == []
    assert [g["action"] for g in engine.history()["generations"]] == ["apply"]
    engine.rollback()
    assert module.total(1) == 2  # and it is an ordinary generation: rollback returns the file's code


def test_a_change_that_fails_at_import_never_breaks_the_import_and_says_why(ws, engine):
    write(ws, "pend_b")
    outcomes = []
    engine.pending.defer([{"module": "pend_b", "qualname": "total", "source": FIX}], "fleet generation 2",
                         verify="total(1) == 2", on_done=outcomes.append)
    module = importlib.import_module("pend_b")  # imports fine
    assert module.total(1) == 2  # the file's code: the verify failed and rolled the change back
    assert outcomes[0]["status"] == "failed" and outcomes[0]["error"]["kind"] == "verifyFailed"
    assert engine.pending.outcomes[-1]["module"] == "pend_b"


@pytest.mark.parametrize(
    "change, kind",
    [
        ({"module": "json", "qualname": "dumps", "source": FIX}, "invalid"),  # already imported
        ({"module": "pend_nowhere_xyz", "qualname": "total", "source": FIX}, "notFound"),
        ({"module": "pend_c", "qualname": "total", "source": "def total(n:\n"}, "syntax"),
        ({"qualname": "total", "source": FIX}, "invalid"),  # no module named
    ],
)
def test_bad_pending_changes_are_refused_and_nothing_is_kept(ws, engine, change, kind):
    write(ws, "pend_c")
    with pytest.raises(LivefixError) as raised:
        engine.pending.defer([{"module": "pend_c", "qualname": "label", "source": "def label(n):\n    return 0\n"},
                              change], "fleet generation 3")
    assert raised.value.kind == kind
    assert engine.pending.pending() == []
    assert importlib.import_module("pend_c").label(1) == "2 EUR"  # nothing applied at import either


def test_an_import_waits_for_another_livefix_operation_then_applies(ws, engine):
    write(ws, "pend_d")
    engine.pending.defer([{"module": "pend_d", "qualname": "total", "source": FIX}], "fleet generation 4")
    imported = threading.Event()
    engine._lock.acquire()  # another operation is committing
    try:
        thread = threading.Thread(target=lambda: (importlib.import_module("pend_d"), imported.set()))
        thread.start()
        assert not imported.wait(0.2)  # the import waits for the engine (a negative check: nothing to wait for)
    finally:
        engine._lock.release()
    thread.join(30)
    assert imported.is_set() and sys.modules["pend_d"].total(1) == 20


def test_a_rollback_withdraws_what_was_kept_for_an_import_on_top_of_it(ws, engine):
    write(ws, "pend_e")
    engine.pending.defer([{"module": "pend_e", "qualname": "total", "source": FIX}], "fleet generation 5")
    result = engine.rollback()  # nothing ran yet: the kept change is what is undone
    assert "Withdrew the change kept for the import of pend_e" in result.report
    assert engine.pending.pending() == []
    assert importlib.import_module("pend_e").total(1) == 2


def test_a_rollback_keeps_what_was_kept_before_the_generation_it_returns_to(ws, engine):
    other = ws.module("def f():\n    return 1\n")
    write(ws, "pend_f")

    def fix(value: int) -> None:
        engine.apply([{"module": other.__name__, "qualname": "f", "source": f"def f():\n    return {value}\n"}])

    fix(2)  # generation 1
    engine.pending.defer([{"module": "pend_f", "qualname": "total", "source": FIX}], "fleet generation 6")
    fix(3)  # generation 2
    fix(4)  # generation 3
    engine.rollback(to=2)  # undoes generation 3 only: the kept change came before generation 2
    assert [entry["module"] for entry in engine.pending.pending()] == ["pend_f"]
    engine.rollback(to=1)  # a rollback to N withdraws what was kept since N
    assert engine.pending.pending() == []
    assert importlib.import_module("pend_f").total(1) == 2 and other.f() == 2


def test_a_rollback_to_a_generation_that_never_was_withdraws_nothing(ws, engine):
    write(ws, "pend_g")
    engine.pending.defer([{"module": "pend_g", "qualname": "total", "source": FIX}], "fleet generation 7")
    with pytest.raises(LivefixError) as raised:
        engine.rollback(to=-1)
    assert raised.value.kind == "notFound"
    assert [entry["module"] for entry in engine.pending.pending()] == ["pend_g"]  # bad input changed nothing


def test_a_change_made_against_another_version_of_the_file_is_not_applied_at_the_import(ws, engine):
    """A fleet's change records the digest of the code of the file it was made against (`fileHash`);
    after a deploy the imported file differs and the old fix must not land on the new code."""
    from livefix.engine.file_facts import code_digest

    write(ws, "pend_h")
    made_against = code_digest(str(ws.root / "pend_h.py"))
    write(ws, "pend_h", PRICING.replace("RATE = 2", "RATE = 3"))  # the deploy
    outcomes = []
    engine.pending.defer([{"module": "pend_h", "qualname": "total", "source": FIX, "fileHash": made_against}],
                         "fleet generation 8", on_done=outcomes.append)
    module = importlib.import_module("pend_h")
    assert module.total(1) == 3  # the deployed file's code
    assert outcomes[0]["status"] == "superseded" and "changed since this change was made" in outcomes[0]["reason"]
    assert engine.history()["generations"] == []


def test_a_change_made_against_the_same_file_applies_at_the_import(ws, engine):
    from livefix.engine.file_facts import code_digest

    write(ws, "pend_i")
    outcomes = []
    engine.pending.defer([{"module": "pend_i", "qualname": "total", "source": FIX,
                           "fileHash": code_digest(str(ws.root / "pend_i.py"))}],
                         "fleet generation 9", on_done=outcomes.append)
    assert importlib.import_module("pend_i").total(1) == 20
    assert outcomes[0]["status"] == "applied"


def test_a_fleet_rollback_withdraws_what_later_fleet_generations_kept(ws, engine):
    write(ws, "pend_j")
    engine.pending.defer([{"module": "pend_j", "qualname": "total", "source": FIX}], "fleet generation 2",
                         fleet_generation=2)
    assert engine.pending.withdraw_fleet(2) == []  # not above the generation returned to
    assert [w["module"] for w in engine.pending.withdraw_fleet(1)] == ["pend_j"]
    assert engine.pending.pending() == []
    assert importlib.import_module("pend_j").total(1) == 2


def test_comments_and_formatting_edited_in_the_file_do_not_stop_the_change(ws, engine):
    """Only code counts: a comment appended to the file must not split a fleet."""
    from livefix.engine.file_facts import code_digest

    write(ws, "pend_k")
    made_against = code_digest(str(ws.root / "pend_k.py"))
    write(ws, "pend_k", "# a comment on top\n" + PRICING.replace("RATE = 2", "RATE  =  2  # the rate") + "\n\n# the end\n")
    outcomes = []
    engine.pending.defer([{"module": "pend_k", "qualname": "total", "source": FIX, "fileHash": made_against}],
                         "fleet generation 10", on_done=outcomes.append)
    assert importlib.import_module("pend_k").total(1) == 20
    assert outcomes[0]["status"] == "applied"


def test_a_file_that_already_says_what_the_change_says_is_reported_as_such(ws, engine):
    """Persisted, then deployed: the file has the fix; nothing to replay, and nothing differs."""
    from livefix.engine.file_facts import code_digest

    write(ws, "pend_l")
    made_against = code_digest(str(ws.root / "pend_l.py"))
    write(ws, "pend_l", PRICING.replace("    return n * RATE\n", "    return n * RATE * 10\n"))
    outcomes = []
    engine.pending.defer([{"module": "pend_l", "qualname": "total", "source": FIX, "fileHash": made_against}],
                         "fleet generation 11", on_done=outcomes.append)
    assert importlib.import_module("pend_l").total(1) == 20  # the file's code, which is the fix
    assert outcomes[0]["status"] == "inFile" and "already has this change" in outcomes[0]["reason"]
    assert engine.history()["generations"] == []
