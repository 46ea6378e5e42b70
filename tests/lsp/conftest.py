"""Fixtures for the language server tests: a workspace on disk and a real server.

Each test gets a fresh workspace (`src/shop/...`, so module names come from the
default `src` root) and, through `editor`, a fresh `python -m livefix.lsp` process
driven by a real LSP client; every server is shut down (or killed) at teardown.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsp_support import Editor  # noqa: E402

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    package = root / "src" / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for sample in SAMPLES.glob("*.py"):
        # Bytes, not text: the samples' line breaks and encodings are part of the test.
        (package / sample.name).write_bytes(sample.read_bytes())
    return root


@pytest_asyncio.fixture
async def start_editor(workspace: Path) -> AsyncIterator[Callable[..., Awaitable[Editor]]]:
    """A factory of editors, each with its own server process on `workspace`."""
    editors: list[Editor] = []

    async def start(**kwargs: Any) -> Editor:
        editor = await Editor.start(workspace, **kwargs)
        editors.append(editor)
        return editor

    yield start
    for editor in reversed(editors):
        await editor.close()


@pytest_asyncio.fixture
async def editor(start_editor: Callable[..., Awaitable[Editor]]) -> Editor:
    return await start_editor()
