"""Bad input gets a structured error and leaves the running process exactly as it was."""

from __future__ import annotations

import pytest

from livefix.errors import LivefixError


SOURCE = """
import dataclasses

LIMIT = 3

def make_counter():
    count = 0
    def bump():
        nonlocal count
        count += 1
        return count
    return bump

bump = make_counter()

def price(x):
    return x * 2

@dataclasses.dataclass
class Order:
    item: str
    qty: int = 1

    def describe(self):
        return f"{self.qty} x {self.item}"

class Slotted:
    __slots__ = ("a",)

    def get(self):
        return self.a

class Plain:
    def hello(self):
        return "hello"
"""


@pytest.fixture
def target(ws):
    return ws.module(SOURCE)


@pytest.fixture
def refused(engine, state_of):
    """Asserts a change is refused with `kind` and leaves the module exactly as it was."""

    def check(engine, module, changes, kind):
        return _refused(engine, module, changes, kind, state_of)

    return check


def _refused(engine, module, changes, kind, state_of):
    before = state_of(module)
    generation = engine.generation
    history = engine.history()
    with pytest.raises(LivefixError) as info:
        engine.apply(changes)
    assert info.value.kind == kind, info.value.message
    assert state_of(module) == before  # nothing changed in the process
    assert engine.generation == generation and engine.history() == history
    assert module.price(2) == 4 and module.Order("tea").describe() == "1 x tea"
    return info.value


def test_syntax_error_points_at_the_real_file(engine, target, refused):
    error = refused(
        engine, target,
        [{"module": target.__name__, "qualname": "price", "source": "def price(x):\n    return x *\n", "line": 17}],
        "syntax",
    )
    assert error.details["line"] == 18 and error.details["path"] == target.__file__
    assert error.details["column"] > 0 and f"{target.__file__}:18:" in error.message


def test_syntax_error_in_a_whole_module_reload(ws, engine, target, state_of):
    ws.edit(target, "return x * 2", "return x * * 2")
    before = state_of(target)
    with pytest.raises(LivefixError) as info:
        engine.reload_module(target.__name__)
    assert info.value.kind == "syntax" and info.value.details["line"] == 17
    assert state_of(target) == before


def test_unknown_module(engine, target, refused):
    refused(engine, target, [{"module": "no_such_module_here", "qualname": "f", "source": "def f(): pass"}], "notFound")


def test_unknown_class(engine, target, refused):
    refused(engine, target, [{"module": target.__name__, "qualname": "Nope.f", "source": "def f(self): pass"}], "notFound")


def test_source_defining_another_name(engine, target, refused):
    error = refused(engine, target, [{"module": target.__name__, "qualname": "price", "source": "def cost(x):\n    return 1\n"}], "invalid")
    assert "`cost`" in error.message


def test_empty_and_non_text_source(engine, target, refused):
    refused(engine, target, [{"module": target.__name__, "qualname": "price", "source": "   \n"}], "invalid")
    refused(engine, target, [{"module": target.__name__, "qualname": "price", "source": b"def price(x): pass"}], "invalid")
    refused(engine, target, [{"module": target.__name__, "qualname": "price", "source": "def price(x):\x00 pass"}], "invalid")
    refused(engine, target, [{"module": target.__name__}], "invalid")
    refused(engine, target, [], "invalid")


def test_changed_closure_is_refused(engine, target, refused):
    error = refused(
        engine, target,
        [{"module": target.__name__, "qualname": "Plain.hello", "source": "def hello(self):\n    return super().hello()\n"}],
        "incompatible",
    )
    assert "super()" in error.message and "Plain.hello" in error.message


def test_dataclass_field_change_is_refused(engine, target, refused):
    source = "@dataclasses.dataclass\nclass Order:\n    item: str\n    qty: int = 2\n\n    def describe(self):\n        return 'x'\n"
    error = refused(engine, target, [{"module": target.__name__, "qualname": "Order", "source": source}], "incompatible")
    assert "changes the type or default of qty" in error.message and "migrate=" in error.message


def test_dataclass_method_change_is_allowed(engine, target):
    source = (
        "@dataclasses.dataclass\nclass Order:\n    item: str\n    qty: int = 1\n\n"
        "    def describe(self):\n        return f'{self.qty} of {self.item}'\n"
    )
    engine.apply([{"module": target.__name__, "qualname": "Order", "source": source}])
    assert target.Order("tea").describe() == "1 of tea"


def test_slots_change_is_refused(engine, target, refused):
    source = "class Slotted:\n    __slots__ = ('a', 'b')\n\n    def get(self):\n        return self.a\n"
    error = refused(engine, target, [{"module": target.__name__, "qualname": "Slotted", "source": source}], "incompatible")
    assert "__slots__" in error.message


def test_builtin_target_is_unsupported(engine, target, refused):
    error = refused(engine, target, [{"module": "math", "qualname": "sqrt", "source": "def sqrt(x):\n    return 1\n"}],
                    "unsupported")
    assert "math" in error.message


def test_c_function_in_a_python_module_is_unsupported(engine, target, refused):
    target.fast = len  # a builtin bound to a module-level name
    error = refused(engine, target, [{"module": target.__name__, "qualname": "fast", "source": "def fast(x):\n    return 1\n"}],
                    "unsupported")
    assert "built-in" in error.message


def test_later_failure_undoes_the_whole_generation(engine, target, state_of):
    before = state_of(target)
    with pytest.raises(LivefixError):
        engine.apply([
            {"module": target.__name__, "qualname": "price", "source": "def price(x):\n    return x * 100\n"},
            {"module": target.__name__, "qualname": "Plain.hello", "source": "def hello(self):\n    return super().hello()\n"},
        ])
    assert state_of(target) == before and target.price(1) == 2


def test_locals_qualname_is_unsupported(engine, target, refused):
    refused(engine, target, [{"module": target.__name__, "qualname": "make_counter.<locals>.bump",
                              "source": "def bump():\n    return 1\n"}], "unsupported")


@pytest.mark.parametrize("qualname", ["", "   ", None, 3, ["price"]])
def test_only_an_absent_qualname_means_the_whole_module(engine, target, refused, qualname):
    """An empty (or null, or non-text) qualname is refused: it must not replace the whole
    module, which would remove every definition its source leaves out."""
    error = refused(engine, target, [{"module": target.__name__, "qualname": qualname, "source": "def price(x):\n    return 1\n"}],
                    "invalid")
    assert "qualname" in error.message and error.details["index"] == 0


@pytest.mark.parametrize("line", [0, -4, True, 2.0, "17"])
def test_line_below_one_or_not_a_number_is_refused(engine, target, refused, line):
    error = refused(engine, target, [{"module": target.__name__, "qualname": "price",
                                      "source": "def price(x):\n    return 1\n", "line": line}], "invalid")
    assert "line" in error.message


def test_module_and_path_that_disagree_are_refused(ws, engine, target, refused):
    other = ws.module("def price(x):\n    return 0\n")
    error = refused(engine, target, [{"module": target.__name__, "path": other.__file__, "qualname": "price",
                                      "source": "def price(x):\n    return 1\n"}], "invalid")
    assert (error.details["module"], error.details["path"], error.details["moduleFile"]) == (
        target.__name__, other.__file__, target.__file__)
    assert other.price(1) == 0
    # Naming the module's own file (by another spelling of its path) is no disagreement.
    spelled = str(ws.root / "." / ws.path(target).name)
    engine.apply([{"module": target.__name__, "path": spelled, "qualname": "price", "source": "def price(x):\n    return x * 3\n"}])
    assert target.price(2) == 6


def test_either_name_alone_still_decides(ws, engine, target):
    """A module name that is not loaded leaves the path to decide (a script running as
    `__main__`), and a path this machine lacks leaves the name (an editor's path mapping)."""
    engine.apply([{"module": "not_loaded_anywhere", "path": target.__file__, "qualname": "price",
                   "source": "def price(x):\n    return x * 3\n"}])
    assert target.price(2) == 6
    engine.apply([{"module": target.__name__, "path": "/editor/side/only/module.py", "qualname": "price",
                   "source": "def price(x):\n    return x * 4\n"}])
    assert target.price(2) == 8


def test_whole_module_apply_is_risky_and_reload_is_not(ws, engine, target, state_of):
    before = state_of(target)
    plan = engine.prepare([{"module": target.__name__, "source": "def price(x):\n    return x * 2\n"}])
    assert any(f"replaces the whole of {target.__name__}" in reason for reason in plan.risks()), plan.risks()
    assert state_of(target) == before  # preparing touches nothing
    # A definition applied by name is not (its signature and threads decide).
    assert engine.prepare([{"module": target.__name__, "qualname": "price", "source": "def price(x):\n    return x * 5\n"}]).risks() == []
    ws.edit(target, "return x * 2", "return x * 5")
    assert engine.prepare_reload(modules=[target.__name__]).risks() == []


@pytest.mark.parametrize(
    "qualname, source",
    [
        ("Shape.area", "class area:\n    pass\n"),  # a method replaced by a class
        ("Shape", "def Shape():\n    return 1\n"),  # a class replaced by a function
    ],
)
def test_a_change_of_kind_is_refused_and_changes_nothing(ws, engine, state_of, qualname, source):
    module = ws.module("class Shape:\n    def area(self):\n        return 1\n")
    before = state_of(module)
    method = module.Shape.area
    with pytest.raises(LivefixError) as raised:
        engine.apply([{"module": module.__name__, "qualname": qualname, "source": source}])
    assert raised.value.kind == "invalid" and raised.value.details["reason"] == "kindChanged"
    assert state_of(module) == before and module.Shape.area is method and module.Shape().area() == 1
