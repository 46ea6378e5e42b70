"""livefix arriving after the program's modules were loaded (and their files edited):
`modified_modules`, `reload_module` and `apply` must be as right as with `install()` first,
with bytecode caches and without (containers set PYTHONDONTWRITEBYTECODE=1)."""

from __future__ import annotations

import ast
import json
import importlib
import os
import sys
import types
import typing
from pathlib import Path

import pytest

from livefix.engine import Engine

SOURCE = '''\
"""Prices for the shop."""
import typing

RATE = 2


def price(qty):
    return qty * RATE


@typing.overload
def parse(value: int) -> int: ...
@typing.overload
def parse(value: str) -> str: ...
def parse(value):
    return value


class Base:
    def __init__(self, x=0):
        self.x = x


class Cart(Base):
    @typing.overload
    def __init__(self, x: int) -> None: ...
    @typing.overload
    def __init__(self, x: str) -> None: ...
    def __init__(self, x=0):
        super().__init__(x)

    def total(self):
        return price(self.x)

    @property
    def doubled(self):
        return self.x * 2
'''


def def_lines(path: Path) -> dict[str, int]:
    """Each definition's first line (its first decorator) in the file, by qualname (last wins)."""
    lines: dict[str, int] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if not isinstance(node, ast.ClassDef):
                    lines[prefix + node.name] = first
                else:
                    walk(node.body, prefix + node.name + ".")

    walk(ast.parse(path.read_text()).body, "")
    return lines


def running_lines(module: types.ModuleType) -> dict[str, int]:
    found = {
        "price": module.price.__code__.co_firstlineno,
        "parse": module.parse.__code__.co_firstlineno,
        "Base.__init__": module.Base.__init__.__code__.co_firstlineno,
        "Cart.__init__": module.Cart.__init__.__code__.co_firstlineno,
        "Cart.total": module.Cart.total.__code__.co_firstlineno,
        "Cart.doubled": module.Cart.doubled.fget.__code__.co_firstlineno,
    }
    if hasattr(module, "discount"):
        found["discount"] = module.discount.__code__.co_firstlineno
    return found


@pytest.fixture
def load_before_livefix(tmp_path, monkeypatch):
    """`load(name, source)`: write a module and import it before any engine exists;
    returns (module, path). The modules are forgotten at the end."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def load(name: str, source: str) -> tuple[types.ModuleType, Path]:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name), path

    yield load
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def arriving_engine():
    """`make()`: livefix arriving now (a new, installed Engine), uninstalled at the end."""
    engines: list[Engine] = []

    def make() -> Engine:
        engine = Engine()
        engine.install()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.sources.uninstall()


@pytest.fixture(params=["no-bytecode", "bytecode"])
def late(request, monkeypatch, load_before_livefix, arriving_engine):
    """A module imported before any livefix engine existed; returns (module, path, make_engine)."""
    bytecode = request.param == "bytecode"
    monkeypatch.setattr(sys, "dont_write_bytecode", not bytecode)
    name = f"lf_late_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    module, path = load_before_livefix(name, SOURCE)
    if bytecode:
        assert module.__cached__ and os.path.exists(module.__cached__)
    else:
        assert not os.path.exists(module.__cached__ or "")
    return module, path, arriving_engine


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    stamp = path.stat().st_mtime + 2  # newer than any bytecode cache, whatever the clock's grain
    os.utime(path, (stamp, stamp))


def edit_everything(path: Path) -> None:
    """Lines inserted at the top, a body changed, a definition added, the docstring changed."""
    edit(path, '"""Prices for the shop."""\n', '"""Prices for the shop (v2)."""\n# one\n# two\n# three\n')
    edit(path, "    return qty * RATE\n", "    return qty * RATE + 1\n")
    edit(path, "class Base:", "def discount(x):\n    return x - 1\n\n\nclass Base:")
    edit(path, "def parse(value):\n    return value\n", "def parse(value):\n    return value if value is not None else 0\n")


def test_file_edited_before_attach_is_reported_and_reloaded(late):
    module, path, make_engine = late
    before_cart = module.Cart
    edit_everything(path)
    engine = make_engine()  # livefix arrives now: the file already differs from what runs
    (status,) = engine.modified_modules(modules=[module.__name__])
    assert status["changed"] == ["__doc__", "parse", "price"] and status["added"] == ["discount"]
    assert set(status["moved"]) >= {"Cart.__init__", "Cart.total", "Cart.doubled", "Base.__init__"}
    assert module.price(1) == 2
    result = engine.reload_module(module.__name__)
    assert module.price(1) == 3 and module.discount(3) == 2 and module.Cart is before_cart
    assert module.Cart(4).total() == 9 and module.Cart(4).doubled == 8
    assert module.__doc__ == "Prices for the shop (v2)."
    applied = sorted((e["qualname"], e["kind"]) for e in result.applied)
    assert ("price", "replaced") in applied and ("discount", "added") in applied
    assert not [w for w in result.warnings if "incompatible" in w or "no running function" in w], result.warnings
    assert module.parse(None) == 0
    expected = def_lines(path)
    assert running_lines(module) == {q: expected[q] for q in running_lines(module)}
    if hasattr(typing, "get_overloads"):  # 3.11+: the stubs typing keeps moved too
        stubs = [f.__code__.co_firstlineno for f in typing.get_overloads(module.parse)]
        assert stubs == [expected["parse"] - 4, expected["parse"] - 2]
    assert engine.modified_modules(modules=[module.__name__]) == []
    assert engine.reload_module(module.__name__).applied == []


def test_lines_inserted_before_attach_move_every_function_and_replace_none(late):
    module, path, make_engine = late
    edit(path, "import typing\n", "import typing\n# a comment\n# another\n")
    engine = make_engine()
    (status,) = engine.modified_modules(modules=[module.__name__])
    assert status["changed"] == [] and status["added"] == [] and "price" in status["moved"]
    codes_before = {q: code for q, code in running_lines(module).items()}
    result = engine.reload_module(module.__name__)
    assert result.applied == [] and "0 replaced" in result.report
    expected = def_lines(path)
    assert running_lines(module) == {q: expected[q] for q in codes_before}
    assert engine.modified_modules(modules=[module.__name__]) == []
    engine.rollback()
    assert running_lines(module) == codes_before


def test_nothing_changed_before_attach_means_nothing_to_reload(late):
    module, path, make_engine = late
    engine = make_engine()
    assert engine.modified_modules(modules=[module.__name__]) == []
    result = engine.reload_module(module.__name__)
    assert result.applied == [] and engine.generation == 0


def test_edit_after_attach_of_a_module_loaded_before(late):
    module, path, make_engine = late
    engine = make_engine()
    edit(path, "RATE = 2", "RATE = 5")  # a module-level statement: seen because the file was read at attach
    edit(path, "        return price(self.x)\n", "        return price(self.x) * 10\n")
    result = engine.reload_module(module.__name__)
    assert module.RATE == 5 and module.Cart(1).total() == 50
    assert sorted(e["qualname"] for e in result.applied) == ["Cart.total", "RATE"]


def test_apply_a_fix_saved_before_attach(late):
    module, path, make_engine = late
    edit(path, '"""Prices for the shop."""\n', '"""Prices for the shop."""\n# moved\n# down\n')
    edit(path, "    return qty * RATE\n", "    return qty * RATE * 10\n")
    engine = make_engine()
    result = engine.apply([{"module": module.__name__, "qualname": "price",
                            "source": "def price(qty):\n    return qty * RATE * 10\n"}])
    assert [e["qualname"] for e in result.applied] == ["price"] and module.price(1) == 20
    # the fix runs at its line in the file, and so does the code the edit moved
    expected = def_lines(path)
    assert running_lines(module) == {q: expected[q] for q in running_lines(module)}
    assert engine.modified_modules(modules=[module.__name__]) == []
    engine.rollback()
    assert module.price(1) == 2


def test_a_function_removed_from_the_file_before_attach_is_named(late):
    module, path, make_engine = late
    edit(path, "def price(qty):\n    return qty * RATE\n", "def cost(qty):\n    return qty * RATE\n")
    engine = make_engine()
    (status,) = engine.modified_modules(modules=[module.__name__])
    assert "price" in status["removed"] and "cost" in status["added"]
    result = engine.reload_module(module.__name__)
    assert module.cost(2) == 4
    assert any("price" in w and "does not define" in w for w in result.warnings), result.warnings


def test_a_module_without_definitions_edited_before_attach(monkeypatch, load_before_livefix, arriving_engine):
    """Only comments or module statements changed, nothing to compare with the running code:
    with a bytecode cache livefix can still tell the file changed after loading, and says so;
    a reload records the file as what runs."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    module, path = load_before_livefix("lf_late_constants", "LIMIT = 10\n")
    assert os.path.exists(module.__cached__)
    edit(path, "LIMIT = 10\n", "# tuned\nLIMIT = 10\n")
    engine = arriving_engine()
    (status,) = engine.modified_modules(modules=["lf_late_constants"])
    assert status["changed"] == [] and "bytecode cache records an older file" in status["note"]
    assert status["baseline"] == "derived"
    result = engine.reload_module("lf_late_constants")
    assert result.applied == [] and "Nothing to reload" in result.report
    assert engine.modified_modules(modules=["lf_late_constants"]) == []


def test_a_lambda_in_a_registry_edited_before_attach(load_before_livefix, arriving_engine):
    """A changed lambda inside a module-level dict: nothing names it, so the statement holding
    it is what differs; a reload runs that statement again."""
    module, path = load_before_livefix(
        "lf_late_registry",
        'HANDLERS = {"neg": lambda x: -x}\nOTHER = [lambda: 1]\n\n\ndef handle(x):\n    return HANDLERS["neg"](x)\n',
    )
    edit(path, "lambda x: -x", "lambda x: -abs(x)")
    edit(path, "HANDLERS =", "# the handlers\nHANDLERS =")
    engine = arriving_engine()
    (status,) = engine.modified_modules(modules=["lf_late_registry"])
    assert status["changed"] == ["HANDLERS"]
    engine.reload_module("lf_late_registry")
    assert module.handle(-3) == -3 and module.HANDLERS["neg"].__code__.co_firstlineno == 2
    assert module.OTHER[0].__code__.co_firstlineno == 3
    assert engine.modified_modules(modules=["lf_late_registry"]) == []


def test_a_script_still_running_its_top_level_is_not_said_to_add_what_it_has_not_reached(tmp_path):
    """livefix imported from a script's main loop: the definitions below the running line
    have not run yet; they are not 'added since the program loaded'."""
    import subprocess

    script = tmp_path / "lf_script.py"
    script.write_text(
        "import json, livefix\n\n\ndef before():\n    return 1\n\n\n"
        "print(json.dumps(livefix.modified_modules(modules=['__main__'])))\n\n\n"
        "def after():\n    return 2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
