"""Deprecated old path of WiSE-FT weight ensembling: now `actionclip.evaluation.weight_ensembling`. Importing it
warns; removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.weight_ensembling", ["actionclip.evaluation.weight_ensembling"])
