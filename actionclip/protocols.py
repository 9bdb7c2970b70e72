"""Deprecated old path of label lists, split files and evaluation protocols: now `actionclip.evaluation.protocols`,
`actionclip.data.labels`, `actionclip.data.splits`. Importing it warns; removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module(
    __name__, ["actionclip.evaluation.protocols", "actionclip.data.labels", "actionclip.data.splits"]
)
