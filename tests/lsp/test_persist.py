"""`livefix.persist` round trips: the whole resulting file text is asserted every time."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_support import Editor

PERSIST = "livefix.persist"
REQUEST_FAILED = types.LSPErrorCodes.RequestFailed.value

# CRLF line breaks, tab indentation, non-ASCII (one astral character: two UTF-16 units)
# on the lines above every definition, comments everywhere.
CRLF_TABS = (
    "# -*- coding: utf-8 -*-\r\n"
    '"""Ünïcödé 😀 module, CRLF and tabs."""\r\n'
    "import functools\r\n"
    "\r\n"
    "\r\n"
    "class Outer:\r\n"
    "\t# a comment above the method, kept\r\n"
    "\t@staticmethod\r\n"
    "\tdef f(x):  # a trailing comment on the def line\r\n"
    "\t\treturn x + 1  # ✓ trailing\r\n"
    "\t\t# a deeper comment after the body, kept\r\n"
    "\r\n"
    "\tclass Inner:\r\n"
    "\t\tdef g(self):\r\n"
    '\t\t\treturn "ä😀"\r\n'
    "\r\n"
    "\t\tdef h(self):\r\n"
    "\t\t\treturn 0\r\n"
    "\r\n"
    "\r\n"
    "def tail():\t# tab before this comment\r\n"
    "\treturn 0\r\n"
)


@pytest.fixture
def module_path(workspace: Path) -> Path:
    return workspace / "src" / "shop" / "crlf.py"


async def open_file(editor: Editor, path: Path, text: str) -> str:
    path.write_bytes(text.encode("utf-8"))
    return editor.open(path)


async def persist(editor: Editor, uri: str, qualname: str, source: str) -> object:
    return await editor.execute(
        types.Command(title="persist", command=PERSIST, arguments=[{"uri": uri, "qualname": qualname, "source": source}])
    )


async def test_replaces_a_nested_method_in_crlf_tab_file(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    # The running source arrives LF-terminated and space-indented, as a method's text.
    result = await persist(editor, uri, "Outer.Inner.g", "    def g(self):\n        if self:\n            return 'fixed 😀'\n        return None\n")
    assert editor.texts[uri] == CRLF_TABS.replace(
        '\t\tdef g(self):\r\n\t\t\treturn "ä😀"\r\n',
        "\t\tdef g(self):\r\n\t\t\tif self:\r\n\t\t\t\treturn 'fixed 😀'\r\n\t\t\treturn None\r\n",
    )
    assert result == {
        "applied": True,
        "range": {"start": {"line": 14, "character": 0}, "end": {"line": 15, "character": 0}},  # the replaced lines
    }
    [edit] = editor.applied_edits
    [document_edit] = edit.edit.document_changes  # type: ignore[misc]
    assert document_edit.text_document.version == 1  # versioned: refused if the buffer moved on
    # The edit covers only the changed lines: the `def` line is identical and kept.
    assert document_edit.edits[0].range.start.line == 14  # type: ignore[union-attr]


async def test_decorators_replaced_comments_around_kept(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    await persist(editor, uri, "Outer.f", "@staticmethod\n@functools.cache\ndef f(x):\n    return x + 2\n")
    assert editor.texts[uri] == CRLF_TABS.replace(
        "\t@staticmethod\r\n\tdef f(x):  # a trailing comment on the def line\r\n\t\treturn x + 1  # ✓ trailing\r\n",
        "\t@staticmethod\r\n\t@functools.cache\r\n\tdef f(x):\r\n\t\treturn x + 2\r\n",
    )


async def test_leading_comments_of_new_source_added_once(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    source = "# why: ä fix\ndef tail():\n    return 1\n"
    await persist(editor, uri, "tail", source)
    expected = CRLF_TABS.replace(
        "def tail():\t# tab before this comment\r\n\treturn 0\r\n", "# why: ä fix\r\ndef tail():\r\n\treturn 1\r\n"
    )
    assert editor.texts[uri] == expected
    result = await persist(editor, uri, "tail", source)  # persisting again changes nothing
    assert result == {"applied": False, "reason": "the document already has this definition"}
    assert editor.texts[uri] == expected
    assert len(editor.applied_edits) == 1


async def test_inserts_missing_method_at_end_of_its_class(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    await persist(editor, uri, "Outer.Inner.k", "def k(self):\n    '''New.\n  keep this indentation'''\n    return 2\n")
    assert editor.texts[uri] == CRLF_TABS.replace(
        "\t\tdef h(self):\r\n\t\t\treturn 0\r\n",
        "\t\tdef h(self):\r\n\t\t\treturn 0\r\n\r\n\t\tdef k(self):\r\n\t\t\t'''New.\r\n  keep this indentation'''\r\n\t\t\treturn 2\r\n",
    )


async def test_inserts_missing_function_at_module_end(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    await persist(editor, uri, "added", "def added():\n    return 'ß'\n")
    assert editor.texts[uri] == CRLF_TABS + "\r\n\r\ndef added():\r\n\treturn 'ß'\r\n"


async def test_inserts_before_main_guard_and_its_comment(editor: Editor, module_path: Path) -> None:
    text = "import sys\n\n\ndef main():\n    pass\n\n\n# entry point\nif __name__ == '__main__':\n    main()\n"
    uri = await open_file(editor, module_path, text)
    await persist(editor, uri, "extra", "def extra():\n  return 1\n")
    assert editor.texts[uri] == (
        "import sys\n\n\ndef main():\n    pass\n\n\n"
        "def extra():\n    return 1\n\n\n"
        "# entry point\nif __name__ == '__main__':\n    main()\n"
    )


async def test_edits_the_unsaved_buffer_not_the_file(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    editor.change(uri, types.Range(start=types.Position(line=2, character=0), end=types.Position(line=2, character=0)), "# 😀😀 unsaved\r\n")
    await persist(editor, uri, "Outer.Inner.h", "def h(self):\n    return 'h'\n")
    expected = CRLF_TABS.replace("import functools\r\n", "# 😀😀 unsaved\r\nimport functools\r\n").replace(
        "\t\tdef h(self):\r\n\t\t\treturn 0\r\n", "\t\tdef h(self):\r\n\t\t\treturn 'h'\r\n"
    )
    assert editor.texts[uri] == expected
    assert module_path.read_bytes() == CRLF_TABS.encode("utf-8")  # nothing saved


async def test_unversioned_client_and_a_file_never_opened(start_editor, module_path: Path) -> None:
    editor = await start_editor(document_changes=False)
    module_path.write_bytes(CRLF_TABS.encode("utf-8"))
    uri = editor.open(module_path)
    await persist(editor, uri, "tail", "def tail():\t# tab before this comment\n    return 2\n")
    [edit] = editor.applied_edits
    assert edit.edit.document_changes is None and list(edit.edit.changes or {}) == [uri]
    assert editor.texts[uri] == CRLF_TABS.replace("comment\r\n\treturn 0\r\n", "comment\r\n\treturn 2\r\n")
    # A closed file is read from disk with its CRLF intact, so positions stay right.
    other = module_path.with_name("closed.py")
    other.write_bytes(b"# \xc3\xa4\r\ndef a():\r\n    return 1\r\n")
    await persist(editor, other.as_uri(), "a", "def a():\n    return 2\n")
    assert editor.texts[other.as_uri()] == "# ä\r\ndef a():\r\n    return 2\r\n"


PROPERTY = '''class Box:
    @property
    def size(self):
        return self._size

    @size.setter
    def size(self, value):
        self._size = value
'''


async def test_property_setter_told_apart_by_decorators(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, PROPERTY)
    await persist(editor, uri, "Box.size", "@size.setter\ndef size(self, value):\n    self._size = max(value, 0)\n")
    assert editor.texts[uri] == PROPERTY.replace("self._size = value", "self._size = max(value, 0)")


REFUSALS = {
    "document-syntax-error": (CRLF_TABS + "def broken(:\r\n", "tail", "def tail():\n    return 1\n", "does not parse (line 23"),
    "ambiguous": ("def f():\n    return 1\n\n\ndef f():\n    return 2\n", "f", "def f():\n    return 3\n", "defined 2 times"),
    "ambiguous-property": (PROPERTY, "Box.size", "def size(self):\n    return 1\n", "defined 2 times"),
    "locals": (CRLF_TABS, "tail.<locals>.inner", "def inner():\n    pass\n", "not a module-level or class-level"),
    "source-syntax": (CRLF_TABS, "tail", "def tail(:\n", "source to persist for `tail` does not parse"),
    "wrong-name": (CRLF_TABS, "tail", "def other():\n    pass\n", "exactly one definition of `tail`"),
    "two-statements": (CRLF_TABS, "tail", "x = 1\ndef tail():\n    pass\n", "exactly one definition of `tail`"),
    "no-class": (CRLF_TABS, "Missing.m", "def m(self):\n    pass\n", "class `Missing` is not defined here"),
}


async def test_refusals_edit_nothing(editor: Editor, module_path: Path) -> None:
    """Each refusal is an error response and a message shown, and no edit at all."""
    for case, (text, qualname, source, message) in REFUSALS.items():
        uri = await open_file(editor, module_path.with_name(f"{case.replace('-', '_')}.py"), text)
        shown = len(editor.messages)
        with pytest.raises(JsonRpcException) as failure:
            await persist(editor, uri, qualname, source)
        assert failure.value.code == REQUEST_FAILED, case
        assert message in failure.value.message, case
        await editor.wait_until(lambda shown=shown: len(editor.messages) > shown, f"the refusal shown to the user ({case})")
        assert editor.messages[-1].type == types.MessageType.Error and message in editor.messages[-1].message, case
        assert editor.applied_edits == [], case
        assert editor.texts[uri] == text and editor.versions[uri] == 1, case


async def test_malformed_arguments_refused(editor: Editor, module_path: Path) -> None:
    await open_file(editor, module_path, CRLF_TABS)
    for arguments in ([], ["tail"], [{"uri": 1, "qualname": "tail", "source": ""}], [{}, {}]):
        with pytest.raises(JsonRpcException) as failure:
            await editor.execute(types.Command(title="persist", command=PERSIST, arguments=arguments))
        assert failure.value.code == REQUEST_FAILED and "livefix.persist" in failure.value.message, arguments
    assert editor.applied_edits == []


async def test_editor_declining_the_edit_is_a_failure(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, CRLF_TABS)
    editor.refuse_edits = True
    with pytest.raises(JsonRpcException) as failure:
        await persist(editor, uri, "tail", "def tail():\n    return 5\n")
    assert "did not apply the edit (cancelled by the test)" in failure.value.message
    assert editor.texts[uri] == CRLF_TABS


COMPOUND = '''import sys

try:
    from _speedups import helper  # @import
except ImportError:
    # pure-Python fallback
    def helper(x):
        return x

if sys.version_info >= (3, 12):
    class Runner:
        async def run(self):
            return 1
else:
    class Runner:
        async def run(self):
            return 0
'''


async def test_definitions_inside_compound_statements(editor: Editor, module_path: Path) -> None:
    uri = await open_file(editor, module_path, COMPOUND)
    await persist(editor, uri, "helper", "def helper(x):\n    return x * 2\n")
    expected = COMPOUND.replace("        return x\n", "        return x * 2\n")
    assert editor.texts[uri] == expected
    with pytest.raises(JsonRpcException) as failure:  # two `Runner` classes: which one runs depends
        await persist(editor, uri, "Runner.run", "async def run(self):\n    return 2\n")
    assert "defined 2 times" in failure.value.message
    assert editor.texts[uri] == expected


async def test_client_without_apply_edit_is_told_so(start_editor, module_path: Path) -> None:
    editor = await start_editor(apply_edit=False)
    uri = await open_file(editor, module_path, CRLF_TABS)
    with pytest.raises(JsonRpcException) as failure:
        await persist(editor, uri, "tail", "def tail():\n    return 5\n")
    assert "does not accept edits from the server" in failure.value.message
    assert editor.applied_edits == [] and editor.texts[uri] == CRLF_TABS


async def test_insertion_at_an_end_of_file_without_line_break_counts_utf16(editor: Editor, module_path: Path) -> None:
    text = 'def a():\n    return 1\n\n\nMARK = "😀 ünï"'  # the edit starts after two UTF-16 units for one emoji
    uri = await open_file(editor, module_path, text)
    result = await persist(editor, uri, "b", "def b():\n    return 2\n")
    assert editor.texts[uri] == text + "\n\n\ndef b():\n    return 2\n"
    end = {"line": 4, "character": len('MARK = "😀 ünï"') + 1}  # +1: the emoji is a surrogate pair
    assert result == {"applied": True, "range": {"start": end, "end": end}}


async def test_first_persist_races_the_warm_up(start_editor, module_path: Path) -> None:
    """The server loads libcst in the background after `initialized`; a persist sent at
    once shares that import (Python's import lock) and works, and the warm-up reports
    to the editor's log when persisting is ready."""
    editor = await start_editor()
    uri = await open_file(editor, module_path, "def f():\n    return 1\n")
    assert await persist(editor, uri, "f", "def f():\n    return 2\n") == {
        "applied": True,
        "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
    }
    assert editor.texts[uri] == "def f():\n    return 2\n"
    [ready] = await editor.wait_until(
        lambda: [m for m in editor.log_messages if m.message.startswith("livefix: ready to persist")], "the warm-up's report"
    )
    assert ready.type == types.MessageType.Log
    assert editor.messages == []  # nothing shown to the user
