"""Code actions at many cursor positions, through a real server process."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from lsp_support import Editor, find_marker, utf16_len

PRICING = Path("src/shop/pricing.py")

# marker -> the qualname "Apply" must offer there (None: no apply action at all)
EXPECTED = {
    "module_level": None,
    "lambda": None,
    "total_def": "total",
    "total_body": "total",
    "nested_def": "total",  # total.<locals>.helper is no target: the enclosing function is
    "nested_body": "total",
    "between": None,
    "decorator_line": "cached",
    "cached_end": "cached",
    "async_def": "fetch",
    "class_line": None,
    "class_doc": None,
    "class_attr": None,
    "method": "Cart.add",
    "prop": "Cart.size",
    "setter": "Cart.size",
    "nested_class": None,
    "nested_method": "Cart.Line.price",
    "comprehension": "Cart.checkout",
    "overload_stub": "parse",
    "overload_impl": "parse",
    "stub_only": None,
    "conditional": "conditional",
    "local_class": "make_class",
    "local_method": "make_class",
    "local_body": "make_class",
}


def titles(actions: list[types.CodeAction]) -> list[str]:
    return [action.title for action in actions]


async def test_actions_at_every_marker(editor: Editor, workspace: Path) -> None:
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    wrong = {}
    for marker, qualname in EXPECTED.items():
        line = find_marker(text, marker)
        for character in (0, 4):
            actions = await editor.code_actions(uri, line, character)
            expected = [] if qualname is None else [f"Apply `{qualname}` to running process"]
            if titles(actions) != [*expected, "Reload `shop.pricing` in running process"]:
                wrong[f"{marker}:{character}"] = titles(actions)
            assert all(action.kind == types.CodeActionKind.RefactorRewrite for action in actions)
    assert wrong == {}
    reload = actions[-1].command
    assert reload is not None and reload.command == "livefix.reloadModule"
    assert list(reload.arguments or []) == [{"uri": uri, "path": str(workspace / PRICING), "module": "shop.pricing"}]


def lines_of(text: str, first: int, last: int) -> str:
    return "".join(text.splitlines(keepends=True)[first : last + 1]).rstrip("\n")


async def test_apply_arguments_carry_exact_source_and_utf16_range(editor: Editor, workspace: Path) -> None:
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    first, last = find_marker(text, "decorator_line"), find_marker(text, "cached_end")
    [apply, _] = await editor.code_actions(uri, last, 8)
    assert apply.command is not None and apply.command.command == "livefix.applyDefinition"
    [argument] = list(apply.command.arguments or [])
    last_line = text.splitlines()[last]
    assert argument == {
        "uri": uri,
        "path": str(workspace / PRICING),
        "module": "shop.pricing",
        "qualname": "cached",
        "source": lines_of(text, first, last),  # decorators included, no trailing line break
        "range": {"start": {"line": first, "character": 0}, "end": {"line": last, "character": utf16_len(last_line)}},
        "line": first + 1,
    }
    # The emoji counts as two UTF-16 code units: the end is not the Python string length.
    assert argument["range"]["end"]["character"] == len(last_line) + 1


async def test_method_source_is_the_indented_text_and_overload_sends_the_implementation(
    editor: Editor, workspace: Path
) -> None:
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    [apply, _] = await editor.code_actions(uri, find_marker(text, "nested_method"))
    [argument] = apply.command.arguments  # type: ignore[union-attr]
    assert argument["qualname"] == "Cart.Line.price"
    assert argument["source"] == "        def price(self):  # @nested_method\n            return 0"

    [apply, _] = await editor.code_actions(uri, find_marker(text, "overload_stub"))
    [argument] = apply.command.arguments  # type: ignore[union-attr]
    implementation = find_marker(text, "overload_impl")
    assert argument["source"] == lines_of(text, implementation, implementation + 1)
    assert argument["range"]["start"]["line"] == implementation


async def test_actions_follow_unsaved_edits(editor: Editor, workspace: Path) -> None:
    """Positions come from the editor's buffer, not the file on disk."""
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    method = find_marker(text, "method")
    inserted = "# ünïcode 😀\n# two lines pushed in above\n"
    editor.change(uri, types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)), inserted)
    assert titles(await editor.code_actions(uri, method + 2))[0] == "Apply `Cart.add` to running process"
    [apply, _] = await editor.code_actions(uri, method + 2)
    assert apply.command.arguments[0]["range"]["start"]["line"] == method + 2  # type: ignore[union-attr]


async def test_broken_statement_keeps_the_others_actions(editor: Editor, workspace: Path) -> None:
    """While one module-level statement does not parse, the definitions outside it keep "Apply"."""
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING, text + "\ndef broken(:\n    return 1\n")
    method = find_marker(text, "method")
    assert titles(await editor.code_actions(uri, method)) == [
        "Apply `Cart.add` to running process",
        "Reload `shop.pricing` in running process",
    ]
    broken_line = len(text.splitlines()) + 1
    assert titles(await editor.code_actions(uri, broken_line + 1)) == ["Reload `shop.pricing` in running process"]

    # Typing in `total`'s body (an open bracket, as typed): `total` is the broken statement.
    editor.replace_all(uri, text)
    body = find_marker(text, "total_body")
    typed = "    extra = compute(\n"
    editor.change(uri, types.Range(start=types.Position(line=body + 1, character=0), end=types.Position(line=body + 1, character=0)), typed)
    expected = dict(EXPECTED, total_def=None, total_body=None, nested_def=None, nested_body=None)
    now = editor.texts[uri]
    wrong = {}
    for marker, qualname in expected.items():
        actions = await editor.code_actions(uri, find_marker(now, marker), 4)
        want = [] if qualname is None else [f"Apply `{qualname}` to running process"]
        if titles(actions) != [*want, "Reload `shop.pricing` in running process"]:
            wrong[marker] = titles(actions)
    assert wrong == {}
    # What the action sends is the definition's own text, at its place in the edited buffer.
    [apply, _] = await editor.code_actions(uri, find_marker(now, "cached_end"))
    first, last = find_marker(now, "decorator_line"), find_marker(now, "cached_end")
    assert apply.command.arguments[0]["source"] == lines_of(now, first, last)  # type: ignore[union-attr]
    assert apply.command.arguments[0]["range"]["start"]["line"] == first  # type: ignore[union-attr]

    # Opening quotes typed in a method: its class is broken, the rest of the file is not
    # (even though the quotes pair with the next docstring's as Python reads it).
    editor.replace_all(uri, text)
    editor.change(uri, types.Range(start=types.Position(line=method + 1, character=0), end=types.Position(line=method + 1, character=0)), '        """\n')
    now = editor.texts[uri]
    for marker in ("method", "prop", "nested_method", "comprehension"):
        assert titles(await editor.code_actions(uri, find_marker(now, marker))) == ["Reload `shop.pricing` in running process"], marker
    for marker, qualname in (("total_body", "total"), ("overload_impl", "parse"), ("conditional", "conditional")):
        assert titles(await editor.code_actions(uri, find_marker(now, marker)))[0] == f"Apply `{qualname}` to running process"

    # Fixed again: every action is back, as for the file opened fresh.
    editor.change(uri, types.Range(start=types.Position(line=method + 1, character=0), end=types.Position(line=method + 2, character=0)), "")
    assert editor.texts[uri] == text
    assert titles(await editor.code_actions(uri, find_marker(text, "nested_method"))) == [
        "Apply `Cart.Line.price` to running process",
        "Reload `shop.pricing` in running process",
    ]


async def test_only_filter_and_module_names(editor: Editor, workspace: Path) -> None:
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    line = find_marker(text, "method")
    assert await editor.code_actions(uri, line, only=[types.CodeActionKind.QuickFix]) == []
    assert len(await editor.code_actions(uri, line, only=[types.CodeActionKind.Refactor])) == 2
    # A package's __init__ is the package; a file outside any package is a top-level module.
    init = editor.open(workspace / "src" / "shop" / "__init__.py", "def hello():\n    return 1\n")
    assert titles(await editor.code_actions(init, 1)) == [
        "Apply `hello` to running process",
        "Reload `shop` in running process",
    ]
    script = workspace / "tools" / "run.py"
    script.parent.mkdir()
    script.write_text("def main():\n    pass\n")
    uri = editor.open(script)
    [apply, reload] = await editor.code_actions(uri, 1)
    assert apply.command.arguments[0]["module"] == "tools.run"  # type: ignore[union-attr]
    # A file that is no Python module gets nothing, even if its text would parse.
    notes = workspace / "notes.txt"
    notes.write_text("def looks_like_python():\n    pass\n")
    assert await editor.code_actions(editor.open(notes), 1) == []
    # A Python file whose name is no identifier still gets "Apply" (by path), but no reload.
    dashed = workspace / "tools" / "my-script.py"
    dashed.write_text("def main():\n    pass\n")
    [apply] = await editor.code_actions(editor.open(dashed), 1)
    assert apply.command.arguments[0]["module"] is None  # type: ignore[union-attr]
    assert apply.command.arguments[0]["path"] == str(dashed)  # type: ignore[union-attr]


async def test_module_roots_option(start_editor, workspace: Path) -> None:
    editor = await start_editor(options={"moduleRoots": ["src/shop"]})
    text = (workspace / PRICING).read_text(encoding="utf-8")
    uri = editor.open(workspace / PRICING)
    actions = await editor.code_actions(uri, find_marker(text, "method"))
    assert titles(actions)[-1] == "Reload `pricing` in running process"
    assert editor.messages == []


async def test_bad_options_are_reported_and_replaced_by_defaults(start_editor, workspace: Path) -> None:
    editor = await start_editor(options={"moduleRoots": "src", "driftDiagnostics": "yes", "colour": 1})
    await editor.wait_until(lambda: len(editor.messages) == 3, "three option warnings")
    assert all(m.type == types.MessageType.Warning for m in editor.messages)
    text = "\n".join(m.message for m in editor.messages)
    assert "moduleRoots" in text and "driftDiagnostics" in text and "unknown option `colour`" in text
    uri = editor.open(workspace / PRICING)
    actions = await editor.code_actions(uri, find_marker((workspace / PRICING).read_text(encoding="utf-8"), "method"))
    assert titles(actions)[-1] == "Reload `shop.pricing` in running process"
