"""Diff-based reloads: changed definitions in place, new ones added, deleted ones removed,
module state kept unless its own statement changed."""

from __future__ import annotations

import pytest

from livefix.errors import LivefixError

SOURCE = """
import collections

CONNECTIONS = []
CACHE = {}
LIMIT = 10

def price(x):
    return x * 2

def legacy():
    return "old"

class Shop:
    TAX = 1

    def total(self, items):
        return sum(price(i) for i in items) + self.TAX

    def obsolete(self):
        return 1
"""


def test_reload_keeps_state_and_updates_code(ws, engine):
    m = ws.module(SOURCE)
    m.CONNECTIONS.append("db")
    m.CACHE["k"] = "v"
    shop = m.Shop()
    price = m.price
    text = ws.path(m).read_text()
    text = text.replace("return x * 2", "return x * 3")
    text = text.replace("LIMIT = 10", "LIMIT = 20  # raised")
    text = text.replace('def legacy():\n    return "old"\n', "")
    text = text.replace("    def obsolete(self):\n        return 1\n", "    def fresh(self):\n        return 'fresh'\n")
    text += "\ndef added():\n    return price(1)\n"
    ws.path(m).write_text(text)
    result = engine.reload_module(m.__name__)
    kinds = sorted((e["qualname"], e["kind"]) for e in result.applied)
    assert kinds == [
        ("LIMIT", "replaced"), ("Shop.fresh", "added"), ("Shop.obsolete", "removed"),
        ("added", "added"), ("legacy", "removed"), ("price", "replaced"),
    ]
    assert m.price is price and price(1) == 3 and shop.total([1]) == 4
    assert m.CONNECTIONS == ["db"] and m.CACHE == {"k": "v"} and m.LIMIT == 20
    assert not hasattr(m, "legacy") and not hasattr(shop, "obsolete") and shop.fresh() == "fresh"
    assert m.added() == 3
    assert engine.modified_modules(modules=[m.__name__]) == []


def test_comment_only_change_reexecutes_nothing(ws, engine):
    m = ws.module(SOURCE)
    m.CONNECTIONS.append("db")
    ws.edit(m, "CONNECTIONS = []", "CONNECTIONS = []  # open sockets")
    result = engine.reload_module(m.__name__)
    assert result.applied == [] and m.CONNECTIONS == ["db"]


def test_reload_then_rollback_restores_everything(ws, engine):
    m = ws.module(SOURCE)
    shop_cls, legacy = m.Shop, m.legacy
    ws.edit(m, 'def legacy():\n    return "old"\n', "")
    ws.edit(m, "return x * 2", "return x * 5")
    engine.reload_module(m.__name__)
    assert not hasattr(m, "legacy")
    engine.rollback()
    assert m.legacy is legacy and m.price(1) == 2 and m.Shop is shop_cls
    # the running text is back too: the file differs from what runs again
    (status,) = engine.modified_modules(modules=[m.__name__])
    assert status["changed"] == ["price"] and status["removed"] == ["legacy"]


def test_status_names_the_changed_definitions(ws, engine):
    m = ws.module(SOURCE)
    assert engine.modified_modules(modules=[m.__name__]) == []
    ws.edit(m, "return sum(price(i) for i in items) + self.TAX", "return 0")
    ws.edit(m, "LIMIT = 10", "LIMIT = 11\n\ndef extra():\n    pass")
    (status,) = engine.modified_modules(modules=[m.__name__])
    assert status["name"] == m.__name__ and status["path"] == m.__file__
    assert status["changed"] == ["LIMIT", "Shop.total"] and status["added"] == ["extra"]
    assert any(s["name"] == m.__name__ for s in engine.modified_modules())


def test_reload_a_package_as_one_generation(ws, engine):
    base = ws.module("def rate():\n    return 1\n", name="lfpkg.base")
    user = ws.module("from lfpkg.base import rate\n\ndef charge(x):\n    return x * rate()\n", name="lfpkg.user")
    ws.edit(base, "return 1", "return 2")
    ws.edit(user, "return x * rate()", "return x * rate() + 1")
    result = engine.reload_modules(package="lfpkg")
    assert result.generation == 1 and user.charge(10) == 21
    assert {e["module"] for e in result.applied} == {"lfpkg.base", "lfpkg.user"}
    engine.rollback()
    assert user.charge(10) == 10


def test_reload_unknown_module_is_not_found(engine):
    with pytest.raises(LivefixError) as info:
        engine.reload_modules(modules=["not_loaded_anywhere"])
    assert info.value.kind == "notFound"


def test_a_statement_that_raises_changes_nothing(ws, engine, state_of):
    m = ws.module(SOURCE)
    before = state_of(m)
    ws.edit(m, "LIMIT = 10", "LIMIT = 1 / 0")
    ws.edit(m, "return x * 2", "return x * 9")
    with pytest.raises(LivefixError) as info:
        engine.reload_module(m.__name__)
    assert info.value.kind == "failed" and "ZeroDivisionError" in info.value.message
    assert state_of(m) == before and m.price(1) == 2


def test_large_module_reload_is_local(ws, engine):
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(3000))
    m = ws.module(body)
    ws.edit(m, "return x + 1500\n", "return x - 1500\n")
    plan = engine.prepare_reload(modules=[m.__name__])
    assert [e.qualname for e in plan.edits] == ["f1500"]
    engine.commit(plan)
    assert m.f1500(0) == -1500 and m.f1499(0) == 1499


def test_file_edited_before_livefix_saw_it(tmp_path, monkeypatch):
    """A module livefix did not record at import (a __main__ script run by runpy, or one
    edited before the agent started): the file on disk is checked against the running code."""
    import importlib
    import sys

    from livefix.engine import Engine

    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "lf_unrecorded.py"
    path.write_text("def f():\n    return 1\n\ndef g():\n    return 1\n")
    sys.modules.pop("lf_unrecorded", None)
    module = importlib.import_module("lf_unrecorded")
    module.__cached__ = None  # like __main__: no bytecode cache to tell when it was loaded
    path.write_text("def f():\n    return 2\n\ndef g():\n    return 1\n")  # the fix, saved first
    engine = Engine()  # never installed: it has no record of what was loaded
    try:
        (status,) = engine.modified_modules(modules=["lf_unrecorded"])
        assert status["changed"] == ["f"]
        result = engine.apply([{"module": "lf_unrecorded", "qualname": "f", "source": "def f():\n    return 2\n"}])
        assert [e["qualname"] for e in result.applied] == ["f"] and module.f() == 2
        assert engine.modified_modules(modules=["lf_unrecorded"]) == []
        engine.rollback()
        assert module.f() == 1
    finally:
        sys.modules.pop("lf_unrecorded", None)
