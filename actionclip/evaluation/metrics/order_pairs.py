"""Telling the two members of an order pair apart (``push`` vs ``pull``: the same motion forwards and backwards),
the check that a model sees temporal order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_pair_accuracy(scores, labels, pairs: Sequence[tuple[int, int]], tie_rtol: float = 1e-5) -> dict:
    """How well the two members of each pair are told apart: for every video of class i or j of a pair (i, j), is
    its own class scored above the other? Chance is 50%. Returns ``{"accuracy", "num_videos", "num_pairs"}``
    (``accuracy`` None without videos).

    A tie (the two scores equal to within ``tie_rtol``, e.g. a model that cannot see order and has learnt the same
    text embedding for both members) counts as half right: it is a coin flip, and counting it wrong would put a
    blind model far below chance.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    correct = 0.0
    total = 0
    for i, j in pairs:
        for own, other in ((i, j), (j, i)):
            rows = labels == own
            mine, theirs = scores[rows, own], scores[rows, other]
            tie = np.abs(mine - theirs) <= tie_rtol * np.maximum(np.abs(mine), np.abs(theirs))
            correct += float(((mine > theirs) & ~tie).sum()) + 0.5 * float(tie.sum())
            total += int(rows.sum())
    return {"accuracy": correct / total if total else None, "num_videos": total, "num_pairs": len(pairs)}
