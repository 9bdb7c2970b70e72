"""Deprecated old path of the demo program: now `actionclip.commands.demo`, `actionclip.data.in_memory`. Importing
it warns; removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.demo", ["actionclip.commands.demo", "actionclip.data.in_memory"])

if __name__ == "__main__":  # ``python -m actionclip.demo``, as the README said
    import sys

    from .commands.demo import main

    sys.exit(main())
