"""A definition removed, then defined again (a half-written save, an undo, a branch switch
and back): the copies other modules took before (`from tax import tax`) follow it again,
rather than go on running the removed code while every report says the fix is in."""

from __future__ import annotations

TAX = "RATE = 0.1\n\n\ndef tax(amount):\n    return amount * {factor}\n"


def test_a_function_removed_then_defined_again_is_the_same_object_for_earlier_copies(ws, engine):
    module = ws.module(TAX.format(factor=7))
    copy = module.tax  # what `from tax import tax` in another module holds
    held = {"handler": module.tax}
    ws.write(module, "RATE = 0.1\n")  # a half-written save
    result = engine.reload_module(module.__name__)
    assert [(e["qualname"], e["kind"]) for e in result.applied] == [("tax", "removed")]
    assert not hasattr(module, "tax")
    ws.write(module, TAX.format(factor=3))  # the whole file again, changed
    result = engine.reload_module(module.__name__)
    assert [(e["qualname"], e["kind"]) for e in result.applied] == [("tax", "added")]
    assert module.tax is copy and copy(1) == 3 and held["handler"](2) == 6
    assert copy.__code__.co_firstlineno == 4  # at the file's line
    ws.write(module, TAX.format(factor=5))
    engine.reload_module(module.__name__)
    assert copy(1) == 5  # and later fixes reach the copies too
    engine.rollback(to=0)
    assert module.tax is copy and copy(1) == 7  # rollback returns the very first code


def test_a_removed_function_nobody_kept_is_simply_defined_anew(ws, engine):
    module = ws.module(TAX.format(factor=7))
    ws.write(module, "RATE = 0.1\n")
    engine.reload_module(module.__name__)
    ws.write(module, TAX.format(factor=3))
    engine.reload_module(module.__name__)
    assert module.tax(1) == 3


def test_removing_a_function_the_module_or_another_module_still_uses_is_said(ws, engine):
    module = ws.module("def helper():\n    return 1\n\n\ndef compute():\n    return helper() + 1\n")
    user = ws.module(f"from {module.__name__} import helper\n")
    ws.write(module, "def compute():\n    return helper() + 1\n")
    result = engine.reload_module(module.__name__)
    assert result.warnings == [
        f"{module.__name__}.helper is removed, but {module.__name__} still names it and imported by "
        f"{user.__name__}: calls through those raise NameError or run the removed code"
    ]
