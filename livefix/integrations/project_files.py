"""Which of the program's own modules have a file that changed since last asked.

A notebook asks before every cell, so the answer must not cost a `stat` per loaded module
(IPython's autoreload stats every one, libraries included). Here:

- modules are classified once, when `sys.modules` has grown since the last look: only the
  user's own files (the `include` test: not the standard library, not site-packages) are kept;
- on Linux one inotify descriptor watches the directories of those files, and asking is one
  non-blocking `read` when nothing changed. The kernel queues an event before the writing
  `write`/`rename` returns, so a save that finished before the cell started is always seen;
- elsewhere (or when inotify is unavailable or out of watches) each project file is stat'ed.

Either way a file counts as changed when its (mtime, size, inode) stamp differs from the one
taken when it was last looked at; whether its definitions differ is the engine's to say.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import sys
import types
from typing import Callable

Stamp = tuple[int, int, int]

# <sys/inotify.h>
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_Q_OVERFLOW, _IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
         | _IN_DELETE_SELF | _IN_MOVE_SELF)
_EVENT = struct.Struct("iIII")


def stamp(path: str) -> Stamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class _Inotify:
    """The directories holding project files, watched by one non-blocking inotify descriptor."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        self._directories: dict[int, str] = {}
        self._watched: set[str] = set()
        self.missing: set[str] = set()  # watched directories gone, to watch again when back

    def add(self, directory: str) -> bool:
        if directory in self._watched:
            return True
        wd = self._add_watch(self.fd, os.fsencode(directory), _MASK)
        if wd < 0:  # ENOSPC (max_user_watches), EACCES...: the caller falls back to stat
            return False
        self._directories[wd] = directory
        self._watched.add(directory)
        return True

    def read(self) -> tuple[set[str], bool]:
        """Paths named by the events queued since the last read, and whether events were lost."""
        paths: set[str] = set()
        lost = False
        for directory in list(self.missing):  # back: watched again, and what it holds compared
            if os.path.isdir(directory):
                self.missing.discard(directory)
                if not self.add(directory):
                    raise OSError("inotify: out of watches")
                lost = True
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return paths, lost
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].split(b"\0", 1)[0]
                offset += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    lost = True
                elif mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                    # The directory went away or was renamed (a branch switch): the watch no
                    # longer stands for its path, which is watched again when it exists again.
                    directory = self._directories.pop(wd, None)
                    if directory is not None:
                        self._watched.discard(directory)
                        self.missing.add(directory)
                    lost = True
                elif wd in self._directories and name:
                    paths.add(os.path.join(self._directories[wd], os.fsdecode(name)))

    def wait(self, timeout: float) -> None:
        select.select([self.fd], [], [], timeout)

    def close(self) -> None:
        os.close(self.fd)


class ProjectFiles:
    """The loaded modules whose files pass `include(path)`, and which of those files changed."""

    def __init__(
        self,
        include: Callable[[str], bool],
        use_events: bool = True,
        differs: Callable[[str], bool] | None = None,
    ) -> None:
        self._include = include
        # Does this module's file already differ from the text it runs? Asked once per module
        # found after the first look: it may have been imported, then saved, before this saw it.
        self._differs = differs
        self._seen_modules = 0
        self._classified: dict[str, int] = {}  # module name -> id of the module object looked at
        self.names: dict[str, set[str]] = {}  # real path -> module names loaded from it
        self._stamps: dict[str, Stamp | None] = {}
        self._pending: set[str] = set()  # files found already differing from what runs
        self._events: _Inotify | None = None
        if use_events and sys.platform.startswith("linux"):
            try:
                self._events = _Inotify()
            except (OSError, AttributeError):
                self._events = None
        self.refresh()

    @property
    def backend(self) -> str:
        return "inotify" if self._events is not None else "stat"

    def refresh(self) -> list[str]:
        """Take in the modules imported since the last call (cheap when none were); their
        files are stamped now. Returns the project modules newly found."""
        if len(sys.modules) == self._seen_modules and self._classified.get("__main__") == id(sys.modules.get("__main__")):
            return []
        first_look = not self._classified
        self._seen_modules = len(sys.modules)
        found = []
        for name, module in list(sys.modules.items()):
            if self._classified.get(name) == id(module):
                continue
            self._classified[name] = id(module)
            path = getattr(module, "__file__", None) if isinstance(module, types.ModuleType) else None
            if not isinstance(path, str) or not path.endswith(".py"):
                continue
            real = os.path.realpath(path)
            if not self._include(real):
                continue
            self.track(name, real, pending=not first_look and self._differs is not None and self._differs(name))
            found.append(name)
        return found

    def track(self, name: str, real_path: str, pending: bool = False) -> None:
        """Watch one module's file from now on (its stamp is taken now; `pending`: the file
        already differs from what the module runs, so the next `changed()` reports it)."""
        if pending:
            self._pending.add(real_path)
        if real_path not in self.names:
            self._stamps[real_path] = stamp(real_path)
            if self._events is not None and not self._events.add(os.path.dirname(real_path)):
                self._events.close()  # out of watches: every file is stat'ed from now on
                self._events = None
        self.names.setdefault(real_path, set()).add(name)

    def changed(self, paths: "set[str] | None" = None) -> list[str]:
        """Module names whose file changed since the last call (stamps are renewed); `paths`:
        the files another watcher reported (real paths), so only those are looked at."""
        reported: set[str] = set()  # named by an event: written, though maybe within one mtime tick
        if paths is not None:
            candidates = [p for p in paths if p in self.names]
            reported = set(candidates)
        elif self._events is not None:
            try:
                paths, lost = self._events.read()
            except OSError:  # out of watches: every file is stat'ed from now on
                self._events.close()
                self._events = None
                paths, lost = set(), True
            candidates = list(self.names) if lost else [p for p in paths if p in self.names]
            reported = set() if lost else set(candidates)
        else:
            candidates = list(self.names)
        pending, self._pending = self._pending, set()
        candidates += [p for p in pending if p not in candidates]
        names: list[str] = []
        for path in candidates:
            now = stamp(path)
            if now != self._stamps.get(path) or path in pending or (
                # a rewrite of the same size within the file system's timestamp granularity
                # leaves the stamp as it was: then the text decides
                path in reported and self._differs is not None and any(self._differs(n) for n in self.names[path])
            ):
                self._stamps[path] = now
                if now is not None:  # a deleted file leaves the module running as it is
                    names.extend(sorted(self.names[path]))
        return names

    def wait(self, timeout: float) -> None:
        """Block until an event may be pending (inotify) or for `timeout` seconds (stat)."""
        if self._events is not None:
            self._events.wait(timeout)
        else:
            select.select([], [], [], timeout)

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
