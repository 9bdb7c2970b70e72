"""Temporal localisation: when each label happens in an untrimmed video.

Windows of ``window`` seconds slide over the video every ``stride`` seconds, on the time grid of
`actionclip.apps.windows` (each distinct frame decoded once; with a post-network prompt, embedded once).

Window scores come from the zero-shot pipeline's own text path and scoring (template ensemble, text-embedding
cache), so a window scores exactly as the same frames classified as one clip.

Segments: each window selects its labels (the ``top_k`` best whose score reaches ``threshold``; with
``background`` a window where none does selects :data:`BACKGROUND_LABEL`). Neighbouring windows selecting the
same label merge into one segment. Windows overlap, so a window answers for its central ``stride`` seconds only
(the first from 0, the last to the end of the video): segment boundaries are then accurate to about a stride.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidLabelsError, PipelineArgumentError, positive_int
from .windows import (
    FRAME_BATCH_SIZE,
    FrameSource,
    WindowGrid,
    frames_per_window,
    make_window_grid,
    positive_seconds,
    uses_cached_frames,
    window_embeddings,
)

BACKGROUND_LABEL = "no listed action"
"""The label of stretches where no candidate label reaches the threshold (``background=True``)."""


@dataclass
class LocalizationResult:
    """What :func:`localize` found.

    Attributes:
        source: the video as given (a path, or a description).
        labels: the candidate labels, in input order.
        grid: the :class:`WindowGrid`.
        scores: float32 ``(W, N)`` per-window label scores (each row sums to 1).
        selected: per window, the selected labels (best first; :data:`BACKGROUND_LABEL` for background).
        segments: ``[{"start", "end", "label", "score"}]`` in seconds, by start time.
        frames_encoded: frames the vision tower embedded (distinct frames on the cached path).
        cached_frames: whether the cached-frame path ran (``False``: every window encoded whole).
    """

    source: str
    labels: list[str]
    grid: WindowGrid
    scores: np.ndarray
    selected: list[list[str]]
    segments: list[dict]
    frames_encoded: int
    cached_frames: bool
    options: dict = field(default_factory=dict)

    @property
    def windows(self) -> list[dict]:
        """``[{"start", "end", "scores": {label: score}, "labels": [...]}]`` per window, in time order."""
        return [
            {
                "start": round(float(start), 6),
                "end": round(float(start + self.grid.window), 6),
                "scores": {label: float(score) for label, score in zip(self.labels, row)},
                "labels": list(chosen),
            }
            for start, row, chosen in zip(self.grid.starts, self.scores, self.selected)
        ]

    def to_dict(self) -> dict:
        return {
            "video": self.source,
            "duration": round(self.grid.duration, 6),
            "window": self.grid.window,
            "stride": round(self.grid.stride, 6),
            "labels": list(self.labels),
            "options": dict(self.options),
            "frames_encoded": self.frames_encoded,
            "cached_frames": self.cached_frames,
            "segments": self.segments,
            "windows": self.windows,
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def plot(self, path) -> None:
        """Write a timeline PNG; see :func:`plot_timeline`."""
        plot_timeline(self, path)


# ---------------------------------------------------------------------------------------------------------- labels


def smooth_scores(scores: np.ndarray, grid: WindowGrid, span: float | None) -> np.ndarray:
    """Each window's scores averaged with those of the windows whose centres lie within ``span / 2`` seconds of its
    own (a moving average over time); ``None`` or 0 leaves them as they are. ``(W, N)``."""
    if not span:
        return scores
    centres = grid.starts + grid.window / 2
    near = np.abs(centres[:, None] - centres[None, :]) <= span / 2 + 1e-9  # (W, W)
    return (near.astype(scores.dtype) @ scores) / near.sum(axis=1, keepdims=True)


def select_labels(
    scores: np.ndarray, labels: Sequence[str], top_k: int = 1, threshold: float | None = None, background: bool = True
) -> list[list[tuple[str, float]]]:
    """Per window, the ``top_k`` best ``(label, score)`` whose score reaches ``threshold`` (best first).

    With ``background``, a window where no label qualifies gets ``[(BACKGROUND_LABEL, 1 - best score)]``; without,
    an empty list.
    """
    chosen = []
    for row in np.asarray(scores, dtype=np.float64):
        order = sorted(range(len(labels)), key=lambda i: -row[i])[:top_k]
        picked = [(labels[i], float(row[i])) for i in order if threshold is None or row[i] >= threshold]
        if not picked and background:
            picked = [(BACKGROUND_LABEL, float(1.0 - row.max()))]
        chosen.append(picked)
    return chosen


def merge_segments(grid: WindowGrid, chosen: list[list[tuple[str, float]]]) -> list[dict]:
    """Neighbouring windows selecting the same label -> one ``{"start", "end", "label", "score"}`` segment.

    A segment spans the answer spans (:meth:`WindowGrid.answer_spans`) of its windows; its score is the mean of
    their scores for the label. Sorted by start, then by score (highest first).
    """
    spans = grid.answer_spans()
    segments = []
    open_runs: dict[str, list] = {}  # label -> [first window, last window, score sum, count]
    for position, picks in enumerate(chosen + [[]]):
        here = dict(picks)
        for label in [label for label in open_runs if label not in here]:
            first, last, total, count = open_runs.pop(label)
            segments.append(
                {
                    "start": round(float(spans[first, 0]), 6),
                    "end": round(float(spans[last, 1]), 6),
                    "label": label,
                    "score": total / count,
                }
            )
        for label, score in here.items():
            run = open_runs.setdefault(label, [position, position, 0.0, 0])
            run[1], run[2], run[3] = position, run[2] + score, run[3] + 1
    return sorted(segments, key=lambda segment: (segment["start"], -segment["score"]))


# ---------------------------------------------------------------------------------------------------------- entry


def localize(
    pipeline,
    video,
    candidate_labels=None,
    *,
    window: float = 4.0,
    stride: float = 1.0,
    num_frames: int | None = None,
    threshold: float | None = None,
    top_k: int = 1,
    background: bool = True,
    hypothesis_template=None,
    logit_scale: float | None = None,
    ensemble: str | None = None,
    fps: float | None = None,
    timeout: float = 30.0,
    cache_frames: bool | None = None,
    frame_batch_size: int = FRAME_BATCH_SIZE,
    smoothing: float | None = None,
) -> LocalizationResult:
    """Score sliding windows of an untrimmed video with a zero-shot pipeline and merge them into segments.

    Args:
        pipeline: a `ZeroShotVideoClassificationPipeline` (its model, processor, text cache and scoring are used).
        video: a path, URL, bytes or file object; or uint8 frames ``(T, H, W, 3)`` with ``fps``.
        candidate_labels: the labels, as for the pipeline.
        window: seconds per window.
        stride: seconds between window starts (rounded to a multiple of ``window / num_frames``).
        num_frames: frames per window (default: the processor's / the model's).
        threshold: a label is selected only when its score (0..1) reaches this; ``None``: no threshold.
        top_k: labels selected per window at most.
        background: windows with no selected label become :data:`BACKGROUND_LABEL` segments.
        hypothesis_template, logit_scale, ensemble: as for the pipeline.
        fps: frames per second of decoded frames (not for files).
        timeout: seconds the opening and each read of the video may take (the pipeline's ``timeout``).
        cache_frames: ``None`` (default): share frame embeddings whenever the prompt allows; ``False``: encode
            every window whole (the baseline; what Shift and Joint always do); ``True`` with Shift or Joint raises.
        frame_batch_size: distinct frames embedded per vision-tower call.
        smoothing: seconds of a moving average over the window scores before labels are selected (steadier
            segments from a noisy classifier); ``None``: none. The reported window scores stay unsmoothed.

    Raises:
        InvalidWindowError: bad ``window`` / ``stride``, or a window longer than the video.
        InvalidLabelsError, InvalidTemplateError, PipelineArgumentError: as for the pipeline.
        VideoDecodeError: the video cannot be read.
    """
    _, forward_params, _ = pipeline.call_options(
        candidate_labels=candidate_labels,
        hypothesis_template=hypothesis_template,
        num_frames=num_frames,
        logit_scale=logit_scale,
        ensemble=ensemble,
        timeout=timeout,
    )
    top_k = positive_int(top_k, "top_k", PipelineArgumentError)
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1
    ):
        raise PipelineArgumentError(f"threshold must be a number in [0, 1], got {threshold!r}")
    frame_batch_size = positive_int(frame_batch_size, "frame_batch_size", PipelineArgumentError)
    if smoothing is not None:
        smoothing = positive_seconds(smoothing, "smoothing")
    window = positive_seconds(window, "window")
    stride = positive_seconds(stride, "stride")
    if forward_params.get("candidate_labels") is None:
        raise InvalidLabelsError("candidate_labels is required: the list of class names to look for")
    labels, templater, texts = pipeline.prepare_labels(
        forward_params["candidate_labels"], forward_params.get("hypothesis_template")
    )
    text_embeds = pipeline.text_embeddings(labels, templater, texts)
    cacheable = uses_cached_frames(pipeline.model.config)
    if cache_frames and not cacheable:
        raise PipelineArgumentError(
            "cache_frames=True needs a post-network prompt alone: with Shift or Joint each frame's embedding depends "
            "on its clip, so every window is encoded whole"
        )
    cache_frames = cacheable if cache_frames is None else bool(cache_frames)
    num_frames = frames_per_window(pipeline, num_frames)

    source = FrameSource(video, fps, timeout)
    try:
        grid = make_window_grid(source.duration, source.num_frames, window, stride, num_frames)
        video_embeds, frames_encoded = window_embeddings(pipeline, source.read, grid, cache_frames, frame_batch_size)
    finally:
        source.close()
    scores = pipeline.score_video_embeddings(
        video_embeds,
        text_embeds,
        templater.num_templates,
        forward_params.get("logit_scale"),
        forward_params.get("ensemble", "probs"),
    ).numpy()
    chosen = select_labels(smooth_scores(scores, grid, smoothing), labels, top_k, threshold, background)
    return LocalizationResult(
        source=source.name,
        labels=labels,
        grid=grid,
        scores=scores,
        selected=[[label for label, _ in picks] for picks in chosen],
        segments=merge_segments(grid, chosen),
        frames_encoded=int(frames_encoded),
        cached_frames=cache_frames,
        options={
            "num_frames": num_frames,
            "threshold": threshold,
            "top_k": top_k,
            "background": background,
            "smoothing": smoothing,
        },
    )


def temporal_iou(first: dict, second: dict) -> float:
    """Intersection over union of two ``{"start", "end"}`` time spans (0 when they do not overlap)."""
    overlap = min(first["end"], second["end"]) - max(first["start"], second["start"])
    union = max(first["end"], second["end"]) - min(first["start"], second["start"])
    return max(overlap, 0.0) / union if union > 0 else 0.0


def segment_recall(true_segments: Sequence[dict], found: Sequence[dict], iou: float = 0.5) -> float:
    """Fraction of ``true_segments`` matched by a found segment of the same label at temporal IoU >= ``iou``."""
    if not true_segments:
        raise ValueError("segment_recall needs at least one true segment")
    hits = sum(
        any(seg["label"] == true["label"] and temporal_iou(seg, true) >= iou for seg in found)
        for true in true_segments
    )
    return hits / len(true_segments)


def plot_timeline(result: LocalizationResult, path) -> None:
    """A PNG of labels over time: one row per label with its segments as bars, and each label's window scores.

    matplotlib is imported here only (it is slow to import and only this needs it).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    rows = list(result.labels) + (
        [BACKGROUND_LABEL] if any(seg["label"] == BACKGROUND_LABEL for seg in result.segments) else []
    )
    colours = plt.get_cmap("tab10")
    figure, (bars, curves) = plt.subplots(
        2, 1, figsize=(12, 1.2 + 0.4 * len(rows) + 3), sharex=True, height_ratios=[max(len(rows), 1), 6]
    )
    for row, label in enumerate(rows):
        spans = [(seg["start"], seg["end"] - seg["start"]) for seg in result.segments if seg["label"] == label]
        bars.broken_barh(spans, (row - 0.4, 0.8), color="0.75" if label == BACKGROUND_LABEL else colours(row % 10))
    bars.set_yticks(range(len(rows)), rows)
    bars.invert_yaxis()
    bars.set_title(f"{result.source}: window {result.grid.window:g} s, stride {result.grid.stride:g} s")
    centres = result.grid.starts + result.grid.window / 2
    # Curves only for the labels that made a segment (at most 10), or the whole panel is a legend.
    shown = [
        column for column, label in enumerate(result.labels) if label in {seg["label"] for seg in result.segments}
    ]
    for column in shown[:10]:
        curves.plot(centres, result.scores[:, column], color=colours(column % 10), label=result.labels[column])
    if result.options.get("threshold") is not None:
        curves.axhline(result.options["threshold"], color="0.3", linestyle="--", linewidth=1)
    curves.set_xlim(0, result.grid.duration)
    curves.set_ylim(0, 1)
    curves.set_xlabel("time (s)")
    curves.set_ylabel("window score")
    if shown:
        curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


__all__ = [
    "BACKGROUND_LABEL",
    "LocalizationResult",
    "localize",
    "merge_segments",
    "plot_timeline",
    "segment_recall",
    "select_labels",
    "smooth_scores",
    "temporal_iou",
]
