"""Video accuracy metrics: the packaged `evaluate` module, loaded by path (offline), and a Trainer hook.

The numbers are computed in one place, `metrics/video_accuracy/video_accuracy.py`, which is also the file
`evaluate.load` imports; `compute_metrics` and the evaluation reports call the same functions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...errors import EvaluationSetupError
from .video_accuracy.video_accuracy import (
    DEFAULT_KS,
    compute_video_accuracy,
    normalize_ks,
    true_class_ranks,
    validate_scores_and_labels,
)

__all__ = [
    "DEFAULT_KS",
    "VIDEO_ACCURACY_PATH",
    "compute_video_accuracy",
    "load_video_accuracy",
    "make_compute_metrics",
    "normalize_ks",
    "true_class_ranks",
    "validate_scores_and_labels",
]

VIDEO_ACCURACY_PATH: Path = Path(__file__).resolve().parent / "video_accuracy" / "video_accuracy.py"


def load_video_accuracy(**load_kwargs):
    """`evaluate.load` the packaged `video_accuracy` metric from its file, without any Hub access.

    A local file path makes `evaluate` copy the script into its modules cache (`HF_MODULES_CACHE`, by default
    `~/.cache/huggingface/modules`) and import it; it never asks the Hub. Results are kept in memory unless
    `keep_in_memory=False` or a distributed `num_process` is passed. Other keyword arguments go to
    `evaluate.load` (`cache_dir`, `experiment_id`, `num_process`, `process_id`, ...).
    """
    import evaluate

    if load_kwargs.get("num_process", 1) == 1:
        load_kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(VIDEO_ACCURACY_PATH), **load_kwargs)


# Why an ActionCLIPModel evaluated by transformers' Trainer may give no predictions, and what to pass.
_NO_SCORES = (
    " (ActionCLIPModel gives class scores in evaluation mode when the batch holds the label set's prompts: pass "
    "data_collator=ActionCLIPCollator(label_names, tokenizer), or evaluate with ActionCLIPTrainer)"
)


def _first_array(value, name: str) -> np.ndarray:
    # Models that return extra outputs (embeddings, hidden states) make the Trainer hand over a tuple whose
    # first element is the logits; lists are taken as array data.
    hint = _NO_SCORES if name == "predictions" else ""
    while isinstance(value, tuple):
        if not value:
            raise EvaluationSetupError(f"eval_pred.{name} is an empty tuple: the Trainer produced no {name}{hint}")
        value = value[0]
    if value is None:
        raise EvaluationSetupError(f"eval_pred.{name} is None: the Trainer produced no {name}{hint}")
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value)


def make_compute_metrics(ks: Sequence[int] | None = None) -> Callable[..., dict]:
    """A `compute_metrics` for `transformers.Trainer`: top-k and mean class accuracy from `EvalPrediction`.

    The returned function takes an `EvalPrediction` (or a `(predictions, label_ids)` pair) whose predictions
    are logits `(N, C)` (or a tuple whose first element is) and whose `label_ids` are class indices `(N,)`, and
    returns `{"top1_accuracy": ..., "top5_accuracy": ..., "mean_class_accuracy": ...}` (floats in [0, 1]);
    the Trainer prefixes them with `eval_`. `ks` (default top-1 and, with at least 5 classes, top-5): see
    `normalize_ks`; a k above C raises `ValueError` once C is known.
    """
    normalize_ks(ks, num_classes=sys.maxsize)  # a malformed k fails at construction, not after an evaluation loop

    def compute_metrics(eval_pred) -> dict:
        if hasattr(eval_pred, "predictions") and hasattr(eval_pred, "label_ids"):
            predictions, label_ids = eval_pred.predictions, eval_pred.label_ids
        elif isinstance(eval_pred, (tuple, list)) and len(eval_pred) == 2:
            predictions, label_ids = eval_pred
        else:
            raise ValueError(
                f"eval_pred must be an EvalPrediction or a (predictions, label_ids) pair, got {type(eval_pred).__name__}"
            )
        if label_ids is None:
            raise ValueError("eval_pred.label_ids is None: the evaluation dataset must provide labels")
        logits = _first_array(predictions, "predictions")
        labels = _first_array(label_ids, "label_ids")
        results = compute_video_accuracy(logits, labels, ks=ks)
        return {key: value for key, value in results.items() if key.endswith("accuracy")}

    return compute_metrics
