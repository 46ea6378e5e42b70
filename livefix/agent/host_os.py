"""What the agent does differently on Windows, in one place.

On Linux and macOS an agent listens on a Unix socket in a private per-user directory, and
a fleet's workers are found by their socket files. Windows has no such sockets for Python
programs everywhere, no `fcntl`, no user ids and no `os.kill(pid, 0)` (signal 0 there is
CTRL_C_EVENT): there an agent listens on a loopback TCP port (the token guards it, as for
any TCP agent), writes its address to `<pid>.addr` where the socket file would be, locks
the fleet registry with `msvcrt.locking`, and checks processes with `OpenProcess`.

`LIVEFIX_HOST_OS=windows` selects the Windows addressing (TCP and `.addr` files) on any
system: the tests use it on Linux to stand in for Windows, which cannot run here. The lock
and the process check follow the real system, since their Windows calls exist only there.
Standard library only.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading
from typing import Any

REAL_WINDOWS = sys.platform == "win32"
ADDRESS_FILE = ".addr"  # beside (instead of) the `.sock` of a Unix-socket agent


def tcp_agents() -> bool:
    """Do agents listen on loopback TCP and publish `.addr` files (Windows addressing)?"""
    return REAL_WINDOWS or os.environ.get("LIVEFIX_HOST_OS", "").lower() == "windows"


def user_tag() -> str:
    """What names the per-user runtime directory: the uid on POSIX, the user name on Windows."""
    if hasattr(os, "getuid"):
        return str(os.getuid())
    return "".join(c for c in getpass.getuser() if c.isalnum() or c in "-_") or "user"


def temp_root() -> str:
    """The system's directory for temporary files, as `tempfile.gettempdir()` picks it.

    On POSIX: the first of $TMPDIR, $TEMP, $TMP that is a directory, else /tmp, /var/tmp,
    /usr/tmp. Without `tempfile`'s probe file: importing `tempfile` and writing that probe were
    a tenth of every command's time, and an unwritable directory is caught anyway when the
    runtime directory is created in it (the next candidate is used). Windows keeps `tempfile`,
    whose list there (%TEMP%, the profile's AppData\\Local\\Temp...) is not worth repeating."""
    if REAL_WINDOWS:
        import tempfile

        return tempfile.gettempdir()
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value and os.path.isdir(value):
            return os.path.abspath(value)
    for path in ("/tmp", "/var/tmp", "/usr/tmp"):
        if os.path.isdir(path):
            return path
    return os.getcwd()


def owned_by_me(info: os.stat_result) -> bool:
    """Is this file ours? (On Windows a file's owner is an ACL matter: the per-user profile
    directory the runtime directory lives in already keeps other users out.)"""
    if hasattr(os, "getuid"):
        return info.st_uid == os.getuid()
    return True


def write_address(path: str, address: str) -> None:
    """Publish an agent's TCP address where its socket file would be (atomically)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(address)
    os.replace(tmp, path)


def read_address(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return text if text.startswith("tcp:") else None


def process_alive(pid: int) -> bool:
    if REAL_WINDOWS:
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:  # Linux: a process killed but not yet reaped by its parent still answers signal 0
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _windows_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def lock(fd: int, blocking: bool) -> bool:
    """Take the exclusive lock of an open file; False when `blocking` is False and it is held."""
    if REAL_WINDOWS:  # pragma: no cover - Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        pause = threading.Event()
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                return True
            except OSError:
                if not blocking:
                    return False
                pause.wait(0.05)  # msvcrt has no blocking lock without a retry limit
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    if REAL_WINDOWS:  # pragma: no cover - Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
