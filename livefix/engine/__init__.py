"""The livefix engine: runs inside the target process, standard library only.

Never imports the adapter, the language server or pydevd. `Engine` is the one root
object per process; `default_engine()` returns the process's instance.
"""

from livefix.engine.core import Engine, default_engine
from livefix.engine.plan import Change, ChangeResult, Plan

__all__ = ["Change", "ChangeResult", "Engine", "Plan", "default_engine"]
