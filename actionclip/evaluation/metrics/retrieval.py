"""Text-to-video and video-to-text retrieval metrics: recall at k and the median / mean rank of the true match."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_ranks(similarity) -> np.ndarray:
    """1-based rank of the true match of every query: row ``i`` of ``similarity`` ``(Q, Q)`` scores the candidates
    of query ``i``, whose true match is candidate ``i`` (the diagonal). Rank = 1 + candidates scored strictly higher
    + half of the other candidates scored equal (a tie is a coin flip, as in `order_pairs.order_pair_accuracy`)."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or similarity.shape[0] == 0:
        raise ValueError(f"similarity must be a non-empty square (queries, candidates) matrix, got {similarity.shape}")
    if not np.all(np.isfinite(similarity)):
        raise ValueError("similarity holds NaN or infinite values")
    true = np.diag(similarity)[:, None]
    higher = (similarity > true).sum(axis=1)
    equal = (similarity == true).sum(axis=1) - 1  # the true match equals itself
    return 1.0 + higher + 0.5 * equal


def retrieval_metrics(similarity, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Text-to-video and video-to-text retrieval metrics of paired texts and videos.

    Args:
        similarity: ``(N, N)`` scores, row = text, column = video; text ``i`` describes video ``i``.
        ks: the recall cut-offs.

    Returns:
        ``{"text_to_video": {...}, "video_to_text": {...}}``, each with ``R@k`` (percent of queries whose true match
        ranks within k), ``median_rank`` and ``mean_rank`` (1-based, see :func:`retrieval_ranks`).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    results = {}
    for name, matrix in (("text_to_video", similarity), ("video_to_text", similarity.T)):
        ranks = retrieval_ranks(matrix)
        metrics = {f"R@{k}": 100.0 * float((ranks <= k).mean()) for k in ks}
        metrics["median_rank"] = float(np.median(ranks))
        metrics["mean_rank"] = float(ranks.mean())
        results[name] = metrics
    return results
