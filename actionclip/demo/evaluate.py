"""A demo model evaluated closed-set (validation videos) and zero-shot (held-out compositions), with the accuracy on
the order-only pairs of both."""

from __future__ import annotations

from pathlib import Path


def evaluate_model(model, processor, dataset, output_dir: Path, name: str, progress: bool = True) -> dict:
    """Closed-set (validation videos, seen classes) and zero-shot (held-out compositions) evaluation, plus the
    order-only pair accuracy of both; the reports go under ``output_dir``."""
    import numpy as np

    from ..data.synthetic import order_pairs_of
    from ..evaluation.metrics.order_pairs import order_pair_accuracy
    from ..evaluation.protocols import full_class_zero_shot
    from ..evaluation.runner import ProtocolEvaluator, ViewSettings, closed_set_protocol

    model.eval()
    evaluator = ProtocolEvaluator(
        model,
        processor,
        ViewSettings(num_frames=model.config.num_frames),
        batch_size=32,
        model_name=name,
        progress=progress,
    )
    extra = {"synthetic": True}
    closed = evaluator.run_protocol(
        closed_set_protocol(dataset.samples["val"], dataset.labels),
        dataset.root,
        output_dir,
        "Synthetic shapes (validation)",
        "closed-set",
        extra,
    )
    zero = evaluator.run_protocol(
        full_class_zero_shot(dataset.samples["zeroshot"], dataset.zeroshot_labels, name="zero_shot"),
        dataset.root,
        output_dir,
        "Synthetic shapes (held-out compositions)",
        "zero-shot",
        extra,
    )
    result = {}
    for key, summary, labels in (("closed_set", closed, dataset.labels), ("zero_shot", zero, dataset.zeroshot_labels)):
        split_dir = Path(summary["output_dir"]) / next(iter(summary["splits"]))
        report = next(iter(summary["reports"].values()))
        scores = np.load(split_dir / "scores.npy")
        truth = np.load(split_dir / "labels.npy")
        result[key] = {
            "top1": report["metrics"]["top1_accuracy"],
            "top5": report["metrics"].get("top5_accuracy"),
            "mean_class": report["metrics"]["mean_class_accuracy"],
            "chance": report["chance_level"],
            "num_videos": report["num_videos"],
            "num_classes": report["num_classes"],
            "pairs": order_pair_accuracy(scores, truth, order_pairs_of(labels)),
            "report_dir": str(split_dir),
        }
    return result
