"""Every thread's stack, read without stopping anything; which threads run code about to change.

`sys._current_frames()` is a snapshot of each thread's topmost frame taken under the GIL;
walking `f_back` from there reads frames the owning thread may pop meanwhile, which is
safe (frames are kept alive by our references) but may be a few instructions stale.
"""

from __future__ import annotations

import reprlib
import sys
import threading
import types
from typing import Any, Callable, Iterable

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 10
_repr.maxlevel = 3


def qualname_of(frame: types.FrameType) -> str:
    code = frame.f_code
    qualname = getattr(code, "co_qualname", None)  # 3.11+
    if qualname:
        return qualname
    # 3.10: rebuild it from the instance or class the method runs on, when there is one
    local_names = code.co_varnames[:1]
    if local_names and local_names[0] in ("self", "cls"):
        owner = frame.f_locals.get(local_names[0])
        owner_type = owner if isinstance(owner, type) else type(owner)
        for klass in getattr(owner_type, "__mro__", ()):
            member = klass.__dict__.get(code.co_name)
            function = getattr(member, "__func__", member)
            if getattr(function, "__code__", None) is code:
                return f"{klass.__qualname__}.{code.co_name}"
    return code.co_name


def safe_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception as error:  # a user __repr__ that raises must not break the capture
        return f"<repr failed: {type(error).__name__}>"


def thread_names() -> dict[int, str]:
    return {thread.ident: thread.name for thread in threading.enumerate() if thread.ident is not None}


def capture(
    thread_ids: Iterable[int] | None,
    max_frames: int | None,
    include_locals: bool,
    thread_id: Callable[[int], int] | None,
) -> dict[str, Any]:
    current = threading.get_ident()
    names = thread_names()
    wanted = set(thread_ids) if thread_ids is not None else None
    threads = []
    for ident, top in sys._current_frames().items():
        client_id = thread_id(ident) if thread_id is not None else ident
        if wanted is not None and client_id not in wanted and ident not in wanted:
            continue
        frames = []
        frame: types.FrameType | None = top
        while frame is not None and (max_frames is None or len(frames) < max_frames):
            code = frame.f_code
            entry: dict[str, Any] = {
                "name": code.co_name,
                "qualname": qualname_of(frame),
                "module": frame.f_globals.get("__name__"),
                "path": code.co_filename,
                "line": frame.f_lineno,
            }
            if include_locals:
                entry["locals"] = {name: safe_repr(value) for name, value in list(frame.f_locals.items())[:50]}
            frames.append(entry)
            frame = frame.f_back
        thread: dict[str, Any] = {"id": client_id, "name": names.get(ident, f"Thread-{ident}"), "frames": frames}
        if ident == current:
            thread["livefix"] = True
        threads.append(thread)
    threads.sort(key=lambda t: (t.get("livefix", False), t["name"] != "MainThread", t["name"]))
    return {"threads": threads}


def threads_executing(
    codes: dict[types.CodeType, str], thread_id: Callable[[int], int] | None
) -> list[dict[str, Any]]:
    """Threads with a frame running one of `codes` (mapped to the qualname they belong to)."""
    if not codes:
        return []
    names = thread_names()
    found = []
    for ident, top in sys._current_frames().items():
        qualnames: list[str] = []
        frame: types.FrameType | None = top
        while frame is not None:
            owner = codes.get(frame.f_code)
            if owner is not None and owner not in qualnames:
                qualnames.append(owner)
            frame = frame.f_back
        if qualnames:
            found.append(
                {
                    "id": thread_id(ident) if thread_id is not None else ident,
                    "name": names.get(ident, f"Thread-{ident}"),
                    "qualnames": qualnames,
                }
            )
    return found
