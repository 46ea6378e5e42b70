"""The two pieces watch mode and the notebook stand on, on real files and real modules:
`ProjectFiles` (which project files changed: inotify and stat) and `script_guard` (a reload
of the running script never runs its main block again)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from livefix.integrations.project_files import ProjectFiles
from livefix.engine.script_guard import hold_top_level

BACKENDS = [pytest.param(True, id="inotify"), pytest.param(False, id="stat")]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(str(tmp_path))]:
        del sys.modules[name]


def under(root: Path):  # type: ignore[no-untyped-def]
    real = os.path.realpath(root)
    return lambda path: path.startswith(real + os.sep)


@pytest.mark.parametrize("events", BACKENDS)
def test_only_changed_project_files_are_reported_once(project: Path, events: bool) -> None:
    (project / "pf_alpha.py").write_text("A = 1\n")
    (project / "pf_beta.py").write_text("B = 1\n")
    importlib.import_module("pf_alpha")
    importlib.import_module("pf_beta")
    files = ProjectFiles(under(project), use_events=events)
    try:
        assert files.backend == ("inotify" if events and sys.platform.startswith("linux") else "stat")
        assert sorted(n for names in files.names.values() for n in names) == ["pf_alpha", "pf_beta"]
        assert files.changed() == []
        (project / "pf_alpha.py").write_text("A = 2\n")
        assert files.changed() == ["pf_alpha"]
        assert files.changed() == []  # reported once
        temporary = project / ".pf_beta.py.swp"  # an editor's atomic save: a new inode renamed over
        temporary.write_text("B = 2\n")
        os.replace(temporary, project / "pf_beta.py")
        assert files.changed() == ["pf_beta"]
        (project / "unrelated.txt").write_text("x")  # an event, but no module's file
        assert files.changed() == []
    finally:
        files.close()


@pytest.mark.parametrize("events", BACKENDS)
def test_a_module_imported_later_and_saved_before_it_was_seen_is_reported(project: Path, events: bool) -> None:
    files = ProjectFiles(under(project), use_events=events, differs=lambda name: name == "pf_late")
    try:
        (project / "pf_late.py").write_text("L = 1\n")
        importlib.import_module("pf_late")
        (project / "pf_late.py").write_text("L = 2\n")  # saved before the watcher looked again
        assert files.refresh() == ["pf_late"]
        assert files.changed() == ["pf_late"]
    finally:
        files.close()


def test_library_modules_are_never_looked_at(project: Path) -> None:
    files = ProjectFiles(under(project))
    try:
        assert not any("site-packages" in path or "/lib/python" in path for path in files.names)
    finally:
        files.close()


def test_a_changed_main_block_keeps_its_running_text() -> None:
    running = "def main():\n    return 1\n\n\nif __name__ == '__main__':\n    main()\n"
    saved = "def main():\n    return 2\n\n\nif __name__ == '__main__':\n    main()\n    main()\n"
    held = hold_top_level(running, saved)
    assert held.refused is None and held.lines == [5]
    assert held.text == "def main():\n    return 2\n\n\nif __name__ == '__main__':\n    main()\n"


@pytest.mark.parametrize(
    "statement",
    ["while True:\n    step()\n", "serve()\n", "for job in jobs:\n    run(job)\n", "with lock:\n    go()\n"],
)
def test_top_level_code_that_runs_the_program_is_held(statement: str) -> None:
    running = "X = 1\n" + statement
    saved = "X = 2\n" + statement.replace("(", "(1, ")
    held = hold_top_level(running, saved)
    assert held.text == "X = 2\n" + statement  # X's change goes through, the loop/call stays as it runs
    assert held.lines == [2]


def test_definitions_assignments_and_unchanged_main_blocks_pass_through() -> None:
    running = "import os\nRATE = 1\n\ndef f():\n    return 1\n\nmain()\n"
    saved = "import os, sys\nRATE = compute()\n\ndef f():\n    while True:\n        return 2\n\nmain()\n"
    held = hold_top_level(running, saved)
    assert held.text == saved and held.lines == [] and held.refused is None


def test_adding_or_removing_top_level_program_code_is_refused() -> None:
    held = hold_top_level("def f():\n    pass\n\nmain()\n", "def f():\n    pass\n\nmain()\nserve()\n")
    assert held.refused and "added or removed" in held.refused and "restart" in held.refused


def test_inotify_follows_a_directory_removed_and_created_again(project: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    package = project / "pf_dir"
    package.mkdir()
    (package / "pf_moved.py").write_text("M = 1\n")
    sys.path.insert(0, str(package))
    try:
        importlib.import_module("pf_moved")
        files = ProjectFiles(under(project), use_events=True, differs=lambda name: False)
        assert files.backend == "inotify"
        backup = project / "pf_dir.away"
        os.rename(package, backup)  # a branch switch takes the directory away...
        assert files.changed() == []
        package.mkdir()  # ...and brings it back, with the same file
        os.replace(backup / "pf_moved.py", package / "pf_moved.py")
        files.changed()
        (package / "pf_moved.py").write_text("M = 22\n")
        assert files.changed() == ["pf_moved"]
        files.close()
    finally:
        sys.path.remove(str(package))


def test_the_extension_counts_a_source_checkout_as_the_users_project(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    from livefix.integrations import ipython

    assert ipython._OWN_DIRECTORY.endswith(os.sep + "livefix" + os.sep)
    root = os.path.dirname(ipython._OWN_DIRECTORY.rstrip(os.sep))
    assert not os.path.join(root, "demo", "service.py").startswith(ipython._OWN_DIRECTORY)
