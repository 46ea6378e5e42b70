"""Keep a reload of the running script (`__main__`) from running the program a second time.

A reload re-executes the module-level statements that changed. In an imported module that
is what a person means (`RATE = 0.2`); in the script being run it is not: a changed
`if __name__ == "__main__": main()` or `while True: serve()` would start the program again
inside the reload, and never return. So in the script, changed top-level code that calls
or loops keeps its running text (the definitions around it are reloaded as usual) and the
line says so; it takes effect when the script is started again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
HELD_WARNING = "top-level code at line {lines} not run (it runs when the script starts)"


@dataclass
class Held:
    """The text to reload instead of the file's, and the file's lines of the code held back."""

    text: str
    lines: list[int] = field(default_factory=list)
    refused: str | None = None  # why nothing of the script can be reloaded


def runs_the_program(node: ast.stmt) -> bool:
    """Does this top-level statement call or loop, outside any definition it holds?"""
    if isinstance(node, _DEFINITIONS):
        return False
    if isinstance(node, (ast.While, ast.For, ast.AsyncFor, ast.Expr)):
        return not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # a docstring
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt) and runs_the_program(child):
            return True
    return False


def hold_top_level(running: str, saved: str) -> Held:
    """`saved` with every changed program-running top-level statement put back as it runs."""
    try:
        old_tree, new_tree = ast.parse(running), ast.parse(saved)
    except SyntaxError:
        return Held(saved)  # the engine reports the syntax error with its line
    old = [n for n in old_tree.body if runs_the_program(n)]
    new = [n for n in new_tree.body if runs_the_program(n)]
    old_texts = [_segment(running, n) for n in old]
    new_texts = [_segment(saved, n) for n in new]
    if old_texts == new_texts:
        return Held(saved)
    if len(old) != len(new):
        differs = next((i for i, (a, b) in enumerate(zip(old_texts, new_texts)) if a != b), min(len(old), len(new)))
        line = new[differs].lineno if differs < len(new) else (old[differs].lineno if differs < len(old) else 1)
        return Held(saved, [line], refused=(
            f"top-level code that runs the program was added or removed (line {line}); it runs only when "
            "the script starts: restart to pick it up"
        ))
    lines = saved.splitlines(True)
    held: list[int] = []
    # Back to front, so that earlier statements' line numbers stay valid while splicing.
    for old_node, new_node, old_text, new_text in reversed(list(zip(old, new, old_texts, new_texts))):
        if old_text == new_text:
            continue
        first, last = _span(new_node)  # top-level: whole lines, no indentation to carry over
        lines[first - 1 : last] = _with_newline(old_text).splitlines(True)
        held.append(new_node.lineno)
    return Held("".join(lines), sorted(held))


def _span(node: ast.stmt) -> tuple[int, int]:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    return first, node.end_lineno or node.lineno


def _segment(text: str, node: ast.stmt) -> str:
    first, last = _span(node)
    return "".join(text.splitlines(True)[first - 1 : last])


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
