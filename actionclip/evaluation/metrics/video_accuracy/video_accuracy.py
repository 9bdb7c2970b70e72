"""Video accuracy: top-1, top-k and mean class accuracy of class scores, as an `evaluate` metric.

This file is self-contained (numpy, datasets and evaluate only) so that `evaluate.load(<path to this file>)`
can copy and import it without the `actionclip` package, and so that it could be pushed to the Hub as is.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Accuracy of video classification from class scores. For N videos and C classes, `predictions` are the (N, C)
scores (logits or probabilities; only their order per row matters) and `references` the (N,) true class
indices. Reports top-1 accuracy, top-k accuracy for each requested k (named `top{k}_accuracy` after it; a k above C
is refused, since every class is then among the k best) and mean class accuracy (the unweighted mean over classes
present in `references` of each class's top-1 recall).

Ties are broken towards the lower class index, as `argmax` does: the rank of the true class is the number of
classes scoring strictly higher plus the number of lower-indexed classes scoring the same.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`, shape (N, C)): class scores or logits per video.
    references (`list` of `int`, shape (N,)): the true class index of each video, in [0, C).
    ks (`tuple` of `int`, *optional*): the k of each top-k accuracy, each at most C (duplicates dropped); by
        default 1 and 5, the 5 left out with fewer than 5 classes.
    num_classes (`int`, *optional*): C, checked against the width of `predictions` when given.
Returns:
    top{k}_accuracy (`float`): fraction of videos whose true class is among the k best scored, for each k.
    mean_class_accuracy (`float`): mean over the classes present in `references` of their top-1 accuracy.
    num_videos (`int`): N.
    num_classes (`int`): C.
Examples:
    >>> import evaluate
    >>> from actionclip.evaluation.metrics import VIDEO_ACCURACY_PATH
    >>> metric = evaluate.load(str(VIDEO_ACCURACY_PATH))
    >>> metric.compute(predictions=[[0.1, 0.9], [0.8, 0.2]], references=[1, 1], ks=(1,))
    {'top1_accuracy': 0.5, 'mean_class_accuracy': 0.5, 'num_videos': 2, 'num_classes': 2}
"""

_CITATION = """\
@article{wang2021actionclip,
  title={ActionCLIP: A New Paradigm for Video Action Recognition},
  author={Wang, Mengmeng and Xing, Jiazheng and Liu, Yong},
  journal={arXiv preprint arXiv:2109.08472},
  year={2021}
}
"""

DEFAULT_KS: tuple[int, ...] = (1, 5)


def validate_scores_and_labels(
    scores, labels, num_classes: int | None = None, scores_name: str = "predictions", labels_name: str = "references"
) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert class scores `(N, C)` and labels `(N,)`; returns them as float64 and int64 arrays.

    Raises `ValueError` naming the input when shapes disagree, scores are not finite numbers (NaN; +-inf is
    allowed, e.g. masked classes), labels are not integers or fall outside [0, C).
    """
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{scores_name} must be a numeric (N, C) array of class scores, every row the same length: {error}"
        ) from None
    if scores.size == 0 and scores.ndim <= 2 and (scores.ndim < 2 or scores.shape[0] == 0):
        raise ValueError(f"{scores_name} is empty: need at least one video")
    if scores.ndim != 2:
        raise ValueError(
            f"{scores_name} must have shape (N, C) (one row of class scores per video), got {scores.shape}"
        )
    num_videos, width = scores.shape
    if width == 0:
        raise ValueError(f"{scores_name} has zero classes: shape {scores.shape}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if int(num_classes) != width:
            raise ValueError(f"{scores_name} has {width} class scores per video but num_classes is {num_classes}")
    if np.isnan(scores).any():
        bad = np.argwhere(np.isnan(scores))[0]
        raise ValueError(f"{scores_name} contains NaN (first at video {bad[0]}, class {bad[1]})")

    labels_array = np.asarray(labels)
    if labels_array.ndim != 1:
        raise ValueError(f"{labels_name} must have shape (N,) (one class index per video), got {labels_array.shape}")
    if labels_array.shape[0] != num_videos:
        raise ValueError(
            f"{labels_name} has {labels_array.shape[0]} entries but {scores_name} has {num_videos} rows: "
            "they must describe the same videos"
        )
    if labels_array.dtype == bool or not (
        np.issubdtype(labels_array.dtype, np.integer)
        or (np.issubdtype(labels_array.dtype, np.floating) and np.all(np.mod(labels_array, 1) == 0))
    ):
        raise ValueError(f"{labels_name} must be integer class indices, got dtype {labels_array.dtype}")
    labels_array = labels_array.astype(np.int64)
    out_of_range = (labels_array < 0) | (labels_array >= width)
    if out_of_range.any():
        index = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(
            f"{labels_name} must lie in [0, {width}) for {width} classes; entry {index} is {labels_array[index]}"
        )
    return scores, labels_array


def normalize_ks(ks, num_classes: int) -> tuple[int, ...]:
    """Sorted, unique top-k values; `None` gives `DEFAULT_KS` without the k above `num_classes`.

    Raises `ValueError` on a k that is not a positive integer, and on a requested k above `num_classes` (its top-k
    accuracy would be 1 whatever the scores, and a key named after another k would mislead).
    """
    if ks is None:
        return tuple(k for k in DEFAULT_KS if k <= num_classes)
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ValueError(f"ks must be a sequence of positive integers, got {ks!r}") from None
    if not ks:
        raise ValueError("ks must name at least one k")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must be positive integers, got {k!r} in {ks!r}")
    too_large = sorted({int(k) for k in ks if k > num_classes})
    if too_large:
        raise ValueError(
            f"ks {tuple(too_large)} exceed the {num_classes} classes: a top-k accuracy needs at least k classes "
            f"(ask for k <= {num_classes}, or leave ks out for the default top-1 / top-5)"
        )
    return tuple(sorted({int(k) for k in ks}))


def true_class_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank `(N,)` of each video's true class among its scores, ties broken towards the lower index."""
    true_scores = scores[np.arange(len(labels)), labels][:, None]
    higher = (scores > true_scores).sum(axis=1)
    class_index = np.arange(scores.shape[1])[None, :]
    tied_before = ((scores == true_scores) & (class_index < labels[:, None])).sum(axis=1)
    return higher + tied_before


def compute_video_accuracy(scores, labels, ks=None, num_classes: int | None = None) -> dict:
    """Top-k accuracies and mean class accuracy of class scores `(N, C)` against labels `(N,)`.

    Returns a dict with `top{k}_accuracy` for each k of `normalize_ks(ks, C)`, `mean_class_accuracy`,
    `num_videos` and `num_classes`; accuracies are fractions in [0, 1].
    """
    scores, labels = validate_scores_and_labels(scores, labels, num_classes=num_classes)
    num_videos, width = scores.shape
    ranks = true_class_ranks(scores, labels)
    results = {f"top{k}_accuracy": float(np.mean(ranks < k)) for k in normalize_ks(ks, width)}
    top1_correct = ranks == 0
    present = np.unique(labels)
    per_class = [np.mean(top1_correct[labels == c]) for c in present]
    results["mean_class_accuracy"] = float(np.mean(per_class))
    results["num_videos"] = int(num_videos)
    results["num_classes"] = int(width)
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VideoAccuracy(evaluate.Metric):
    """Top-1, top-k and mean class accuracy of video class scores."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2109.08472"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of class scores `(B, C)` and labels `(B,)`, checked before `evaluate` stores them (its
        Arrow cast would silently truncate fractional labels)."""
        if predictions is not None or references is not None:
            validate_scores_and_labels(predictions, references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, ks=None, num_classes=None):
        return compute_video_accuracy(predictions, references, ks=ks, num_classes=num_classes)
