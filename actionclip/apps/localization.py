"""Temporal localisation: when each label happens in an untrimmed video.

Windows of ``window`` seconds slide over the video every ``stride`` seconds. Every window holds ``T`` frames
(the model's ``num_frames``) on one time grid of step ``window / T`` seconds: grid cell ``k`` is the frame shown at
``(k + 1/2) * step`` seconds, and a window starting at cell ``s`` holds cells ``s .. s + T - 1``. Because windows
share grid cells, each distinct frame is decoded once, and:

- with a post-network prompt (meanP, conv1d, lstm, transf, transf_cls), frames do not see each other before the
  fusion, so the vision tower runs once per distinct frame (`ActionCLIPModel.get_frame_features`) and only the
  small fusion runs per window, on the cached frame embeddings;
- with the Shift (in-network) or Joint (pre-network) prompt, a frame's embedding depends on the other frames of
  its clip, so every window is encoded whole (`get_video_features`), from frames decoded once and kept only while
  later windows still need them.

Window scores come from the zero-shot pipeline's own text path and scoring (template ensemble, text-embedding
cache), so a window scores exactly as the same frames classified as one clip.

Segments: each window selects its labels (the ``top_k`` best whose score reaches ``threshold``; with
``background`` a window where none does selects :data:`BACKGROUND_LABEL`). Neighbouring windows selecting the
same label merge into one segment. Windows overlap, so a window answers for its central ``stride`` seconds only
(the first from 0, the last to the end of the video): segment boundaries are then accurate to about a stride.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import (
    InvalidLabelsError,
    InvalidWindowError,
    PipelineArgumentError,
    VideoDecodeError,
    positive_int,
    positive_number,
)
from ..video_io import VideoReader, is_video_source

BACKGROUND_LABEL = "no listed action"
"""The label of stretches where no candidate label reaches the threshold (``background=True``)."""

FRAME_BATCH_SIZE = 32
"""Frames decoded, pre-processed and embedded together (bounds the memory of the cached-frame path)."""

WINDOW_BATCH_SIZE = 8
"""Windows encoded together by the per-window path (Shift, Joint)."""


def positive_seconds(value, name: str) -> float:
    return positive_number(value, name, InvalidWindowError, unit="seconds")


@dataclass(frozen=True)
class WindowGrid:
    """Where the windows lie and which video frames they hold.

    Attributes:
        duration: seconds of video.
        num_video_frames: frames in the video.
        window: seconds per window.
        stride: seconds between window starts, as used (a whole number of grid steps).
        step: seconds between grid cells, ``window / T``.
        frame_indices: int64 ``(W, T)`` 0-based video frame index of every window's frames.
        starts: float64 ``(W,)`` window start times in seconds.
    """

    duration: float
    num_video_frames: int
    window: float
    stride: float
    step: float
    frame_indices: np.ndarray
    starts: np.ndarray

    @property
    def num_windows(self) -> int:
        return len(self.starts)

    @property
    def distinct_frames(self) -> np.ndarray:
        """Sorted distinct frame indices over all windows, ``(U,)``."""
        return np.unique(self.frame_indices)

    def answer_spans(self) -> np.ndarray:
        """``(W, 2)`` seconds each window answers for: its central ``stride`` seconds, the first from 0 and the
        last to the end of the video."""
        centres = self.starts + self.window / 2
        spans = np.stack([centres - self.stride / 2, centres + self.stride / 2], axis=1)
        spans[0, 0] = 0.0
        spans[-1, 1] = self.duration
        return np.clip(spans, 0.0, self.duration)


def make_window_grid(
    duration: float, num_video_frames: int, window: float, stride: float, num_frames: int
) -> WindowGrid:
    """Lay windows of ``num_frames`` frames on a video (see the module docstring).

    ``stride`` is rounded to a whole number of grid steps (``window / num_frames``), at least one.

    Raises:
        InvalidWindowError: ``window`` or ``stride`` not a positive number, or ``window`` longer than the video.
    """
    window = positive_seconds(window, "window")
    stride = positive_seconds(stride, "stride")
    if not duration or not math.isfinite(duration) or duration <= 0 or num_video_frames < 1:
        raise InvalidWindowError(f"the video has no usable duration ({duration!r} s, {num_video_frames} frames)")
    # Half a frame of slack: a window as long as the whole video must fit despite rounded timestamps.
    if window > duration + 0.5 * duration / num_video_frames:
        raise InvalidWindowError(f"window {window:g} s is longer than the video ({duration:.3f} s)")
    step = window / num_frames
    stride_cells = max(1, int(round(stride / step)))
    span_cells = max(0, math.floor((duration - window) / step + 1e-6))
    window_cells = np.arange(0, span_cells + 1, stride_cells, dtype=np.int64)
    cells = window_cells[:, None] + np.arange(num_frames, dtype=np.int64)[None, :]
    times = (cells + 0.5) * step
    frame_indices = np.clip(np.floor(times * num_video_frames / duration).astype(np.int64), 0, num_video_frames - 1)
    return WindowGrid(
        duration=float(duration),
        num_video_frames=int(num_video_frames),
        window=window,
        stride=stride_cells * step,
        step=step,
        frame_indices=frame_indices,
        starts=window_cells * step,
    )


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


# ---------------------------------------------------------------------------------------------------------- frames


class FrameSource:
    """Decoded frames by index from a video source (opened once, through `VideoReader`) or a frame array.

    Attributes: ``num_frames``, ``duration`` (seconds), ``name`` (printable), ``read(indices)`` -> uint8 frames.
    """

    def __init__(self, video, fps: float | None, timeout: float):
        self.reader = None
        if is_video_source(video):
            if fps is not None:
                raise PipelineArgumentError("fps= is for decoded frames; a video file carries its own timing")
            self.reader = VideoReader(video, timeout=timeout)
            info = self.reader.info
            self.num_frames = info.num_frames
            self.duration = info.duration or (info.num_frames / info.fps if info.fps and info.fps > 0 else None)
            self.name = str(video) if not isinstance(video, (bytes, bytearray, memoryview)) else "<bytes>"
            return
        if isinstance(video, torch.Tensor):
            video = video.numpy()
        if not (
            isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[-1] == 3 and video.dtype == np.uint8
        ):
            shape = getattr(video, "shape", None)
            raise VideoDecodeError(
                f"<{type(video).__name__}{' of shape ' + str(tuple(shape)) if shape is not None else ''}>",
                "localisation needs a path, URL, bytes, a file object or uint8 frames (T, H, W, 3) with fps=",
            )
        if fps is None:
            raise PipelineArgumentError("decoded frames need fps= (frames per second) to be placed in time")
        fps = positive_seconds(fps, "fps")
        self.frames = video
        self.num_frames = len(video)
        self.duration = len(video) / fps
        self.name = f"<frames {tuple(video.shape)} at {fps:g} fps>"

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.reader is not None:
            return self.reader.read(indices)
        return self.frames[indices]

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _pixel_values(pipeline, frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(k, H, W, 3)`` frames -> ``(k, C, h, w)`` model inputs, by the pipeline's own processor."""
    pixel_values = pipeline.processor.video_processor([frames], return_tensors="pt")["pixel_values"][0]
    return pixel_values.to(device=pipeline.device, dtype=pipeline.model.dtype)


def cached_window_embeddings(pipeline, read: Callable, grid: WindowGrid, frame_batch_size: int = FRAME_BATCH_SIZE):
    """Video embeddings of every window, the vision tower running once per distinct frame.

    Only for post-network prompts (frames independent until the fusion).

    Returns:
        ``(W, D)`` video embeddings (after fusion, not normalised) and the number of frames embedded.
    """
    model = pipeline.model
    distinct = grid.distinct_frames
    chunks = []
    with torch.no_grad():
        for start in range(0, len(distinct), frame_batch_size):
            indices = distinct[start : start + frame_batch_size]
            chunks.append(model.get_frame_features(_pixel_values(pipeline, read(indices))[None])[0])
        frame_embeds = torch.cat(chunks)  # (U, D)
        rows = torch.from_numpy(np.searchsorted(distinct, grid.frame_indices)).to(frame_embeds.device)
        video_embeds = [
            model.fusion(frame_embeds[rows[start : start + 256]]) for start in range(0, grid.num_windows, 256)
        ]
    return torch.cat(video_embeds), len(distinct)


def per_window_embeddings(pipeline, read: Callable, grid: WindowGrid, window_batch_size: int = WINDOW_BATCH_SIZE):
    """Video embeddings of every window, each window encoded whole (any prompt, Shift and Joint included).

    Frames are decoded once and kept only while a later window still needs them.

    Returns:
        ``(W, D)`` video embeddings and the number of frames the vision tower embedded (``W * T``).
    """
    model = pipeline.model
    kept: dict[int, torch.Tensor] = {}
    embeds = []
    with torch.no_grad():
        for start in range(0, grid.num_windows, window_batch_size):
            batch = grid.frame_indices[start : start + window_batch_size]
            missing = np.setdiff1d(np.unique(batch), np.fromiter(kept, dtype=np.int64, count=len(kept)))
            if missing.size:
                kept.update(zip(missing.tolist(), _pixel_values(pipeline, read(missing))))
            pixel_values = torch.stack([torch.stack([kept[int(i)] for i in row]) for row in batch])
            embeds.append(model.get_video_features(pixel_values).pooler_output)
            following = grid.frame_indices[start + window_batch_size : start + window_batch_size + 1]
            first_needed = int(following.min()) if following.size else None
            for index in [i for i in kept if first_needed is None or i < first_needed]:
                del kept[index]
    return torch.cat(embeds), grid.frame_indices.size


def window_embeddings(
    pipeline, read: Callable, grid: WindowGrid, cache_frames: bool, frame_batch_size: int = FRAME_BATCH_SIZE
):
    """``(W, D)`` video embeddings of the grid's windows and the frames embedded, by the path ``cache_frames`` names
    (:func:`cached_window_embeddings` or :func:`per_window_embeddings`)."""
    if cache_frames:
        return cached_window_embeddings(pipeline, read, grid, frame_batch_size)
    return per_window_embeddings(pipeline, read, grid)


def uses_cached_frames(config) -> bool:
    """Whether frames stay independent until the fusion (no Shift, no Joint), so their embeddings can be shared."""
    return not (config.shift or config.joint)


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
    num_frames = num_frames or pipeline.processor.num_frames or pipeline.model.config.num_frames

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
    "FrameSource",
    "LocalizationResult",
    "WindowGrid",
    "cached_window_embeddings",
    "localize",
    "make_window_grid",
    "merge_segments",
    "per_window_embeddings",
    "plot_timeline",
    "segment_recall",
    "select_labels",
    "smooth_scores",
    "temporal_iou",
    "uses_cached_frames",
    "window_embeddings",
]
