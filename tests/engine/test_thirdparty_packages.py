"""livefix on code nobody on this project wrote: three pinned third-party packages
(thirdparty/packages.py says which and why), every module edited on disk, reloaded live,
and the package's own test suite run before and after in that same process.

Each (package, scenario) runs once, in a fresh child process (thirdparty/driver.py under
the interpreter running these tests): livefix installed before the package is imported,
or attached late, after the package was imported and its files edited, without and with
bytecode. The tests below each check one part of what the child saw, so a failure names
the part of the engine at fault.

The sdists are downloaded with pip once into .cache/thirdparty/ (ignored by git) and
checked against their pinned sha256. Without PyPI these tests fail and say so: CI
installs everything itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import livefix

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "thirdparty" / "driver.py"
REPO = HERE.parents[1]
CACHE = REPO / ".cache" / "thirdparty"
LIVEFIX_ROOT = Path(livefix.__file__).resolve().parents[1]
SCENARIOS = ("install", "late", "late-bytecode")
CHILD_TIMEOUT = 240  # seconds; a child takes a few


def _load_packages() -> Any:
    spec = importlib.util.spec_from_file_location("livefix_thirdparty_packages", HERE / "thirdparty" / "packages.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (dataclasses look their module up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


_packages = _load_packages()
PACKAGES = _packages.PACKAGES
PARAGRAPH_MARK = f"Edited by the {_packages.MARK}"

each_run = pytest.mark.parametrize(
    ("package", "scenario"),
    [pytest.param(package, scenario, id=f"{package}-{scenario}") for package in PACKAGES for scenario in SCENARIOS],
)


# -- the sdists --------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download(sdists: list[Any]) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE) as folder:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "-d", folder, *[f"{s.project}=={s.version}" for s in sdists],
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.fail(f"downloading the third-party sdists from PyPI timed out: {' '.join(command)}", pytrace=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            pytest.fail(
                "could not download the pinned third-party sdists from PyPI (these tests need PyPI; "
                f"{sys.executable} needs pip): {' '.join(command)}\n{tail}",
                pytrace=False,
            )
        for sdist in sdists:
            path = Path(folder) / sdist.filename
            if not path.exists():
                pytest.fail(f"pip downloaded no {sdist.filename} (got {sorted(os.listdir(folder))})", pytrace=False)
            if _sha256(path) != sdist.sha256:
                pytest.fail(f"{sdist.filename} from PyPI has sha256 {_sha256(path)}, pinned {sdist.sha256}", pytrace=False)
            os.replace(path, CACHE / sdist.filename)


def _extract(archive: Path, target: Path) -> None:
    """Unpack next to `target`, then rename: a folder under that name is always complete
    (another session unpacking the same sdist at the same time wins or loses as a whole)."""
    with tempfile.TemporaryDirectory(dir=CACHE) as folder:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, filter="data")
            else:  # 3.10 before 3.10.12: check the names ourselves
                for member in tar.getmembers():
                    if member.name.startswith("/") or ".." in Path(member.name).parts or not (member.isfile() or member.isdir()):
                        raise AssertionError(f"{archive.name}: unexpected member {member.name}")
                tar.extractall(folder)
        try:
            os.replace(Path(folder) / target.name, target)
        except OSError:
            if not target.is_dir():
                raise


@pytest.fixture(scope="session")
def sdists() -> dict[str, Path]:
    """The unpacked sdist of every package, by import name."""
    CACHE.mkdir(parents=True, exist_ok=True)
    missing = [s for s in PACKAGES.values() if not (CACHE / s.filename).exists() or _sha256(CACHE / s.filename) != s.sha256]
    if missing:
        _download(missing)
    folders = {}
    for sdist in PACKAGES.values():
        target = CACHE / sdist.folder
        if not target.is_dir():
            _extract(CACHE / sdist.filename, target)
        folders[sdist.package] = target
    return folders


# -- one child process per (package, scenario) ---------------------------------------------


def _workspace(sdist: Any, unpacked: Path, folder: Path) -> dict[str, Any]:
    """A private copy of the whole sdist (the run edits files on disk, and some of the
    package's tests look for files of its source tree in the working directory); returns
    the driver's config."""
    top = folder / sdist.folder
    shutil.copytree(unpacked, top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    ini = folder / "pytest.ini"
    ini.write_text("[pytest]\n")
    return {
        "package": sdist.package,
        "top": str(top),
        "root": str(top / sdist.source if sdist.source else top),
        "tests": str(top / sdist.tests),
        "ini": str(ini),
        "livefix_root": str(LIVEFIX_ROOT),
    }


def _child_env(scenario: str, root: str) -> dict[str, str]:
    # The child must not inherit this session's pytest options or plugins, nor a PYTHONPATH
    # that could shadow the copy under test (the driver adds livefix's root itself). The
    # copy goes on PYTHONPATH for the processes the package's own tests start.
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP")
    }
    env["PYTHONPATH"] = root
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if scenario != "late-bytecode":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class ChildRun:
    def __init__(self, result: dict[str, Any] | None, log: Path, failure: str | None = None) -> None:
        self.result = result or {}
        self.log = log
        self.failure = failure

    def __getitem__(self, key: str) -> Any:
        return self.result.get(key)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Children:
    """The child processes, one per (package, scenario), run a few at a time (one per core)
    in the order the tests ask for them; each is waited for when a test needs its result."""

    def __init__(self, sdists: dict[str, Path], factory: pytest.TempPathFactory, wanted: list[tuple[str, str]]) -> None:
        self.sdists = sdists
        self.factory = factory
        self.slots = max(1, min(4, os.cpu_count() or 1))
        self.pending = list(wanted)
        self.running: dict[tuple[str, str], tuple[subprocess.Popen[bytes], dict[str, Any], Path, float]] = {}
        self.done: dict[tuple[str, str], ChildRun] = {}

    def get(self, key: tuple[str, str]) -> ChildRun:
        if key not in self.done:
            if key not in self.running and key not in self.pending:
                self.pending.append(key)
            if key not in self.running:
                self._start(key)
            self._fill()
            self.done[key] = self._finish(key)
            self._fill()
        return self.done[key]

    def _fill(self) -> None:
        while self.pending and len(self.running) < self.slots:
            self._start(self.pending[0])

    def _start(self, key: tuple[str, str]) -> None:
        package, scenario = key
        self.pending.remove(key)
        folder = self.factory.mktemp(f"{package}-{scenario}")
        config = _workspace(PACKAGES[package], self.sdists[package], folder)
        config["scenario"] = scenario
        config["result"] = str(folder / "result.json")
        config_path = folder / "config.json"
        config_path.write_text(json.dumps(config))
        log = folder / "child.log"
        with open(log, "wb") as output:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, str(DRIVER), str(config_path)],
                env=_child_env(scenario, config["root"]), cwd=config["top"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.running[key] = (process, config, log, time.monotonic())

    def _finish(self, key: tuple[str, str]) -> ChildRun:
        process, config, log, started = self.running.pop(key)
        try:
            code = process.wait(timeout=max(1.0, CHILD_TIMEOUT - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return ChildRun(None, log, f"the child did not finish in {CHILD_TIMEOUT}s")
        result = Path(config["result"])
        if not result.exists():
            return ChildRun(None, log, f"the child exited with {code} and wrote no result")
        return ChildRun(json.loads(result.read_text()), log)

    def close(self) -> None:
        for process, _, _, _ in self.running.values():
            process.kill()
            process.wait()
        self.running.clear()


@pytest.fixture(scope="session")
def children(
    request: pytest.FixtureRequest, sdists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Children]:
    # Only the runs the selected tests need, in the order they need them.
    wanted: list[tuple[str, str]] = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = (params.get("package"), params.get("scenario"))
        if item.path == Path(__file__) and key[0] in PACKAGES and key not in wanted:
            wanted.append(key)  # type: ignore[arg-type]
    started = Children(sdists, tmp_path_factory, wanted)
    yield started
    started.close()


@pytest.fixture
def run(children: Children, package: str, scenario: str) -> ChildRun:
    child = children.get((package, scenario))
    if child.failure:
        pytest.fail(f"{child.failure}; its log ({child.log}) ends:\n{child.log_tail()}", pytrace=False)
    return child


# -- reading what the child saw ----------------------------------------------------------


def _errors(run: ChildRun, *steps: str) -> list[str]:
    problems = []
    for step in ("driver", *steps):
        error = run["errors"].get(step)
        if error:
            problems.append(f"step {step!r} raised:\n" + "\n".join(error.strip().splitlines()[-12:]))
    return problems


def _changed_outcomes(before: dict[str, Any] | None, after: dict[str, Any] | None, what: str) -> list[str]:
    if before is None or after is None:
        return []  # the step's own error is reported
    old, new = before["outcomes"], after["outcomes"]
    changed = [nodeid for nodeid in sorted(set(old) | set(new)) if old.get(nodeid) != new.get(nodeid)]
    problems = []
    if changed or before["counts"] != after["counts"]:
        lines = [
            f"  {nodeid}: {old.get(nodeid, 'not run')} -> {new.get(nodeid, 'not run')}"
            + (f"  ({after['messages'][nodeid]})" if nodeid in after["messages"] else "")
            for nodeid in changed[:25]
        ]
        more = f"\n  ... and {len(changed) - 25} more" if len(changed) > 25 else ""
        problems.append(
            f"the package's own tests {what}: {before['counts']} before, {after['counts']} now; "
            f"{len(changed)} changed outcome:\n" + "\n".join(lines) + more
        )
    if after["collection_errors"]:
        problems.append(f"collection errors {what}: {after['collection_errors']}")
    return problems


def _same_modules(run: ChildRun, key: str) -> list[str]:
    before, after = run["module_ids_before"] or {}, run[key] or {}
    replaced = sorted(name for name in before if name in after and after[name] != before[name])
    gone = sorted(set(before) - set(after))
    if replaced or gone:
        return [f"package modules re-imported or replaced ({key}): replaced {replaced}, gone {gone}"]
    return []


def _line_problems(check: dict[str, Any] | None, what: str, kind: str = "lines") -> list[str]:
    if check is None:
        return []
    if not check["checked"]:
        return [f"{what}: no function of the package was found to check"]
    found = check[kind]
    if not found:
        return []
    if kind == "lines":
        summary = "are not at the lines the edited file has them at"
    else:
        summary = "are at the right lines but do not run the code compile() makes of the edited file"
    shown = found[:40] + ([f"... and {len(found) - 40} more"] if len(found) > 40 else [])
    return [f"{what}: {len(found)} of {len(check['checked'])} reachable functions {summary}:\n  " + "\n  ".join(shown)]


def _modified(entries: dict[str, Any] | None, when: str) -> list[str]:
    if entries is None or not entries["package"]:
        return []
    listed = "\n  ".join(
        f"{e['name']}: " + ", ".join(f"{key} {value}" for key, value in e.items() if key not in ("name", "path") and value)
        for e in entries["package"]
    )
    return [f"livefix.modified_modules() {when} still lists the package's modules:\n  {listed}"]


def _definitions(applied: list[dict[str, Any]]) -> str:
    names = [f"{e['module']}.{e['qualname']} {e['kind']}" for e in applied]
    return f"{len(names)} definitions: " + ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def _fail_on(problems: list[str], run: ChildRun) -> None:
    if problems:
        pytest.fail("\n\n".join(problems) + f"\n\n(child log: {run.log})", pytrace=False)


# -- the checks ----------------------------------------------------------------------------


@each_run
def test_own_tests_pass_before_any_edit(run: ChildRun, package: str, scenario: str) -> None:
    sdist = PACKAGES[package]
    problems = _errors(run, "probe_original", "tests_before", "lines_before", "bytecode")
    tests = run["tests_before"]
    if tests is not None:
        if tests["exit"] != 0 or not tests["counts"].get("passed") or tests["collection_errors"]:
            problems.append(
                f"the package's own tests do not pass as shipped: exit {tests['exit']}, {tests['counts']}, "
                f"collection errors {tests['collection_errors']}, failures {dict(list(tests['messages'].items())[:10])}"
            )
    if run["package_file"] and not run["package_file"].startswith(str(Path(run.log).parent)):
        problems.append(f"the child imported {package} from {run['package_file']}, not from its private copy")
    livefix_file = run["livefix_file"]
    if livefix_file and not Path(livefix_file).resolve().is_relative_to(LIVEFIX_ROOT):
        problems.append(f"the child ran livefix from {livefix_file}, not from {LIVEFIX_ROOT} as this process does")
    for behaviour, seen in zip(sdist.behaviours, run["probe_original"] or []):
        if seen != behaviour.probe.before:
            problems.append(f"{behaviour.probe.expression} is {seen} as shipped, expected {behaviour.probe.before}")
    # The checker itself, on the files as shipped: every function must match already.
    problems += _line_problems(run["lines_before"], "before any edit")
    problems += _line_problems(run["lines_before"], "before any edit", "code")
    bytecode = run["bytecode"]
    if bytecode is not None:
        if scenario == "late-bytecode" and (bytecode["dont_write_bytecode"] or bytecode["missing"]):
            problems.append(f"bytecode was not written at the first import: {bytecode}")
        if scenario != "late-bytecode" and not bytecode["dont_write_bytecode"]:
            problems.append("PYTHONDONTWRITEBYTECODE=1 did not reach the child")
    _fail_on(problems, run)


@each_run
def test_reload_brings_every_edited_module_in_line(run: ChildRun, package: str, scenario: str) -> None:
    sdist = PACKAGES[package]
    problems = _errors(run, "edits", "modified_before", "reload", "modified_after_reload")
    loaded = run["loaded_edited_modules"] or []
    if not loaded:
        problems.append("no edited module of the package was loaded")
    before = run["modified_before"]
    if before is not None:
        # Attached late without bytecode, livefix can only see that a file moved on through
        # the functions it defines (comments added to a module of imports change no code).
        required = run["edited_modules_with_functions"] if scenario == "late" else loaded
        listed = {entry["name"] for entry in before["package"]}
        missing = [name for name in required or [] if name not in listed]
        if missing:
            problems.append(f"livefix.modified_modules() before the reload did not list edited modules: {missing}")
    reload = run["reload"]
    if reload is not None:
        if reload["generation"] < 1 or f"Reloaded generation {reload['generation']}" not in reload["report"]:
            problems.append(f"the reload made no generation: {reload['generation']}, report:\n{reload['report']}")
        kinds = {(e["module"], e["qualname"]): e["kind"] for e in reload["applied"]}
        for behaviour in sdist.behaviours:
            if kinds.get((behaviour.module, behaviour.qualname)) != "replaced":
                problems.append(
                    f"the reload did not report {behaviour.module}.{behaviour.qualname} as replaced: it reports "
                    f"{_definitions(reload['applied'])}"
                )
        unexpected = [e for e in reload["applied"] if e["kind"] != "replaced"]
        if unexpected:
            problems.append(f"the edits added and removed nothing, yet the reload reports {unexpected}")
    problems += _modified(run["modified_after_reload"], "after the reload")
    _fail_on(problems, run)


@each_run
def test_own_tests_same_after_reload(run: ChildRun, package: str, scenario: str) -> None:
    problems = _errors(run, "tests_before", "reload", "tests_after_reload")
    problems += _changed_outcomes(run["tests_before"], run["tests_after_reload"], "after the reload")
    problems += _same_modules(run, "module_ids_after_reload")
    _fail_on(problems, run)


@each_run
def test_behaviour_and_docstring_changes_are_live(run: ChildRun, package: str, scenario: str) -> None:
    sdist = PACKAGES[package]
    problems = _errors(run, "reload", "probe_after_reload", "docstrings_after_reload")
    for behaviour, seen in zip(sdist.behaviours, run["probe_after_reload"] or []):
        if seen != behaviour.probe.after:
            problems.append(
                f"the behaviour change of {behaviour.module}.{behaviour.qualname} is not live: "
                f"{behaviour.probe.expression} is {seen}, the edited file makes it {behaviour.probe.after}"
            )
    docs = run["docstrings_after_reload"]
    if docs is not None:
        if PARAGRAPH_MARK not in (docs["expected"] or ""):
            problems.append(f"the edit of {docs['definition']}'s docstring is not in the file")
        if docs["running"] != docs["expected"]:
            problems.append(
                f"{docs['definition']}.__doc__ is not the edited file's docstring:\n"
                f"  running: {docs['running']!r}\n  file:    {docs['expected']!r}"
            )
        for name, doc in docs["modules"].items():
            if doc["running"] != doc["expected"]:
                problems.append(f"{name}.__doc__ is {doc['running']!r}, the file has {doc['expected']!r}")
    _fail_on(problems, run)


@each_run
def test_every_function_runs_at_its_line_in_the_edited_file(run: ChildRun, package: str, scenario: str) -> None:
    problems = _errors(run, "lines_before", "reload", "lines_after_reload")
    after, before = run["lines_after_reload"], run["lines_before"]
    problems += _line_problems(after, "after the reload")
    if after is not None and before is not None:
        appeared = sorted(set(after["checked"]) - set(before["checked"]))
        vanished = sorted(set(before["checked"]) - set(after["checked"]))
        if appeared or vanished:
            problems.append(
                "the functions reachable from the package changed with the reload (new objects or lost ones): "
                f"new {appeared[:20]}, gone {vanished[:20]}"
            )
        overloads = {
            where: (count, after["overloads"].get(where)) for where, count in before["overloads"].items()
            if after["overloads"].get(where) != count
        }
        if overloads:
            problems.append(f"typing.get_overloads counts changed with the reload (before, after): {overloads}")
    _fail_on(problems, run)


@each_run
def test_every_function_runs_the_code_compiled_from_the_edited_file(run: ChildRun, package: str, scenario: str) -> None:
    """What a fresh import of the edited files would run, down to the bytecode (a function
    compiled outside its module can differ: names the module imports are not loaded as
    methods, for one)."""
    problems = _errors(run, "lines_before", "reload", "lines_after_reload")
    problems += _line_problems(run["lines_after_reload"], "after the reload", "code")
    _fail_on(problems, run)


@each_run
def test_injected_bug_fails_own_tests_and_rollback_restores(run: ChildRun, package: str, scenario: str) -> None:
    """A bug applied on top of the reload breaks the package's own tests; rolling it back
    brings back exactly what ran after the reload (the checks above judge the reload)."""
    sdist = PACKAGES[package]
    steps = ("tests_after_reload", "lines_after_reload", "bug_source", "bug", "tests_with_bug", "rollback",
             "tests_after_rollback", "probe_after_rollback", "lines_after_rollback", "modified_after_rollback", "history")
    problems = _errors(run, *steps)
    where = f"{sdist.bug.module}.{sdist.bug.qualname}"
    bug, broken, reloaded = run["bug"], run["tests_with_bug"], run["tests_after_reload"]
    if bug is not None and [(e["module"], e["qualname"], e["kind"]) for e in bug["applied"]] != [
        (sdist.bug.module, sdist.bug.qualname, "replaced")
    ]:
        problems.append(f"applying the bug to {where} changed more than {where}: {_definitions(bug['applied'])}")
    if broken is not None and reloaded is not None:
        failed = broken["counts"].get("failed", 0) + broken["counts"].get("error", 0)
        if failed <= reloaded["counts"].get("failed", 0) + reloaded["counts"].get("error", 0):
            problems.append(f"with the bug in {where} no more of the package's own tests fail: {broken['counts']}")
        if set(broken["outcomes"]) != set(reloaded["outcomes"]):
            problems.append("with the bug the package's own tests were not the same tests")
    problems += _changed_outcomes(reloaded, run["tests_after_rollback"], "after the rollback (compared with after the reload)")
    if run["probe_after_rollback"] != run["probe_after_reload"]:
        expressions = [behaviour.probe.expression for behaviour in sdist.behaviours]
        problems.append(
            f"{expressions} are {run['probe_after_rollback']} after the rollback, {run['probe_after_reload']} after the reload"
        )
    before, after = run["lines_after_reload"], run["lines_after_rollback"]
    if before is not None and after is not None:
        for kind in ("lines", "code"):
            new = [p for p in after[kind] if p not in before[kind]]
            if new:
                problems.append(f"after the rollback, {len(new)} functions that were right after the reload are not:\n  "
                                + "\n  ".join(new[:40]))
    listed = {e["name"]: e["changed"] for e in (run["modified_after_reload"] or {}).get("package", [])}
    relisted = {e["name"]: e["changed"] for e in (run["modified_after_rollback"] or {}).get("package", [])}
    if run["modified_after_rollback"] is not None and relisted != listed:
        problems.append(f"livefix.modified_modules() after the rollback lists {relisted}, after the reload it listed {listed}")
    problems += _same_modules(run, "module_ids_after_rollback")
    history, reload = run["history"], run["reload"]
    if history is not None and reload is not None and history["generation"] != reload["generation"]:
        problems.append(f"after the rollback the process runs generation {history['generation']}, not the reload's")
    _fail_on(problems, run)
