"""livefix's custom requests and events: the single source of truth for names and shapes.

These are the wire shapes (camelCase, JSON-ready) shared by the DAP route (adapter +
pydevd plugin), the agent (`livefix.listen()`), the command line and the language
server. `vscode-extension/src/protocol.ts` mirrors them once; `docs/protocol.md`
documents them for other editors. Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

# -- request and event names -------------------------------------------------------

APPLY = "livefix/apply"
ROLLBACK = "livefix/rollback"
HISTORY = "livefix/history"
CAPTURE_FRAMES = "livefix/captureFrames"
STATUS = "livefix/status"
RELOAD = "livefix/reload"
# Live evidence: a fix's before/after figures, and functions watched on request.
EVIDENCE = "livefix/evidence"
WATCH = "livefix/watch"
# The running source of every definition the files do not say yet (`livefix persist`).
RUNNING_SOURCES = "livefix/runningSources"
# Two-phase (fleet) operations served by the agent: prepare everywhere, then commit.
PREPARE = "livefix/prepare"
COMMIT = "livefix/commit"
ABORT = "livefix/abort"
# Agent handshake: the first request on an agent connection must carry the token.
AUTHENTICATE = "livefix/authenticate"

COMMANDS: tuple[str, ...] = (
    APPLY, ROLLBACK, HISTORY, CAPTURE_FRAMES, STATUS, RELOAD, EVIDENCE, WATCH, RUNNING_SOURCES,
)

APPLIED_EVENT = "livefix/applied"
# A canary's verdict (passed, rolledBack, inconclusive, failed): body `CanaryVerdict`.
CANARY_EVENT = "livefix/canary"
# Events whose `report` also goes to the client's console as output.
REPORTED_EVENTS: tuple[str, ...] = (APPLIED_EVENT, CANARY_EVENT)
# LSP notification: the client forwards each `livefix/applied` event body to the server.
GENERATION_APPLIED_NOTIFICATION = "livefix/generationApplied"

ApprovalPolicy = Literal["never", "risky", "always"]
APPROVAL_POLICIES: tuple[str, ...] = ("never", "risky", "always")

# The message shapes are for type checkers (and readers): building some forty TypedDict
# classes took 5 ms of every command's and every service's start-up, and nothing reads them
# at run time. NotRequired comes from typing_extensions, for type checkers only (Python 3.10's
# `typing` has none, and the engine depends on nothing outside the standard library).
if TYPE_CHECKING:
    from typing import TypedDict

    from typing_extensions import NotRequired

    # -- request arguments -------------------------------------------------------------


    class ChangeArgs(TypedDict):
        """One change: a definition (`qualname` + its source) or a whole module (`source` only)."""

        source: str
        module: NotRequired[str]
        path: NotRequired[str]
        qualname: NotRequired[str]
        line: NotRequired[int]  # 1-based line of the definition in the file (its first decorator)


    # Per class (qualname in a changed module, or "module:qualname"): attribute defaults set
    # where a live instance lacks them, or the source of `def migrate(obj): ...`.
    Migrations = dict[str, "dict[str, Any] | str"]


    class CanaryArgs(TypedDict):
        """Judge the new code for `window` seconds; roll back by itself when it is worse."""

        before: NotRequired[float]  # seconds of old-code traffic counted before the commit
        window: NotRequired[float]  # default 30
        maxErrorRate: NotRequired[float]  # 0..1
        maxP99Ms: NotRequired[float]
        minCalls: NotRequired[int]  # calls of the new code before any verdict (default 20)
        maxSlowdown: NotRequired[float]  # new p99 / old p99 allowed (default 1.5)
        compare: NotRequired[bool]  # judge against the old code's figures too (default true)


    class ApplyArguments(TypedDict):
        changes: list[ChangeArgs]
        verify: NotRequired[str]
        dryRun: NotRequired[bool]
        approved: NotRequired[bool]
        migrate: NotRequired[Migrations]
        canary: NotRequired[CanaryArgs]


    class EvidenceArguments(TypedDict):
        generation: NotRequired[int]  # default: the newest watched generation


    class WatchArguments(TypedDict):
        targets: NotRequired[list[str]]  # "module:qualname"; none: just report what is watched
        stop: NotRequired[bool]  # unwatch the targets (all when none are named)


    class RollbackArguments(TypedDict):
        to: NotRequired[int]
        approved: NotRequired[bool]
        # Agent only (fleets): roll back to what this worker ran at fleet generation N,
        # or say which fleet generation runs again after undoing a failed fleet commit.
        fleetTo: NotRequired[int]
        fleetGeneration: NotRequired[int]


    class CaptureFramesArguments(TypedDict):
        threadIds: NotRequired[list[int]]
        maxFrames: NotRequired[int]
        locals: NotRequired[bool]


    class ReloadArguments(TypedDict):
        modules: NotRequired[list[str]]
        package: NotRequired[str]
        verify: NotRequired[str]
        approved: NotRequired[bool]
        dryRun: NotRequired[bool]
        migrate: NotRequired[Migrations]
        canary: NotRequired[CanaryArgs]


    class StatusArguments(TypedDict):
        modules: NotRequired[list[str]]
        includeLibraries: NotRequired[bool]


    class RunningSourcesArguments(TypedDict):
        modules: NotRequired[list[str]]  # default: every module


    # -- response bodies ---------------------------------------------------------------

    ChangeKind = Literal["replaced", "added", "removed"]


    class AppliedDefinition(TypedDict):
        module: str
        qualname: str
        kind: ChangeKind
        signatureChanged: NotRequired[bool]


    class ImpactThread(TypedDict):
        id: int
        name: str
        qualnames: list[str]


    class Impact(TypedDict):
        threads: list[ImpactThread]
        signatureChanges: list[str]
        removals: list[str]


    class VerifyOutcome(TypedDict):
        check: str
        passed: bool
        error: NotRequired[str]


    class ChangeResultBody(TypedDict):
        """Body of apply, reload and rollback responses, and of the `livefix/applied` event."""

        generation: int
        applied: list[AppliedDefinition]
        impact: Impact
        report: str
        dryRun: bool
        warnings: list[str]
        verify: NotRequired[VerifyOutcome]
        action: NotRequired[Literal["apply", "reload", "rollback"]]
        # Per definition, the source that now runs (for drift diagnostics in the editor).
        sources: NotRequired[list["RunningSource"]]
        # Live instances migrated, per class (apply/reload with `migrate`, or a dataclass's new fields).
        migrated: NotRequired[list["MigratedClass"]]
        # Dry runs: live instances lacking attributes the new code uses.
        instances: NotRequired[list["InstanceGap"]]
        # The new code is watched: until when (epoch seconds), and the canary's terms.
        evidence: NotRequired["EvidenceState"]


    class EvidenceState(TypedDict):
        state: Literal["watching"]
        window: float
        until: float
        canary: NotRequired[CanaryArgs]


    class Figures(TypedDict):
        """One code object's traffic while watched."""

        calls: int
        errors: int  # exceptions raised out of it
        errorRate: float  # 0..1
        p50Ms: float | None
        p99Ms: float | None
        errorTypes: dict[str, int] | None  # None where the interpreter cannot tell (3.10/3.11)
        since: float
        running: int  # calls started, not finished


    class FunctionEvidence(TypedDict):
        before: Figures | None  # the old code
        after: Figures | None  # the new code


    class CanaryVerdict(TypedDict):
        outcome: Literal["passed", "rolledBack", "inconclusive", "failed", "rolledBackByUser"]
        generation: int
        report: str
        reasons: NotRequired[list[str]]
        evidence: NotRequired[dict[str, FunctionEvidence]]


    class EvidenceBody(TypedDict):
        generation: int
        state: Literal["watching", "final"]
        since: float
        until: float
        functions: dict[str, FunctionEvidence]  # "module.qualname" -> figures
        report: str  # "shop.price: error rate 0% (was 15%), p99 45 ms (was 200 ms), 1,200 calls"
        canary: NotRequired[dict[str, Any]]  # CanaryArgs plus `verdict` once there is one


    class WatchBody(TypedDict):
        functions: dict[str, list[Figures]]  # per watched function, each version of its code that ran


    # "class" is a Python keyword, hence the functional form.
    MigratedClass = TypedDict(
        "MigratedClass",
        {
            "class": str, "instances": int, "attributes": list[str], "migration": Literal["given", "dataclass defaults"],
            # Milliseconds: walking every object before the swap, and the catch-up inside its atomic window.
            "scanMs": float, "windowMs": float,
        },
    )


    class InstanceGap(TypedDict):
        module: str
        qualname: str
        instances: int
        lacking: dict[str, int]  # attribute -> live instances lacking it


    class RunningSource(TypedDict):
        module: str
        path: str | None
        qualname: str
        source: str | None  # None: the definition was removed (or restored to "as loaded")
        generation: int


    GenerationStatus = Literal["active", "rolledBack"]


    class GenerationInfo(TypedDict):
        generation: int
        time: float  # seconds since the epoch
        action: Literal["apply", "reload"]
        changes: list[AppliedDefinition]
        status: GenerationStatus
        verify: NotRequired[str]
        rolledBackAt: NotRequired[float]
        evidence: NotRequired[EvidenceBody]  # while watched, and frozen after
        # Modules it changed that executed again since (`importlib.reload`): they run their
        # file; copies of their functions from before still run this generation's code.
        reimported: NotRequired[list[str]]


    class PrunedHistory(TypedDict):
        count: int  # rolled-back generations dropped from the history so far
        first: int  # the oldest and newest of them
        last: int
        limit: int  # how many rolled-back generations are kept (the active chain always is)
        reason: str  # the same, in words


    class HistoryBody(TypedDict):
        generation: int  # the generation now running (0: as loaded)
        generations: list[GenerationInfo]
        pruned: NotRequired[PrunedHistory]


    class FrameInfo(TypedDict):
        name: str
        qualname: str
        module: str | None
        path: str
        line: int
        locals: NotRequired[dict[str, str]]


    class ThreadFrames(TypedDict):
        id: int
        name: str
        frames: list[FrameInfo]
        livefix: NotRequired[bool]  # the thread serving this request


    class CaptureFramesBody(TypedDict):
        threads: list[ThreadFrames]


    class ModuleStatus(TypedDict):
        name: str
        path: str
        changed: list[str]
        added: list[str]
        removed: list[str]
        # definitions running the file's code at other lines (livefix arrived after the edit)
        moved: NotRequired[list[str]]
        note: NotRequired[str]  # why a module is listed when no definition differs
        # "derived": livefix did not see the module's import; its definitions were checked
        # against the running code, its module-level statements cannot be
        baseline: NotRequired[Literal["derived"]]


    class UnpersistedDefinition(TypedDict):
        """A definition an active generation changed (not from its file) that its file does not
        have as it runs: absent, different, or not known (`fileError`)."""

        generation: int  # the newest active generation that changed it
        module: str
        qualname: str
        path: str | None  # the module's file, as the process names it
        removed: NotRequired[bool]  # the generation removed it and the file still defines it
        fileError: NotRequired[str]  # the file cannot be read or does not parse
        editedInFile: NotRequired[bool]  # the file's version was edited since the fix: persist refuses it


    class UnpersistedSource(UnpersistedDefinition):
        source: str | None  # the running definition, dedented, decorators included (None: removed)


    class StatusBody(TypedDict):
        generation: int
        modules: list[ModuleStatus]
        # What runs that the files do not say yet (`livefix persist` writes it), oldest first.
        unpersisted: NotRequired[list[UnpersistedDefinition]]
        agent: NotRequired[AgentInfo]  # when served by the agent (livefix.listen())


    class RunningSourcesBody(TypedDict):
        """Body of `livefix/runningSources`: one entry per running text (a property's getter and
        setter are two), for the definitions `unpersisted` lists."""

        generation: int
        sources: list[UnpersistedSource]


    # -- agent-only requests (livefix.listen(); see docs/agent.md) -----------------------


    class AuthenticateArguments(TypedDict):
        token: str


    class PrepareArguments(TypedDict):
        """Phase one of a fleet apply: everything but the commit (parse, compile, check, approve)."""

        action: NotRequired[Literal["apply", "reload"]]
        changes: NotRequired[list[ChangeArgs]]  # action "apply"
        modules: NotRequired[list[str]]  # action "reload"
        package: NotRequired[str]  # action "reload"
        verify: NotRequired[str]
        approved: NotRequired[bool]
        migrate: NotRequired[Migrations]
        canary: NotRequired[CanaryArgs]


    class PrepareBody(TypedDict):
        prepareId: str
        generation: int  # the generation running now (what a rollback returns to)
        planned: list[AppliedDefinition]
        impact: Impact
        risks: list[str]
        report: str
        fleetGeneration: int | None  # the fleet generation this worker runs (None: not in a fleet)


    class CommitArguments(TypedDict):
        prepareId: str
        verify: NotRequired[str]
        fleetGeneration: NotRequired[int]


    class AbortArguments(TypedDict):
        prepareId: str


    class AbortBody(TypedDict):
        aborted: bool  # False: nothing was prepared under that id (already committed or gone)


    class AgentInfo(TypedDict):
        """Body of `livefix/authenticate`, and `agent` in the agent's `livefix/status` body."""

        pid: int
        address: str
        service: str | None
        fleetGeneration: int | None
        generation: int
        python: str
        approval: ApprovalPolicy
        catchUp: list[dict[str, Any]]
        connections: int  # clients connected now, this one included


    class ErrorBody(TypedDict):
        """`body.livefix` of a failed response: a LivefixError as a dict."""

        kind: str
        message: str


# -- limits ------------------------------------------------------------------------
# What one request may ask of a process, whatever the transport: the agent (its `Limits`
# defaults) and the debug adapter refuse more with `invalid` (`limit` names which), before
# anything is parsed. Sizes are of the source in UTF-8.

MAX_SOURCE_BYTES = 1024 * 1024  # one change's source
MAX_CHANGES = 256  # changes in one request


def check_limits(arguments: Any, max_changes: int = MAX_CHANGES, max_source_bytes: int = MAX_SOURCE_BYTES) -> None:
    """Refuse (`invalid`, with `limit`) a request whose `changes` exceed the limits; shapes are
    checked later, by `as_change_args`."""
    from livefix.errors import LivefixError

    changes = arguments.get("changes") if isinstance(arguments, dict) else None
    if not isinstance(changes, list):
        return
    if len(changes) > max_changes:
        raise LivefixError(
            "invalid", f"{len(changes)} changes in one request exceed the limit of {max_changes}",
            limit="maxChanges",
        )
    for index, change in enumerate(changes):
        source = change.get("source") if isinstance(change, dict) else None
        # A character is 1 to 4 bytes: encode only when the count of characters cannot tell.
        if isinstance(source, str) and (
            len(source) > max_source_bytes
            or (len(source) * 4 > max_source_bytes and len(source.encode("utf-8", "surrogatepass")) > max_source_bytes)
        ):
            raise LivefixError(
                "invalid", f"changes[{index}].source is larger than the limit of {max_source_bytes} bytes",
                limit="maxSourceBytes", index=index,
            )


def as_change_args(raw: Any) -> list[ChangeArgs]:
    """Type-check the `changes` argument as received from the wire."""
    from livefix.errors import LivefixError

    if not isinstance(raw, list) or not raw:
        raise LivefixError("invalid", "`changes` must be a non-empty list of {module?, path?, qualname?, source}")
    for index, change in enumerate(raw):
        if not isinstance(change, dict):
            raise LivefixError("invalid", f"changes[{index}] must be an object", index=index)
        if not isinstance(change.get("source"), str):
            raise LivefixError("invalid", f"changes[{index}].source must be a string of Python source", index=index)
        for key in ("module", "path"):
            if key in change and change[key] is not None and not isinstance(change[key], str):
                raise LivefixError("invalid", f"changes[{index}].{key} must be a string", index=index)
        # Only an absent qualname means "the whole module": "" or null must not replace
        # every definition of a module by accident.
        if "qualname" in change and not (isinstance(change["qualname"], str) and change["qualname"].strip()):
            raise LivefixError(
                "invalid",
                f"changes[{index}].qualname must name a definition (`func`, `Class.method`), not "
                f"{_shown(change['qualname'])}; leave it out to replace the whole module",
                index=index,
            )
        if not change.get("module") and not change.get("path"):
            raise LivefixError("invalid", f"changes[{index}] names neither a module nor a path", index=index)
        line = change.get("line")
        if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
            raise LivefixError(
                "invalid", f"changes[{index}].line must be a line number (1 or more), not {_shown(line)}", index=index,
            )
    return raw


def added_definitions_warning(names: list[str]) -> str | None:
    """The words for definitions a change adds rather than replaces (a misspelled name adds a
    function nobody calls): the same for one process and for a fleet."""
    if not names:
        return None
    one = len(names) == 1
    return (f"{', '.join(names)} {'is' if one else 'are'} new: the change adds {'it' if one else 'them'} and no code "
            f"calls {'it' if one else 'them'} yet (a misspelled name?)")


def _shown(value: Any) -> str:
    """A bad value as a message shows it: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
