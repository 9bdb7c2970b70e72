"""Deprecated old path of the web app: now `actionclip.commands.app`. Importing it warns; removed in the next release."""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.app", ["actionclip.commands.app"])
