"""Deprecated old path of X-CLIP / ViFi-CLIP's released splits: now `actionclip.evaluation.published_splits`.
Importing it warns; removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module("actionclip.published_splits", ["actionclip.evaluation.published_splits"])
