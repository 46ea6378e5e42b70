"""What source each loaded module is running: the baseline every diff starts from.

A module's "running text" is the source it was imported from, updated by every
generation livefix applies (a definition applied from the editor is spliced in), so
that `reload` and `status` compare the file on disk against exactly what runs.

A text is exact when livefix saw it being imported (after `install()`, a wrapper around
SourceFileLoader.exec_module reads the file once, before executing it). Otherwise (a
module loaded before livefix arrived, a library read lazily, a `__main__` script) the text
is a candidate, read from the file at install time or when first needed, and is checked
against the running code objects before anything relies on it (`baseline.derive`): the
definitions whose running code differs from it, or sits at other lines, are recorded with
it, never assumed from a file's modification time or a bytecode cache.

A module can execute again outside livefix: `importlib.reload(m)`, or `m` dropped from
`sys.modules` and imported anew. Its text is then the file's again, and whatever the engine
kept about the text it replaces (generations' patches: offsets into that text) no longer
holds: the hook hands the re-recording to `on_reimport` (the engine), which updates what it
keeps and records the new text under its own lock. A re-import whose file does not compile
runs nothing (the import raises first), so it changes nothing here either.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import threading
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from livefix.engine import baseline


@dataclass(frozen=True)
class ModuleSource:
    """What one module runs: a text, and where the running code departs from it."""

    name: str
    path: str
    text: str | None  # None: not known
    # Definitions whose running code differs from `text` (a text read after the file was
    # edited): diffs treat them as changed even where the texts agree.
    stale: frozenset[str] = frozenset()
    # The stale definitions nothing runs under the name of (the text added them).
    missing: frozenset[str] = frozenset()
    # Definitions whose running code starts at another line than `text` says: qualname ->
    # ((the text's first line of one, its running co_firstlineno), ...).
    running_lines: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # Functions that run but that `text` does not define.
    orphans: tuple[str, ...] = ()
    # The text was not seen at import: module-level statements (constants, registrations)
    # cannot be checked against what ran, only definitions can.
    derived: bool = False
    # A candidate text not yet compared with the running code.
    checked: bool = True
    # The module's bytecode cache records an older file than the one on disk: the file
    # changed after the module was loaded, though maybe only in comments or module statements.
    cache_older: bool = False

    @property
    def exact(self) -> bool:
        """Does every definition run at the text's lines, as the text has it?"""
        return not self.stale and not self.running_lines


def read_source(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    return importlib.util.decode_source(data)


# What identifies a file's content without reading it: (st_mtime_ns, st_size, st_ino,
# st_ctime_ns). The ctime catches a rewrite that restored the old mtime (cp -p, rsync).
Stamp = tuple[int, int, int, int]
# A stamp is trusted only when the file's mtime was this far behind the clock when it was
# taken: a file system ticks its timestamps coarsely (up to 2 s), so a same-size write within
# the same tick would keep the stamp ("racy clean", as git calls it).
_RACY_NS = 2_000_000_000


def file_stamp(path: str) -> Stamp:
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)


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
        # Called with each module the import hook saw executing, once it has executed.
        self.import_listeners: list[Callable[[types.ModuleType], None]] = []
        # Called, before it runs, with a module executing again (a re-import) and the step that
        # records its new text, which the callee runs (the engine: see module docstring).
        self.on_reimport: Callable[[types.ModuleType, Callable[[], None]], None] | None = None
        self._libraries = library_roots()
        self._library_paths: dict[str, bool] = {}  # is_library, by path: realpath costs a syscall per component
        # Per module, the running source last found identical to its file, and the file's stamp
        # then (status: an unchanged file of an unchanged module is not read and compared again).
        # Weak: a replaced source must not be kept alive (generations keep texts as patches).
        self._matching_files: dict[str, tuple[weakref.ref[ModuleSource], Stamp]] = {}

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
                    store._executing(loader, module)
                except Exception:  # never break an import because of livefix
                    pass
                result = original(loader, module)
                for listener in store.import_listeners:  # e.g. changes kept until this import
                    try:
                        listener(module)
                    except Exception:
                        pass
                return result

            exec_module.__livefix__ = True  # type: ignore[attr-defined]
            importlib.machinery.SourceFileLoader.exec_module = exec_module  # type: ignore[method-assign]
        # Modules loaded before livefix arrived: their files are read now (a later edit of a
        # module-level statement then shows as a change), and checked against the running
        # code when first needed (the file may already have been edited before now).
        for name, module in list(sys.modules.items()):
            if isinstance(module, types.ModuleType) and name not in self._sources:
                path = module_file(module)
                if path and not self.is_library(path):
                    try:
                        self._sources[name] = ModuleSource(name, path, read_source(path), derived=True, checked=False)
                    except (OSError, UnicodeDecodeError, SyntaxError):
                        pass

    def uninstall(self) -> None:
        with self._lock:
            if self._original_exec_module is not None:
                importlib.machinery.SourceFileLoader.exec_module = self._original_exec_module  # type: ignore[method-assign]
                self._original_exec_module = None

    def _executing(self, loader: Any, module: types.ModuleType) -> None:
        """The import hook, before `module` executes from `loader.path`."""
        name, path = module.__name__, loader.path
        # Library sources are read lazily when first needed (their files rarely change under
        # a running program): keeping every text would cost megabytes.
        library = self.is_library(path)
        if name not in self._sources:  # a first import (the common case)
            if not library:
                self.record(name, path)
            return
        try:
            # Compiled (or read from its bytecode cache) once more than the import does, for
            # re-imports only: a file that does not compile makes the import raise first.
            loader.get_code(name)
        except Exception:
            return  # the import raises before running anything: the module runs what it ran

        def record() -> None:
            self._matching_files.pop(name, None)
            if library:
                self._sources.pop(name, None)  # read again when needed
                return
            try:
                self.record(name, path)
            except Exception:
                self._sources.pop(name, None)  # what runs is not the old text, whatever it is
                raise

        if self.on_reimport is not None:
            self.on_reimport(module, record)
        else:
            record()

    def record(self, name: str, path: str, text: str | None = None) -> ModuleSource:
        """The text a module is being imported from (exact)."""
        if text is None:
            text = read_source(path)
        source = ModuleSource(name=name, path=path, text=text)
        self._sources[name] = source
        return source

    # -- queries ---------------------------------------------------------------------

    def is_library(self, path: str) -> bool:
        known = self._library_paths.get(path)
        if known is None:
            real = os.path.realpath(path)
            known = any(real.startswith(root + os.sep) for root in self._libraries) or "site-packages" in real
            self._library_paths[path] = known
        return known

    def matches_file(self, source: ModuleSource, stamp: Stamp) -> bool:
        """Was exactly this running source found identical to its file while the file had `stamp`?"""
        known = self._matching_files.get(source.name)
        return known is not None and known[1] == stamp and known[0]() is source

    def note_matching_file(self, source: ModuleSource, stamp: Stamp) -> None:
        """`source` is identical to its file, whose stamp was `stamp` a moment ago."""
        # The clock is read after the stat: a write after the stat has a later mtime still.
        if stamp[0] < time.time_ns() - _RACY_NS:
            self._matching_files[source.name] = (weakref.ref(source), stamp)
        else:
            self._matching_files.pop(source.name, None)

    def get(self, module: types.ModuleType) -> ModuleSource | None:
        """What `module` runs (None: no usable text), checking a candidate text first."""
        name = module.__name__
        source = self._sources.get(name)
        path = module_file(module)
        if source is not None and path is not None and not _same_file(source.path, path):
            source = None  # another file now runs under that name
        if source is not None and source.checked:
            return source
        if path is None:
            return source
        try:
            text = source.text if source is not None and source.text is not None else read_source(path)
        except (OSError, UnicodeDecodeError, SyntaxError):
            return None
        derived = baseline.derive(module, text, path)
        if derived is None and source is not None:  # the text read at install does not compile: try the file
            try:
                text = read_source(path)
            except (OSError, UnicodeDecodeError, SyntaxError):
                return None
            derived = baseline.derive(module, text, path)
        if derived is None:
            return None
        checked = ModuleSource(
            name, path, text, stale=derived.stale, missing=derived.missing, running_lines=derived.running_lines,
            orphans=derived.orphans, derived=True, cache_older=cache_is_older(module, path),
        )
        self._sources[name] = checked
        return checked

    def current(self, name: str) -> ModuleSource | None:
        """The recorded state of a module, as it is (no check, no file read)."""
        return self._sources.get(name)

    def restore(self, source: ModuleSource) -> None:
        self._sources[source.name] = source

    def snapshot(self, name: str) -> str | None:
        source = self._sources.get(name)
        return None if source is None else source.text


def cache_is_older(module: types.ModuleType, path: str) -> bool:
    """Does the module's timestamp bytecode cache describe another file than the one on disk?
    (The import that loaded the module wrote or checked that cache against the file it read.)"""
    cached = getattr(module, "__cached__", None)
    if not cached:
        return False
    try:
        with open(cached, "rb") as handle:
            header = handle.read(16)
        stat = os.stat(path)
    except OSError:
        return False
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little"):
        return False  # not a cache of this interpreter's, or a hash-based one
    recorded = (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little"))
    return recorded != (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)


def replace(source: ModuleSource, **changes: Any) -> ModuleSource:
    return dataclasses.replace(source, **changes)


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)
