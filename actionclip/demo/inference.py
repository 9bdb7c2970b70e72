"""The trained demo model through the zero-shot pipeline: one held-out video classified, untrimmed videos
localised."""

from __future__ import annotations

import warnings
from pathlib import Path


def classify_with_pipeline(model_dir: Path, dataset) -> dict:
    """The first held-out video through `pipeline("zero-shot-video-classification")` against the held-out labels."""
    from transformers import pipeline

    path, label = dataset.samples["zeroshot"][0]
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = classifier(str(dataset.root / path), candidate_labels=list(dataset.zeroshot_labels))
    return {"video": path, "truth": dataset.zeroshot_labels[label], "top3": ranked[:3]}


def localize_untrimmed(
    model_dir: Path, dataset, num_videos: int = 10, stride_windows: float = 1.0, smoothing_windows: float = 2.0
) -> dict:
    """Temporal localisation with the trained model: ``num_videos`` synthetic untrimmed videos of 3-5 segments of
    seen actions (:func:`~actionclip.data.synthetic.write_untrimmed_video`), the fraction of true segments found
    at temporal IoU >= 0.5. Windows are one training clip long and aligned with the clips the generator joins (a
    window straddling two joined clips sees the shape jump back, which reads as the opposite motion); scores are
    averaged over neighbouring windows (2 windows) before labels are chosen. ``stride_windows`` and
    ``smoothing_windows`` change those, in windows (``benchmarks/localization_demo.py`` compares them)."""
    import tempfile

    from transformers import pipeline

    from ..apps.localization import localize, segment_recall
    from ..data.synthetic import write_untrimmed_video

    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    config = dataset.config
    window = config.num_frames / config.fps
    found = total = 0
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(num_videos):
            path = Path(folder) / f"untrimmed_{seed}.mp4"
            truth = write_untrimmed_video(path, dataset.labels, config, seed=seed)
            result = localize(
                classifier,
                path,
                list(dataset.labels),
                window=window,
                stride=stride_windows * window,
                smoothing=smoothing_windows * window or None,
            )
            found += round(segment_recall(truth, result.segments) * len(truth))
            total += len(truth)
    return {
        "num_videos": num_videos,
        "num_segments": total,
        "found": found,
        "recall": found / total,
        "window": window,
        "stride": stride_windows * window,
        "smoothing": smoothing_windows * window,
    }
