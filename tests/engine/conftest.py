"""Fixtures for engine tests: real modules written to disk and imported, one Engine per test."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
import types
from pathlib import Path
from typing import Callable

import pytest

from livefix.engine import Engine

_counter = itertools.count()


class Workspace:
    """A folder on sys.path where a test writes modules, then imports them under unique names."""

    def __init__(self, root: Path, engine: Engine) -> None:
        self.root = root
        self.engine = engine
        self.names: list[str] = []

    def module(self, source: str, name: str | None = None) -> types.ModuleType:
        name = name or f"lfmod_{next(_counter)}"
        path = self.root / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in list(path.relative_to(self.root).parents)[:-1]:
            init = self.root / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        self.names.append(name)
        return module

    def path(self, module: types.ModuleType) -> Path:
        return Path(module.__file__)

    def edit(self, module: types.ModuleType, old: str, new: str) -> None:
        path = self.path(module)
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))

    def write(self, module: types.ModuleType, source: str) -> None:
        self.path(module).write_text(textwrap.dedent(source))


@pytest.fixture
def engine() -> Engine:
    engine = Engine()
    engine.install()
    yield engine
    engine.watches.close()  # its evidence windows and monitoring hooks end with the test
    engine.sources.uninstall()


@pytest.fixture
def ws(tmp_path: Path, engine: Engine) -> Workspace:
    sys.path.insert(0, str(tmp_path))
    workspace = Workspace(tmp_path, engine)
    yield workspace
    sys.path.remove(str(tmp_path))
    for name in workspace.names:
        sys.modules.pop(name, None)


def state_of(module: types.ModuleType) -> dict[str, object]:
    """Everything a failed change must leave exactly as it was: every function's code,
    defaults and the identity of every module and class attribute."""
    snapshot: dict[str, object] = {}
    for name, value in vars(module).items():
        snapshot[name] = value
        if isinstance(value, types.FunctionType):
            snapshot[name + ".__code__"] = value.__code__
            snapshot[name + ".__defaults__"] = value.__defaults__
        if isinstance(value, type):
            for member, inner in vars(value).items():
                snapshot[f"{name}.{member}"] = inner
                function = getattr(inner, "__func__", inner)
                if isinstance(function, types.FunctionType):
                    snapshot[f"{name}.{member}.__code__"] = function.__code__
    return snapshot


@pytest.fixture(name="state_of")
def state_of_fixture() -> Callable[[types.ModuleType], dict[str, object]]:
    return state_of
