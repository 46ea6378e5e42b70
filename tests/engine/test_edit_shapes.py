"""Edit shapes nobody designed for: several edit sites, definitions that moved, formatter-wide
edits, a module docstring, fixes applied from an editor whose file has other lines above them,
and a service fixed a thousand times (memory and history stay bounded)."""

from __future__ import annotations

import ast
import gc
import traceback
import tracemalloc
import types

import pytest

from livefix.errors import LivefixError


def generated(count: int) -> str:
    parts = ['"""A generated module."""\nimport functools\n\nK = 3\nSTATE = []\n\n']
    for index in range(count):
        if index % 10 == 5:
            parts.append(
                f"class C{index}:\n    def method(self, x):\n        return x + {index}\n\n"
                f"    @property\n    def prop(self):\n        return {index}\n\n\n"
            )
        else:
            parts.append(f"def f{index}(x):\n    return x * K + {index}\n\n\n")
    return "".join(parts)


def definition_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            lines[node.name] = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and member.name not in {f"{node.name}.x"}:
                    key = f"{node.name}.{member.name}"
                    lines.setdefault(key, min([member.lineno, *(d.lineno for d in member.decorator_list)]))
    return lines


def running_lines(module: types.ModuleType) -> dict[str, int]:
    lines: dict[str, int] = {}
    for name, value in vars(module).items():
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            lines[name] = value.__code__.co_firstlineno
        elif isinstance(value, type) and value.__module__ == module.__name__:
            lines[f"{name}.method"] = value.method.__code__.co_firstlineno
            lines[f"{name}.prop"] = value.prop.fget.__code__.co_firstlineno
    return lines


def assert_at_file_lines(module: types.ModuleType, text: str) -> None:
    expected, running = definition_lines(text), running_lines(module)
    wrong = {q: (line, expected.get(q)) for q, line in running.items() if expected.get(q) != line}
    assert not wrong, f"running at other lines than the file (running, file): {sorted(wrong.items())[:10]}"


def test_two_distant_edit_sites_change_only_what_changed(ws, engine):
    m = ws.module(generated(400))
    m.STATE.append("kept")
    f399_before, copy = m.f399, m.f1
    path = ws.path(m)
    text = path.read_text()
    text = text.replace("    return x * K + 1\n", "    y = x + 1000\n    return y * K + 1\n", 1)  # top: one line more
    text = text.replace("        return x + 395\n", "        return x - 395\n", 1)  # bottom: a method
    path.write_text(text)
    plan = engine.prepare_reload(modules=[m.__name__])
    # work in proportion to the change: two small hunks parsed, not the span between them
    hunks = plan.module_plans[0].diff.old.hunks
    assert len(hunks) == 2 and sum(h.last - h.first + 1 for h in hunks) < 20, [(h.first, h.last) for h in hunks]
    result = engine.commit(plan)
    assert sorted(e["qualname"] for e in result.applied) == ["C395.method", "f1"]
    assert m.f1(0) == 3001 and copy(0) == 3001 and m.C395().method(0) == -395
    assert m.f399 is f399_before and m.STATE == ["kept"]
    assert_at_file_lines(m, text)
    assert engine.modified_modules(modules=[m.__name__]) == []
    engine.rollback()
    assert m.f1(0) == 1 and m.C395().method(0) == 395
    assert_at_file_lines(m, generated(400))


def test_many_edit_sites_each_parsed_alone(ws, engine):
    m = ws.module(generated(300))
    text = ws.path(m).read_text()
    for index in (2, 50, 120, 121, 299):
        text = text.replace(f"    return x * K + {index}\n", f"    return x * K - {index}\n    # edited\n", 1)
    ws.path(m).write_text(text)
    plan = engine.prepare_reload(modules=[m.__name__])
    assert not plan.module_plans[0].diff.whole_file and len(plan.module_plans[0].diff.old.hunks) == 4
    result = engine.commit(plan)
    assert sorted(e["qualname"] for e in result.applied) == ["f120", "f121", "f2", "f299", "f50"]
    assert [m.f2(0), m.f50(0), m.f299(0), m.f3(0)] == [-2, -50, -299, 3]
    assert_at_file_lines(m, text)


def test_a_definition_cut_and_pasted_keeps_its_identity_and_moves_its_lines(ws, engine):
    m = ws.module(generated(60))
    function, copy = m.f20, m.f20
    text = ws.path(m).read_text()
    block = "def f20(x):\n    return x * K + 20\n\n\n"
    text = text.replace(block, "") + "\n\n" + block.replace("+ 20", "+ 2000")
    ws.path(m).write_text(text)
    result = engine.reload_module(m.__name__)
    assert [(e["qualname"], e["kind"]) for e in result.applied] == [("f20", "replaced")]
    assert m.f20 is function and copy(0) == 2000
    assert_at_file_lines(m, text)


def test_a_definition_moved_unchanged_is_not_replaced(ws, engine):
    m = ws.module(generated(60))
    function = m.f30
    text = ws.path(m).read_text()
    block = "def f30(x):\n    return x * K + 30\n\n\n"
    text = block + text.replace(block, "").replace('"""A generated module."""\n', "")
    text = '"""A generated module."""\n' + text
    ws.path(m).write_text(text)
    result = engine.reload_module(m.__name__)
    assert result.applied == [] and m.f30 is function and m.f30(0) == 30
    assert_at_file_lines(m, text)


def test_a_formatter_touching_every_function(ws, engine):
    m = ws.module(generated(200))
    m.STATE.append(1)
    text = ws.path(m).read_text().replace("return x * K +", "return (x * K) +").replace("return x +", "return (x) +")
    ws.path(m).write_text(text)
    result = engine.reload_module(m.__name__)
    assert len(result.applied) == 180 + 20  # every function and method; the properties did not change
    assert m.STATE == [1] and m.f7(1) == 10
    assert_at_file_lines(m, text)


def test_module_docstring_change_is_applied(ws, engine):
    m = ws.module('"""Old words."""\n\ndef f():\n    return 1\n')
    ws.edit(m, '"""Old words."""', '"""New words,\nover two lines."""')
    (status,) = engine.modified_modules(modules=[m.__name__])
    assert status["changed"] == ["__doc__"]
    engine.reload_module(m.__name__)
    assert m.__doc__ == "New words,\nover two lines." and m.f.__code__.co_firstlineno == 4
    assert engine.modified_modules(modules=[m.__name__]) == []
    engine.rollback()
    assert m.__doc__ == "Old words." and m.f.__code__.co_firstlineno == 3


SHOP = """\
RATE = 10


def price(qty):
    return qty * RATE


def total(items):
    return sum(price(q) for q in items)
"""


@pytest.mark.parametrize("with_line", [True, False], ids=["line", "no-line"])
def test_apply_places_the_definition_at_its_line_in_the_file(ws, engine, with_line):
    m = ws.module(SHOP)
    text = SHOP.replace("def price(qty):\n    return qty * RATE\n",
                        "# Prices are per unit.\n# (ticket SHOP-12)\n# ...\ndef price(qty):\n    bonus = qty * RATE * 2\n    return bonus\n")
    ws.path(m).write_text(text)
    line = text.splitlines().index("def price(qty):") + 1
    change = {"module": m.__name__, "qualname": "price", "source": "def price(qty):\n    bonus = qty * RATE * 2\n    return bonus\n"}
    if with_line:
        change["line"] = line
    engine.apply([change])
    assert m.price(1) == 20 and m.price.__code__.co_firstlineno == line
    body = {number for _, _, number in m.price.__code__.co_lines() if number} - {line}  # 3.11+ also has the def line
    assert sorted(body) == [line + 1, line + 2]
    try:
        m.price(None)
    except TypeError as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        assert (frame.lineno, frame.line) == (line + 1, "bonus = qty * RATE * 2")
    else:
        pytest.fail("price(None) should raise")
    engine.rollback()
    assert m.price(1) == 10


@pytest.mark.parametrize("with_line", [True, False], ids=["line", "no-line"])
@pytest.mark.parametrize("bad", ["    total = qty * RATE RATE\n", "    break\n"], ids=["parse", "compile"])
def test_syntax_error_in_an_applied_definition_names_the_file_line(ws, engine, state_of, with_line, bad):
    m = ws.module(SHOP)
    source = "def price(qty):\n" + bad + "    return qty\n"
    text = SHOP.replace("def price(qty):\n    return qty * RATE\n", "# one\n# two\n" + source)
    ws.path(m).write_text(text)
    first = text.splitlines().index("def price(qty):") + 1
    expected = compile_error(text, str(ws.path(m)))
    change = {"module": m.__name__, "qualname": "price", "source": source}
    if with_line:
        change["line"] = first
    before = state_of(m)
    with pytest.raises(LivefixError) as info:
        engine.apply([change])
    error = info.value
    assert error.kind == "syntax"
    assert (error.details["line"], error.details["text"]) == (expected.lineno, expected.text.rstrip("\n"))
    assert error.details["column"] == expected.offset and f":{expected.lineno}:" in error.message
    assert state_of(m) == before and engine.generation == 0


def compile_error(text: str, path: str) -> SyntaxError:
    try:
        compile(text, path, "exec")
    except SyntaxError as error:
        return error
    raise AssertionError("the text compiles")


def test_a_thousand_fixes_keep_memory_and_history_bounded(ws, engine):
    """A service fixed again and again: each generation keeps what undoes it in proportion to
    the change (moved functions keep no code objects), and old rolled-back ones are pruned."""
    m = ws.module(generated(600))
    original = running_lines(m)
    source = "def f10(x):\n    y = x * K\n    return y + 10 + 1\n"  # one line more: everything below moves
    engine.history_limit = 20

    def cycle() -> None:
        engine.apply([{"module": m.__name__, "qualname": "f10", "source": source}])
        engine.rollback()

    tracemalloc.start()
    try:
        for _ in range(25):  # the history fills up to its limit
            cycle()
        gc.collect()
        start = tracemalloc.take_snapshot()
        for _ in range(100):
            cycle()
        gc.collect()
        growth = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert growth / 100 < 5_000, f"{growth / 100:.0f} bytes kept per apply/rollback cycle"
    assert running_lines(m) == original and m.f10(1) == 13
    history = engine.history()
    assert len(history["generations"]) == 20 and history["pruned"]["count"] == 105
    assert (history["pruned"]["first"], history["pruned"]["last"]) == (1, 105) and "dropped" in history["pruned"]["reason"]
    # what the newest generation keeps: the replaced function's old code, and the moves as
    # one run of functions with their delta (no code object per moved function)
    from livefix.engine.atomic import Shift

    undo = engine._generations[-1].undo
    moves = [item for item in undo if isinstance(item, Shift)]
    assert len(moves) == 1 and len(moves[0].functions) > 500 and moves[0].delta == 1


def test_rollback_to_zero_after_many_generations_restores_every_line(ws, engine):
    m = ws.module(generated(200))
    original = running_lines(m)
    for index in range(1, 40):
        engine.apply([{"module": m.__name__, "qualname": f"f{index}",
                       "source": f"def f{index}(x):\n    # fix {index}\n    return x * K + {index} + 1\n"}])
    assert m.f39(0) == 40 and engine.generation == 39
    engine.rollback(to=0)
    assert running_lines(m) == original and m.f39(0) == 39
    assert engine.sources.get(m).text == ws.path(m).read_text()


SENTINEL = '''\
import functools


class Cache:
    __marker = object()
    registered = []
    registered.append("once")

    def pop(self, key, default=__marker):
        if default is self.__marker:
            raise KeyError(key)
        return default

    @functools.singledispatchmethod
    def render(self, value):
        return "any"

    render.register(float, lambda self, value: "float")
'''


def test_a_changed_method_keeps_the_class_state_its_defaults_name(ws, engine):
    """cachetools' pattern: a class-level sentinel as a default. Re-running the class body to
    build the changed method must not make a new sentinel, nor register anything twice."""
    m = ws.module(SENTINEL)
    marker = m.Cache._Cache__marker
    ws.edit(m, "            raise KeyError(key)\n", "            raise KeyError(f'missing {key}')\n")
    result = engine.reload_module(m.__name__)
    assert [e["qualname"] for e in result.applied] == ["Cache.pop"]
    assert m.Cache.pop.__defaults__ == (marker,) and m.Cache._Cache__marker is marker
    with pytest.raises(KeyError, match="missing k"):
        m.Cache().pop("k")
    assert m.Cache.registered == ["once"] and m.Cache().render(1.0) == "float"


def test_apply_places_a_definition_whose_text_stands_twice_at_its_own_copy(ws, engine):
    """Alike methods of two classes: the fix runs at the lines of the class it was applied to."""
    source = "class A:\n    def size(self):\n        return 1\n\n\nclass B:\n    def size(self):\n        return 1\n"
    m = ws.module(source)
    text = "# one\n# two\n" + source.replace("class B:\n    def size(self):\n        return 1\n",
                                            "class B:\n    def size(self):\n        return 2\n")
    text = text.replace("class A:\n    def size(self):\n        return 1\n", "class A:\n    def size(self):\n        return 2\n")
    ws.path(m).write_text(text)
    engine.apply([{"module": m.__name__, "qualname": "B.size", "source": "def size(self):\n    return 2\n"}])
    lines = text.splitlines()
    b_line = lines.index("class B:") + 2
    assert m.B().size() == 2 and m.A().size() == 1
    assert m.B.size.__code__.co_firstlineno == b_line


REGISTRY = '''\
HANDLERS = {"neg": lambda x: -x, "twice": lambda x: x * 2}
CALLBACKS = [lambda: "first"]
SINGLE = lambda: "single"


def handle(name, x):
    return HANDLERS[name](x)
'''


def test_lambdas_held_in_module_containers_move_with_their_lines(ws, engine):
    m = ws.module(REGISTRY)
    handlers = m.HANDLERS
    ws.path(m).write_text("# one\n# two\n" + REGISTRY)
    engine.reload_module(m.__name__)
    assert m.HANDLERS is handlers  # unchanged statement: the live registry stays
    assert [f.__code__.co_firstlineno for f in m.HANDLERS.values()] == [3, 3]
    assert m.CALLBACKS[0].__code__.co_firstlineno == 4 and m.SINGLE.__code__.co_firstlineno == 5
    with pytest.raises(TypeError) as info:
        m.handle("neg", None)
    assert info.value.__traceback__.tb_next.tb_next.tb_lineno == 3


@pytest.mark.parametrize("late", [False, True], ids=["installed", "late"])
def test_syntax_error_in_an_unsaved_definition_is_named_where_the_file_has_it(ws, engine, tmp_path, late, monkeypatch):
    """The broken text is in no file (the editor sent its buffer): the error names the line
    inside the definition as the saved file has it, not the line inside the snippet."""
    if late:
        monkeypatch.syspath_prepend(str(tmp_path / "late"))
        (tmp_path / "late").mkdir()
        path = tmp_path / "late" / "lf_unsaved.py"
        path.write_text(SHOP)
        import importlib
        import sys

        importlib.invalidate_caches()
        module = importlib.import_module("lf_unsaved")
        monkeypatch.setitem(sys.modules, "lf_unsaved", module)
        from livefix.engine import Engine

        engine = Engine()  # arrives after the import
    else:
        module = ws.module(SHOP)
        path = ws.path(module)
    text = "# one\n# two\n# three\n" + SHOP
    path.write_text(text)
    def_line = text.splitlines().index("def price(qty):") + 1
    with pytest.raises(LivefixError) as info:
        engine.apply([{"module": module.__name__, "qualname": "price", "source": "def price(qty):\n    if qty > 0\n        return 1\n"}])
    assert info.value.kind == "syntax"
    assert (info.value.details["line"], info.value.details["text"]) == (def_line + 1, "    if qty > 0")
    assert engine.generation == 0 and module.price(1) == 10


def test_status_names_what_an_edit_only_moved(ws, engine):
    m = ws.module("def f():\n    return 1\n\n\ndef g():\n    return 2\n\n\nclass C:\n    def h(self):\n        return 3\n")
    ws.edit(m, "def f():\n    return 1\n", "def f():\n    # why\n    # and how\n    return 10\n")
    (status,) = engine.modified_modules(modules=[m.__name__])
    assert status["changed"] == ["f"] and status["moved"] == ["C.h", "g"]
    engine.reload_module(m.__name__)
    assert engine.modified_modules(modules=[m.__name__]) == [] and m.g.__code__.co_firstlineno == 7
