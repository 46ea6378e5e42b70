"""The child process of test_thirdparty_packages: one third-party package, one scenario.

Run as `python driver.py CONFIG_JSON`. The config names the package (a key of
packages.PACKAGES), the folder holding a private copy of it (`root`, put first on
sys.path), its tests folder, the pytest ini to run them with, the scenario and the file
to write the result to:

- `install`: livefix.install() before the package is imported;
- `late`: the package imported and its tests run, its files edited, and only then
  livefix imported and installed (PYTHONDONTWRITEBYTECODE=1: no bytecode to compare with);
- `late-bytecode`: the same with bytecode written at the first import.

Then, in this one process: the package's own tests, the edits on disk, reload_modules,
the tests again, a bug injected with apply, the tests, rollback, the tests. The result
(one JSON document) holds what every step saw; every step runs even when an earlier one
failed, so one run reports every problem. Where each function runs from is checked by
codecheck.py; what is right is decided by the test.
"""

from __future__ import annotations

import ast
import collections
import importlib
import importlib.util
import inspect
import json
import os
import sys
import textwrap
import traceback
import types
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
# `python driver.py` put this folder first on sys.path: the package's tests must not see it.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]


def load(name: str) -> Any:
    """A module of this folder, by file path (the folder is neither a package nor on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"livefix_thirdparty_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (dataclasses look their module up)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the source tree
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.dont_write_bytecode = writes
    return module


codecheck = load("codecheck")
check_lines, in_package, package_modules = codecheck.check_lines, codecheck.in_package, codecheck.package_modules
read_text, real = codecheck.read_text, codecheck.real


# -- the package's own tests -------------------------------------------------------------


class Outcomes:
    """A pytest plugin: the final outcome of every test by node id, and why it failed."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.collection_errors: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
            else:
                outcome = report.outcome
        elif report.failed:  # an error in setup or teardown
            outcome = "error"
        elif report.skipped:
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        else:
            return
        if self.outcomes.get(report.nodeid) == "error":
            return
        self.outcomes[report.nodeid] = outcome
        if outcome in ("failed", "error"):
            lines = [line for line in (report.longreprtext or "").splitlines() if line.strip()]
            self.messages[report.nodeid] = (lines[-1] if lines else "")[:300]

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            lines = [line for line in (report.longreprtext or "").splitlines() if line.strip()]
            self.collection_errors.append(f"{report.nodeid}: {(lines[-1] if lines else '')[:300]}")


def forget_test_modules(config: dict[str, Any]) -> list[str]:
    """Drop the package's test modules (never the package's own modules) from sys.modules,
    so that each run imports and collects them afresh, as a new pytest session would:
    some parametrize with iterators that the first collection exhausts (click's
    test_boolean_conversion). The package they import is the live one in sys.modules."""
    tests = Path(real(config["tests"]))
    forgotten = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and Path(real(path)).is_relative_to(tests) and not in_package(name, config["package"]):
            del sys.modules[name]
            forgotten.append(name)
    return forgotten


def run_tests(config: dict[str, Any], name: str) -> dict[str, Any]:
    import pytest

    forget_test_modules(config)
    plugin = Outcomes()
    args = [
        config["tests"], "-q", "--tb=no", "-p", "no:cacheprovider",
        # the package's own config (filterwarnings = error...) and the repository's stay out
        "-c", config["ini"], "--rootdir", config["top"],
        # its own temporary folders: pytest's default one is shared with every session of the
        # user, and a session removes the oldest ones there (the test's own among them)
        "--basetemp", str(Path(config["top"]).parent / f"pytest-{name}"),
    ]
    print(f"== pytest {' '.join(args)}", flush=True)
    code = pytest.main(args, plugins=[plugin])
    counts = collections.Counter(plugin.outcomes.values())
    return {
        "exit": int(code),
        "counts": dict(sorted(counts.items())),
        "outcomes": plugin.outcomes,
        "messages": plugin.messages,
        "collection_errors": plugin.collection_errors,
    }


# -- the package's modules and files -----------------------------------------------------


def module_ids(package: str) -> dict[str, int]:
    return {name: id(module) for name, module in package_modules(package).items()}


def package_files(config: dict[str, Any]) -> list[Path]:
    """Every module file of the package, its own tests excepted."""
    top = Path(config["root"]) / config["package"]
    tests = Path(config["tests"]).resolve()
    return sorted(p for p in top.rglob("*.py") if tests not in p.resolve().parents and "__pycache__" not in p.parts)


def loaded_edited_modules(config: dict[str, Any], files: list[str]) -> list[str]:
    wanted = {real(f) for f in files}
    return sorted(
        name for name, module in package_modules(config["package"]).items()
        if getattr(module, "__file__", None) and real(module.__file__) in wanted
    )


def defines_functions(path: str) -> bool:
    """Does the file define a function (def or lambda)? Only then does the running code of
    a module loaded before livefix came tell, without bytecode, that the file moved on."""
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) for node in ast.walk(ast.parse(read_text(path))))


def bytecode_state(config: dict[str, Any]) -> dict[str, Any]:
    modules = package_modules(config["package"])
    missing = sorted(
        name for name, module in modules.items()
        if getattr(module, "__file__", None) and not os.path.exists(importlib.util.cache_from_source(module.__file__))
    )
    return {"dont_write_bytecode": sys.dont_write_bytecode, "modules": len(modules), "missing": missing}


def insertion_line(text: str, index: int) -> int:
    """Where the lines inserted into the `index`th file go (0: before line 1): at the top for
    every other file (after a shebang or encoding line), else after the module docstring
    and `from __future__` imports."""
    lines = text.splitlines(True)
    top = 0
    while top < min(2, len(lines)) and (lines[top].startswith("#!") or "coding" in lines[top] and lines[top].startswith("#")):
        top += 1
    if index % 2 == 0:
        return top
    after = top
    for node in ast.parse(text).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            break
        after = node.end_lineno or after
    return after


def replace_once(text: str, old: str, new: str, where: str) -> str:
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{where}: expected {old!r} exactly once, found it {count} times")
    return text.replace(old, new, 1)


def edit_files(config: dict[str, Any], sdist: Any, mark: str) -> dict[str, Any]:
    """Lines inserted near the top of every module, one docstring changed, the behaviour
    changes made; every edited file gets a modification time a bytecode check cannot miss."""
    root = Path(config["root"])
    files = package_files(config)
    before = {path: os.stat(path).st_mtime_ns for path in files}
    inserted: dict[str, dict[str, int]] = {}
    texts: dict[Path, str] = {}
    for index, path in enumerate(files):
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
        newline = "\r\n" if "\r\n" in text else "\n"
        at = insertion_line(text, index)
        count = 2 + index % 3
        block = [f"# {mark}: inserted line {n + 1} of {count}{newline}" for n in range(count)] + [newline]
        lines = text.splitlines(True)
        lines[at:at] = block
        texts[path] = "".join(lines)
        inserted[str(path.relative_to(root))] = {"after_line": at, "lines": len(block)}
    for edit in (*(behaviour.edit for behaviour in sdist.behaviours), sdist.docstring):
        path = root / edit.path
        texts[path] = replace_once(texts[path], edit.old, edit.new, edit.path)
    for path, text in texts.items():
        compile(text, str(path), "exec", dont_inherit=True)  # the edits keep every file valid
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    for path in files:
        # Bytecode records the source's modification time in whole seconds, and the file may
        # be rewritten within the second it was compiled in: move it on explicitly.
        pyc = importlib.util.cache_from_source(str(path))
        floor = before[path] + 2_000_000_000
        if os.path.exists(pyc):
            floor = max(floor, os.stat(pyc).st_mtime_ns + 2_000_000_000)
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, max(stat.st_mtime_ns, floor)))
    return {"files": [str(p) for p in files], "inserted": inserted}


# -- docstrings, probes, the bug -----------------------------------------------------------


def find_node(tree: ast.Module, qualname: str) -> ast.AST:
    body: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualname.split("."):
        matches = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part]
        if not matches:
            raise LookupError(f"no definition {qualname!r}")
        node = matches[-1]  # the last one binds the name (overload stubs come first)
        body = getattr(node, "body", [])
    assert node is not None
    return node


def resolve(module_name: str, qualname: str) -> Any:
    owner: Any = sys.modules[module_name]
    for part in qualname.split("."):
        owner = vars(owner)[part]
    return owner


def unwrap(obj: Any) -> Any:
    """The function a decorator's object stands for (curry.func, __wrapped__, __func__)."""
    for _ in range(10):
        if isinstance(obj, (types.FunctionType, type)):
            return obj
        inner = getattr(obj, "__func__", None) or getattr(obj, "__wrapped__", None) or getattr(obj, "func", None)
        if inner is None:
            return obj
        obj = inner
    return obj


def docstrings(config: dict[str, Any], sdist: Any) -> dict[str, Any]:
    module_name, qualname = sdist.documented
    module = sys.modules[module_name]
    expected = ast.get_docstring(find_node(ast.parse(read_text(module.__file__)), qualname), clean=True)  # type: ignore[arg-type]
    running = unwrap(resolve(module_name, qualname)).__doc__
    modules = {}
    for name, module in package_modules(config["package"]).items():
        path = getattr(module, "__file__", None)
        if path and path.endswith(".py"):
            modules[name] = {
                "running": inspect.cleandoc(module.__doc__) if module.__doc__ else None,
                "expected": ast.get_docstring(ast.parse(read_text(path)), clean=True),
            }
    return {
        "definition": f"{module_name}.{qualname}",
        "running": inspect.cleandoc(running) if running else None,
        "expected": expected,
        "modules": modules,
    }


def probe(sdist: Any) -> list[str]:
    """The repr of every behaviour probe's expression, evaluated with the package imported."""
    namespace = {sdist.package: importlib.import_module(sdist.package)}
    return [repr(eval(behaviour.probe.expression, dict(namespace))) for behaviour in sdist.behaviours]


def bug_source(sdist: Any) -> str:
    bug = sdist.bug
    path = sys.modules[bug.module].__file__
    text = read_text(path)  # type: ignore[arg-type]
    node = find_node(ast.parse(text), bug.qualname)
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]
    source = textwrap.dedent("".join(text.splitlines(True)[first - 1 : node.end_lineno]))  # type: ignore[attr-defined]
    return replace_once(source, bug.old, bug.new, f"{bug.module}.{bug.qualname}")


def describe(result: Any) -> dict[str, Any]:
    return {
        "generation": result.generation,
        "applied": result.applied,
        "report": result.report,
        "warnings": list(result.warnings),
    }


def modified(package: str) -> dict[str, Any]:
    import livefix

    entries = livefix.modified_modules()
    return {
        "package": [entry for entry in entries if in_package(entry["name"], package)],
        "others": sorted(entry["name"] for entry in entries if not in_package(entry["name"], package)),
    }


# -- the run -------------------------------------------------------------------------------


class Run:
    """Runs the steps in order, records each one's value or its traceback."""

    def __init__(self, result_path: str) -> None:
        self.path = result_path
        self.result: dict[str, Any] = {"errors": {}, "python": sys.version}

    def step(self, name: str, action: Callable[..., Any], *args: Any) -> Any:
        try:
            value = action(*args)
        except Exception:
            self.result["errors"][name] = traceback.format_exc()[-4000:]
            print(f"== step {name} raised:\n{self.result['errors'][name]}", flush=True)
            return None
        if value is not None:
            self.result[name] = value
        return value

    def save(self) -> None:
        Path(self.path).write_text(json.dumps(self.result, indent=1, sort_keys=True, default=repr))


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    packages = load("packages")
    sdist = packages.PACKAGES[config["package"]]
    package = sdist.package
    sys.path.insert(0, config["root"])
    # The livefix the test runs under (a checkout, or installed in this interpreter).
    sys.path.insert(1, config["livefix_root"])
    run = Run(config["result"])
    scenario = config["scenario"]
    try:
        if scenario == "install":
            import livefix

            livefix.install()
        else:
            assert "livefix" not in sys.modules, "livefix must arrive late in this scenario"
        module = importlib.import_module(package)
        run.result["package_file"] = module.__file__
        run.step("probe_original", probe, sdist)
        run.step("tests_before", run_tests, config, "before")
        ids = module_ids(package)
        run.result["module_ids_before"] = ids
        original_files = [str(p) for p in package_files(config)]
        run.step("lines_before", check_lines, config, original_files)
        run.step("bytecode", bytecode_state, config)
        edits = run.step("edits", edit_files, config, sdist, packages.MARK)
        files = edits["files"] if edits else original_files
        run.result["loaded_edited_modules"] = loaded_edited_modules(config, files)
        run.result["edited_modules_with_functions"] = [
            name for name in run.result["loaded_edited_modules"] if defines_functions(sys.modules[name].__file__)  # type: ignore[arg-type]
        ]
        if scenario != "install":
            import livefix

            livefix.install()
        import livefix

        run.result["livefix_file"] = livefix.__file__
        run.step("modified_before", modified, package)
        run.step("reload", lambda: describe(livefix.reload_modules(package=package)))
        run.step("modified_after_reload", modified, package)
        run.step("probe_after_reload", probe, sdist)
        run.step("docstrings_after_reload", docstrings, config, sdist)
        run.step("lines_after_reload", check_lines, config, files)
        run.step("tests_after_reload", run_tests, config, "after_reload")
        run.result["module_ids_after_reload"] = module_ids(package)
        source = run.step("bug_source", bug_source, sdist)
        if source is not None:
            change = {"module": sdist.bug.module, "qualname": sdist.bug.qualname, "source": source}
            run.step("bug", lambda: describe(livefix.apply([change])))
        run.step("tests_with_bug", run_tests, config, "with_bug")
        run.step("rollback", lambda: describe(livefix.rollback()))
        run.step("tests_after_rollback", run_tests, config, "after_rollback")
        run.result["module_ids_after_rollback"] = module_ids(package)
        run.step("probe_after_rollback", probe, sdist)
        run.step("lines_after_rollback", check_lines, config, files)
        run.step("modified_after_rollback", modified, package)
        run.step("history", livefix.history)
    except Exception:
        run.result["errors"]["driver"] = traceback.format_exc()
    finally:
        run.save()


if __name__ == "__main__":
    main()
