"""After each keystroke the server re-parses only the edited statement: same answers as a full parse.

The document is edited incrementally (didChange with ranges, as editors send them);
after every edit the server's code actions on every line are compared with those for
the same text opened fresh under another name (which the server parses whole).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from lsprotocol import types

from lsp_support import Editor, find_marker

PRICING = Path("src/shop/pricing.py")


def at(line: int, character: int = 0) -> types.Position:
    return types.Position(line=line, character=character)


async def answers(editor: Editor, uri: str, lines: int) -> list[Any]:
    found = []
    for line in range(lines):
        actions = await editor.code_actions(uri, line, 4)
        apply = [a.command.arguments[0] for a in actions if a.command and a.command.command == "livefix.applyDefinition"]
        found.append([(a["qualname"], a["source"], a["range"], a["line"]) for a in apply])
    return found


Edit = Callable[[Callable[[str], int], str], tuple[str, types.Range, str]]


def insert(what: str, at_line: int, new_text: str) -> tuple[str, types.Range, str]:
    return what, types.Range(start=at(at_line), end=at(at_line)), new_text


# Each edit is computed on the text as it is when its turn comes (`line` finds a marker).
EDITS: list[Edit] = [
    lambda line, text: insert("a line in a method body", line("method") + 2, "        self.count = 1\n"),
    lambda line, text: insert("a new function between two", line("total_def"), "def inserted():\n    return 1\n\n\n"),
    lambda line, text: ("a rename on the def line", types.Range(start=at(line("method"), 8), end=at(line("method"), 11)), "append_item"),
    lambda line, text: insert("a function after another", line("between"), "\n\ndef tail_fn():\n    pass\n"),
    lambda line, text: ("blank lines removed", types.Range(start=at(line("decorator_line") - 2), end=at(line("decorator_line"))), ""),
    lambda line, text: insert("a class at the top", 2, "class First:\n    def one(self):\n        return 1\n\n"),
    lambda line, text: insert("a decorator added", line("nested_method"), "        @staticmethod\n"),
    lambda line, text: ("two lines joined", types.Range(start=at(line("cached_end") - 1, 14), end=at(line("cached_end"), 4)), " "),
    lambda line, text: ("a method deleted", types.Range(start=at(line("setter") - 1), end=at(line("setter") + 3)), ""),
    lambda line, text: insert("code appended at the end", text.count("\n") + 1, "\n\ndef last():\n    return 'é😀'\n"),
]


async def test_incremental_reindex_matches_full_parse(editor: Editor, workspace: Path) -> None:
    path = workspace / PRICING
    uri = editor.open(path)
    for number, make_edit in enumerate(EDITS):
        text = editor.texts[uri]
        what, span, new_text = make_edit(lambda name, text=text: find_marker(text, name), text)
        editor.change(uri, span, new_text)
        text_now = editor.texts[uri]
        lines = text_now.count("\n") + 1
        fresh = editor.open(path.with_name(f"fresh_{number}.py"), text_now)
        expected = await answers(editor, fresh, lines)
        assert sum(map(bool, expected)) > lines // 3, f"{what}: the edited text should still parse"
        assert await answers(editor, uri, lines) == expected, what


# Typed into a method body a few characters at a time: the statement is broken for
# most of the way (no colon yet, a block still empty, an open bracket, open quotes).
TYPING = [
    ["        if", " ready", ":", "\n            pass"],
    ["        total = compute(", "a, [b", "]", ")"],
    ['        """', "doc", '"""'],
]


async def test_while_a_statement_is_broken_incremental_answers_match_a_fresh_parse(editor: Editor, workspace: Path) -> None:
    path = workspace / PRICING
    uri = editor.open(path)
    text = editor.texts[uri]
    lines = text.count("\n") + 1
    number = 0
    for pieces in TYPING:
        body = find_marker(editor.texts[uri], "method") + 1
        position = at(body)
        for piece in pieces:
            editor.change(uri, types.Range(start=position, end=position), piece)
            *_, last = piece.split("\n")
            position = at(position.line + piece.count("\n"), (position.character if "\n" not in piece else 0) + len(last))
            now = editor.texts[uri]
            number += 1
            fresh = editor.open(path.with_name(f"typed_{number}.py"), now)
            expected = await answers(editor, fresh, now.count("\n") + 1)
            assert sum(map(bool, expected)) > lines // 4, f"{piece!r}: the other definitions keep their actions"
            assert await answers(editor, uri, now.count("\n") + 1) == expected, repr(piece)
        # The typed line goes again: the document is the file's again.
        editor.replace_all(uri, text)
