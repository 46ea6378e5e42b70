"""The Neovim configuration of docs/lsp.md, run as written in a real headless Neovim.

Each ```lua block of docs/lsp.md whose first line says `-- Neovim X.Y or later` is
loaded as Neovim's init.lua, unchanged (so the documentation and this test cannot
drift apart), in every Neovim found that is recent enough: Debian's package (installed
here when missing: `apt-get install neovim`, 0.7.2 on Debian 12), and the one named by
LIVEFIX_TEST_NVIM, if set. nvim-dap, which Debian does not package, is replaced by a
stand-in that records the DAP requests (tests/lsp/nvim/lua/dap.lua). The user's part
is played by tests/lsp/nvim/driver.lua, which writes down what Neovim showed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_support import find_marker, running_body

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "lsp.md"
PRICING = Path("src/shop/pricing.py")
NEW_ADD = "def add(self, item):\n    self.items.insert(0, item)\n"
TIMEOUT = 60  # seconds for one Neovim run; it takes 2-5


def documented_configurations() -> list[tuple[tuple[int, int], str]]:
    """(minimum Neovim version, Lua text) of each configuration block in docs/lsp.md."""
    blocks = re.findall(r"^```lua\n(.*?)^```", DOCS.read_text(encoding="utf-8"), flags=re.M | re.S)
    found = []
    for block in blocks:
        header = re.match(r"-- Neovim (\d+)\.(\d+) or later\n", block)
        assert header, f"a Lua block in docs/lsp.md does not start with `-- Neovim X.Y or later`: {block[:60]!r}"
        found.append(((int(header.group(1)), int(header.group(2))), block))
    return found


CONFIGURATIONS = documented_configurations()


def install_debian_neovim() -> str:
    """`nvim` on PATH, installed from Debian's archive if it is not there yet."""
    found = shutil.which("nvim")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("no Neovim here, and no apt-get run as root to install Debian's package (not a Debian machine)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", "neovim"]
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
        # The package lists may be missing or stale (a fresh machine): refresh them once.
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=300, check=True)
        subprocess.run(install, env=env, capture_output=True, timeout=300, check=True)
    found = shutil.which("nvim")
    assert found, "apt-get installed neovim, but there is no nvim on PATH"
    return found


def version_of(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.match(r"NVIM v(\d+)\.(\d+)", first)
    assert match, first
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def neovims() -> list[tuple[str, tuple[int, int]]]:
    found = [install_debian_neovim()]
    extra = os.environ.get("LIVEFIX_TEST_NVIM")
    if extra:
        found.append(extra)
    return [(nvim, version_of(nvim)) for nvim in found]


def run_neovim(nvim: str, config: str, workspace: Path, home: Path, spec: dict[str, Any]) -> dict[str, Any]:
    home.mkdir()
    init = home / "init.lua"
    init.write_text(config, encoding="utf-8")
    spec_path, result_path = home / "spec.json", home / "result.json"
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The configuration runs `python -I -m livefix.lsp`: `python` is this interpreter.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())  # no user configuration, plugins or state
    env["LIVEFIX_NVIM_SPEC"] = str(spec_path)
    command = [
        nvim, "--headless", "-n", "-i", "NONE",
        "--cmd", f"set runtimepath^={HERE / 'nvim'}",  # the nvim-dap stand-in
        "-u", str(init),
        "-c", f"luafile {HERE / 'nvim' / 'driver.lua'}",
    ]
    # A session of its own: Neovim and the language server it starts are ended together.
    process = subprocess.Popen(
        command, cwd=workspace, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"Neovim did not finish in {TIMEOUT} s:\n{output.decode(errors='replace')}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # a language server Neovim left behind
        except ProcessLookupError:
            pass
    assert result_path.is_file(), f"Neovim wrote no result (exit {process.returncode}):\n{output.decode(errors='replace')}"
    return json.loads(result_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "minimum, config", CONFIGURATIONS, ids=[f"nvim-{a}.{b}-config" for (a, b), _ in CONFIGURATIONS]
)
def test_documented_neovim_configuration(
    minimum: tuple[int, int], config: str, neovims: list[tuple[str, tuple[int, int]]], workspace: Path, tmp_path: Path
) -> None:
    usable = [(nvim, version) for nvim, version in neovims if version >= minimum]
    if not usable:
        have = ", ".join(f"{a}.{b}" for _, (a, b) in neovims)
        pytest.skip(
            f"this configuration needs Neovim {minimum[0]}.{minimum[1]}+; this machine's is {have} (Debian's package); "
            "set LIVEFIX_TEST_NVIM to a newer nvim to run it"
        )
    (workspace / "pyproject.toml").write_text('[project]\nname = "shop"\n', encoding="utf-8")  # the project root
    path = workspace / PRICING
    text = path.read_text(encoding="utf-8")
    method = find_marker(text, "method")
    body = running_body(3, [{"module": "shop.pricing", "path": str(path), "qualname": "Cart.add", "source": NEW_ADD}])
    for number, (nvim, version) in enumerate(usable):
        seen = run_neovim(nvim, config, workspace, tmp_path / f"nvim-{number}", {"file": str(path), "line": method + 1, "body": body})
        where = f"Neovim {version[0]}.{version[1]} ({nvim})"
        assert seen.get("error") is None, f"{where}: {seen.get('error')}"
        # Neovim said nothing but what applying a labelled edit says: no error, no deprecation warning.
        said = [line for line in seen["messages"].splitlines() if line and line != "Workspace edit Persist Cart.add"]
        assert said == [], f"{where} said: {seen['messages']}"
        assert seen["filetype"] == "python"
        assert seen["root_dir"] == str(workspace), where
        assert seen["titles"] == ["Apply `Cart.add` to running process", "Reload `shop.pricing` in running process"], where
        # What the documented command handlers sent to the debug session.
        assert seen["requests"] == [
            {"command": "livefix/apply", "arguments": {"changes": [{
                "module": "shop.pricing", "path": str(path), "qualname": "Cart.add",
                "source": "    def add(self, item):  # @method\n        self.items.append(item)", "line": method + 1,
            }]}},
            {"command": "livefix/reload", "arguments": {"modules": ["shop.pricing"]}},
        ], where
        # The event forwarded by the documented listener became the diagnostic Neovim shows.
        assert seen["diagnostics"] == [
            {"message": "running process has generation 3 of `Cart.add`; not in this file", "lnum": method, "source": "livefix"}
        ], where
        # "Persist" went to the server, which edited the buffer through Neovim.
        expected = text.replace(
            "    def add(self, item):  # @method\n        self.items.append(item)\n",
            "    def add(self, item):\n        self.items.insert(0, item)\n",
        )
        assert seen["cleared"] is True, where
        assert seen["lines"] == expected.split("\n")[:-1], where
        assert path.read_text(encoding="utf-8") == text  # an unsaved edit, as with any editor
