"""What source each loaded module is running: the baseline every diff starts from.

A module's "running text" is the source it was imported from, updated by every
generation livefix applies (a definition applied from the editor is spliced in), so
that `reload` and `status` compare the file on disk against exactly what runs.
Texts are recorded when a module is imported after `install()` (a wrapper around
SourceFileLoader.exec_module reads the file once, before executing it), or, for
modules already loaded at install time, read then if their file has not changed
since the module was loaded (compared with the time the module's cached bytecode
was validated against).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import threading
import types
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class ModuleSource:
    name: str
    path: str
    text: str | None  # None: not known (the file changed before livefix recorded it)
    # Definitions whose running code is known to differ from `text` (a text recorded late,
    # after the file was edited): diffs treat them as changed even where the texts agree.
    stale: frozenset[str] = frozenset()


def read_source(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    return importlib.util.decode_source(data)


def library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(sorted(roots))


def module_file(module: types.ModuleType) -> str | None:
    """The .py file a module was loaded from, or None (builtins, extensions, sourceless)."""
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return None
    return path


class SourceStore:
    """Running texts by module name. One per engine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, ModuleSource] = {}
        self._original_exec_module: Callable[..., Any] | None = None
        self._libraries = library_roots()

    # -- recording -------------------------------------------------------------------

    def install(self) -> None:
        """Record the running text of loaded modules now, and of every module imported later."""
        with self._lock:
            if self._original_exec_module is not None:
                return
            original = importlib.machinery.SourceFileLoader.exec_module
            self._original_exec_module = original
            store = self

            def exec_module(loader: Any, module: types.ModuleType) -> None:
                try:
                    # Library sources are read lazily when first needed (their files rarely
                    # change under a running program): keeping every text would cost megabytes.
                    if not store.is_library(loader.path):
                        store.record(module.__name__, loader.path)
                except Exception:  # never break an import because of livefix
                    pass
                return original(loader, module)

            exec_module.__livefix__ = True  # type: ignore[attr-defined]
            importlib.machinery.SourceFileLoader.exec_module = exec_module  # type: ignore[method-assign]
        for name, module in list(sys.modules.items()):
            if isinstance(module, types.ModuleType) and name not in self._sources:
                path = module_file(module)
                if path and not self.is_library(path) and not self._changed_since_load(module, path):
                    try:
                        self.record(name, path)
                    except OSError:
                        pass

    def uninstall(self) -> None:
        with self._lock:
            if self._original_exec_module is not None:
                importlib.machinery.SourceFileLoader.exec_module = self._original_exec_module  # type: ignore[method-assign]
                self._original_exec_module = None

    def record(self, name: str, path: str, text: str | None = None) -> ModuleSource:
        if text is None:
            text = read_source(path)
        source = ModuleSource(name=name, path=path, text=text)
        self._sources[name] = source
        return source

    @staticmethod
    def _changed_since_load(module: types.ModuleType, path: str) -> bool:
        """True when the file is newer than the bytecode the module was loaded from."""
        cached = getattr(module, "__cached__", None)
        try:
            source_mtime = os.stat(path).st_mtime
            if cached and os.path.exists(cached):
                return source_mtime > os.stat(cached).st_mtime + 1e-6
        except OSError:
            return True
        return False

    # -- queries ---------------------------------------------------------------------

    def is_library(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real.startswith(root + os.sep) for root in self._libraries) or "site-packages" in real

    def get(self, module: types.ModuleType) -> ModuleSource | None:
        """The running text of `module`, recording it now when its file is unchanged since load."""
        name = module.__name__
        source = self._sources.get(name)
        path = module_file(module)
        if source is not None and (
            path is None or source.path == path or os.path.realpath(source.path) == os.path.realpath(path)
        ):
            return source
        if path is None:
            return None
        try:
            if not self._changed_since_load(module, path) and getattr(module, "__cached__", None):
                return self.record(name, path)
            # No trustworthy record (a __main__ script run by runpy, or a file edited since
            # it was loaded): take the file, and mark the definitions whose running code
            # does not match it.
            text = read_source(path)
        except (OSError, UnicodeDecodeError, SyntaxError):
            return None
        stale = stale_definitions(module, text, path)
        if stale is None:
            return None
        source = self.record(name, path, text)
        source.stale = stale
        return source

    def restore(self, name: str, path: str, text: str | None, stale: frozenset[str]) -> None:
        self._sources[name] = ModuleSource(name=name, path=path, text=text, stale=stale)

    def snapshot(self, name: str) -> str | None:
        source = self._sources.get(name)
        return None if source is None else source.text

    def stale(self, name: str) -> frozenset[str]:
        source = self._sources.get(name)
        return frozenset() if source is None else source.stale


def stale_definitions(module: types.ModuleType, text: str, path: str) -> frozenset[str] | None:
    """Qualnames of functions and methods whose running code differs from `text` compiled
    (None: the text does not compile, so it cannot serve as a baseline)."""
    try:
        code = compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    stale: set[str] = set()
    _compare_codes(code, module.__dict__, "", stale)
    return frozenset(stale)


def _compare_codes(code: types.CodeType, namespace: Any, prefix: str, stale: set[str]) -> None:
    for const in code.co_consts:
        if not isinstance(const, types.CodeType) or const.co_name.startswith("<"):
            continue
        qualname = prefix + const.co_name
        try:
            current = namespace.get(const.co_name) if isinstance(namespace, dict) else namespace.__dict__.get(const.co_name)
        except Exception:
            current = None
        if isinstance(current, type) and getattr(current, "__module__", None) is not None:
            _compare_codes(const, current, qualname + ".", stale)  # a class body: its methods
            continue
        function = current
        for attr in ("fget", "__func__", "__wrapped__"):
            function = getattr(function, attr, function)
        running = getattr(function, "__code__", None)
        if running is not None and running != const:
            stale.add(qualname)
