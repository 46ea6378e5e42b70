"""Did the fix work? Which functions are watched, for how long, and the canary's verdict.

`evidence.Recorder` counts per code object; this module decides what to count and when:

- a fix starts counting its replaced functions' old code when it is prepared (so a canary's
  "before" window and any traffic up to the commit are real figures of the old code) and
  their new code when it commits, for `window` seconds (30 by default, the canary's window
  when there is one); then the figures are frozen into the generation and the hooks go
  away: no fix being watched, no cost;
- `watch("module:qualname")` counts a function until `unwatch`, following it across fixes;
- a canary judges the new code against its thresholds and against the old code while the
  window is open, and rolls the generation back by itself when it is worse, saying why with
  the figures.

Listeners (the agent, the DAP route) hear `canary` verdicts as they happen.
"""

from __future__ import annotations

import sys
import threading
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from livefix.engine.evidence import Figures, Recorder
from livefix.errors import LivefixError

if TYPE_CHECKING:
    from livefix.engine.plan import Plan

DEFAULT_WINDOW = 30.0
BLIND_ERROR_RATE = 0.5  # judged without old figures or thresholds: worse than this fails
POLL_SECONDS = 0.05  # how often an open canary looks at the figures (a verdict is that late at most)

CanaryListener = Callable[[dict[str, Any]], None]


# -- the canary's terms --------------------------------------------------------------------


@dataclass(frozen=True)
class CanarySpec:
    """`canary={"before": 5, "window": 30, "max_error_rate": 0.01, "max_p99_ms": 200}`."""

    before: float = 0.0  # seconds of old-code traffic to collect before the commit
    window: float = DEFAULT_WINDOW  # seconds the new code is judged for
    max_error_rate: float | None = None  # absolute ceiling (0..1)
    max_p99_ms: float | None = None  # absolute ceiling
    min_calls: int = 20  # calls of the new code before any verdict
    max_slowdown: float = 1.5  # the new p99 may be this many times the old one
    compare: bool = True  # judge against the old code's figures too

    _NAMES = {
        "before": "before", "window": "window", "max_error_rate": "max_error_rate", "maxErrorRate": "max_error_rate",
        "max_p99_ms": "max_p99_ms", "maxP99Ms": "max_p99_ms", "min_calls": "min_calls", "minCalls": "min_calls",
        "max_slowdown": "max_slowdown", "maxSlowdown": "max_slowdown", "compare": "compare",
    }

    @classmethod
    def coerce(cls, raw: Any) -> "CanarySpec | None":
        if raw is None or raw is False:
            return None
        if raw is True:
            return cls()
        if not isinstance(raw, dict):
            raise LivefixError("invalid", '`canary` must be an object like {"window": 30, "max_error_rate": 0.01}')
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = cls._NAMES.get(key)
            if name is None:
                raise LivefixError(
                    "invalid", f"`canary` has no setting {key!r} (before, window, max_error_rate, max_p99_ms, "
                    "min_calls, max_slowdown, compare)",
                )
            values[name] = value
        for name in ("before", "window", "max_error_rate", "max_p99_ms", "max_slowdown"):
            value = values.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise LivefixError("invalid", f"canary {name} must be a number >= 0, not {value!r}")
        if values.get("max_error_rate") is not None and values["max_error_rate"] > 1:
            raise LivefixError("invalid", "canary max_error_rate is a fraction of calls (0..1)")
        if values.get("window", 1) <= 0:
            raise LivefixError("invalid", "canary window must be more than 0 seconds")
        calls = values.get("min_calls")
        if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 1):
            raise LivefixError("invalid", f"canary min_calls must be a whole number >= 1, not {calls!r}")
        if "compare" in values and not isinstance(values["compare"], bool):
            raise LivefixError("invalid", "canary compare must be true or false")
        return cls(**{k: float(v) if k in ("before", "window") else v for k, v in values.items()})

    def to_wire(self) -> dict[str, Any]:
        return {
            "before": self.before, "window": self.window, "maxErrorRate": self.max_error_rate,
            "maxP99Ms": self.max_p99_ms, "minCalls": self.min_calls, "maxSlowdown": self.max_slowdown,
            "compare": self.compare,
        }


def judge(spec: CanarySpec, label: str, before: Figures | None, after: Figures | None) -> list[str]:
    """Why the new code of `label` is worse (empty: it holds, or too few calls to say)."""
    if after is None or after["calls"] < spec.min_calls:
        return []
    reasons = []
    was = before if before is not None and before["calls"] >= spec.min_calls else None
    rate = after["errorRate"]
    if was is None and spec.max_error_rate is None and spec.max_p99_ms is None and rate > BLIND_ERROR_RATE:
        # Nothing to compare with and no threshold given: still never keep code that fails
        # more often than it works.
        reasons.append(f"{label}: error rate {_pct(rate)}, more than half the calls fail "
                       "(no old-code figures or thresholds to compare with)")
    if spec.max_error_rate is not None and rate > spec.max_error_rate:
        reasons.append(f"{label}: error rate {_pct(rate)} is above the canary's {_pct(spec.max_error_rate)}"
                       + (f" (was {_pct(was['errorRate'])})" if was else ""))
    elif spec.compare and was is not None and rate > was["errorRate"] and after["errors"] > 1:
        reasons.append(f"{label}: error rate {_pct(rate)} (was {_pct(was['errorRate'])})")
    p99 = after["p99Ms"]
    if p99 is not None:
        if spec.max_p99_ms is not None and p99 > spec.max_p99_ms:
            reasons.append(f"{label}: p99 {_ms(p99)} is above the canary's {_ms(spec.max_p99_ms)}"
                           + (f" (was {_ms(was['p99Ms'])})" if was and was["p99Ms"] is not None else ""))
        elif spec.compare and was is not None and was["p99Ms"] is not None and p99 > was["p99Ms"] * spec.max_slowdown \
                and p99 - was["p99Ms"] > 1.0:  # sub-millisecond jitter is not a slowdown
            reasons.append(f"{label}: p99 {_ms(p99)} (was {_ms(was['p99Ms'])}), more than {spec.max_slowdown:g}x slower")
    return reasons


# -- one generation's evidence ---------------------------------------------------------------


@dataclass
class Pair:
    """One replaced function: its old and new code objects."""

    label: str
    old: types.CodeType | None
    new: types.CodeType | None


@dataclass
class GenerationWatch:
    number: int
    pairs: list[Pair]
    started: float
    ends: float
    canary: CanarySpec | None = None
    final: dict[str, Any] | None = None  # frozen figures, once the window closed
    verdict: dict[str, Any] | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # close the window now
    closed: threading.Event = field(default_factory=threading.Event)  # figures final, verdict in
    closing: bool = False  # claimed by one closer (the scheduler, or a prune) under the lock


class Watches:
    """One per engine."""

    def __init__(self, rollback: Callable[[int], Any]) -> None:
        self._rollback = rollback  # rolls back generation N if it is the newest active one
        self._recorder: Recorder | None = None
        self._lock = threading.RLock()
        # Seconds every fix is watched after its commit (0: only when its canary or watch()
        # asks). Before 3.12 counting needs a profile hook that slows every call in the
        # process, so there fixes are watched only when asked; `install(evidence_window=N)`.
        self.window = DEFAULT_WINDOW if sys.version_info >= (3, 12) else 0.0
        self._generations: dict[int, GenerationWatch] = {}
        # One thread closes every window and judges every canary (a service fixed a thousand
        # times has no thread per fix); it runs only while a window is open.
        self._wake = threading.Condition(self._lock)
        self._scheduler: threading.Thread | None = None
        self._explicit: dict[str, list[types.CodeType]] = {}  # "module.qualname" -> codes watched for it
        self._explicit_refs: dict[str, int] = {}  # how many watch() calls each is under
        self.listeners: list[CanaryListener] = []

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            self._recorder = Recorder()
        return self._recorder

    # -- fixes -------------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: fresh locks; the windows' thread did not come along (the next
        window starts one)."""
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._scheduler = None
        self.recorder._lock = threading.Lock()

    def prepared(self, plan: "Plan") -> None:
        """Count the old code of every function the plan replaces, from now until the plan is
        committed (then its window owns it) or dropped."""
        if self.window <= 0 and plan.canary is None:
            return
        codes = [e.old_codes[0] for e in plan.edits if e.kind == "replaced" and e.old_codes]
        if not codes:
            return
        if not self._watch_all(codes, plan):
            return
        plan.watched = codes
        # A plan nobody commits (a dry run, a refused approval) stops counting when it goes.
        weakref.finalize(plan, self.recorder.release_later, list(codes))

    def committed(self, plan: "Plan", number: int, pairs: list[Pair]) -> dict[str, Any] | None:
        """The new code runs: count it for the window, judge it if there is a canary."""
        spec: CanarySpec | None = plan.canary
        window = spec.window if spec is not None else self.window
        if window <= 0 or not pairs:
            return None
        if not self._watch_all([c for p in pairs for c in (p.old, p.new) if c is not None], plan):
            return None
        now = time.time()
        watch = GenerationWatch(number, pairs, now, now + window, spec)
        with self._lock:
            self._generations[number] = watch
            if self._scheduler is None or not self._scheduler.is_alive():
                self._scheduler = threading.Thread(target=self._run_windows, name="livefix-evidence", daemon=True)
                self._scheduler.start()
            self._wake.notify()
        state = {"state": "watching", "window": window, "until": watch.ends}
        if spec is not None:
            state["canary"] = spec.to_wire()
        return state

    def _watch_all(self, codes: list[types.CodeType], plan: "Plan") -> bool:
        """Watch every code or none; a fix never fails because its evidence cannot be counted."""
        done = []
        try:
            for code in codes:
                self.recorder.watch(code)
                done.append(code)
        except Exception as error:
            for code in done:
                self.recorder.unwatch(code)
            warning = f"live evidence is not available for this fix ({error})"
            if warning not in plan.warnings:
                plan.warnings.append(warning)
            return False
        return True

    def rolled_back(self, numbers: list[int]) -> None:
        """Generations undone by someone: their windows close now, figures kept."""
        for number in numbers:
            watch = self._generations.get(number)
            if watch is not None and watch.final is None:
                if watch.canary is not None and watch.verdict is None:
                    watch.verdict = {"outcome": "rolledBackByUser", "generation": number,
                                     "report": f"Canary of generation {number} stopped: the generation was rolled back"}
                watch.stop.set()
        with self._lock:
            self._wake.notify()

    def forget(self, numbers: list[int]) -> None:
        """Generations dropped from the history: their figures go too."""
        dropped = []
        with self._lock:
            for number in numbers:
                watch = self._generations.pop(number, None)
                if watch is not None:
                    watch.stop.set()
                    dropped.append(watch)
            self._wake.notify()
        # Closed here: the scheduler only closes the windows it still finds, and an open window
        # left to nobody would keep its code objects watched (and alive) for good.
        for watch in dropped:
            self._close(watch)

    def _run_windows(self) -> None:
        while True:
            with self._lock:
                open_ = [w for w in self._generations.values() if not w.closed.is_set()]
                if not open_:
                    self._scheduler = None
                    return
                now = time.time()
                judging = any(w.canary is not None for w in open_)
                delay = min(min(w.ends for w in open_) - now, POLL_SECONDS if judging else float("inf"))
                if delay > 0 and not any(w.stop.is_set() for w in open_):
                    self._wake.wait(delay)
                open_ = [w for w in self._generations.values() if not w.closed.is_set()]
            for watch in open_:  # outside the lock: a verdict may roll back through the engine
                try:
                    self._step(watch)
                except Exception:  # the window's bookkeeping must not kill the thread for others
                    if not watch.closed.is_set():
                        self._close(watch)

    def _step(self, watch: GenerationWatch) -> None:
        if watch.stop.is_set():
            self._close(watch)
            return
        if watch.canary is not None:
            reasons = self._reasons(watch)
            if reasons:
                self._fail(watch, reasons)
                self._close(watch)
                return
        if time.time() >= watch.ends:
            if watch.canary is not None:
                self._pass(watch)
            self._close(watch)

    def _reasons(self, watch: GenerationWatch) -> list[str]:
        assert watch.canary is not None
        reasons: list[str] = []
        for pair in watch.pairs:
            before = self.recorder.figures(pair.old) if pair.old is not None else None
            after = self.recorder.figures(pair.new) if pair.new is not None else None
            reasons.extend(judge(watch.canary, pair.label, before, after))
        return reasons

    def _fail(self, watch: GenerationWatch, reasons: list[str]) -> None:
        figures = self._figures(watch)
        try:
            undone = self._rollback(watch.number)
        except LivefixError as error:
            watch.verdict = {
                "outcome": "failed", "generation": watch.number, "reasons": reasons, "evidence": figures,
                "report": f"Canary of generation {watch.number} failed ({'; '.join(reasons)}) but it was not rolled "
                f"back: {error.message}",
            }
        else:
            watch.verdict = {
                "outcome": "rolledBack", "generation": watch.number, "reasons": reasons, "evidence": figures,
                "report": f"Canary rolled back generation {watch.number}: {'; '.join(reasons)}",
            }
            if undone is not None:  # what runs now, for clients that follow `livefix/applied`
                watch.verdict["rollback"] = undone.to_body()
        self._tell(watch.verdict)

    def _pass(self, watch: GenerationWatch) -> None:
        assert watch.canary is not None
        spec = watch.canary
        figures = self._figures(watch)
        calls = sum(f["after"]["calls"] for f in figures.values() if f["after"] is not None)
        old_calls = sum(f["before"]["calls"] for f in figures.values() if f["before"] is not None)
        judged = [f for f in figures.values() if f["after"] is not None and f["after"]["calls"] >= spec.min_calls]
        comparable = [f for f in judged if f["before"] is not None and f["before"]["calls"] >= spec.min_calls]
        thresholds = spec.max_error_rate is not None or spec.max_p99_ms is not None
        if judged and not thresholds and not comparable:
            watch.verdict = {
                "outcome": "inconclusive", "generation": watch.number, "evidence": figures,
                "report": f"Canary of generation {watch.number} could not judge: nothing to compare with (the old "
                f"code ran {old_calls} time{'s' if old_calls != 1 else ''} while counted, fewer than {spec.min_calls}, "
                "and no max_error_rate or max_p99_ms was given; count old traffic with before=); the generation "
                "stays: " + describe(figures),
            }
        elif not judged:
            watch.verdict = {
                "outcome": "inconclusive", "generation": watch.number, "evidence": figures,
                "report": f"Canary of generation {watch.number} could not judge: the new code ran {calls} "
                f"time{'s' if calls != 1 else ''} in {watch.canary.window:g} s (fewer than {watch.canary.min_calls}); "
                "the generation stays",
            }
        else:
            watch.verdict = {
                "outcome": "passed", "generation": watch.number, "evidence": figures,
                "report": f"Canary of generation {watch.number} passed: " + describe(figures),
            }
        self._tell(watch.verdict)

    def _tell(self, verdict: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(verdict)
            except Exception:  # a listener's failure is the transport's; the verdict stands
                pass

    def _close(self, watch: GenerationWatch) -> None:
        with self._lock:  # closed once: a second closer would unwatch codes another holder counts
            if watch.closing:
                return
            watch.closing = True
        watch.final = self._figures(watch)
        for pair in watch.pairs:
            for code in (pair.old, pair.new):
                if code is not None:
                    self.recorder.unwatch(code)
                    self.recorder.forget(code)
        # The figures are frozen: the code objects need not be kept alive for them.
        watch.pairs = [Pair(p.label, None, None) for p in watch.pairs]
        watch.stop.set()
        watch.closed.set()

    # -- explicit watches --------------------------------------------------------------------

    def watch(self, label: str, code: types.CodeType) -> None:
        """Count `label` (refcounted: each client that watches it unwatches it once)."""
        with self._lock:
            self._explicit_refs[label] = self._explicit_refs.get(label, 0) + 1
            codes = self._explicit.setdefault(label, [])
            if code not in codes:
                codes.append(code)
                self.recorder.watch(code)

    def unwatch(self, label: str) -> bool:
        with self._lock:
            if label not in self._explicit:
                return False
            self._explicit_refs[label] -= 1
            if self._explicit_refs[label] > 0:
                return True
            del self._explicit_refs[label]
            codes = self._explicit.pop(label)
        for code in codes:
            self.recorder.unwatch(code)
        return True

    def follow(self, pairs: list[Pair]) -> None:
        """A fix replaced a function someone watches: watch its new code too."""
        with self._lock:
            for label, codes in self._explicit.items():
                for pair in pairs:
                    if pair.old in codes and pair.new is not None and pair.new not in codes:
                        codes.append(pair.new)
                        self.recorder.watch(pair.new)

    def explicit(self) -> dict[str, list[Figures]]:
        """What `watch()` counts: per function, the figures of each code it ran, oldest first."""
        with self._lock:
            items = {label: list(codes) for label, codes in self._explicit.items()}
        return {label: [f for c in codes if (f := self.recorder.figures(c)) is not None] for label, codes in items.items()}

    # -- reading ---------------------------------------------------------------------------

    def _figures(self, watch: GenerationWatch) -> dict[str, dict[str, Figures | None]]:
        if watch.final is not None:
            return watch.final
        return {
            pair.label: {
                "before": self.recorder.figures(pair.old) if pair.old is not None else None,
                "after": self.recorder.figures(pair.new) if pair.new is not None else None,
            }
            for pair in watch.pairs
        }

    def generation(self, number: int) -> dict[str, Any] | None:
        watch = self._generations.get(number)
        if watch is None:
            return None
        figures = self._figures(watch)
        body: dict[str, Any] = {
            "generation": number, "state": "final" if watch.final is not None else "watching",
            "since": watch.started, "until": watch.ends, "functions": figures, "report": describe(figures),
        }
        if watch.canary is not None:
            body["canary"] = {**watch.canary.to_wire(), **({"verdict": watch.verdict} if watch.verdict else {})}
        return body

    def wait(self, number: int, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until generation `number`'s window closed (its canary's verdict is in)."""
        watch = self._generations.get(number)
        if watch is None:
            return None
        watch.closed.wait(timeout)
        return self.generation(number)

    def close(self) -> None:
        for watch in list(self._generations.values()):
            watch.stop.set()
        with self._lock:
            self._wake.notify()
        scheduler = self._scheduler
        if scheduler is not None and scheduler is not threading.current_thread():
            scheduler.join(10)
        if self._recorder is not None:
            self._recorder.close()


def describe(figures: dict[str, dict[str, Figures | None]]) -> str:
    """In a person's words: "shop.price: error rate 0% (was 15%), p99 45 ms (was 200 ms), 1,200 calls"."""
    parts = []
    for label, pair in figures.items():
        before, after = pair.get("before"), pair.get("after")
        if after is None or after["calls"] == 0:
            parts.append(f"{label}: no calls of the new code yet"
                         + (f" (old code: {_one(before)})" if before is not None and before["calls"] else ""))
            continue
        text = f"{label}: error rate {_pct(after['errorRate'])}"
        if before is not None and before["calls"]:
            text += f" (was {_pct(before['errorRate'])})"
        if after["p99Ms"] is not None:
            text += f", p99 {_ms(after['p99Ms'])}"
            if before is not None and before["p99Ms"] is not None:
                text += f" (was {_ms(before['p99Ms'])})"
        text += f", {after['calls']:,} call{'s' if after['calls'] != 1 else ''}"
        if after.get("errorTypes"):
            text += " (" + ", ".join(f"{n} {t}" for t, n in sorted(after["errorTypes"].items())) + ")"
        parts.append(text)
    return "; ".join(parts) if parts else "no replaced function to watch"


def _one(f: Figures) -> str:
    text = f"{f['calls']:,} calls, error rate {_pct(f['errorRate'])}"
    return text + (f", p99 {_ms(f['p99Ms'])}" if f["p99Ms"] is not None else "")


def _pct(rate: float) -> str:
    value = rate * 100
    return f"{value:.0f}%" if value == int(value) or value >= 10 else f"{value:.1f}%"


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.2g} ms"
