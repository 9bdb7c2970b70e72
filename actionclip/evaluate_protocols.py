"""Deprecated old path of the protocol runner and the evaluation program: now `actionclip.evaluation.runner`,
`actionclip.commands.eval`, `actionclip.evaluation.metrics.order_pairs`,
`actionclip.evaluation.metrics.retrieval`, `actionclip.errors`. Importing it warns; removed in the next release.
"""

from ._deprecation import alias_module

__getattr__ = alias_module(
    "actionclip.evaluate_protocols",
    [
        "actionclip.evaluation.runner",
        "actionclip.commands.eval",
        "actionclip.evaluation.metrics.order_pairs",
        "actionclip.evaluation.metrics.retrieval",
        "actionclip.errors",
    ],
)
