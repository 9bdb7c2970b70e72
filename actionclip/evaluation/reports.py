"""Evaluation reports people look at: per-class accuracy, most-confused pairs, a confusion matrix picture and
one JSON holding every figure (the source of a model card's `model-index`).

All functions take class scores `(N, C)` (logits or probabilities; only their order per row matters),
labels `(N,)` (class indices in [0, C)) and the C class names. Predictions are `argmax` over classes with ties
broken towards the lower index, the same rule as the `video_accuracy` metric.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EvaluationReportError, EvaluationReportNotFoundError, InvalidLabelsError
from .metrics import compute_video_accuracy, normalize_ks, true_class_ranks, validate_scores_and_labels

REPORT_SCHEMA_VERSION = 1
REPORT_JSON_NAME = "evaluation.json"

# Above this many classes a confusion matrix with every class is unreadable: plot the most confused subset.
MAX_PLOTTED_CLASSES = 50
# Cells are annotated with their counts only while they stay large enough to read.
MAX_ANNOTATED_CLASSES = 20
_MAX_TICK_LABEL_CHARS = 28


def validate_class_names(class_names, num_classes: int) -> list[str]:
    """The class names as a list of C distinct, non-empty strings; `InvalidLabelsError` otherwise."""
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise InvalidLabelsError(
            f"class_names must be a sequence of {num_classes} strings, got {type(class_names).__name__}"
        )
    names = list(class_names)
    if len(names) != num_classes:
        raise InvalidLabelsError(f"class_names has {len(names)} names but the scores have {num_classes} classes")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidLabelsError(f"class_names[{index}] must be a non-empty string, got {name!r}")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise InvalidLabelsError(f"class_names[{index}] = {name!r} repeats class_names[{seen[name]}]")
        seen[name] = index
    return names


def predicted_classes(scores: np.ndarray) -> np.ndarray:
    """Top-1 class index `(N,)` of scores `(N, C)`; `argmax` takes the lowest index among ties."""
    return np.asarray(scores).argmax(axis=1)


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts `(C, C)` int64: entry `[t, p]` is the number of videos of true class t predicted as p."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must both have shape (N,)")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes}), got values from {values.min()} to {values.max()}"
            )
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(scores, labels, class_names, ks: Sequence[int] | None = None) -> list[dict]:
    """One row per class, in class order: `class_index`, `class_name`, `support` (videos of that class),
    `correct` (top-1 hits), `top{k}_accuracy` for each k (None for a class without videos),
    `most_confused_with` (the wrong class it is most often predicted as, or None) and `most_confused_count`.
    """
    scores, labels = validate_scores_and_labels(scores, labels, scores_name="scores", labels_name="labels")
    num_classes = scores.shape[1]
    names = validate_class_names(class_names, num_classes)
    ks = normalize_ks(ks, num_classes)
    ranks = true_class_ranks(scores, labels)
    confusion = confusion_matrix(labels, predicted_classes(scores), num_classes)
    rows = []
    for c, name in enumerate(names):
        in_class = labels == c
        support = int(in_class.sum())
        row = {"class_index": c, "class_name": name, "support": support, "correct": int(confusion[c, c])}
        for k in ks:
            row[f"top{k}_accuracy"] = float(np.mean(ranks[in_class] < k)) if support else None
        wrong = confusion[c].copy()
        wrong[c] = 0
        if wrong.max() > 0:
            row["most_confused_with"] = names[int(wrong.argmax())]
            row["most_confused_count"] = int(wrong.max())
        else:
            row["most_confused_with"] = None
            row["most_confused_count"] = 0
        rows.append(row)
    return rows


def most_confused_pairs(confusion: np.ndarray, class_names: Sequence[str], top_n: int | None = 20) -> list[dict]:
    """The off-diagonal cells of a confusion matrix `(C, C)` with a count, largest first.

    Each pair is `{"true_index", "true_class", "predicted_index", "predicted_class", "count", "share"}` where
    `share` is the fraction of the true class's videos that went to the predicted class. Ties in count are
    ordered by share, then by class indices. `top_n=None` keeps every pair.
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {confusion.shape}")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
        raise ValueError(f"top_n must be a non-negative integer or None, got {top_n!r}")
    names = validate_class_names(class_names, confusion.shape[0])
    support = confusion.sum(axis=1)
    true_idx, pred_idx = np.nonzero(confusion)
    pairs = [
        {
            "true_index": int(t),
            "true_class": names[t],
            "predicted_index": int(p),
            "predicted_class": names[p],
            "count": int(confusion[t, p]),
            "share": float(confusion[t, p] / support[t]),
        }
        for t, p in zip(true_idx, pred_idx)
        if t != p
    ]
    pairs.sort(key=lambda pair: (-pair["count"], -pair["share"], pair["true_index"], pair["predicted_index"]))
    return pairs if top_n is None else pairs[:top_n]


def _most_confused_classes(confusion: np.ndarray, limit: int) -> np.ndarray:
    """Indices (ascending) of the `limit` classes most involved in confusions, as true or as predicted class."""
    off_diagonal = confusion - np.diag(np.diag(confusion))
    involvement = off_diagonal.sum(axis=0) + off_diagonal.sum(axis=1)
    # Stable sort so that classes with equal involvement keep their order.
    chosen = np.argsort(-involvement, kind="stable")[:limit]
    return np.sort(chosen)


def _short(name: str) -> str:
    return name if len(name) <= _MAX_TICK_LABEL_CHARS else name[: _MAX_TICK_LABEL_CHARS - 1] + "\u2026"


def plot_confusion_matrix(
    confusion: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    max_classes: int = MAX_PLOTTED_CLASSES,
    title: str | None = None,
) -> dict:
    """Draw a confusion matrix `(C, C)` as a PNG at `path`; colour is the share of each true class (row).

    Up to `max_classes` classes every class is shown with its name; beyond that only the `max_classes` classes
    most involved in confusions are shown (rows still normalised by each class's full support). Returns
    `{"path", "plotted_class_indices", "subset"}`.
    """
    # The Agg canvas of a bare Figure: no display needed, and unlike `matplotlib.use("Agg")` or pyplot it leaves
    # the user's backend and pyplot's global figure list alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {confusion.shape}")
    if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 2:
        raise ValueError(f"max_classes must be an integer >= 2, got {max_classes!r}")
    num_classes = confusion.shape[0]
    names = validate_class_names(class_names, num_classes)
    subset = num_classes > max_classes
    shown = _most_confused_classes(confusion, max_classes) if subset else np.arange(num_classes)
    support = confusion.sum(axis=1).astype(np.float64)
    shares = np.divide(confusion, support[:, None], out=np.zeros(confusion.shape), where=support[:, None] > 0)
    shares = shares[np.ix_(shown, shown)]
    counts = confusion[np.ix_(shown, shown)]
    n = len(shown)

    side = min(22.0, max(5.0, 0.3 * n + 3.0))
    font = 9 if n <= 20 else 7
    fig = Figure(figsize=(side + 1.2, side), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true class's videos")
    labels = [_short(names[i]) for i in shown]
    ax.set_xticks(range(n), labels=labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels=labels, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= MAX_ANNOTATED_CLASSES:
        for row in range(n):
            for col in range(n):
                if counts[row, col]:
                    colour = "white" if shares[row, col] > 0.5 else "black"
                    ax.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize=font, color=colour)
    default_title = (
        f"Confusion matrix: the {n} most confused of {num_classes} classes" if subset else "Confusion matrix"
    )
    ax.set_title(title or default_title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return {"path": str(path), "plotted_class_indices": [int(i) for i in shown], "subset": bool(subset)}


def _format_value(value) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, float):
        return f"{100 * value:.1f}%"
    return str(value)


def _markdown_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def per_class_markdown(rows: Sequence[dict]) -> str:
    """The per-class table in markdown, worst classes first (classes without videos last)."""
    accuracy_keys = [key for key in rows[0] if key.endswith("_accuracy")] if rows else []
    ordered = sorted(rows, key=lambda r: (r["top1_accuracy"] is None, r["top1_accuracy"] or 0.0, r["class_index"]))
    headers = ["class", "support", "correct", *[key.replace("_accuracy", " acc") for key in accuracy_keys]]
    headers.append("most confused with")
    body = [
        [
            r["class_name"],
            r["support"],
            r["correct"],
            *[_format_value(r[key]) for key in accuracy_keys],
            f"{r['most_confused_with']} ({r['most_confused_count']})" if r["most_confused_with"] else "\u2014",
        ]
        for r in ordered
    ]
    return _markdown_table(headers, body)


def confused_pairs_markdown(pairs: Sequence[dict]) -> str:
    """The most-confused pairs in markdown: true -> predicted, count, share of the true class."""
    body = [[p["true_class"], p["predicted_class"], p["count"], _format_value(p["share"])] for p in pairs]
    return _markdown_table(["true class", "predicted as", "count", "share of true class"], body)


def _write_csv(path: Path, rows: Sequence[dict], fieldnames: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row[key] for key in fieldnames})


def _json_safe(value, where: str):
    """Plain JSON types from metadata (numpy scalars and arrays, paths, tuples); TypeError naming the key."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
            out[key] = _json_safe(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist(), where)
    if isinstance(value, np.generic):
        return _json_safe(value.item(), where)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError(f"{where} is {value}, which JSON cannot hold")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{where} has type {type(value).__name__}, which cannot be stored in the evaluation JSON")


def _metadata_markdown(metadata: dict) -> str:
    if not metadata:
        return "_no metadata given_\n"
    rows = []
    for key, value in metadata.items():
        if isinstance(value, list) and len(value) > 4:
            shown = f"{len(value)} items: " + "; ".join(map(str, value[:3])) + "; \u2026"
        else:
            shown = value if isinstance(value, str) else json.dumps(value)
        rows.append([key, shown])
    return _markdown_table(["", ""], rows)


def write_evaluation_report(
    output_dir: str | Path,
    scores,
    labels,
    class_names: Sequence[str],
    metadata: dict | None = None,
    *,
    ks: Sequence[int] | None = None,
    top_confused: int = 20,
) -> dict:
    """Write every evaluation figure to `output_dir` and return them (the content of `evaluation.json`).

    Args:
        output_dir: folder to write into (created if missing).
        scores: class scores `(N, C)`: logits or probabilities, e.g. template-ensembled and view-averaged.
        labels: true class indices `(N,)` in [0, C).
        class_names: the C class names, in score column order.
        metadata: how the numbers were obtained, stored as is: for instance `model`, `dataset` (display name),
            `dataset_type` (Hub dataset id), `dataset_config`, `split`, `protocol` ("zero-shot", "closed-set",
            "few-shot-8"...), `views` (e.g. "1x1" or 3), `frames`, `templates`. Model cards read these keys.
        ks: the top-k accuracies to report, each at most C (default top-1 and, with at least 5 classes, top-5).
        top_confused: how many most-confused pairs to list.

    Writes `evaluation.json`, `report.md` (summary, confused pairs, per-class table, picture),
    `per_class_accuracy.csv`, `per_class_accuracy.md`, `confused_pairs.csv` and `confusion_matrix.png`.
    The returned dict holds `metrics` (`top{k}_accuracy`, `mean_class_accuracy`), `chance_level` (1/C),
    `num_videos`, `num_classes`, `num_classes_evaluated` (classes with at least one video), `ks`, `metadata`,
    `per_class`, `confused_pairs`, `confusion_matrix` (dense `(C, C)` counts, rows = true class) and `files`.
    """
    scores, labels = validate_scores_and_labels(scores, labels, scores_name="scores", labels_name="labels")
    num_videos, num_classes = scores.shape
    names = validate_class_names(class_names, num_classes)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    metadata = _json_safe(metadata, "metadata")
    ks = normalize_ks(ks, num_classes)

    summary = compute_video_accuracy(scores, labels, ks=ks)
    metrics = {key: value for key, value in summary.items() if key.endswith("_accuracy")}
    confusion = confusion_matrix(labels, predicted_classes(scores), num_classes)
    rows = per_class_accuracy(scores, labels, names, ks=ks)
    pairs = most_confused_pairs(confusion, names, top_n=top_confused)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "json": REPORT_JSON_NAME,
        "report_markdown": "report.md",
        "per_class_csv": "per_class_accuracy.csv",
        "per_class_markdown": "per_class_accuracy.md",
        "confused_pairs_csv": "confused_pairs.csv",
        "confusion_matrix_png": "confusion_matrix.png",
    }
    per_class_fields = list(rows[0].keys())
    _write_csv(output_dir / files["per_class_csv"], rows, per_class_fields)
    (output_dir / files["per_class_markdown"]).write_text(per_class_markdown(rows), encoding="utf-8")
    pair_fields = ["true_index", "true_class", "predicted_index", "predicted_class", "count", "share"]
    _write_csv(output_dir / files["confused_pairs_csv"], pairs, pair_fields)
    plot = plot_confusion_matrix(confusion, names, output_dir / files["confusion_matrix_png"])

    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "metrics": metrics,
        "chance_level": 1.0 / num_classes,
        "num_videos": int(num_videos),
        "num_classes": int(num_classes),
        "num_classes_evaluated": int(np.unique(labels).size),
        "ks": list(ks),
        "metadata": metadata,
        "per_class": rows,
        "confused_pairs": pairs,
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_plotted_class_indices": plot["plotted_class_indices"],
        "files": files,
    }
    (output_dir / files["report_markdown"]).write_text(_report_markdown(report), encoding="utf-8")
    with open(output_dir / files["json"], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, ensure_ascii=False, allow_nan=False)
        handle.write("\n")
    return report


def _report_markdown(report: dict) -> str:
    summary_rows = [["videos", report["num_videos"]], ["classes", report["num_classes"]]]
    summary_rows += [[key.replace("_", " "), _format_value(value)] for key, value in report["metrics"].items()]
    summary_rows.append(["chance level (1/C)", _format_value(report["chance_level"])])
    plotted = len(report["confusion_matrix_plotted_class_indices"])
    picture_note = "" if plotted == report["num_classes"] else f" (the {plotted} classes most involved in confusions)"
    parts = [
        "# Evaluation report\n",
        "## Setup\n",
        _metadata_markdown(report["metadata"]),
        "## Results\n",
        _markdown_table(["", ""], summary_rows),
        "\nMean class accuracy averages the top-1 accuracy of the classes that have at least one video "
        f"({report['num_classes_evaluated']} of {report['num_classes']}).\n",
        "## Most confused pairs\n",
        confused_pairs_markdown(report["confused_pairs"]) if report["confused_pairs"] else "_no confusions_\n",
        f"\n## Confusion matrix{picture_note}\n",
        f"![confusion matrix]({report['files']['confusion_matrix_png']})\n",
        "\n## Per-class accuracy (worst first)\n",
        per_class_markdown(report["per_class"]),
    ]
    return "\n".join(parts)


def read_json_file(path: Path, missing: type[Exception], invalid: type[Exception], what: str) -> object:
    """The JSON in ``path``: ``missing(...)`` when there is no such file, ``invalid(...)`` when it is not JSON;
    ``what`` names the file in the messages (``"evaluation report"``, ``"model config"``)."""
    if not path.is_file():
        raise missing(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid(f"{what} {path} is not valid JSON: {error}") from None


def load_evaluation_report(path: str | Path) -> dict:
    """Read an `evaluation.json` written by `write_evaluation_report` (a file, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON_NAME
    report = read_json_file(path, EvaluationReportNotFoundError, EvaluationReportError, "evaluation report")
    if not isinstance(report, dict) or "metrics" not in report or "metadata" not in report:
        raise EvaluationReportError(
            f"evaluation report {path} lacks 'metrics' or 'metadata': not written by write_evaluation_report?"
        )
    return report
