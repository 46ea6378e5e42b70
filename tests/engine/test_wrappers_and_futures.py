"""Two things the engine reads off a module that are easy to get subtly wrong: the
`from __future__` imports of its header (which decide how new code is compiled), and the
functions hidden inside wrappers without `__wrapped__` (curry-style objects, partials,
cached_property, partialmethod, singledispatchmethod), whose line numbers must move when
lines are inserted above them and whose code a fix must replace.

Lines are found by `# @marker` comments in the module text, never by hard-coded numbers.
"""

from __future__ import annotations

import __future__ as future_module
import ast
import traceback

import pytest

from livefix.engine import codeutil, compiler, swap

ANNOTATIONS = future_module.annotations.compiler_flag
GENERATOR_STOP = future_module.generator_stop.compiler_flag
DIVISION = future_module.division.compiler_flag


def apply(engine, module, qualname, source):
    return engine.apply([{"module": module.__name__, "qualname": qualname, "source": source}])


def marker_line(text, marker):
    """The number (from 1) of the line ending in `# @marker`."""
    (line,) = [number for number, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(f"# @{marker}")]
    return line


def definition_line(text, marker):
    """Where the function or lambda holding `# @marker` starts, as CPython counts
    co_firstlineno: its first decorator's line."""
    line = marker_line(text, marker)
    nodes = [
        node for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.Lambda)) and node.lineno <= line <= node.end_lineno
    ]
    innermost = max(nodes, key=lambda node: node.lineno)
    return min([innermost.lineno] + [d.lineno for d in getattr(innermost, "decorator_list", [])])


def failing_line(call):
    with pytest.raises(ZeroDivisionError) as raised:
        call()
    return traceback.extract_tb(raised.tb)[-1].lineno


# -- the `from __future__` imports of a module's header -----------------------------------

@pytest.mark.parametrize(
    "text, flags",
    [
        pytest.param("import os\n", 0, id="none"),
        pytest.param("from __future__ import annotations\n", ANNOTATIONS, id="plain"),
        pytest.param('"""How to use:\n\nfrom __future__ import annotations\n"""\nimport os\n', 0, id="in-docstring"),
        pytest.param("import os\n\nHELP = '''\nfrom __future__ import annotations\n'''\n", 0, id="in-a-later-string"),
        pytest.param("# from __future__ import annotations\nimport os\n", 0, id="in-a-comment"),
        pytest.param("import os\nfrom __future__ import annotations\n", 0, id="after-a-statement"),
        pytest.param(
            "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n'''Doc.'''\n\n# why\nfrom __future__ import annotations\n",
            ANNOTATIONS, id="after-docstring-and-comments",
        ),
        pytest.param(
            "from __future__ import (\n    annotations,  # PEP 563\n    generator_stop,\n)\n",
            ANNOTATIONS | GENERATOR_STOP, id="parenthesised",
        ),
        pytest.param("from __future__ import annotations as a, division as d\n", ANNOTATIONS | DIVISION, id="aliases"),
        pytest.param("from __future__ import \\\n    annotations\n", ANNOTATIONS, id="backslash"),
        pytest.param("from __future__ import division\nfrom __future__ import annotations\n", ANNOTATIONS | DIVISION, id="two"),
        pytest.param('"""Doc."""; from __future__ import annotations; import os\n', ANNOTATIONS, id="semicolons"),
        pytest.param("from __future__ import division; import os; from __future__ import annotations\n", DIVISION, id="semicolon-stop"),
        pytest.param("from __future__ import annotations\r\nimport os\r\n", ANNOTATIONS, id="crlf"),
        pytest.param('"""Doc.\r\n"""\r\nfrom __future__ import (\r\n  annotations)\r\n', ANNOTATIONS, id="crlf-parenthesised"),
        pytest.param("\ufeff# -*- coding: latin-1 -*-\nfrom __future__ import annotations\n", ANNOTATIONS, id="bom-and-cookie"),
        pytest.param('r"""Doc."""\nfrom __future__ import annotations\n', ANNOTATIONS, id="raw-docstring"),
        pytest.param('"Doc " "continued"\nfrom __future__ import annotations\n', ANNOTATIONS, id="concatenated-docstring"),
        pytest.param('b"""Not a docstring."""\nfrom __future__ import annotations\n', 0, id="bytes-is-no-docstring"),
        pytest.param('"""One."""\n"""Two."""\nfrom __future__ import annotations\n', 0, id="second-string"),
        pytest.param("from __future__ import annotations\ndef broken(:\n", ANNOTATIONS, id="error-after-the-header"),
        pytest.param("from __future__ import annotations\nx = 1\n'''unterminated\n", ANNOTATIONS, id="stops-at-the-first-statement"),
        pytest.param('"""unterminated\nfrom __future__ import annotations\n', 0, id="does-not-tokenize"),
        pytest.param("from __future__ import (annotations\n", 0, id="unclosed-bracket"),
        pytest.param("    from __future__ import annotations\n", 0, id="indented"),
        pytest.param("from __future__ import all_feature_names\n", 0, id="not-a-feature"),
        pytest.param("from __future__ import braces\n", 0, id="unknown-feature"),
        pytest.param("", 0, id="empty"),
        pytest.param(None, 0, id="no-text"),
    ],
)
def test_future_flags(text, flags):
    assert compiler.future_flags(text) == flags


def test_future_flags_read_only_the_header_of_a_large_module():
    body = "".join(f"def f{i}(x: int) -> int:\n    return x\n\n\n" for i in range(10_000))
    text = '"""Big."""\nfrom __future__ import annotations\n\nimport os\n\n' + body + "'''unterminated\n"
    assert compiler.future_flags(text) == ANNOTATIONS


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("from __future__ import \\\n    annotations\n", id="backslash"),
        pytest.param('"""Doc."""; from __future__ import annotations\n', id="semicolon"),
        pytest.param("# a comment\nfrom __future__ import (\n    annotations as postponed,\n)\n", id="parenthesised-alias"),
    ],
)
def test_apply_keeps_postponed_annotations_of_the_module(ws, engine, header):
    m = ws.module(header + "\n\ndef size(x: Undefined) -> int:\n    return 1\n")
    assert m.size.__annotations__ == {"x": "Undefined", "return": "int"}
    apply(engine, m, "size", "def size(x: Undefined) -> int:\n    return 2\n")
    assert m.size(0) == 2 and m.size.__annotations__ == {"x": "Undefined", "return": "int"}


# -- functions held by wrappers without __wrapped__ -------------------------------------------

CURRY_LIBRARY = """
import functools


class curry:
    \"\"\"Like toolz.curry: keeps the function in a partial and shows it as `func`, a
    property; no __wrapped__.\"\"\"

    def __init__(self, func, *args):
        self._partial = functools.partial(func, *args)
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__

    @property
    def func(self):
        return self._partial.func

    def __call__(self, *args):
        partial = functools.partial(self._partial, *args)
        if len(partial.args) < partial.func.__code__.co_argcount:
            return curry(partial.func, *partial.args)
        return partial()

    def __get__(self, instance, owner):
        return self if instance is None else curry(self.func, *self._partial.args, instance)
"""

WRAPPED = """
import functools
from unittest import mock

from {library} import curry

HEADER = 0


def with_first(value):
    \"\"\"A decorator that returns a functools.partial (no __wrapped__).\"\"\"
    def decorate(function):
        return functools.partial(function, value)
    return decorate


def method_with_first(value):
    def decorate(function):
        return functools.partialmethod(function, value)
    return decorate


class Endless:
    \"\"\"Answers every attribute with a new object: a lazy proxy, an RPC stub.\"\"\"

    asked = []

    def __getattr__(self, name):
        Endless.asked.append(name)
        return Endless()


class Touchy:
    @property
    def func(self):
        raise RuntimeError("working outside of a request")


PROXY = Endless()
TOUCHY = Touchy()
MOCK = mock.Mock()


@curry
def add(x, y):
    return y / x  # @add


def logged(function):
    \"\"\"A decorator without functools.wraps around a curry: only the closure holds it.\"\"\"
    held = curry(function)

    def wrapper(*args):
        return held(*args)

    return wrapper


@logged
def scaled(x, y):
    return y / x  # @scaled


@with_first(10)
def share(total, parts):
    return total / parts  # @share


halve = functools.partial(lambda d, x: x / d, 0)  # @halve
inverses = functools.partial(map, lambda x: 1 / x)  # @inverses


class Box:
    def __init__(self, n):
        self.n = n

    @functools.cached_property
    def inverse(self):
        return 1 / self.n  # @inverse

    @method_with_first(1)
    def ratio(self, d, x):
        return d / x  # @ratio

    @with_first(5)
    def per(total, parts):
        return total / parts  # @per

    @curry
    def times(self, x):
        return x / self.n  # @times

    @functools.singledispatchmethod
    def render(self, value):
        return value / self.n  # @render

    @render.register
    def _(self, value: float):
        return value / self.n  # @render_float

    @render.register
    def _(self, value: str):
        return value
"""


@pytest.fixture
def wrapped(ws):
    library = ws.module(CURRY_LIBRARY)
    return ws.module(WRAPPED.format(library=library.__name__))


def held_functions(m):
    """Each wrapped function by the marker of its failing line, as the module holds it."""
    box = vars(m.Box)
    return {
        "add": m.add.func,
        "scaled": m.scaled.__closure__[0].cell_contents.func,
        "share": m.share.func,
        "halve": m.halve.func,
        "inverses": m.inverses.args[0],
        "inverse": box["inverse"].func,
        "ratio": box["ratio"].func,
        "per": box["per"].func,
        "times": box["times"].func,
        "render": box["render"].func,
        "render_float": box["render"].dispatcher.registry[float],
    }


def failing_calls(m):
    return {
        "add": lambda: m.add(0)(1),
        "scaled": lambda: m.scaled(0, 1),
        "share": lambda: m.share(0),
        "halve": lambda: m.halve(1),
        "inverses": lambda: list(m.inverses([0])),
        "inverse": lambda: m.Box(0).inverse,
        "ratio": lambda: m.Box(1).ratio(0),
        "per": lambda: m.Box.per(0),
        "times": lambda: m.Box(0).times(1),
        "render": lambda: m.Box(0).render(1),
        "render_float": lambda: m.Box(0).render(1.0),
    }


def test_wrapped_functions_are_found(wrapped):
    found = set(swap.functions_of(vars(wrapped).values(), wrapped.__name__, set()))
    held = held_functions(wrapped)
    assert {name for name, function in held.items() if function not in found} == set()


def test_finding_functions_stays_bounded_and_safe(wrapped):
    """Proxies that answer every attribute with a new object, mocks, and `func` properties
    that raise are looked at without endless recursion or an exception."""
    values = [wrapped.PROXY, wrapped.TOUCHY, wrapped.MOCK]
    assert list(swap.functions_of(values, wrapped.__name__, set())) == []
    assert wrapped.Endless.asked == []  # attributes are never read through __getattr__...
    assert "func" not in dir(wrapped.MOCK)  # ...so a mock does not grow children


@pytest.mark.parametrize(
    "old, new, applied, left_out",
    [
        # below the change: moved by the reload's shift of everything after it
        pytest.param("HEADER = 0\n", "HEADER = 0\nEXTRA = 1\n\n\n", [("EXTRA", "added")], (), id="module-level"),
        # inside a changed class: its unchanged members below the change move with it, a
        # shadowed registration (only in the registry) included
        pytest.param(
            "        self.n = n\n", "        self.n = n\n        self.extra = 1\n        self.more = 2\n",
            [("Box.__init__", "replaced")], (), id="in-the-class",
        ),
    ],
)
def test_inserting_lines_above_moves_wrapped_functions(ws, engine, wrapped, old, new, applied, left_out):
    m = wrapped
    text = ws.path(m).read_text()
    calls = {marker: call for marker, call in failing_calls(m).items() if marker not in left_out}
    assert {marker: failing_line(call) for marker, call in calls.items()} == {
        marker: marker_line(text, marker) for marker in calls
    }
    held = {marker: function for marker, function in held_functions(m).items() if marker in calls}
    ws.edit(m, old, new)
    result = engine.reload_module(m.__name__)
    text = ws.path(m).read_text()
    assert [(e["qualname"], e["kind"]) for e in result.applied] == applied
    assert {marker: held_functions(m)[marker] for marker in held} == held  # the same objects, moved in place
    assert {marker: function.__code__.co_firstlineno for marker, function in held.items()} == {
        marker: definition_line(text, marker) for marker in held
    }
    assert {marker: failing_line(call) for marker, call in calls.items()} == {
        marker: marker_line(text, marker) for marker in calls
    }
    assert wrapped.Endless.asked == []


SHADOWED = """
import functools

HEADER = 0


@functools.singledispatch
def show(value):
    return value


@show.register
def _(value: int):
    return 1 / value  # @shadowed


@show.register
def _(value: str):
    return value


class Shop:
    def __init__(self):
        self.n = 0

    @functools.singledispatchmethod
    def show(self, value):
        return value

    @show.register
    def _(self, value: int):
        return 1 / value  # @shadowed_method

    @show.register
    def _(self, value: str):
        return value


def last():
    return 0
"""


@pytest.mark.parametrize("marker", ["shadowed", "shadowed_method"])
def test_shadowed_registration_in_a_changed_span_moves(ws, engine, marker):
    m = ws.module(SHADOWED)
    ws.edit(m, "HEADER = 0\n", "HEADER = 0\nEXTRA = 1\n\n\n")  # a change above...
    ws.edit(m, "        self.n = 0\n", "        self.n = 0\n        self.extra = 1\n")  # ...in the class...
    ws.edit(m, "    return 0\n", "    return 1\n")  # ...and below: the span covers everything between
    engine.reload_module(m.__name__)
    call = (lambda: m.show(0)) if marker == "shadowed" else (lambda: m.Shop().show(0))
    assert failing_line(call) == marker_line(ws.path(m).read_text(), marker)


# -- the running function behind each wrapper ---------------------------------------------

def test_unwrap_function_finds_the_function_behind_each_wrapper(wrapped):
    m, box = wrapped, vars(wrapped.Box)
    held = held_functions(m)
    assert codeutil.unwrap_function(m.add, "add") is held["add"]
    assert codeutil.unwrap_function(m.add(1), "add") is held["add"]  # a curried call keeps the function
    assert codeutil.unwrap_function(m.share, "share") is held["share"]
    assert codeutil.unwrap_function(box["inverse"], "inverse") is held["inverse"]
    assert codeutil.unwrap_function(box["ratio"], "ratio") is held["ratio"]
    assert codeutil.unwrap_function(box["per"], "per") is held["per"]
    assert codeutil.unwrap_function(box["times"], "times") is held["times"]
    assert codeutil.unwrap_function(box["render"], "render") is held["render"]


def test_unwrap_function_survives_a_property_that_raises():
    def target():
        return 1

    class Wrapper:
        def __init__(self, function):
            self.__wrapped__ = function

        @property
        def func(self):
            raise RuntimeError("working outside of a request")

    assert codeutil.unwrap_function(Wrapper(target), "target") is target


def test_unwrap_function_follows_a_curry_held_in_a_closure(wrapped):
    curry = type(wrapped.add)

    def logged(function):
        held = curry(function)

        def wrapper(*args):  # no functools.wraps: the curry is only in the closure
            return held(*args)

        return wrapper

    def target(x, y):
        return x + y

    assert codeutil.unwrap_function(logged(target), "target") is target
    assert codeutil.unwrap_function(wrapped.scaled, "scaled") is held_functions(wrapped)["scaled"]


# -- fixes to wrapped functions reach every reference -------------------------------------------

def test_apply_to_wrapped_functions_reaches_every_reference(ws, engine, wrapped):
    m = wrapped
    other = ws.module(
        f"""
        import functools
        from {m.__name__} import add, share, Box

        INCREMENT = add(1)
        SHARE = share
        AGAIN = functools.partial(add.func, 2)
        RATIO = Box.ratio
        """
    )
    cached = m.Box(4)
    assert cached.inverse == 0.25
    apply(engine, m, "add", "@curry\ndef add(x, y):\n    return x + y + 100\n")
    apply(engine, m, "scaled", "@logged\ndef scaled(x, y):\n    return x * y\n")
    apply(engine, m, "share", "@with_first(10)\ndef share(total, parts):\n    return total // parts\n")
    apply(engine, m, "Box.inverse", "@functools.cached_property\ndef inverse(self):\n    return -self.n\n")
    apply(engine, m, "Box.ratio", "@method_with_first(1)\ndef ratio(self, d, x):\n    return d * x\n")
    apply(engine, m, "Box.per", "@with_first(5)\ndef per(total, parts):\n    return total * parts\n")
    apply(engine, m, "Box.times", "@curry\ndef times(self, x):\n    return x * self.n\n")
    assert m.add(1)(2) == 103 and m.add(1, 2) == 103
    assert other.INCREMENT(2) == 103 and other.AGAIN(3) == 105
    assert m.scaled(2, 3) == 6
    assert m.share(3) == 3 and other.SHARE(3) == 3
    assert m.Box(4).inverse == -4
    assert cached.inverse == 0.25  # a value cached before the fix stays: cached_property's contract
    assert m.Box(4).ratio(3) == 3 and other.RATIO(m.Box(4), 3) == 3
    assert m.Box.per(3) == 15  # a partial in a class does not bind (from an instance it warns on 3.13)
    assert m.Box(4).times(3) == 12
    engine.rollback(to=0)
    assert other.INCREMENT(2) == 2.0 and m.share(4) == 2.5 and m.Box(4).inverse == 0.25
