"""Drift diagnostics: appearing on `livefix/generationApplied`, settled by persist/save/rollback.

The notification bodies have the shape of the engine's `livefix/applied` event
(livefix.protocol.ChangeResultBody); the end-to-end test produces them for real.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from lsp_support import Editor, find_marker, running_body, utf16_len

PRICING = Path("src/shop/pricing.py")
NEW_ADD = "def add(self, item):\n    self.items.insert(0, item)\n"  # as the engine reports it: dedented


def setup(editor: Editor, workspace: Path) -> tuple[str, str, Path]:
    path = workspace / PRICING
    text = path.read_text(encoding="utf-8")
    return editor.open(path), text, path


def source(module: str, path: Path | str | None, qualname: str, text: str | None) -> dict:
    return {"module": module, "path": None if path is None else str(path), "qualname": qualname, "source": text}


async def test_diagnostic_appears_then_persist_clears_it(editor: Editor, workspace: Path) -> None:
    uri, text, path = setup(editor, workspace)
    editor.generation_applied(running_body(3, [source("shop.pricing", path, "Cart.add", NEW_ADD)]))
    [diagnostic] = await editor.wait_until(lambda: editor.diagnostics.get(uri), "a drift diagnostic")
    line = find_marker(text, "method")
    assert diagnostic.message == "running process has generation 3 of `Cart.add`; not in this file"
    assert diagnostic.severity == types.DiagnosticSeverity.Information
    assert diagnostic.source == "livefix"
    line_text = text.splitlines()[line]
    assert diagnostic.range == types.Range(
        start=types.Position(line=line, character=4), end=types.Position(line=line, character=utf16_len(line_text))
    )

    actions = await editor.code_actions(uri, line + 1, 8)
    assert [a.title for a in actions] == [
        "Persist running definition to source",
        "Revert process to this file's definition",
        "Apply `Cart.add` to running process",
        "Reload `shop.pricing` in running process",
    ]
    persist, revert = actions[0], actions[1]
    assert persist.kind == types.CodeActionKind.QuickFix and list(persist.diagnostics or []) == [diagnostic]
    assert persist.command is not None and persist.command.command == "livefix.persist"
    assert list(persist.command.arguments or []) == [{"uri": uri, "qualname": "Cart.add", "source": NEW_ADD}]
    assert revert.command is not None and revert.command.command == "livefix.applyDefinition"
    [revert_argument] = list(revert.command.arguments or [])
    assert revert_argument["qualname"] == "Cart.add"
    assert revert_argument["source"] == "    def add(self, item):  # @method\n        self.items.append(item)"

    await editor.execute(persist.command)
    await editor.wait_until(lambda: editor.diagnostics.get(uri) == [], "the diagnostic to clear")
    assert editor.texts[uri] == text.replace(
        "    def add(self, item):  # @method\n        self.items.append(item)\n",
        "    def add(self, item):\n        self.items.insert(0, item)\n",
    )
    assert [a.title for a in await editor.code_actions(uri, line + 1)][0] == "Apply `Cart.add` to running process"


async def test_saving_the_running_text_clears_and_rollback_restores(editor: Editor, workspace: Path) -> None:
    uri, text, path = setup(editor, workspace)
    original = "def total(items):  # @total_def\n    subtotal = sum(items)  # @total_body"
    start = text.index(original)
    end = text.index("    return subtotal * (1 + TAX)\n") + len("    return subtotal * (1 + TAX)\n")
    loaded = text[start:end]
    v1 = "def total(items):\n    return sum(items)\n"
    v2 = "def total(items):\n    return 2 * sum(items)\n"

    def message() -> list[str]:
        return [d.message for d in editor.diagnostics.get(uri, [])]

    editor.generation_applied(running_body(1, [source("shop.pricing", path, "total", v1)]))
    await editor.wait_until(lambda: message() == ["running process has generation 1 of `total`; not in this file"], "gen 1")
    editor.generation_applied(running_body(2, [source("shop.pricing", path, "total", v2)]))
    await editor.wait_until(lambda: message() == ["running process has generation 2 of `total`; not in this file"], "gen 2")
    # Rolling back to 1: the engine reports generation 1's text as running again.
    editor.generation_applied(running_body(1, [source("shop.pricing", path, "total", v1)], action="rollback"))
    await editor.wait_until(lambda: message() == ["running process has generation 1 of `total`; not in this file"], "back to 1")

    # The developer types generation 1's text into the file and saves: nothing drifts.
    editor.replace_all(uri, text[:start] + v1 + text[end:])
    editor.save(uri, path)
    await editor.wait_until(lambda: message() == [], "cleared by the identical text")

    # Rolling back to 0 runs the code as loaded, which this file no longer has ...
    editor.generation_applied(running_body(0, [source("shop.pricing", path, "total", loaded)], action="rollback"))
    await editor.wait_until(lambda: message() == ["running process has generation 0 of `total`; not in this file"], "gen 0")
    # ... and a definition reported gone (source None) has nothing left to compare.
    editor.generation_applied(running_body(0, [source("shop.pricing", path, "total", None)], action="rollback"))
    await editor.wait_until(lambda: message() == [], "cleared by removal")


async def test_running_text_equal_to_the_file_is_no_drift(editor: Editor, workspace: Path) -> None:
    uri, text, path = setup(editor, workspace)
    line = find_marker(text, "method")
    indented = "\r\n".join(text.splitlines()[line : line + 2])  # as sent by Apply: indented, CRLF here
    dedented = "def add(self, item):  # @method\n    self.items.append(item)\n"
    editor.generation_applied(running_body(4, [source("shop.pricing", path, "Cart.add", indented)]))
    editor.generation_applied(running_body(5, [source("shop.pricing", path, "Cart.add", dedented)]))
    editor.generation_applied({"generation": 6, "applied": [], "dryRun": True, "sources": [source("shop.pricing", path, "Cart.add", NEW_ADD)]})
    # Malformed bodies (an older engine, a buggy client) are ignored, never fatal.
    for body in ({"generation": 7}, {"sources": "nope"}, {"sources": [None, {"qualname": 3}]}, [1, 2]):
        editor.generation_applied(body)  # type: ignore[arg-type]
    await editor.settle(uri)
    assert editor.publish_count.get(uri, 0) == 0
    assert editor.messages == []


async def test_absent_definition_shown_on_its_class_and_persist_inserts_it(editor: Editor, workspace: Path) -> None:
    uri, text, path = setup(editor, workspace)
    discount = "def discount(self, rate):\n    return rate\n"
    editor.generation_applied(running_body(2, [source("shop.pricing", path, "Cart.discount", discount)]))
    [diagnostic] = await editor.wait_until(lambda: editor.diagnostics.get(uri), "a drift diagnostic")
    class_line = find_marker(text, "class_line")
    assert diagnostic.message == "running process has generation 2 of `Cart.discount`; not in this file"
    assert diagnostic.range.start == types.Position(line=class_line, character=0)
    actions = await editor.code_actions(uri, class_line)
    assert [a.title for a in actions] == ["Persist running definition to source", "Reload `shop.pricing` in running process"]
    await editor.execute(actions[0].command)  # type: ignore[arg-type]
    await editor.wait_until(lambda: editor.diagnostics.get(uri) == [], "the diagnostic to clear")
    checkout_end = "        return [x for x in self.items if x]  # @comprehension\n"
    assert editor.texts[uri] == text.replace(
        checkout_end, checkout_end + "\n    def discount(self, rate):\n        return rate\n"
    )


async def test_matching_by_path_then_by_module(start_editor, workspace: Path) -> None:
    editor = await start_editor()
    uri, text, path = setup(editor, workspace)
    elsewhere = workspace / "src" / "shop" / "__init__.py"  # exists, and is another module
    editor.generation_applied(running_body(1, [source("shop.pricing", elsewhere, "total", "def total(items):\n    return 0\n")]))
    await editor.settle(uri)
    assert editor.diagnostics.get(uri) is None
    # A process in a container: its path does not exist here, the module name decides.
    remote = "/srv/app/site-packages/shop/pricing.py"
    editor.generation_applied(running_body(2, [source("shop.pricing", remote, "fetch", "async def fetch(url):\n    return None\n")]))
    [diagnostic] = await editor.wait_until(lambda: editor.diagnostics.get(uri), "a diagnostic matched by module")
    assert "`fetch`" in diagnostic.message
    # A document that is not open gets its diagnostics from the file on disk.
    other = workspace / "src" / "shop" / "stock.py"
    other.write_bytes("# ü\r\ndef level():\r\n    return 1\r\n".encode("utf-8"))
    editor.generation_applied(running_body(3, [source("shop.stock", other, "level", "def level():\n    return 2\n")]))
    [closed] = await editor.wait_until(lambda: editor.diagnostics.get(other.as_uri()), "a diagnostic on a closed file")
    assert closed.range.start == types.Position(line=1, character=0)

    quiet = await start_editor(options={"driftDiagnostics": False})
    uri = quiet.open(workspace / PRICING)
    quiet.generation_applied(running_body(1, [source("shop.pricing", workspace / PRICING, "total", "def total(items):\n    return 0\n")]))
    await quiet.settle(uri)
    assert quiet.publish_count == {}


async def test_diagnostics_go_only_to_documents_shown_and_only_when_they_change(
    editor: Editor, workspace: Path, tmp_path: Path
) -> None:
    pricing = workspace / PRICING
    outside = tmp_path / "elsewhere" / "tool.py"  # exists on this machine, outside the workspace
    outside.parent.mkdir()
    outside.write_text("def run():\n    return 1\n", encoding="utf-8")
    body = running_body(1, [
        # A process in a container: its path does not exist here, its module is this workspace's file.
        source("shop.pricing", "/srv/app/shop/pricing.py", "total", "def total(items):\n    return 0\n"),
        # Neither the path nor the module is anywhere here.
        source("ghost", "/srv/app/ghost.py", "haunt", "def haunt():\n    return 0\n"),
        source("tool", outside, "run", "def run():\n    return 2\n"),
    ])
    editor.generation_applied(body)
    [shown] = await editor.wait_until(lambda: editor.diagnostics.get(pricing.as_uri()), "the workspace file's diagnostic")
    assert shown.message == "running process has generation 1 of `total`; not in this file"
    settle = editor.open(workspace / "src" / "shop" / "__init__.py")
    await editor.settle(settle)
    assert editor.publish_count == {pricing.as_uri(): 1}  # nothing for /srv/app/..., nor for the file outside

    # The same event again, an unrelated one, opening the file, typing below the
    # diagnostic: what is shown does not change, so nothing is sent again.
    editor.generation_applied(body)
    editor.generation_applied(running_body(2, [source("shop", workspace / "src" / "shop" / "__init__.py", "hello", "def hello():\n    return 1\n")]))
    uri = editor.open(pricing)
    text = editor.texts[uri]
    end = len(text.splitlines())
    editor.change(uri, types.Range(start=types.Position(line=end, character=0), end=types.Position(line=end, character=0)), "\n# a note\n")
    await editor.settle(uri)
    assert editor.publish_count[uri] == 1
    # Typing above it moves it: sent again, once.
    editor.change(uri, types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)), "# a note\n")
    await editor.settle(uri)
    assert editor.publish_count[uri] == 2
    assert editor.diagnostics[uri][0].range.start.line == shown.range.start.line + 1

    # A file outside the workspace gets its diagnostics once the editor opens it.
    tool = editor.open(outside)
    [opened] = await editor.wait_until(lambda: editor.diagnostics.get(tool), "the opened file's diagnostic")
    assert "`run`" in opened.message


FILES = '''class FileType:
    class __call__:  # @kind_class
        pass

    def mode(self):  # @kind_method
        return "r"


def opener(path):  # @kind_function
    return open(path)
'''


async def test_a_definition_of_another_kind_is_never_sent_to_the_process(editor: Editor, workspace: Path) -> None:
    """A method running where the file has a class (or the reverse): no Apply or Revert sends the file's."""
    path = workspace / "src" / "shop" / "files.py"
    path.write_text(FILES, encoding="utf-8")
    uri = editor.open(path)
    editor.generation_applied(running_body(4, [
        source("shop.files", path, "FileType.__call__", "def __call__(self, name):\n    return open(name)\n"),
        source("shop.files", path, "opener", "class opener:\n    pass\n"),
        source("shop.files", path, "FileType.mode", "def mode(self):\n    return 'w'\n"),
    ]))
    shown = await editor.wait_until(lambda: len(editor.diagnostics.get(uri) or []) == 3 and editor.diagnostics[uri], "three diagnostics")
    assert sorted(d.message for d in shown) == [
        "running process has generation 4 of `FileType.__call__`; not in this file (it runs as a function; this file defines a class)",
        "running process has generation 4 of `FileType.mode`; not in this file",
        "running process has generation 4 of `opener`; not in this file (it runs as a class; this file defines a function)",
    ]
    reload = "Reload `shop.files` in running process"
    persist = "Persist running definition to source"
    for marker in ("kind_class", "kind_function"):
        line = find_marker(FILES, marker)
        for at in (line, line + 1):
            actions = await editor.code_actions(uri, at, 8)
            assert [a.title for a in actions] == [persist, reload], (marker, at)
            assert all(a.command and a.command.command != "livefix.applyDefinition" for a in actions)
    # The same kind on both sides: reverting is offered, with the file's method.
    actions = await editor.code_actions(uri, find_marker(FILES, "kind_method") + 1, 8)
    assert [a.title for a in actions] == [persist, "Revert process to this file's definition", "Apply `FileType.mode` to running process", reload]
    assert actions[1].command.arguments[0]["source"] == '    def mode(self):  # @kind_method\n        return "r"'  # type: ignore[union-attr]
