"""`livefix persist`: write what a running service (or fleet) runs back into its source files.

Asks the process (`livefix/runningSources`), or every worker of a fleet, for the
definitions its active generations changed that the files do not say yet, then writes
each one into its module's file with the language server's persister
(`livefix.lsp.persist.persist_change`: the same rules, the same minimal edit, every
byte outside the definition kept). Runs where the files are: the paths are the
service's own, so the command must run on the service's machine (or where the same
paths hold the same source).

Per file: read byte-exact (its encoding found as Python finds it, its line breaks
kept), apply one definition at a time (each change is computed on the text the
previous one left, since offsets move), then, unless `--dry-run`, check that the file
did not change on disk meanwhile and replace it atomically (a temporary file in the same
directory, the file's mode, `os.replace`). A definition that cannot be persisted (the
file does not parse, an ambiguous definition, an edit made in the file since the fix
without `--yes`, ...) is reported with its structured error and nothing is written to
its file; other files are still written. Exit 1 when anything was (with `--dry-run`:
would be) refused, 0 otherwise (see cli.py for the codes).

`livefix.cli` defines the subcommand and calls `run_persist` with itself: run as
`python -m livefix.cli` it is `__main__`, and importing `livefix.cli` here would make a
second copy whose `Usage` the running one does not catch.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import sys
import types
from typing import Any, Callable

from livefix import protocol
from livefix.errors import LivefixError

NOTHING = "Nothing to persist: the files already say what runs."


def _persister() -> Callable[..., Any]:
    """The language server's persister (libcst: imported only when something is persisted).
    From a livefix source checkout's root, `python -m livefix.cli` finds the checkout's
    `livefix/` first, which does not hold `livefix.lsp` (it is `lsp/` there): said, not a traceback."""
    try:
        from livefix.lsp.persist import persist_change
    except ImportError as error:
        import livefix

        raise LivefixError(
            "failed",
            f"livefix's persister cannot be imported ({error}); the livefix package found first is "
            f"{', '.join(livefix.__path__)}: run the installed `livefix` command, or from another directory",
        ) from None
    return persist_change


# -- what runs -------------------------------------------------------------------------------------


class Definition:
    """One running definition to persist (on a fleet: as every worker runs it)."""

    def __init__(self, module: str, qualname: str, path: str | None, source: str | None, generation: int,
                 file_error: str | None = None, edited: bool = False) -> None:
        self.module = module
        self.qualname = qualname
        self.path = path
        self.source = source  # None: removed from the process
        self.generation = generation
        self.generations: dict[int, int] = {}  # fleet: worker pid -> its generation
        self.file_error = file_error
        self.edited = edited  # the file's version was edited there since the fix (the process says)
        # What happened: persisted | wouldPersist | refused | notWritten | already
        self.outcome = ""
        self.error: LivefixError | None = None

    @classmethod
    def from_wire(cls, entry: dict[str, Any]) -> "Definition":
        return cls(
            module=str(entry.get("module")), qualname=str(entry.get("qualname")), path=entry.get("path"),
            source=entry.get("source"), generation=int(entry.get("generation") or 0),
            file_error=entry.get("fileError"), edited=bool(entry.get("editedInFile")),
        )

    @property
    def name(self) -> str:
        return f"{self.module}.{self.qualname}"

    def when(self) -> str:
        numbers = sorted(set(self.generations.values())) if self.generations else [self.generation]
        if len(numbers) == 1:
            return f"generation {numbers[0]}"
        return "generations " + ", ".join(f"{g} on worker {pid}" for pid, g in sorted(self.generations.items()))

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"module": self.module, "qualname": self.qualname, "path": self.path,
                                 "generation": self.generation, "outcome": self.outcome}
        if self.generations:
            entry["generations"] = {str(pid): g for pid, g in sorted(self.generations.items())}
        if self.error is not None:
            entry["error"] = self.error.to_dict()
        return entry


def _one_process(args: argparse.Namespace, out: Any, cli: types.ModuleType, address: Any) -> list[Definition]:
    with cli._connect(args, address, out) as client:
        body = client.request(protocol.RUNNING_SOURCES, {})
    return [Definition.from_wire(entry) for entry in body.get("sources", [])]


def _fleet(args: argparse.Namespace, cli: types.ModuleType, names: list[str]) -> list[Definition]:
    """What every worker runs; refused unless all of them run the same source for each
    definition asked for (a worker that does not list one runs what its file says)."""
    workers = cli._fleet(args).each(protocol.RUNNING_SOURCES, {})
    if not workers:
        raise LivefixError("notFound", f"no worker is registered under service {args.service}")
    failed = [w for w in workers if w.status != "ok" or w.body is None]
    if failed:
        said = "; ".join(f"worker {w.pid}: {(w.error or {}).get('message', w.status)}" for w in failed)
        raise LivefixError("failed", f"cannot ask every worker what it runs ({said}); nothing was written",
                           address=failed[0].address, workers=[w.pid for w in failed])
    per_worker: dict[int, dict[tuple[str, str], list[Definition]]] = {}
    for worker in workers:
        found: dict[tuple[str, str], list[Definition]] = {}
        for entry in (worker.body or {}).get("sources", []):
            definition = Definition.from_wire(entry)
            if _selected(definition, names):
                found.setdefault((definition.module, definition.qualname), []).append(definition)
        per_worker[worker.pid] = found
    keys = sorted({key for found in per_worker.values() for key in found})
    differ: list[str] = []
    for key in keys:
        versions: dict[Any, list[int]] = {}
        for pid, found in per_worker.items():
            shape = tuple(sorted((d.path or "", d.source or "") for d in found.get(key, []))) or None
            versions.setdefault(shape, []).append(pid)
        if len(versions) > 1:
            described, seen = [], 0
            for shape, pids in sorted(versions.items(), key=lambda item: -len(item[1])):
                what = "what the file says" if shape is None else ("one version" if not seen else "another version")
                seen += shape is not None
                described.append(f"{what} on worker{'s' if len(pids) > 1 else ''} {', '.join(map(str, sorted(pids)))}")
            differ.append(f"{key[0]}.{key[1]}: {'; '.join(described)}")
    if differ:
        raise LivefixError(
            "invalid",
            "the workers do not run the same code, so there is no one version to persist ("
            + "; ".join(differ) + "); nothing was written. Bring them in line first (livefix apply or rollback "
            "--service), or persist from one worker (livefix persist PID)",
            reason="workersDiffer", definitions=differ, workers=sorted(per_worker),
        )
    definitions: list[Definition] = []
    first = workers[0].pid
    for key in keys:
        for definition in per_worker[first].get(key, []):
            definition.generations = {
                pid: found[key][0].generation for pid, found in per_worker.items() if found.get(key)
            }
            # The workers run the same fixes but may have run other versions before them.
            definition.edited = any(d.edited for found in per_worker.values() for d in found.get(key, []))
            definitions.append(definition)
    return definitions


def _selected(definition: Definition, names: list[str]) -> bool:
    """Does QUALNAME ... ask for it? `shop.pricing.price`, `shop.pricing:price`, `shop.pricing`
    (the module), `price` or `Cart` (its class) all do; no names: everything."""
    if not names:
        return True
    full = definition.name
    for name in names:
        name = name.replace(":", ".", 1) if ":" in name else name
        if name in (full, definition.qualname) or full.startswith(name + ".") or definition.qualname.startswith(name + "."):
            return True
    return False


# -- writing ---------------------------------------------------------------------------------------


class FileResult:
    """What happened to one file: written, or its diff (dry run), or why it was left alone."""

    def __init__(self, path: str, definitions: list[Definition]) -> None:
        self.path = path
        self.definitions = definitions
        self.written = False
        self.diff: str | None = None
        self.error: LivefixError | None = None  # what kept the whole file from being written


def persist_file(path: str, definitions: list[Definition], dry_run: bool, over_edits: bool = False,
                 target: str = "TARGET") -> FileResult:
    """Persist `definitions` (all of one file) into `path`: all of them, or, if one is
    refused, none (the file is left as it was). A definition edited in the file since the
    fix is refused unless `over_edits` (`--yes`); `target` (`4242`, `--service shop`) names
    the process in the commands that refusal suggests."""
    result = FileResult(path, definitions)
    real = os.path.realpath(path)  # a symlinked module: write the file, keep the link
    try:
        with open(real, "rb") as handle:
            raw = handle.read()
            before = os.fstat(handle.fileno())
        encoding = _encoding(raw)
        text = raw.decode(encoding)
    except FileNotFoundError:
        return _refuse_file(result, LivefixError(
            "notFound",
            f"{path} does not exist on this machine: the path is the service's own, so run livefix persist where "
            "the service's files are",
            path=path,
        ))
    except OSError as error:
        return _refuse_file(result, LivefixError("failed", f"cannot read {path}: {error.strerror or error}", path=path))
    except (UnicodeDecodeError, SyntaxError) as error:
        return _refuse_file(result, LivefixError("syntax", f"cannot decode {path}: {error}", path=path))
    persist_change = _persister()

    new = text
    for definition in definitions:
        if definition.source is None:
            definition.outcome, definition.error = "refused", LivefixError(
                "invalid",
                f"{definition.name} no longer runs ({definition.when()} removed it) but {path} still defines it; "
                "delete it from the file by hand",
                reason="removed", module=definition.module, qualname=definition.qualname, path=path,
            )
            continue
        if definition.edited and not over_edits:
            definition.outcome, definition.error = "refused", LivefixError(
                "invalid",
                f"{path} has an edit of {definition.name} made since the fix: its version there is neither what runs "
                f"nor what ran before, and persisting would overwrite it, so nothing was written to {path}. Run the "
                f"file's version with `livefix reload {target} {definition.module}`, or write what runs over it with "
                f"`livefix persist {target} {definition.name} --yes`",
                reason="editedInFile", module=definition.module, qualname=definition.qualname, path=path,
            )
            continue
        try:
            change = persist_change(new, definition.qualname, definition.source)
        except LivefixError as error:
            definition.outcome = "refused"
            # The persister words its refusals for an editor's open document; this is a file.
            message = error.message.replace("the document", "the file")
            definition.error = LivefixError(
                error.kind, f"{definition.name} into {path}: {message}",
                **{**error.details, "module": definition.module, "qualname": definition.qualname, "path": path},
            )
            continue
        if change is None:
            definition.outcome = "already"
            continue
        new = new[: change.start] + change.new_text + new[change.end :]
        definition.outcome = "wouldPersist" if dry_run else "persisted"
    if any(d.outcome == "refused" for d in definitions):
        for definition in definitions:
            if definition.outcome in ("persisted", "wouldPersist"):
                definition.outcome = "notWritten"
        return result
    if new == text:
        return result
    try:
        data = new.encode(encoding)
    except UnicodeEncodeError as error:
        return _refuse_file(result, LivefixError(
            "invalid", f"the running code has characters {path}'s encoding ({encoding}) cannot hold: {error.reason} "
            f"at {error.object[error.start:error.end]!r}; nothing was written", path=path, encoding=encoding,
        ))
    if dry_run:
        import difflib

        result.diff = "".join(difflib.unified_diff(
            text.splitlines(True), new.splitlines(True), fromfile=path, tofile=f"{path} (persisted)",
        ))
        return result
    try:
        write_atomically(real, raw, before, data)
    except LivefixError as error:
        return _refuse_file(result, error)
    result.written = True
    return result


def _encoding(raw: bytes) -> str:
    """The file's encoding as Python reads it: a BOM, a coding cookie, else UTF-8."""
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    return encoding


def _refuse_file(result: FileResult, error: LivefixError) -> FileResult:
    result.error = error
    for definition in result.definitions:
        definition.outcome, definition.error = "refused", error
    return result


def write_atomically(path: str, expected: bytes, before: os.stat_result, data: bytes) -> None:
    """Replace `path` by `data` unless it no longer holds `expected` (someone saved it while
    we worked): a temporary file in the same directory, given the file's mode (and owner
    where allowed), then `os.replace`, so a reader sees the old file or the new, never half."""
    try:
        now = os.stat(path)
        with open(path, "rb") as handle:
            current = handle.read()
    except OSError as error:
        raise LivefixError("failed", f"cannot read {path} again: {error.strerror or error}", path=path) from None
    if current != expected or (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
        raise LivefixError(
            "busy", f"{path} changed on disk while livefix was persisting into it; nothing was written to it "
            "(run livefix persist again)", path=path, reason="changedOnDisk",
        )
    import tempfile

    directory, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".livefix")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(before.st_mode))
        made = os.stat(temporary)
        if (made.st_uid, made.st_gid) != (before.st_uid, before.st_gid):
            try:
                os.chown(temporary, before.st_uid, before.st_gid)
            except OSError:
                pass  # only root may give a file away: then the file is ours, as any editor's save would leave it
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise LivefixError("failed", f"cannot write {path}: {error.strerror or error}", path=path) from None
        raise


# -- the command -----------------------------------------------------------------------------------


def run_persist(args: argparse.Namespace, out: Any, cli: types.ModuleType) -> int:
    address, names = cli.split_target(args, minimum=0)
    if address is None:
        definitions = _fleet(args, cli, names)
    else:
        definitions = [d for d in _one_process(args, out, cli, address) if _selected(d, names)]
    unmatched = [n for n in names if not any(_selected(d, [n]) for d in definitions)]
    files: dict[str, list[Definition]] = {}
    unknown_path: list[Definition] = []
    for definition in definitions:
        if definition.path:
            files.setdefault(definition.path, []).append(definition)
        else:
            definition.outcome = "refused"
            definition.error = LivefixError("notFound", f"the service does not say which file {definition.name} "
                                            "comes from", module=definition.module, qualname=definition.qualname)
            unknown_path.append(definition)
    target = f"--service {args.service}" if address is None else str(args.items[0])
    results = [persist_file(path, group, args.dry_run, bool(args.yes), target) for path, group in files.items()]
    warnings = []
    written = [d for r in results if r.written for d in r.definitions if d.outcome == "persisted"]
    if written:
        # The process judges for itself whether the files now say what it runs.
        still = {(d.module, d.qualname) for d in _ask_again(args, out, cli, address)}
        for definition in written:
            if (definition.module, definition.qualname) in still:
                warnings.append(f"{definition.name} was written into {definition.path}, but the process still "
                                "finds it different from what runs")
    report = _report(definitions, results, unmatched, warnings, args.dry_run)
    refused = any(d.outcome in ("refused", "notWritten") for d in definitions) or bool(warnings)
    if out.as_json:
        json.dump({
            "dryRun": bool(args.dry_run),
            "definitions": [d.to_dict() for d in definitions],
            "files": [{"path": r.path, "written": r.written, **({"diff": r.diff} if r.diff is not None else {}),
                       **({"error": r.error.to_dict()} if r.error is not None else {})} for r in results],
            "unmatched": unmatched,
            "warnings": warnings,
            "report": report,
        }, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report)
    return cli.EXIT_FAILED if refused else cli.EXIT_OK


def _ask_again(args: argparse.Namespace, out: Any, cli: types.ModuleType, address: Any) -> list[Definition]:
    try:
        if address is None:
            workers = cli._fleet(args).each(protocol.RUNNING_SOURCES, {})
            return [Definition.from_wire(e) for w in workers for e in (w.body or {}).get("sources", [])]
        return _one_process(args, out, cli, address)
    except LivefixError:
        return []  # the files are written; a process that went away meanwhile cannot judge them


def _report(definitions: list[Definition], results: list[FileResult], unmatched: list[str], warnings: list[str],
            dry_run: bool) -> str:
    lines: list[str] = []
    refused, was = ("Would not persist ", "would be") if dry_run else ("Not persisted: ", "was")
    say: dict[str, Callable[[Definition], str]] = {
        "persisted": lambda d: f"Persisted {d.name} ({d.when()}) into {d.path}",
        "wouldPersist": lambda d: f"Would persist {d.name} ({d.when()}) into {d.path}",
        "already": lambda d: f"{d.name} ({d.when()}): {d.path} already has it",
        "refused": lambda d: f"{refused}{d.name} ({d.when()}): {d.error.message if d.error else 'refused'}",
        "notWritten": lambda d: f"{refused}{d.name} ({d.when()}): another definition for {d.path} {was} refused, "
                                f"so nothing {was} written to that file",
    }
    for definition in definitions:
        lines.append(say[definition.outcome](definition) if definition.outcome in say else definition.name)
    for result in results:
        if result.diff:
            lines.append(result.diff.rstrip("\n"))
    if dry_run and definitions:
        lines.append("Dry run: nothing was written.")
    for name in unmatched:
        lines.append(f"Nothing unpersisted is named {name} (its file may already say what runs)")
    if not definitions:
        lines.append(NOTHING)
    lines.extend(f"warning: {w}" for w in warnings)
    return "\n".join(lines)
