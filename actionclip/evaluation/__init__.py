"""Evaluation: how well a model does, and the reports that say so.

Modules:
- :mod:`actionclip.evaluation.protocols`: which classes and videos each evaluation uses (closed-set, the zero-shot
  protocols, base-to-novel, few-shot) and how per-split results are summarised;
- :mod:`actionclip.evaluation.published_splits`: the base-to-novel and K-shot lists X-CLIP / ViFi-CLIP released;
- :mod:`actionclip.evaluation.runner`: running protocols with a saved model (multi-view video embeddings cached
  across splits, template-ensembled class scores, one report per split);
- :mod:`actionclip.evaluation.metrics`: top-k and mean class accuracy (the `evaluate` module, loaded by path,
  offline), order-pair accuracy, retrieval recall;
- :mod:`actionclip.evaluation.reports`: per-class tables, confused pairs, confusion matrices, ``evaluation.json``;
- :mod:`actionclip.evaluation.model_card`: model cards from a model's config and its evaluation reports;
- :mod:`actionclip.evaluation.weight_ensembling`: WiSE-FT, interpolating a zero-shot and a fine-tuned model, with
  the alpha sweep evaluated on base and novel classes.

This package imports nothing until a name is used. ``actionclip.evaluation`` was the reports module before it
became this package; its names (``write_evaluation_report``, ``load_evaluation_report``, ...) are still found
here, with a `DeprecationWarning`: import them from :mod:`actionclip.evaluation.reports`.
"""

from __future__ import annotations

_REPORT_NAMES = frozenset(
    {
        "MAX_ANNOTATED_CLASSES",
        "MAX_PLOTTED_CLASSES",
        "REPORT_JSON_NAME",
        "REPORT_SCHEMA_VERSION",
        "confused_pairs_markdown",
        "confusion_matrix",
        "load_evaluation_report",
        "most_confused_pairs",
        "per_class_accuracy",
        "per_class_markdown",
        "plot_confusion_matrix",
        "predicted_classes",
        "validate_class_names",
        "write_evaluation_report",
    }
)


def __getattr__(name: str):
    if name in _REPORT_NAMES:
        from .._deprecation import moved_attribute

        return moved_attribute(__name__, name, dict.fromkeys(_REPORT_NAMES, f"{__name__}.reports"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
