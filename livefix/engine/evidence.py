"""Live evidence that a fix worked: per-code-object call, error and latency figures.

livefix swaps ``func.__code__`` in place, so counting per *code object* separates "before"
(the old code, including threads still running it) from "after" (the new code) with no
bookkeeping about functions. ``Recorder`` is one per engine; ``watch(code)`` starts counting.

Design, per Python version:

* 3.12+: ``sys.monitoring`` under a free tool id (the first of 5, 4, 3, 2: 0 is debuggers',
  1 coverage's). PY_START and PY_RETURN are *local* events, set only on watched code objects,
  so other code pays nothing. PY_UNWIND (an exception leaving a frame) cannot be a local event
  in 3.12/3.13 (``set_local_events`` raises "invalid local event set"), so it is enabled
  globally only while something is watched; its callback returns at once for other code, but
  every frame an exception unwinds through then pays one Python call (see the benchmark).
  PY_YIELD/PY_RESUME are not needed: PY_START fires only on a generator's or coroutine's first
  entry and PY_RETURN only on its final return, so the wall time between them covers awaits.
* 3.10/3.11: no sys.monitoring; a code object cannot be instrumented without replacing it
  (which would break the very identity we count by), and ``settrace`` belongs to debuggers.
  So the recorder installs a profile hook (``sys.setprofile``), only while something is
  watched, chaining the profile function that was there and restoring it afterwards. Every
  call in the process then pays one Python call (measured in the benchmark). ``sys.setprofile``
  is per thread and ``threading.setprofile`` only reaches threads started later, so the hook is
  also put into threads that already exist through the C API (``_PyEval_SetProfile`` on each
  thread state, what 3.12's ``threading.setprofile_all_threads`` does); a thread with a profile
  function of its own keeps it and is not counted; if the C API is out of reach
  (``Recorder.all_threads`` is False) calls in those older threads are not counted.
  An exception exit is a 'return' event whose instruction (``frame.f_lasti``) is not a return or
  a yield; the exception itself is not visible, so ``errorTypes`` is None and a generator closed
  inside a try/finally or with block counts as an error (GeneratorExit cannot be told apart).

Counts are exact: counters are ``itertools.count`` objects because ``next()`` on one is atomic
under the GIL (a lock would cost ~150 ns per call). ``running`` = calls in flight when watching
began (found on the threads' stacks) + calls started since - calls finished since.

Latency needs the start time of *this* call, keyed by its frame (``id``, valid while the frame
lives): that handles recursion, threads and suspended coroutines alike, but materialising the
frame object is the most expensive step. So every call is timed for a code's first 2048 calls,
then one call in 16; ``p50Ms``/``p99Ms`` come from the last 2048 timed calls (a ring, not a
reservoir: "after a fix" is about recent behaviour). GeneratorExit (a generator being closed)
ends a call without counting as an error.

Known blind spot: a suspended generator closed where no try/with surrounds its yield leaves no
trace on 3.13 (CPython closes it without running it) nor on 3.10 (the profile hook reports that
exit exactly like a yield); it keeps counting as ``running``. 3.11 sees it (a throw resumes at
the yield instruction itself); 3.12 fires PY_UNWIND. Suspended generators are not on any
thread's stack, so those in flight when watching began are not counted as running.
"""

from __future__ import annotations

import collections
import dis
import itertools
import sys
import threading
import time
import types
from typing import Any, Callable, Optional, TypedDict

LATENCY_SAMPLES = 2048  # the last N timed calls' latencies, per code object
_STRIDE = 16  # after the first LATENCY_SAMPLES calls, time one call in _STRIDE
_MAX_INFLIGHT = 4096  # bound on timed calls in flight (entries a blind spot above would leak)
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR


class Figures(TypedDict):
    calls: int
    errors: int
    errorRate: float
    p50Ms: Optional[float]
    p99Ms: Optional[float]
    errorTypes: Optional[dict[str, int]]
    since: float
    running: int


def _value(counter: itertools.count) -> int:
    # repr is "count(N)"; reading it does not advance the counter (count.__reduce__ is deprecated).
    return int(repr(counter)[6:-1])


class _Stats:
    """What is known about one code object; the hooks only mutate it atomically."""

    __slots__ = (
        "started", "finished", "errors", "error_types", "latencies", "inflight", "thrown",
        "generator", "preexisting", "since", "refs", "lock",
    )

    def __init__(self, code: types.CodeType, track_types: bool) -> None:
        self.started = itertools.count()
        self.finished = itertools.count()
        self.errors = itertools.count()
        self.error_types: dict[str, int] | None = {} if track_types else None
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)
        self.inflight: dict[int, float] = {}  # id(frame) -> perf_counter() at start, timed calls only
        self.thrown: dict[int, int] = {}  # 3.11: id(frame) -> the yield an exception was thrown in at
        self.generator = bool(code.co_flags & _GENERATOR_FLAGS)
        self.preexisting = 0
        self.since = time.time()
        self.refs = 0
        self.lock = threading.Lock()  # only for error_types: the error path is slow anyway

    def begin(self, code: types.CodeType) -> None:
        """Watching (again): make ``running`` count the calls of ``code`` on the threads' stacks now."""
        on_stacks = 0
        for frame in sys._current_frames().values():
            while frame is not None:
                on_stacks += frame.f_code is code
                frame = frame.f_back  # type: ignore[assignment]
        self.preexisting = on_stacks + _value(self.finished) - _value(self.started)

    def error(self, name: str | None) -> None:
        next(self.errors)
        if name is not None and self.error_types is not None:
            with self.lock:
                self.error_types[name] = self.error_types.get(name, 0) + 1

    def figures(self) -> Figures:
        calls, finished, errors = _value(self.started), _value(self.finished), _value(self.errors)
        while True:
            try:  # a deque mutated by another thread while copied raises; copy again
                samples = sorted(self.latencies)
                break
            except RuntimeError:
                continue
        with self.lock:
            error_types = None if self.error_types is None else dict(self.error_types)
        return {
            "calls": calls,
            "errors": errors,
            "errorRate": errors / finished if finished else 0.0,
            "p50Ms": _percentile(samples, 0.50),
            "p99Ms": _percentile(samples, 0.99),
            "errorTypes": error_types,
            "since": self.since,
            "running": max(0, calls + self.preexisting - finished),
        }


def _percentile(sorted_samples: list[float], q: float) -> float | None:
    if not sorted_samples:
        return None
    rank = min(len(sorted_samples) - 1, max(0, round(q * len(sorted_samples) + 0.5) - 1))  # nearest rank
    return round(sorted_samples[rank] * 1000.0, 4)


def _timed(stats: _Stats, n: int, frame_id: int, now: float) -> None:
    """Remember the start of call number ``n`` if it is one we time."""
    if n < LATENCY_SAMPLES or not n % _STRIDE:
        inflight = stats.inflight
        if len(inflight) >= _MAX_INFLIGHT:
            inflight.pop(next(iter(inflight)), None)  # the oldest: most likely leaked
        inflight[frame_id] = now


class Recorder:
    """One per engine: counts calls, errors and latency of the code objects it watches."""

    def __init__(self) -> None:
        self._stats: dict[types.CodeType, _Stats] = {}  # every code ever watched
        self._watched: dict[types.CodeType, _Stats] = {}  # read by the hooks without a lock
        self._lock = threading.Lock()
        # Codes to unwatch that were released where taking the lock could deadlock (a
        # weakref finalizer runs inside any allocation, possibly in watch() itself).
        self._released: collections.deque[types.CodeType] = collections.deque()
        self._hooks: _Monitoring | _Profiling
        self._hooks = _Monitoring(self._watched) if sys.version_info >= (3, 12) else _Profiling(self._watched)

    @property
    def all_threads(self) -> bool:
        """False when calls in threads that existed before the hooks went in are not counted (3.10/3.11)."""
        return self._hooks.all_threads

    def release_later(self, codes: list[types.CodeType]) -> None:
        """Unwatch `codes` at the recorder's next use: safe from a finalizer (takes no lock)."""
        self._released.extend(codes)

    def _drain(self) -> None:
        while self._released:
            try:
                code = self._released.popleft()
            except IndexError:
                return
            self._unwatch(code)

    def watch(self, code: types.CodeType) -> None:
        self._drain()
        with self._lock:
            stats = self._stats.get(code)
            if stats is None:
                stats = self._stats[code] = _Stats(code, track_types=sys.version_info >= (3, 12))
            stats.refs += 1
            if stats.refs > 1:
                return
            if not self._watched:
                self._hooks.install()
            stats.begin(code)
            self._watched[code] = stats  # before add(): a call may start as soon as events are on
            self._hooks.add(code)

    def unwatch(self, code: types.CodeType) -> None:
        self._drain()
        self._unwatch(code)

    def _unwatch(self, code: types.CodeType) -> None:
        with self._lock:
            stats = self._watched.get(code)
            if stats is None:
                return
            stats.refs -= 1
            if stats.refs > 0:
                return
            self._hooks.remove(code)
            del self._watched[code]
            stats.inflight.clear()  # their ends will not be seen; "running" keeps the count at unwatch
            if not self._watched:
                self._hooks.uninstall()

    def figures(self, code: types.CodeType) -> Figures | None:
        stats = self._stats.get(code)
        return None if stats is None else stats.figures()

    def watching(self) -> int:
        self._drain()
        return len(self._watched)

    def forget(self, code: types.CodeType) -> None:
        """Drop the figures of a code no longer watched (their reader froze a copy): a service
        fixed a thousand times keeps no figures, and no code object, per fix."""
        with self._lock:
            if code not in self._watched:
                self._stats.pop(code, None)

    def close(self) -> None:
        with self._lock:
            for code, stats in list(self._watched.items()):
                self._hooks.remove(code)
                stats.refs = 0
                stats.inflight.clear()
            had = bool(self._watched)
            self._watched.clear()
            if had:
                self._hooks.uninstall()


def summarize(before: Figures | None, after: Figures | None) -> str:
    """One line for a person: "before: 120 calls, 40 errors (33.3%), p50 1.2 ms; after: ..."."""

    def one(label: str, f: Figures | None) -> str:
        if f is None:
            return f"{label}: not recorded"
        p50 = "-" if f["p50Ms"] is None else f"{f['p50Ms']:.3g} ms"
        text = f"{label}: {f['calls']} calls, {f['errors']} errors ({f['errorRate']:.1%}), p50 {p50}"
        return text + (f", {f['running']} running" if f["running"] else "")

    return f"{one('before', before)}; {one('after', after)}"


class _Monitoring:
    """3.12+: sys.monitoring, local PY_START/PY_RETURN on watched code, global PY_UNWIND while any.

    A tool id is a process resource (six in all, shared with debuggers and coverage): every
    recorder of the process (one per engine) shares one, and the callbacks read one table
    of the codes watched by any of them."""

    all_threads = True  # sys.monitoring is process-wide
    _shared: dict[types.CodeType, _Stats] = {}  # every recorder's watched codes (see above)
    _tool: int | None = None
    _users = 0
    _claim = threading.Lock()

    def __init__(self, watched: dict[types.CodeType, _Stats]) -> None:
        self._watched = watched
        self.tool: int | None = None

    def install(self) -> None:
        cls = type(self)
        with cls._claim:
            if cls._tool is None:
                mon = sys.monitoring  # type: ignore[attr-defined]
                for tool in (5, 4, 3, 2):
                    if mon.get_tool(tool) is None:
                        break
                else:
                    raise RuntimeError("no free sys.monitoring tool id among 5, 4, 3, 2")
                mon.use_tool_id(tool, "livefix")
                events = mon.events
                mon.register_callback(tool, events.PY_START, self._make_start())
                mon.register_callback(tool, events.PY_RETURN, self._make_return())
                mon.register_callback(tool, events.PY_UNWIND, self._make_unwind())
                mon.set_events(tool, events.PY_UNWIND)
                cls._tool = tool
            cls._users += 1
            self.tool = cls._tool

    def uninstall(self) -> None:
        cls = type(self)
        with cls._claim:
            if self.tool is None:
                return
            self.tool = None
            cls._users -= 1
            if cls._users > 0 or cls._tool is None:
                return
            mon = sys.monitoring  # type: ignore[attr-defined]
            tool, cls._tool = cls._tool, None
            mon.set_events(tool, 0)
            for event in (mon.events.PY_START, mon.events.PY_RETURN, mon.events.PY_UNWIND):
                mon.register_callback(tool, event, None)
            mon.free_tool_id(tool)

    def add(self, code: types.CodeType) -> None:
        mon = sys.monitoring  # type: ignore[attr-defined]
        type(self)._shared[code] = self._watched[code]
        mon.set_local_events(self.tool, code, mon.events.PY_START | mon.events.PY_RETURN)

    def remove(self, code: types.CodeType) -> None:
        shared = type(self)._shared
        if shared.get(code) is self._watched.get(code):
            shared.pop(code, None)
        if code not in shared:
            sys.monitoring.set_local_events(self.tool, code, 0)  # type: ignore[attr-defined]

    # The callbacks are closures over locals (no global or attribute lookups on the hot path)
    # and catch everything: an exception from a monitoring callback surfaces in the user's code.
    def _make_start(self) -> Callable[[types.CodeType, int], Any]:
        watched, getframe, clock = type(self)._shared, sys._getframe, time.perf_counter
        disable = sys.monitoring.DISABLE  # type: ignore[attr-defined]

        def on_start(code: types.CodeType, offset: int) -> Any:
            try:
                stats = watched.get(code)
                if stats is None:
                    return disable  # unwatched meanwhile (the local event is off anyway); set_local_events re-enables
                n = next(stats.started)
                if n < LATENCY_SAMPLES or not n % _STRIDE:
                    _timed(stats, n, id(getframe(1)), clock())
            except Exception:
                pass
            return None

        return on_start

    def _make_return(self) -> Callable[[types.CodeType, int, object], Any]:
        watched, getframe, clock = type(self)._shared, sys._getframe, time.perf_counter
        disable = sys.monitoring.DISABLE  # type: ignore[attr-defined]

        def on_return(code: types.CodeType, offset: int, value: object) -> Any:
            try:
                stats = watched.get(code)
                if stats is None:
                    return disable
                next(stats.finished)
                if stats.inflight:  # some call is timed: is it this one?
                    start = stats.inflight.pop(id(getframe(1)), None)
                    if start is not None:
                        stats.latencies.append(clock() - start)
            except Exception:
                pass
            return None

        return on_return

    def _make_unwind(self) -> Callable[[types.CodeType, int, BaseException], Any]:
        watched, getframe, clock = type(self)._shared, sys._getframe, time.perf_counter

        def on_unwind(code: types.CodeType, offset: int, exc: BaseException) -> Any:
            # A global event: runs for every frame any exception leaves, so return at once.
            # (DISABLE is not allowed for non-local events.)
            stats = watched.get(code)
            if stats is None:
                return None
            try:
                next(stats.finished)
                if not isinstance(exc, GeneratorExit):
                    stats.error(type(exc).__name__)
                if stats.inflight:
                    start = stats.inflight.pop(id(getframe(1)), None)
                    if start is not None:
                        stats.latencies.append(clock() - start)
            except Exception:
                pass
            return None

        return on_unwind


_RETURN_VALUE = dis.opmap["RETURN_VALUE"]
_YIELD_VALUE = dis.opmap["YIELD_VALUE"]
_YIELD_FROM = dis.opmap.get("YIELD_FROM", -1)  # 3.10 only
_RESUME = dis.opmap.get("RESUME", -1)  # 3.11+


def _is_first_entry(frame: types.FrameType) -> bool:
    """A 'call' event fires on every resume of a generator; is this its first start?"""
    lasti = frame.f_lasti
    if sys.version_info < (3, 11):
        return lasti < 0
    code = frame.f_code.co_code
    return code[lasti] == _RESUME and code[lasti + 1] == 0  # RESUME 0 = start, 1-3 = after yield/await


def _suspended(frame: types.FrameType) -> bool:
    """For a 'return' event of generator code not at a RETURN_VALUE: did it yield (else: raised)?"""
    code, lasti = frame.f_code.co_code, frame.f_lasti
    # 3.10 points at the LOAD_CONST before a YIELD_FROM it suspends in (so that it re-runs it).
    return code[lasti] == _YIELD_VALUE or (lasti + 2 < len(code) and code[lasti + 2] == _YIELD_FROM)


class _Profiling:
    """3.10/3.11: a profile hook in every thread while something is watched (see module docstring)."""

    def __init__(self, watched: dict[types.CodeType, _Stats]) -> None:
        self._watched = watched
        self.active = False
        self.all_threads = True
        self._mine: list[Callable[..., Any]] = []
        self._previous: dict[int, Any] = {}  # id(our hook) -> the profile function it replaced
        self._threads: _ThreadStates | None = None

    def install(self) -> None:
        self.active = True
        previous_here, previous_later = sys.getprofile(), threading.getprofile()
        here = self._hook(previous_here)
        later = here if previous_later is previous_here else self._hook(previous_later)
        self._previous = {id(here): previous_here, id(later): previous_later}
        self._mine = [here, later]
        sys.setprofile(here)
        threading.setprofile(later)  # threads started from now on
        try:
            self._threads = _ThreadStates(here)
        except Exception:  # no C API access (not CPython, stripped symbols, unexpected layout)
            self._threads = None
        self.all_threads = self._threads is not None
        if self._threads is not None:
            elsewhere = self._hook(None)  # only put where no profile function was set
            self._mine.append(elsewhere)
            self._previous[id(elsewhere)] = None
            self._threads.put(elsewhere)

    def uninstall(self) -> None:
        self.active = False  # a hook left in a thread removes itself at that thread's next event
        here, later = self._mine[0], self._mine[1]
        if sys.getprofile() is here:  # if someone replaced us since, theirs stays
            sys.setprofile(self._previous[id(here)])
        if threading.getprofile() is later:
            threading.setprofile(self._previous[id(later)])
        if self._threads is not None:
            self._threads.take(self._previous)
            self._threads = None
        self._mine, self._previous = [], {}

    def add(self, code: types.CodeType) -> None:
        pass  # the hook reads the watched dict

    def remove(self, code: types.CodeType) -> None:
        pass

    def _hook(self, previous: Callable[..., Any] | None) -> Callable[..., Any]:
        watched, clock, setprofile, owner = self._watched, time.perf_counter, sys.setprofile, self
        thrown_visible = sys.version_info >= (3, 11)

        def on_event(frame: types.FrameType, event: str, arg: Any) -> None:
            if previous is not None:
                previous(frame, event, arg)  # its exceptions propagate exactly as without us
            stats = watched.get(frame.f_code)
            if stats is None:
                if not watched and not owner.active:
                    setprofile(previous)  # left behind in a thread we could not reach at uninstall
                return
            try:
                if event == "call":
                    if not stats.generator or _is_first_entry(frame):
                        n = next(stats.started)
                        if n < LATENCY_SAMPLES or not n % _STRIDE:
                            _timed(stats, n, id(frame), clock())
                    elif thrown_visible and frame.f_code.co_code[frame.f_lasti] == _YIELD_VALUE:
                        # 3.11 resumes a send() at the RESUME after the yield, but a throw()
                        # (close(), asyncio cancellation) at the yield itself.
                        stats.thrown[id(frame)] = frame.f_lasti
                elif event == "return":
                    failed = frame.f_code.co_code[frame.f_lasti] != _RETURN_VALUE
                    if failed and stats.generator:
                        if stats.thrown and stats.thrown.pop(id(frame), -1) == frame.f_lasti and arg is None:
                            failed = False  # left at the yield it was thrown in at: closed or cancelled
                        elif _suspended(frame):
                            return
                    next(stats.finished)
                    if failed:
                        stats.error(None)
                    if stats.inflight:
                        start = stats.inflight.pop(id(frame), None)
                        if start is not None:
                            stats.latencies.append(clock() - start)
            except Exception:
                pass

        return on_event


class _ThreadStates:
    """3.10/3.11: set and clear the profile hook of threads other than this one, via the C API.

    ``_PyEval_SetProfile(tstate, func, obj)`` is what 3.12's ``PyEval_SetProfileAllThreads``
    calls per thread. ``func`` must be CPython's trampoline for Python profile functions, which
    is not exported: it is read from this thread's state after ``sys.setprofile(hook)``, at the
    field just before ``c_tracefunc`` and ``c_profileobj`` (the order of ``struct _ts`` in 3.10
    and 3.11), and the layout is checked against ``sys.gettrace()`` before anything is written.
    Thread states are walked holding the GIL, which a thread needs to free its state; see
    ``_quiet`` for the one way a switch can still happen in between.
    """

    def __init__(self, installed_here: Callable[..., Any]) -> None:
        import ctypes

        api = ctypes.pythonapi
        self._api, self._ctypes = api, ctypes
        api.PyThreadState_Get.restype = ctypes.c_void_p
        api.PyInterpreterState_Get.restype = ctypes.c_void_p
        api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
        api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
        api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
        api.PyThreadState_Next.restype = ctypes.c_void_p
        api._PyEval_SetProfile.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        api._PyEval_SetProfile.restype = ctypes.c_int
        here = api.PyThreadState_Get()
        words = (ctypes.c_void_p * 32).from_address(here)
        slot = next(i for i in range(3, 30) if words[i] == id(installed_here))
        trace = sys.gettrace()
        if not words[slot - 2] or words[slot + 1] != (None if trace is None else id(trace)):
            raise RuntimeError("unexpected PyThreadState layout")
        if (words[slot - 1] is None) != (trace is None):
            raise RuntimeError("unexpected PyThreadState layout")
        self._here, self._slot, self._trampoline = here, slot, words[slot - 2]

    def _others(self) -> list[tuple[int, Any]]:
        api, ctypes = self._api, self._ctypes
        states, ts = [], api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
        while ts:
            if ts != self._here:
                states.append((ts, (ctypes.c_void_p * (self._slot + 1)).from_address(ts)))
            ts = api.PyThreadState_Next(ts)
        return states

    def _quiet(self, action: Callable[[], None]) -> None:
        # A thread can only free its state while holding the GIL, and the walk holds it from
        # start to end unless a switch is requested in between (a few microseconds): a longer
        # switch interval makes that rarer. Not longer than this, and never a voluntary
        # release (sleep) here: a thread that took the GIL under a huge interval would keep
        # it for that long, starving every other thread (seen: a test run stalled for minutes).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(max(interval, 0.05))
        try:
            action()
        finally:
            sys.setswitchinterval(interval)

    def put(self, hook: Callable[..., Any]) -> None:
        """Install ``hook`` in every other thread whose profile slot is empty (others keep theirs)."""

        def action() -> None:
            for ts, words in self._others():
                if not words[self._slot - 2] and not words[self._slot]:
                    self._api._PyEval_SetProfile(ts, self._trampoline, id(hook))

        self._quiet(action)

    def take(self, previous: dict[int, Any]) -> None:
        """Put back, in every other thread holding one of our hooks, what that hook replaced."""

        def action() -> None:
            for ts, words in self._others():
                if words[self._slot] in previous:
                    before = previous[words[self._slot]]
                    if before is None:
                        self._api._PyEval_SetProfile(ts, None, None)
                    else:
                        self._api._PyEval_SetProfile(ts, self._trampoline, id(before))

        self._quiet(action)
