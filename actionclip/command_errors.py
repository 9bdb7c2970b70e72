"""Deprecated old path of our programs' one-line errors: now `actionclip.commands._exit`. Importing it warns;
removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.command_errors", ["actionclip.commands._exit"])
