"""Deprecated old path of the video accuracy metrics: now `actionclip.evaluation.metrics`. Importing it warns;
removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.metrics", ["actionclip.evaluation.metrics"])
