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
- :mod:`actionclip.evaluation.program`: the program of ``actionclip eval`` / ``run_eval.py`` from its parsed options
  (protocol, models, ``summary.json``);

Model cards are in :mod:`actionclip.hub.model_card`; WiSE-FT in :mod:`actionclip.training.weight_ensembling`.
"""
