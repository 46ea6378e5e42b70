"""Rollback after a change that touched only comments ("Nothing to reload"): such a change is
adopted as the running text without a generation, and the generations under it still undo
exactly (their text patches are offsets into the text they were taken from).

Comments outside definitions only: a comment inside a definition is part of its source, and
changing it is a generation of its own (the definition is replaced)."""

from __future__ import annotations

import itertools
import traceback

import pytest

from livefix.errors import LivefixError

ORIGINAL = '''\
# pricing: a short note
RATE = 2


def price(x):
    return x * RATE  # @price


# checks come next
def check(x):
    # rejects negatives
    if x < 0:
        raise ValueError("negative")  # @raise
    return x


# totals
def total(xs):
    return sum(price(check(x)) for x in xs)  # @total
'''
ORIGINAL_PRICE = "def price(x):\n    return x * RATE  # @price\n"
FIXED_PRICE = "def price(x):\n    return x * RATE + 1  # @price\n"
FIXED_CHECK = 'def check(x):\n    # rejects negatives\n    if x < 0:\n        raise ValueError("negative amount")  # @raise\n    return x\n'

# Comment-only edits that move no line of code (one that does is a generation of its own:
# the code below it moves to the file's lines).
COMMENTS = {
    "top": ("# pricing: a short note", "# pricing: a much, much longer note about how rates apply"),
    "middle": ("# checks come next", "# checks come next: they reject what no caller should ever send"),
    "added to a statement": ("RATE = 2\n", "RATE = 2  # per unit\n"),
    "end": ("# @total\n", "# @total\n# end of pricing, and a last word about it\n"),
}
_packages = itertools.count()


@pytest.fixture
def pricing(ws):
    # In a package of its own, so that reload_modules(package=...) reaches it and nothing else.
    return ws.module(ORIGINAL, name=f"lf_comment_rollback_{next(_packages)}.pricing")


def package(module):
    return module.__name__.rpartition(".")[0]


def line_of(text, marker):
    (line,) = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    return line


def fix_price(engine, ws, module):
    """The fix applied, and saved in the file as the editor does."""
    result = engine.apply([{"module": module.__name__, "qualname": "price", "source": FIXED_PRICE}])
    ws.edit(module, "return x * RATE  #", "return x * RATE + 1  #")
    assert module.price(3) == 7 and result.generation == engine.generation
    return result.generation


def adopt_comment(engine, ws, module, where, via="reload_module"):
    """Edit a comment in the file and bring the process in line: nothing to change in it."""
    old, new = COMMENTS[where]
    ws.edit(module, old, new)
    generation = engine.generation
    if via == "reload_module":
        result = engine.reload_module(module.__name__)
    elif via == "reload_modules":
        result = engine.reload_modules(package=package(module))
    else:  # the whole new source of the module, as an editor sends it
        result = engine.apply([{"module": module.__name__, "source": ws.path(module).read_text()}])
    assert result.applied == [] and result.report.startswith("Nothing to "), result.report
    assert engine.generation == generation and engine.modified_modules(modules=[module.__name__]) == []


def assert_runs_at_file_lines(ws, module):
    """Every function starts, and raises, at the lines the file has it."""
    text = ws.path(module).read_text()
    for name in ("price", "check", "total"):
        assert getattr(module, name).__code__.co_firstlineno == line_of(text, f"def {name}("), name
    with pytest.raises(ValueError) as info:
        module.total([1, -1])
    frames = traceback.extract_tb(info.value.__traceback__)[-3:]
    assert [(frame.name, frame.lineno) for frame in frames] == [
        ("total", line_of(text, "@total")), ("<genexpr>", line_of(text, "@total")), ("check", line_of(text, "@raise"))
    ]


def assert_runs_the_original(engine, ws, module):
    assert module.price(3) == 6 and module.total([1, 2]) == 6
    # Status tells the file apart from what runs by the one definition the file changed (no
    # garbage names, no unparsable text), and the running text is exactly the one before the fix.
    assert engine.modified_modules(modules=[module.__name__]) == [
        {"name": module.__name__, "path": str(ws.path(module)), "changed": ["price"], "added": [], "removed": []}
    ]
    assert_runs_at_file_lines(ws, module)
    assert engine.sources.current(module.__name__).text == ORIGINAL


@pytest.mark.parametrize("where", list(COMMENTS))
@pytest.mark.parametrize("via", ["reload_module", "reload_modules", "apply_module"])
def test_rollback_after_a_comment_only_change_returns_to_the_original(engine, ws, pricing, where, via):
    fix_price(engine, ws, pricing)
    adopt_comment(engine, ws, pricing, where, via)
    assert pricing.price(3) == 7
    assert_runs_at_file_lines(ws, pricing)

    result = engine.rollback()
    assert result.generation == 0 and result.applied == [
        {"module": pricing.__name__, "qualname": "price", "kind": "replaced"}
    ]
    # What the editor is told runs now (it shows it, and persists it on request).
    assert [(entry["qualname"], entry["source"]) for entry in result.sources] == [("price", ORIGINAL_PRICE)]
    assert_runs_the_original(engine, ws, pricing)

    # A later cycle works from there: reload the fix from the file, adopt another comment, undo.
    reloaded = engine.reload_module(pricing.__name__)
    assert reloaded.applied == [{"module": pricing.__name__, "qualname": "price", "kind": "replaced"}]
    assert pricing.price(3) == 7 and engine.modified_modules(modules=[pricing.__name__]) == []
    ws.edit(pricing, "# totals\n", "# totals, of every order\n")
    assert engine.reload_module(pricing.__name__).report.startswith("Nothing to reload")
    engine.rollback()
    assert pricing.price(3) == 6 and engine.sources.current(pricing.__name__).text == ORIGINAL
    assert_runs_at_file_lines(ws, pricing)
    with pytest.raises(LivefixError) as info:
        engine.rollback()
    assert info.value.kind == "nothingToRollBack"


def test_two_comment_only_reloads_in_a_row(engine, ws, pricing):
    fix_price(engine, ws, pricing)
    adopt_comment(engine, ws, pricing, "top")
    adopt_comment(engine, ws, pricing, "middle", via="reload_modules")
    adopt_comment(engine, ws, pricing, "end", via="apply_module")
    result = engine.rollback()
    assert [(entry["qualname"], entry["source"]) for entry in result.sources] == [("price", ORIGINAL_PRICE)]
    assert_runs_the_original(engine, ws, pricing)


def test_rollback_to_zero_across_generations_each_followed_by_comments(engine, ws, pricing):
    fix_price(engine, ws, pricing)
    adopt_comment(engine, ws, pricing, "top")
    engine.apply([{"module": pricing.__name__, "qualname": "check", "source": FIXED_CHECK}])
    ws.edit(pricing, '"negative")', '"negative amount")')
    adopt_comment(engine, ws, pricing, "middle")
    ws.edit(pricing, "for x in xs)  #", "for x in xs if x)  #")
    third = engine.reload_module(pricing.__name__)
    assert third.generation == 3 and [e["qualname"] for e in third.applied] == ["total"]
    adopt_comment(engine, ws, pricing, "end", via="reload_modules")

    engine.rollback(to=1)
    assert pricing.price(3) == 7
    with pytest.raises(ValueError, match="^negative$"):
        pricing.check(-1)
    assert_runs_at_file_lines(ws, pricing)
    assert [entry["changed"] for entry in engine.modified_modules(modules=[pricing.__name__])] == [["check", "total"]]

    # Generation 4 on top of 1 (the file's check and total again), and one more comment.
    assert engine.reload_module(pricing.__name__).generation == 4
    adopt_comment(engine, ws, pricing, "added to a statement", via="apply_module")
    engine.rollback(to=0)
    assert [g["status"] for g in engine.history()["generations"]] == ["rolledBack"] * 4
    assert pricing.total([0, 1]) == 2 and pricing.price(1) == 2
    assert engine.sources.current(pricing.__name__).text == ORIGINAL
    status = engine.modified_modules(modules=[pricing.__name__])
    assert [sorted(entry["changed"]) for entry in status] == [["check", "price", "total"]]
    assert_runs_at_file_lines(ws, pricing)


def test_a_fix_that_moves_code_then_a_comment_only_reload(engine, ws, pricing):
    """The fix adds a line, so the definitions below it move with it; after the rollback they
    run at their old lines again, which the file has once the fix is taken out of it."""
    longer = "def price(x):\n    rate = RATE + 0\n    return x * rate  # @price\n"
    engine.apply([{"module": pricing.__name__, "qualname": "price", "source": longer}])
    ws.edit(pricing, "    return x * RATE  # @price\n", "    rate = RATE + 0\n    return x * rate  # @price\n")
    assert_runs_at_file_lines(ws, pricing)
    adopt_comment(engine, ws, pricing, "top")
    result = engine.rollback()
    assert [(entry["qualname"], entry["source"]) for entry in result.sources] == [("price", ORIGINAL_PRICE)]
    assert engine.sources.current(pricing.__name__).text == ORIGINAL
    assert [pricing.check.__code__.co_firstlineno, pricing.total.__code__.co_firstlineno] == [
        line_of(ORIGINAL, "def check("), line_of(ORIGINAL, "def total(")
    ]
    assert engine.modified_modules(modules=[pricing.__name__]) == [{
        "name": pricing.__name__, "path": str(ws.path(pricing)), "changed": ["price"], "added": [], "removed": [],
        "moved": ["check", "total"],
    }]
    # The fix taken out of the file (the longer comment stays): the code runs at its lines, and
    # only the comment tells the file from the running text, until a reload adopts it again.
    ws.edit(pricing, "    rate = RATE + 0\n    return x * rate  # @price\n", "    return x * RATE  # @price\n")
    assert_runs_at_file_lines(ws, pricing)
    (status,) = engine.modified_modules(modules=[pricing.__name__])
    assert status["changed"] == status["added"] == status["removed"] == [] and "moved" not in status
    assert engine.reload_module(pricing.__name__).report.startswith("Nothing to reload")
    assert engine.modified_modules(modules=[pricing.__name__]) == []


def test_the_patch_kept_stays_the_size_of_the_changes(engine, ws):
    """Adopted texts are not kept whole per generation: the rebased patch covers the fix and
    the comments, not the module (see benchmarks/engine_memory.py)."""
    body = "".join(f"\n\n# note {n}\ndef f_{n:03}(x):\n    return x + {n}\n" for n in range(400))
    module = ws.module("# header\n" + body)
    engine.apply([{"module": module.__name__, "qualname": "f_001", "source": "def f_001(x):\n    return x + 1001\n"}])
    ws.write(module, "# header\n" + body.replace("return x + 1\n", "return x + 1001\n"))
    for n in range(5):
        ws.edit(module, f"# note {n * 50 + 10}\n", f"# note {n * 50 + 10}, read again\n")
        assert engine.reload_module(module.__name__).report.startswith("Nothing to reload")
    (generation,) = [g for g in engine._generations if g.status == "active"]
    (change,) = generation.texts.values()
    assert change.before.text is None and sum(len(old) + len(new) for _, old, new in change.pieces) < 500
    engine.rollback()
    assert module.f_001(0) == 1 and engine.sources.current(module.__name__).text == "# header\n" + body
