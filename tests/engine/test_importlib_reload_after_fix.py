"""The program re-imports a module livefix fixed (`importlib.reload(m)`, or `m` dropped from
`sys.modules` and imported anew): the module runs its file again, outside livefix.

What is then true, and what these tests hold livefix to:
- `m`'s functions are new objects, made from the file: the fix no longer runs in them, and
  livefix's running text of `m` is the file's (status: nothing differs; every function at
  the file's lines).
- Copies of the old functions taken before (`from m import price` in another module) are
  the old objects: they still run the fix.
- The generations that changed `m` stay active (those copies run them) and say that `m` was
  re-imported since (`history()`: `reimported`). Their text patch of `m` (offsets into the
  text that ran before) is dropped: it no longer describes anything that runs.
- Rolling such a generation back restores what it swapped in the old objects (the copies run
  the code from before the fix again), leaves the module running its file, and says so.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import pytest

from livefix.errors import LivefixError

ORIGINAL = '''\
RATE = 2


def price(x):
    return x * RATE  # @price


def check(x):
    if x < 0:
        raise ValueError("negative")  # @raise
    return x


def total(xs):
    return sum(price(check(x)) for x in xs)  # @total
'''
ORIGINAL_PRICE = "def price(x):\n    return x * RATE  # @price\n"
ORIGINAL_CHECK = 'def check(x):\n    if x < 0:\n        raise ValueError("negative")  # @raise\n    return x\n'
# Both fixes are a line longer than what they replace: everything below them moves.
FIXED_PRICE = "def price(x):\n    rate = RATE\n    return x * rate + 1  # @price\n"
FIXED_CHECK = (
    'def check(x):\n    if x < 0:\n        message = "negative amount"\n        raise ValueError(message)  # @raise\n'
    "    return x\n"
)
NAMES = ("price", "check", "total")


@pytest.fixture
def pricing(ws):
    return ws.module(ORIGINAL)


@pytest.fixture
def holder(ws, pricing):
    """Another module holding the functions as they were when it was imported."""
    return ws.module(f"from {pricing.__name__} import price, check\n")


def line_of(text, marker):
    (line,) = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    return line


def fix(engine, module, qualname, source):
    result = engine.apply([{"module": module.__name__, "qualname": qualname, "source": source}])
    assert result.generation == engine.generation
    return result.generation


def reimported_of(engine):
    return {entry["generation"]: entry.get("reimported", []) for entry in engine.history()["generations"]}


def assert_runs_its_file(engine, ws, module):
    """What status and the code objects say once the module runs its file's code."""
    text = ws.path(module).read_text()
    assert engine.sources.current(module.__name__).text == text
    assert engine.modified_modules(modules=[module.__name__]) == []
    assert engine.unpersisted(modules=[module.__name__]) == []
    for name in NAMES:
        assert getattr(module, name).__code__.co_firstlineno == line_of(text, f"def {name}("), name
    with pytest.raises(ValueError) as info:
        module.total([1, -1])
    (frame,) = traceback.extract_tb(info.value.__traceback__)[-1:]
    assert (frame.name, frame.lineno) == ("check", line_of(text, "@raise"))


def assert_rollback_says_reimported(result, module, generation):
    said = f"{module.__name__} was re-imported after generation {generation} changed it"
    assert said in result.report and any(said in warning for warning in result.warnings), result.report


def later_cycle(engine, ws, module):
    """A fix applied and rolled back from there works as on a module never re-imported."""
    text = ws.path(module).read_text()
    before, running = module.price(3), engine.generation
    fix(engine, module, "price", FIXED_PRICE)
    assert module.price(3) == 7
    below = sorted(name for name in vars(module) if f"\ndef {name}(" in text[text.index("def price("):])
    assert engine.modified_modules(modules=[module.__name__]) == [{
        "name": module.__name__, "path": str(ws.path(module)), "changed": ["price"], "added": [], "removed": [],
        "moved": below,
    }]
    assert module.check.__code__.co_firstlineno == line_of(text, "def check(") + 1  # the fix's line above it
    result = engine.rollback()
    assert result.generation == running and "re-imported" not in result.report
    assert module.price(3) == before
    assert_runs_its_file(engine, ws, module)


def test_reload_after_one_fix(engine, ws, pricing, holder):
    assert fix(engine, pricing, "price", FIXED_PRICE) == 1
    old_price = pricing.price
    assert pricing.price(3) == holder.price(3) == 7

    importlib.reload(pricing)
    assert pricing.price is not old_price and holder.price is old_price
    assert pricing.price(3) == 6  # the file's code
    assert holder.price(3) == 7  # the old object: still the fix
    assert_runs_its_file(engine, ws, pricing)
    assert engine.generation == 1 and reimported_of(engine) == {1: [pricing.__name__]}
    assert [entry["status"] for entry in engine.history()["generations"]] == ["active"]

    result = engine.rollback()
    assert result.generation == 0 and result.applied == [
        {"module": pricing.__name__, "qualname": "price", "kind": "replaced"}
    ]
    assert_rollback_says_reimported(result, pricing, 1)
    # What runs now under the name: the file's definition.
    assert [(entry["qualname"], entry["source"]) for entry in result.sources] == [("price", ORIGINAL_PRICE)]
    assert holder.price(3) == 6 and holder.price.__code__.co_firstlineno == line_of(ORIGINAL, "def price(")
    assert pricing.price(3) == 6
    assert_runs_its_file(engine, ws, pricing)
    assert [entry["status"] for entry in engine.history()["generations"]] == ["rolledBack"]

    later_cycle(engine, ws, pricing)
    assert holder.price(3) == 6  # a fix after the re-import reaches the module's objects, not the old ones
    with pytest.raises(LivefixError) as info:
        engine.rollback()
    assert info.value.kind == "nothingToRollBack"


def test_reload_after_two_fixes(engine, ws, pricing, holder):
    fix(engine, pricing, "price", FIXED_PRICE)
    fix(engine, pricing, "check", FIXED_CHECK)
    importlib.reload(pricing)
    assert pricing.price(3) == 6 and holder.price(3) == 7
    with pytest.raises(ValueError, match="^negative$"):
        pricing.check(-1)
    with pytest.raises(ValueError, match="^negative amount$"):
        holder.check(-1)
    assert_runs_its_file(engine, ws, pricing)
    assert reimported_of(engine) == {1: [pricing.__name__], 2: [pricing.__name__]}

    second = engine.rollback()
    assert second.generation == 1 and second.applied == [
        {"module": pricing.__name__, "qualname": "check", "kind": "replaced"}
    ]
    assert_rollback_says_reimported(second, pricing, 2)
    assert [(entry["qualname"], entry["source"]) for entry in second.sources] == [("check", ORIGINAL_CHECK)]
    with pytest.raises(ValueError, match="^negative$"):
        holder.check(-1)
    assert holder.check.__code__.co_firstlineno == line_of(ORIGINAL, "def check(") + 1  # below generation 1's fix
    assert holder.price(3) == 7
    assert_runs_its_file(engine, ws, pricing)

    first = engine.rollback()
    assert first.generation == 0
    assert_rollback_says_reimported(first, pricing, 1)
    assert holder.price(3) == 6
    assert holder.check.__code__.co_firstlineno == line_of(ORIGINAL, "def check(")
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)


def test_reload_after_two_fixes_then_rollback_to_zero(engine, ws, pricing, holder):
    fix(engine, pricing, "price", FIXED_PRICE)
    fix(engine, pricing, "check", FIXED_CHECK)
    importlib.reload(pricing)
    result = engine.rollback(to=0)
    # One note for the module, naming both generations and the code the old copies run now.
    (note,) = [line for line in result.report.splitlines() if "re-imported" in line]
    assert note.startswith(f"{pricing.__name__} was re-imported after generations 1-2 changed it: ")
    assert note.endswith("run their code from before generation 1 again") and result.warnings == [note]
    assert holder.price(3) == 6
    with pytest.raises(ValueError, match="^negative$"):
        holder.check(-1)
    assert [holder.price.__code__.co_firstlineno, holder.check.__code__.co_firstlineno] == [
        line_of(ORIGINAL, "def price("), line_of(ORIGINAL, "def check(")
    ]
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)


def test_fix_reload_fix_then_rollback_to_zero(engine, ws, pricing, holder):
    fix(engine, pricing, "price", FIXED_PRICE)
    importlib.reload(pricing)
    assert fix(engine, pricing, "check", FIXED_CHECK) == 2  # on the re-imported module
    with pytest.raises(ValueError, match="^negative amount$"):
        pricing.check(-1)
    with pytest.raises(ValueError, match="^negative$"):
        holder.check(-1)  # the old object: neither fix changed it
    assert pricing.price(3) == 6 and holder.price(3) == 7
    assert reimported_of(engine) == {1: [pricing.__name__], 2: []}
    # Status compares the file with the re-imported text and the second fix only.
    text = ws.path(pricing).read_text()
    assert engine.modified_modules(modules=[pricing.__name__]) == [{
        "name": pricing.__name__, "path": str(ws.path(pricing)), "changed": ["check"], "added": [], "removed": [],
        "moved": ["total"],
    }]
    assert pricing.total.__code__.co_firstlineno == line_of(text, "def total(") + 1
    assert [u.qualname for u in engine.unpersisted(modules=[pricing.__name__])] == ["check"]

    result = engine.rollback(to=0)
    assert result.generation == 0 and result.report.startswith("Rolling back generations 1-2")
    assert_rollback_says_reimported(result, pricing, 1)
    assert f"after generation 2" not in result.report
    assert holder.price(3) == 6 and pricing.price(3) == 6
    with pytest.raises(ValueError, match="^negative$"):
        pricing.check(-1)
    assert_runs_its_file(engine, ws, pricing)
    assert [entry["status"] for entry in engine.history()["generations"]] == ["rolledBack", "rolledBack"]
    later_cycle(engine, ws, pricing)


def test_the_same_definition_fixed_again_after_the_reload(engine, ws, pricing, holder):
    """The new fix reaches the re-imported function; the copies from before the re-import are
    other objects, still running the first fix, and the apply says so."""
    fix(engine, pricing, "price", FIXED_PRICE)
    importlib.reload(pricing)
    again = "def price(x):\n    return x * RATE + 2  # @price\n"
    result = engine.apply([{"module": pricing.__name__, "qualname": "price", "source": again}])
    assert result.generation == 2 and pricing.price(3) == 8 and holder.price(3) == 7
    assert result.warnings == [
        f"{pricing.__name__} was re-imported after generation 1 changed price: this change reaches the re-imported "
        f"one; copies taken before the re-import (`from {pricing.__name__} import ...`, callbacks) are other objects, "
        "which run generation 1 until it is rolled back"
    ]
    assert [u.qualname for u in engine.unpersisted(modules=[pricing.__name__])] == ["price"]

    second = engine.rollback()
    assert "re-imported" not in second.report and pricing.price(3) == 6 and holder.price(3) == 7
    assert_runs_its_file(engine, ws, pricing)
    first = engine.rollback()
    assert_rollback_says_reimported(first, pricing, 1)
    assert pricing.price(3) == holder.price(3) == 6
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)


def test_file_edited_before_the_reload(engine, ws, pricing, holder):
    fix(engine, pricing, "price", FIXED_PRICE)
    # Someone edits the file (another price, and a line above check) and the program reloads it.
    ws.edit(pricing, "return x * RATE  # @price", "return x * RATE * 10  # @price")
    ws.edit(pricing, "def check(x):", "LIMIT = 0\n\n\ndef check(x):")
    edited = ws.path(pricing).read_text()
    importlib.reload(pricing)
    assert pricing.price(3) == 60 and holder.price(3) == 7 and pricing.LIMIT == 0
    assert_runs_its_file(engine, ws, pricing)

    result = engine.rollback()
    assert_rollback_says_reimported(result, pricing, 1)
    assert [(entry["qualname"], entry["source"]) for entry in result.sources] == [
        ("price", "def price(x):\n    return x * RATE * 10  # @price\n")
    ]
    assert holder.price(3) == 6 and pricing.price(3) == 60 and pricing.LIMIT == 0
    assert engine.sources.current(pricing.__name__).text == edited
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)


def test_imported_anew_after_leaving_sys_modules(engine, ws, pricing, holder):
    """Not importlib.reload: a new module object, with a namespace of its own."""
    fix(engine, pricing, "price", FIXED_PRICE)
    del sys.modules[pricing.__name__]
    fresh = importlib.import_module(pricing.__name__)
    assert fresh is not pricing and fresh.price(3) == 6 and holder.price(3) == pricing.price(3) == 7
    assert_runs_its_file(engine, ws, fresh)
    assert reimported_of(engine) == {1: [fresh.__name__]}
    result = engine.rollback()
    assert_rollback_says_reimported(result, fresh, 1)
    assert holder.price(3) == pricing.price(3) == 6 and fresh.price(3) == 6
    assert_runs_its_file(engine, ws, fresh)
    later_cycle(engine, ws, fresh)


@pytest.mark.parametrize("in_file", [False, True], ids=["not in the file", "saved in the file"])
def test_a_name_the_fix_added(engine, ws, pricing, holder, in_file):
    """The re-import leaves a name it does not bind as it was (importlib.reload keeps the
    namespace): rolling back removes what the fix added, unless the re-import bound it anew."""
    helper = "def discount(x):\n    return x - 1\n"
    result = engine.apply([
        {"module": pricing.__name__, "qualname": "discount", "source": helper},
        {"module": pricing.__name__, "qualname": "price",
         "source": "def price(x):\n    return discount(x * RATE)  # @price\n"},
    ])
    assert pricing.price(3) == 5
    if in_file:
        ws.edit(pricing, "def check(x):", helper + "\n\ndef check(x):")
    importlib.reload(pricing)
    from_file = pricing.discount
    assert pricing.price(3) == 6 and holder.price(3) == 5
    assert_runs_its_file(engine, ws, pricing)

    result = engine.rollback()
    assert_rollback_says_reimported(result, pricing, 1)
    assert holder.price(3) == 6
    if in_file:
        assert pricing.discount is from_file and pricing.discount(3) == 2
        assert f"{pricing.__name__}.discount kept as the re-import bound it" in result.report
    else:
        assert not hasattr(pricing, "discount")
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)


def test_a_reload_that_does_not_compile_changes_nothing(engine, ws, pricing, holder):
    """The file has a syntax error: importlib.reload raises before running anything, so the
    module still runs the fix, and livefix still knows its text."""
    fix(engine, pricing, "price", FIXED_PRICE)
    running = engine.sources.current(pricing.__name__).text
    ws.edit(pricing, "def total(xs):", "def total(xs)")
    with pytest.raises(SyntaxError):
        importlib.reload(pricing)
    assert pricing.price(3) == holder.price(3) == 7
    assert engine.sources.current(pricing.__name__).text == running and reimported_of(engine) == {1: []}
    result = engine.rollback()
    assert "re-imported" not in result.report and pricing.price(3) == holder.price(3) == 6
    assert engine.sources.current(pricing.__name__).text == ORIGINAL


def test_a_change_prepared_before_the_reload_is_refused(engine, ws, pricing):
    plan = engine.prepare([{"module": pricing.__name__, "qualname": "price", "source": FIXED_PRICE}])
    importlib.reload(pricing)
    with pytest.raises(LivefixError) as info:
        engine.commit(plan)
    assert info.value.kind == "busy" and pricing.price(3) == 6
    assert engine.generation == 0 and engine.history()["generations"] == []


@pytest.mark.parametrize("passes", [True, False], ids=["verify passes", "verify fails"])
def test_a_verify_that_reloads_the_module(engine, ws, pricing, holder, passes):
    """The re-import runs inside livefix's own operation (the thread holding its lock)."""
    def verify():
        importlib.reload(pricing)
        return passes

    change = {"module": pricing.__name__, "qualname": "price", "source": FIXED_PRICE}
    if not passes:
        with pytest.raises(LivefixError) as info:
            engine.apply([change], verify=verify)
        assert info.value.kind == "verifyFailed" and engine.history()["generations"] == []
        assert holder.price(3) == pricing.price(3) == 6
        assert_runs_its_file(engine, ws, pricing)
        later_cycle(engine, ws, pricing)
        return
    assert engine.apply([change], verify=verify).generation == 1
    assert reimported_of(engine) == {1: [pricing.__name__]}
    assert holder.price(3) == 7 and pricing.price(3) == 6
    assert_runs_its_file(engine, ws, pricing)
    result = engine.rollback()
    assert_rollback_says_reimported(result, pricing, 1)
    assert holder.price(3) == 6
    assert_runs_its_file(engine, ws, pricing)
    later_cycle(engine, ws, pricing)
