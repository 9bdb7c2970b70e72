"""Deprecated old path of Hub Space folders: now `actionclip.commands.space`. Importing it warns; removed in the next release."""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.space", ["actionclip.commands.space"])
