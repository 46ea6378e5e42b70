"""livefix inside other tools: watch mode (`livefix run`) and the IPython/Jupyter extension.

Each integration imports its tool lazily (watchfiles, IPython) and the engine never imports
anything from here: the engine stays standard library only.
"""
