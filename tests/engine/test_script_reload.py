"""Reloading the running script (`__main__`), as `livefix reload PID` through the agent, the
adapter's reload and watch mode all do: its functions are replaced, but its changed top-level
code (a main block, a loop) is held, or the reload would start the program a second time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = '''\
import livefix
livefix.install()

STARTS = []


def greet():
    return "old"


def main():
    STARTS.append(1)
    path = __file__
    text = open(path).read()
    open(path, "w").write(text.replace('"old"', '"new"').replace("main()  # start", "main()  # start, edited"))
    result = livefix.reload_modules(["__main__"])
    print(greet(), len(STARTS), result.warnings)
    open(path, "w").write(text + "main()\\n")  # a second program start added: refused, nothing changed
    try:
        livefix.reload_modules(["__main__"])
    except livefix.LivefixError as error:
        print(error.kind, error.details["line"], "added or removed" in error.message, greet(), len(STARTS))


if __name__ == "__main__":
    main()  # start
'''


def test_reloading_the_script_replaces_functions_and_holds_its_main_block(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    main_block = SCRIPT.splitlines().index('if __name__ == "__main__":') + 1
    first, second = done.stdout.splitlines()
    assert first == f"new 1 ['top-level code at line {main_block} not run (it runs when the script starts)']"
    assert second == f"unsupported {len(SCRIPT.splitlines()) + 1} True new 1"  # the main() added at the end
