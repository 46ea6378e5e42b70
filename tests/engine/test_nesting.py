"""Nested classes, async definitions, class-level state, and whole-class edits."""

from __future__ import annotations

import asyncio


def apply(engine, module, qualname, source):
    return engine.apply([{"module": module.__name__, "qualname": qualname, "source": source}])


SOURCE = """
class Outer:
    LIMIT = 5

    class Inner:
        def method(self, x=None):
            return "old"

    async def fetch(self):
        return "old"

    def keep(self):
        return "kept"

    def drop(self):
        return "dropped"

    @property
    def size(self):
        return 1

    @size.setter
    def size(self, value):
        self._size = value
"""


def test_nested_class_method(ws, engine):
    m = ws.module(SOURCE)
    inner = m.Outer.Inner()
    apply(engine, m, "Outer.Inner.method", "def method(self, x=7):\n    return ('new', x)\n")
    assert inner.method() == ("new", 7)
    assert m.Outer.Inner.method.__qualname__ == "Outer.Inner.method"


def test_async_method(ws, engine):
    m = ws.module(SOURCE)
    apply(engine, m, "Outer.fetch", "async def fetch(self):\n    await asyncio.sleep(0)\n    return 'new'\n")
    m.asyncio = asyncio
    assert asyncio.run(m.Outer().fetch()) == "new"


def test_whole_class_edit_adds_removes_and_keeps(ws, engine):
    m = ws.module(SOURCE)
    outer_cls = m.Outer
    obj = m.Outer()
    keep = m.Outer.keep
    m.Outer.LIMIT = 50  # state changed at run time: kept unless its statement changes
    source = '''
class Outer:
    LIMIT = 5

    class Inner:
        def method(self, x=None):
            return "old"

    async def fetch(self):
        return "old"

    def keep(self):
        return "kept"

    def fresh(self):
        return self.keep() + "+fresh"

    @property
    def size(self):
        return 2

    @size.setter
    def size(self, value):
        self._size = value * 2
'''
    result = apply(engine, m, "Outer", source)
    kinds = sorted((e["qualname"], e["kind"]) for e in result.applied)
    assert kinds == [("Outer.drop", "removed"), ("Outer.fresh", "added"), ("Outer.size", "replaced"), ("Outer.size", "replaced")]
    assert m.Outer is outer_cls and m.Outer.keep is keep
    assert obj.fresh() == "kept+fresh" and not hasattr(obj, "drop") and obj.size == 2
    obj.size = 3
    assert obj._size == 6
    assert m.Outer.LIMIT == 50
    engine.rollback()
    assert obj.drop() == "dropped" and not hasattr(obj, "fresh") and obj.size == 1


def test_class_attribute_statement_change_rebinds(ws, engine):
    m = ws.module(SOURCE)
    source = SOURCE.replace("LIMIT = 5", "LIMIT = 6").split("\n", 1)[1]
    result = apply(engine, m, "Outer", source)
    assert [(e["qualname"], e["kind"]) for e in result.applied] == [("Outer.LIMIT", "replaced")]
    assert m.Outer.LIMIT == 6
