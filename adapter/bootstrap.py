"""Injecting livefix into a debuggee whose Python environment lacks it, with `evaluate`.

pydevd only imports the livefix plugin when livefix is installed where the debuggee runs.
Otherwise (found out with a `livefix/history` probe at `configurationDone`, before the
program runs, or at the first livefix request) the adapter sends one standard `evaluate` request (no `frameId`: evaluated in the
debuggee's `__main__`, whether it runs or is paused) whose expression:
1. adds a meta-path finder that resolves the top-level name `livefix`, and only it, to this
   adapter's installed copy (appended last: a livefix of the debuggee's own wins, and no
   other package of the adapter's environment becomes importable there);
2. loads this adapter's `pydevd_plugin_livefix.py` by path, which registers the requests
   with the running pydevd;
3. calls its `bootstrap(options)` with the session's normalised `livefix` option.
This needs the debuggee on this machine and a Python livefix supports (3.10 to 3.13);
otherwise the evaluate fails and livefix requests stay `unsupported`. A session opts out
with `"livefix": {"bootstrap": false}`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import livefix

PLUGIN_MODULE = "pydevd_plugins.extensions.pydevd_plugin_livefix"
OK = "livefix bootstrap ok"

_CODE = """\
import importlib.machinery, importlib.util, sys

class _LivefixFinder:
    # Resolves `livefix` (and nothing else) to the adapter's copy; appended last.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "livefix":
            return None
        return importlib.machinery.PathFinder.find_spec(name, [{parent!r}])

if not any(getattr(f, "__name__", "") == "_LivefixFinder" for f in sys.meta_path):
    sys.meta_path.append(_LivefixFinder)
module = sys.modules.get({module!r})
if module is None:
    spec = importlib.util.spec_from_file_location({module!r}, {plugin!r})
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
result = module.bootstrap({options!r})
"""


def plugin_path() -> str:
    spec = importlib.util.find_spec(PLUGIN_MODULE)
    if spec is None or not spec.origin:
        raise RuntimeError(f"{PLUGIN_MODULE} is not installed next to livefix")
    return spec.origin


def expression(options: dict[str, Any]) -> str:
    """The `evaluate` expression that installs livefix in the debuggee; evaluates to a status."""
    code = _CODE.format(
        parent=os.path.dirname(os.path.dirname(os.path.abspath(livefix.__file__))),
        module=PLUGIN_MODULE,
        plugin=plugin_path(),
        options={key: value for key, value in options.items() if key != "bootstrap"},
    )
    # One expression (evaluate needs one): exec into a fresh namespace, return its result.
    return f"(lambda ns: (exec(compile({code!r}, '<livefix bootstrap>', 'exec'), ns), ns['result'])[1])({{}})"


def succeeded(evaluate_body: Any) -> bool:
    return isinstance(evaluate_body, dict) and OK in str(evaluate_body.get("result", ""))
