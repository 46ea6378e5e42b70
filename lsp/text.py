"""Text helpers shared by the locator, the drift tracker and the persister.

LSP counts lines on `\\n`, `\\r\\n` and `\\r` only (not on the other characters that
`str.splitlines` treats as breaks, such as form feed or U+2028), and columns in the
client's position encoding (UTF-16 code units unless negotiated otherwise). CPython's
tokenizer uses the same three line breaks, so `ast` line numbers agree with LSP lines.
"""

from __future__ import annotations

import io
import re
import textwrap
import tokenize
from typing import Callable

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# Maps a string to its length in the client's position units (pygls's position codec).
UnitCounter = Callable[[str], int]


def utf16_units(text: str) -> int:
    """Length of `text` in UTF-16 code units (LSP's default position encoding)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


class Lines:
    """A document split into LSP lines, with each line's offset and line break."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] = [0]
        for match in _LINE_BREAK.finditer(text):
            self.starts.append(match.end())

    def __len__(self) -> int:
        return len(self.starts)

    def line(self, index: int) -> str:
        """Line `index` (0-based) without its line break."""
        start = self.starts[index]
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def line_with_break(self, index: int) -> str:
        start = self.starts[index]
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.text)
        return self.text[start:end]

    def offset(self, line: int) -> int:
        """Offset of the start of `line` (0-based); the end of the text past the last line."""
        return self.starts[line] if line < len(self.starts) else len(self.text)

    def newline(self) -> str:
        """The document's line break: the first one found, `\\n` for one-line documents."""
        match = _LINE_BREAK.search(self.text)
        return match.group() if match else "\n"


def split_lines(text: str) -> list[str]:
    """Lines of `text`, each with its own line break (the last may have none)."""
    lines = Lines(text)
    return [lines.line_with_break(index) for index in range(len(lines)) if lines.line_with_break(index)]


def normalize_newlines(text: str, newline: str = "\n") -> str:
    return _LINE_BREAK.sub(newline, text)


def string_interior_lines(source: str) -> set[int]:
    """0-based lines of `source` that lie inside a multi-line string literal.

    Their leading whitespace is string content, so re-indenting must not touch it.
    The source is tokenized inside `if True:` so that an indented method tokenizes.
    """
    wrapped = "if True:\n" + source
    interior: set[int] = set()
    fstring_starts: list[int] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(wrapped).readline):
            name = tokenize.tok_name.get(token.type, "")
            if name == "STRING" and token.end[0] > token.start[0]:
                interior.update(range(token.start[0] + 1, token.end[0] + 1))
            elif name == "FSTRING_START":  # Python 3.12+: f-strings are tokenized in parts
                fstring_starts.append(token.start[0])
            elif name == "FSTRING_END" and fstring_starts:
                start_row = fstring_starts.pop()
                interior.update(range(start_row + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass  # a broken source is refused later by the parser; this is best effort
    # Token rows are 1-based and shifted by the `if True:` line.
    return {row - 2 for row in interior}


def leading_indent(source: str) -> str:
    """Indentation of the first non-blank line."""
    for line in normalize_newlines(source).split("\n"):
        if line.strip():
            return line[: len(line) - len(line.lstrip(" \t"))]
    return ""


def dedent_code(source: str) -> str:
    """Remove the first line's indentation from every line that starts a statement.

    Unlike `textwrap.dedent`, lines inside multi-line strings keep their whitespace
    (it is part of the string's value), and the first line decides the indentation.
    """
    indent = leading_indent(source)
    if not indent:
        return source
    interior = string_interior_lines(source)
    out = []
    for index, line in enumerate(_split_keep(source)):
        if index not in interior and line.startswith(indent):
            line = line[len(indent) :]
        elif index not in interior and not line.strip():
            line = line.lstrip(" \t")
        out.append(line)
    return "".join(out)


def _split_keep(text: str) -> list[str]:
    parts = []
    start = 0
    for match in _LINE_BREAK.finditer(text):
        parts.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def _canonical(source: str, dedent: Callable[[str], str]) -> str:
    # Tabs count to the next multiple of 8, as for Python's indentation: the engine
    # reports tab-indented methods with their tabs expanded.
    text = dedent("\n".join(line.expandtabs(8) for line in normalize_newlines(source).split("\n")))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def same_definition(a: str, b: str) -> bool:
    """Whether two definition texts are the same code as a person reads it.

    Differences of line breaks, trailing whitespace, surrounding blank lines, tabs
    versus spaces and a uniform indentation are ignored (a method's text may travel
    indented or not).
    """
    if a == b:
        return True
    return _canonical(a, dedent_code) == _canonical(b, dedent_code) or _canonical(
        a, textwrap.dedent
    ) == _canonical(b, textwrap.dedent)
