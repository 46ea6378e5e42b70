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
