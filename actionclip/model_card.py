"""Deprecated old path of model cards: now `actionclip.evaluation.model_card`. Importing it warns; removed in the
next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.model_card", ["actionclip.evaluation.model_card"])
