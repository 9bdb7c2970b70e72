"""Evaluating a saved model: closed-set accuracy with single- or multi-view testing, and the zero-shot protocols.

The program is ``actionclip eval`` (`actionclip.evaluation.program`, also `training_scripts/run_eval.py`); this
module is what it runs, so it can be called from Python too:

- :func:`encode_videos`: the L2-normalised video embeddings ``(N, V, D)`` of every view of every video. Views are
  ``num_clips`` temporal clips (:class:`~actionclip.sampling.MultiViewSampler`) times ``num_crops`` spatial crops
  (1: the processor's resize + centre crop; 3: the processor's resize, then three crops along the longer side:
  start, centre, end, as the zero-shot pipeline does).
- :func:`class_scores`: the template-ensembled class probabilities of each view, averaged over the views
  (:func:`~actionclip.sampling.average_view_scores`): ``(N, C)``.
- :func:`run_protocol`: every split of a :class:`~actionclip.evaluation.protocols.Protocol` (the closed-set test set, HMDB51 /
  UCF101 official splits, Kinetics-600 novel subsets, half-class, full-class, base-to-novel, few-shot), an
  evaluation report per split (:func:`~actionclip.evaluation.reports.write_evaluation_report`) and a
  :class:`~actionclip.evaluation.protocols.ProtocolResult` JSON stating the protocol, templates, views and frames next to
  the numbers.

Video embeddings do not depend on the label set, so the videos shared by several splits (the ten half-class
subsets, the three novel subsets) are encoded once per run.

Output layout of :func:`run_protocol` under ``output_dir``::

    <protocol>/protocol.json, <split>_labels.csv, <split>_test.txt[, <split>_train.txt]   # what was evaluated
    <protocol>/<split>/evaluation.json, report.md, confusion_matrix.png, ...              # one report per split
    <protocol>/result.json                                                                # ProtocolResult
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..data.splits import Sample
from ..errors import EvaluationSetupError
from ..sharding.sharded_run import FailedItem, ShardedRun, WorkFolder
from .protocols import EvalSplit, Protocol, ProtocolResult

logger = logging.getLogger(__name__)

RESULT_JSON_NAME = "result.json"
# Where the videos' embeddings wait, under the output folder, until the run's reports are written.
WORK_FOLDER_NAME = ".unfinished"
# The report keys that go into a ProtocolResult (fractions in [0, 1]).
SUMMARY_METRICS: tuple[str, ...] = ("top1_accuracy", "top5_accuracy", "mean_class_accuracy")


@dataclass(frozen=True)
class ViewSettings:
    """How each video is looked at: ``num_clips`` temporal clips of ``num_frames`` frames, ``num_crops`` crops."""

    num_frames: int
    num_clips: int = 1
    num_crops: int = 1
    sampler: str = "tsn"
    """Base sampler of the clips: ``tsn`` (segment centres, the original's) or ``uniform``."""

    def __post_init__(self):
        for name in ("num_frames", "num_clips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EvaluationSetupError(f"{name} must be a positive integer, got {value!r}")
        if self.num_crops not in (1, 3):
            raise EvaluationSetupError(f"num_crops must be 1 or 3, got {self.num_crops!r}")
        if self.sampler not in ("tsn", "uniform"):
            raise EvaluationSetupError(f"sampler must be 'tsn' or 'uniform', got {self.sampler!r}")

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    @property
    def label(self) -> str:
        """``"<clips>x<crops>"``, the customary way of writing the views (``"1x1"``, ``"4x3"``)."""
        return f"{self.num_clips}x{self.num_crops}"

    def build_sampler(self):
        from ..sampling import MultiViewSampler, TSNSampler, UniformSampler

        base = TSNSampler(self.num_frames) if self.sampler == "tsn" else UniformSampler(self.num_frames)
        return MultiViewSampler(self.num_clips, base=base, num_crops=self.num_crops)


# ----------------------------------------------------------------------------------------------------------------
# Videos


def three_crops(pixel_values: torch.Tensor, crop_height: int, crop_width: int) -> torch.Tensor:
    """Three crops along the longer side (left/top, centre, right/bottom), centred along the shorter side.

    Args:
        pixel_values: (clips, T, C, H, W) with ``H >= crop_height`` and ``W >= crop_width``.

    Returns:
        (clips * 3, T, C, crop_height, crop_width), clip-major (the three crops of clip 0 first).
    """
    height, width = pixel_values.shape[-2:]
    if height < crop_height or width < crop_width:
        raise EvaluationSetupError(f"frames of {height}x{width} are smaller than the crop {crop_height}x{crop_width}")
    from ..video_clips import crop_box  # video_clips decides crop positions (imported when used, as below)

    boxes = [crop_box(height, width, crop_height, crop_width, position, 3)[:2] for position in range(3)]
    crops = [pixel_values[..., top : top + crop_height, left : left + crop_width] for top, left in boxes]
    return torch.stack(crops, dim=1).flatten(0, 1)


class MultiViewVideos(torch.utils.data.Dataset):
    """Every view of each video as uint8 frames ``(V, T, S, S, 3)``, resized and cropped, V = clips x crops
    (clip-major); :func:`encode_videos` turns them into ``pixel_values`` on the model's device (a DataLoader worker
    hands a quarter of the bytes of float32 ``pixel_values`` to the main process).

    Args:
        sources: video files (or frame folders, with ``frame_counts``).
        video_processor: the model's `ActionCLIPVideoProcessor` (evaluation transform).
        views: the :class:`ViewSettings`.
        frame_counts: for frame folders, their frame counts (``None`` entries for video files).
        on_error: ``"raise"``, or ``"report"``: a video that cannot be read or sampled (the errors of
            `video_decode_pool.SKIPPABLE_ERRORS`) is a `FailedItem` instead of frames.
    """

    def __init__(
        self,
        sources: Sequence[str],
        video_processor,
        views: ViewSettings,
        frame_counts: Sequence[int | None] | None = None,
        frame_template: str = "img_{:05d}.jpg",
        frame_start_index: int = 1,
        timeout: float | None = 30.0,
        on_error: str = "raise",
    ):
        if on_error not in ("raise", "report"):
            raise EvaluationSetupError(f"on_error must be 'raise' or 'report', got {on_error!r}")
        self.sources = [str(source) for source in sources]
        self.video_processor = video_processor
        self.views = views
        self.sampler = views.build_sampler()
        self.frame_counts = list(frame_counts) if frame_counts is not None else [None] * len(self.sources)
        self.frame_template = frame_template
        self.frame_start_index = frame_start_index
        self.timeout = timeout
        self.on_error = on_error

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> torch.Tensor | FailedItem:
        from ..video_clips import ClipSpec, FrameFolder, read_clip
        from ..video_decode_pool import SKIPPABLE_ERRORS

        spec = ClipSpec.for_video_processor(
            self.video_processor,
            self.views.num_frames,
            num_clips=self.views.num_clips,
            num_crops=self.views.num_crops,
            sampler=self.views.sampler,
            timeout=self.timeout,
            frame_template=self.frame_template,
            frame_start_index=self.frame_start_index,
        )
        source, count = self.sources[index], self.frame_counts[index]
        # video_clips resizes and crops (the three crops for num_crops=3) the uint8 frames (V, T, S, S, 3).
        try:
            return torch.from_numpy(read_clip(source if count is None else FrameFolder(source, int(count)), spec))
        except SKIPPABLE_ERRORS as error:
            if self.on_error == "raise":
                raise
            return FailedItem.from_error(error)


def _decoding_worker_init(worker_id: int) -> None:
    """A DataLoader worker decodes clip after clip: it keeps the memory it frees (`keep_freed_memory`)."""
    from ..video_decode_pool import keep_freed_memory

    keep_freed_memory()


def _items_as_they_are(items: list) -> list:
    """A DataLoader's collate that keeps a batch a list: frames and failures side by side."""
    return items


@torch.no_grad()
def iter_video_embeddings(
    model,
    videos: MultiViewVideos,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "encoding videos",
) -> Iterator[torch.Tensor | FailedItem]:
    """Each video's L2-normalised embeddings of every view, float32 ``(V, D)`` on the CPU, in order (a video
    ``videos`` could not read is its `FailedItem`)."""
    from tqdm.auto import tqdm

    device = model.logit_scale.device
    dtype = model.logit_scale.dtype
    loader = torch.utils.data.DataLoader(
        videos,
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle=False,
        collate_fn=_items_as_they_are,
        pin_memory=device.type == "cuda",
        worker_init_fn=_decoding_worker_init if num_workers else None,
    )
    for items in tqdm(loader, desc=description, unit="batch", disable=not progress, leave=False):
        present = [item for item in items if isinstance(item, torch.Tensor)]
        embeds = iter(())
        if present:
            frames = torch.stack(present)
            batch, views = frames.shape[:2]
            pixel_values = videos.video_processor.frames_to_pixel_values(frames.flatten(0, 1), device, dtype)
            pooled = model.get_video_features(pixel_values).pooler_output
            # One tensor each (not views of the batch): a video's embeddings are saved on their own.
            embeds = iter(F.normalize(pooled.float(), dim=-1).view(batch, views, -1).cpu().unbind())
        for item in items:
            yield next(embeds).clone() if isinstance(item, torch.Tensor) else item


def encode_videos(
    model,
    videos: MultiViewVideos,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "encoding videos",
) -> torch.Tensor:
    """L2-normalised video embeddings of every view: float32 ``(N, V, D)`` on the CPU."""
    embeds = list(iter_video_embeddings(model, videos, batch_size, num_workers, progress, description))
    failed = [item for item in embeds if isinstance(item, FailedItem)]
    if failed:
        raise EvaluationSetupError(failed[0].message)
    return torch.stack(embeds)


def class_scores(
    video_embeds: torch.Tensor, text_embeds: torch.Tensor, num_templates: int, logit_scale: float
) -> torch.Tensor:
    """Template-ensembled class probabilities averaged over views.

    Args:
        video_embeds: (N, V, D) unit-norm embeddings of every view.
        text_embeds: (K * C, D) unit-norm prompt embeddings, template-major.
        num_templates: K.
        logit_scale: the multiplier of the cosine similarities.

    Returns:
        (N, C) float32; each row sums to one.
    """
    from ..sampling import average_view_scores
    from ..scoring import template_ensemble_probs

    num_videos, num_views, dim = video_embeds.shape
    logits = logit_scale * video_embeds.reshape(num_videos * num_views, dim) @ text_embeds.float().t()
    return average_view_scores(template_ensemble_probs(logits, num_templates), num_views)


# ----------------------------------------------------------------------------------------------------------------
# Protocols


class ProtocolEvaluator:
    """Evaluates protocols with one model, caching video embeddings by source across splits and protocols.

    Args:
        model, processor: an `ActionCLIPModel` and its `ActionCLIPProcessor`.
        views: how each video is looked at (frames default to the model's).
        templates: prompt templates to ensemble (default: the model's).
        logit_scale: similarity multiplier (default: the model's `config.eval_logit_scale`, 100 for converted checkpoints
            of the authors', else the learned one).
        batch_size, num_workers: of the video DataLoader.
        model_name: recorded in the reports.
        descriptions: label descriptions, extra prompts averaged with each class name per template
            (`actionclip.descriptions`).
        run: the processes the videos are shared among (`ShardedRun`; default: this process alone). Every process
            makes the same calls; the main one gets the embeddings, scores the splits and writes the reports.
        work_dir: where each encoded video's embeddings wait (`WorkFolder`) until the reports are written
            (`finish`), so a run started again encodes only the videos it had not finished.
    """

    def __init__(
        self,
        model,
        processor,
        views: ViewSettings | None = None,
        templates: Sequence[str] | None = None,
        logit_scale: float | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        timeout: float | None = 30.0,
        model_name: str | None = None,
        progress: bool = True,
        descriptions: dict[str, list[str]] | None = None,
        run: ShardedRun | None = None,
        work_dir: str | os.PathLike | None = None,
    ):
        self.model = model
        self.processor = processor
        self.views = views or ViewSettings(num_frames=model.config.num_frames)
        self.templates = list(model.config.templates if templates is None else templates)
        self.logit_scale = float(model.evaluation_scale(logit_scale).detach())
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.timeout = timeout
        self.model_name = model_name
        self.progress = progress
        self.descriptions = descriptions
        """Label descriptions (``{label: [sentence, ...]}``), extra prompts beside the class names."""
        self.frame_counts: dict[str, int] = {}
        """Frame counts of the sources that are frame folders (video files need none)."""
        self.run = run or ShardedRun()
        self.work = None
        if work_dir is not None:
            settings = {"model": model_name, "views": asdict(self.views), "timeout": timeout}
            self.work = WorkFolder(work_dir, settings)
        self.failures: dict[str, FailedItem] = {}
        """The videos that could not be read, and why (on the main process)."""
        self._embeddings: dict[str, torch.Tensor] = {}
        self._encoded: set[str] = set()  # every source handed out to the processes, on every process

    def encode(self, sources: Sequence[str]) -> None:
        """Encode the videos of ``sources`` not encoded before, shared among the run's processes (each calls this
        with the same sources); the main process keeps their embeddings, and the videos it could not read in
        `failures`."""
        todo = list(dict.fromkeys(str(source) for source in sources if str(source) not in self._encoded))
        if not todo:
            return
        self._encoded.update(todo)

        def compute(share: list[str]):
            videos = MultiViewVideos(
                share, self.processor.video_processor, self.views, [self.frame_counts.get(s) for s in share],
                timeout=self.timeout, on_error="report",
            )  # fmt: skip
            progress = self.progress and self.run.is_main
            description = f"encoding {len(share)} videos"
            embeddings = iter_video_embeddings(
                self.model, videos, self.batch_size, self.num_workers, progress, description
            )
            for result in embeddings:
                yield result if isinstance(result, FailedItem) else {"embeddings": result.numpy()}

        results = self.run.map(todo, todo, compute, self.work, "videos")
        for source, result in zip(todo, results or ()):
            if isinstance(result, FailedItem):
                self.failures[source] = result
            else:
                self._embeddings[source] = torch.from_numpy(result["embeddings"])

    def video_embeddings(self, sources: Sequence[str]) -> torch.Tensor:
        """(N, V, D) embeddings of ``sources`` (on the main process), encoding only those not seen before."""
        sources = [str(source) for source in sources]
        self.encode(sources)
        for source in sources:
            if source in self.failures:
                raise EvaluationSetupError(self.failures[source].message)
        return torch.stack([self._embeddings[source] for source in sources])

    def finish(self) -> None:
        """The reports are written: remove the work folder (main process)."""
        if self.work is not None and self.run.is_main:
            self.work.remove()

    @torch.no_grad()
    def text_embeddings(self, class_names: Sequence[str]) -> torch.Tensor:
        """(K * C, D) unit-norm prompt embeddings of ``class_names`` under the templates, template-major."""
        from ..scoring import encode_label_texts

        tokenizer = self.processor.tokenizer
        embeds = encode_label_texts(self.model, tokenizer, list(class_names), self.templates, self.descriptions)
        return embeds.float().cpu()

    def scores(self, sources: Sequence[str], class_names: Sequence[str]) -> torch.Tensor:
        """(N, C) class scores of the videos against ``class_names``."""
        video_embeds = self.video_embeddings(sources)
        return class_scores(video_embeds, self.text_embeddings(class_names), len(self.templates), self.logit_scale)

    def metadata(self, protocol: str, split: str, dataset: str, kind: str, extra: dict | None = None) -> dict:
        """What a report records about how its numbers were obtained (the keys model cards read)."""
        return {
            "model": self.model_name,
            "dataset": dataset,
            "dataset_config": f"{protocol}-{split}",
            "split": split,
            "protocol": kind,
            "protocol_name": protocol,
            "views": self.views.label,
            "num_clips": self.views.num_clips,
            "num_crops": self.views.num_crops,
            "frames": self.views.num_frames,
            "sampler": self.views.sampler,
            "templates": list(self.templates),
            "logit_scale": self.logit_scale,
            **({"descriptions": sum(map(len, self.descriptions.values()))} if self.descriptions else {}),
            **(extra or {}),
        }

    def run_protocol(
        self,
        protocol: Protocol,
        video_root: str | os.PathLike | None,
        output_dir: str | os.PathLike,
        dataset: str,
        kind: str = "zero-shot",
        extra_metadata: dict | None = None,
        write_protocol_files: bool = True,
    ) -> dict:
        """Evaluate every split of ``protocol`` (videos relative to ``video_root``), write one report per split and
        the protocol's ``result.json``; returns the result's summary with a ``reports`` entry (split -> report) and,
        where videos could not be read, ``failed_videos`` (source -> error; the metrics are over the others).

        Every process of the run calls this; the videos are encoded shared among them, then only the main process
        scores and writes (the others return ``None``)."""
        output_dir = Path(output_dir) / protocol.name
        split_sources = {}
        for split in protocol.splits:
            if not split.videos:
                raise EvaluationSetupError(f"{protocol.name}/{split.name} has no videos to evaluate")
            split_sources[split.name] = [_resolve(video_root, path) for path, _ in split.videos]
        self.encode([source for sources in split_sources.values() for source in sources])
        if not self.run.is_main:
            return None
        if write_protocol_files:
            protocol.write(output_dir)
        result = ProtocolResult(
            protocol.name,
            templates=list(self.templates),
            num_frames=self.views.num_frames,
            num_clips=self.views.num_clips,
            num_crops=self.views.num_crops,
            settings={
                **protocol.settings,
                "kind": kind,
                "model": self.model_name,
                "dataset": dataset,
                "sampler": self.views.sampler,
                "logit_scale": self.logit_scale,
                "metric_units": "fraction",
            },
        )
        reports, failed_videos = {}, {}
        for split in protocol.splits:
            sources = split_sources[split.name]
            kept = [index for index, source in enumerate(sources) if source not in self.failures]
            failed = {source: self.failures[source].message for source in sources if source in self.failures}
            if not kept:
                raise EvaluationSetupError(f"{protocol.name}/{split.name}: none of its videos could be read")
            labels = np.array([split.videos[index][1] for index in kept], dtype=np.int64)
            scores = self.scores([sources[index] for index in kept], split.class_names).numpy()
            extra = {**(extra_metadata or {}), **({"failed_videos": failed} if failed else {})}
            metadata = self.metadata(protocol.name, split.name, dataset, kind, extra)
            failed_videos.update(failed)
            report = write_split_report(output_dir / split.name, scores, labels, split, metadata)
            result.add_split(split.name, **{key: report["metrics"][key] for key in _summary_keys(report)})
            reports[split.name] = report
        result.to_json(output_dir / RESULT_JSON_NAME)
        summary = result.summary()
        summary["reports"] = reports
        summary["output_dir"] = str(output_dir)
        if failed_videos:
            summary["failed_videos"] = failed_videos
        return summary


def _summary_keys(report: dict) -> list[str]:
    return [key for key in SUMMARY_METRICS if key in report["metrics"]]


def write_split_report(output_dir: Path, scores: np.ndarray, labels: np.ndarray, split: EvalSplit, metadata: dict):
    """`write_evaluation_report` of one split, its scores saved beside it (``scores.npy``, ``labels.npy``)."""
    from .reports import write_evaluation_report

    report = write_evaluation_report(output_dir, scores, labels, list(split.class_names), metadata)
    np.save(output_dir / "scores.npy", scores.astype(np.float32))
    np.save(output_dir / "labels.npy", labels)
    return report


def _resolve(root, path: str) -> str:
    if root is None or os.path.isabs(path):
        return str(path)
    return str(Path(root) / path)


def closed_set_protocol(samples: Sequence[Sample], class_names: Sequence[str], name: str = "closed_set") -> Protocol:
    """The closed-set test: one split ``test`` with every class."""
    return Protocol(name, (EvalSplit("test", tuple(class_names), tuple(samples)),), {"kind": "closed_set"})


def samples_from_dataset_args(
    dataset_format: str, path, video_root=None, class_names=None, split: int = 1, subset: str = "test"
) -> tuple[list[Sample], list[str], list[int | None]]:
    """``(samples, class names, frame counts)`` of a dataset description, parsed by
    :func:`actionclip.data.datasets.load_video_dataset` (``folder``, ``list``, ``ucf101``, ``hmdb51``,
    ``kinetics_csv``, ``hf``); sample paths are absolute."""
    from ..data.datasets import load_video_dataset

    dataset = load_video_dataset(
        dataset_format, path, label_names=class_names, video_root=video_root, split=split, subset=subset
    )
    records = getattr(dataset, "records", None)
    if records is None:
        raise EvaluationSetupError(f"the {dataset_format!r} format streams its videos; evaluation needs a file list")
    samples = [(str(record.source), int(record.label)) for record in records]
    counts = [record.frame_count if record.is_frame_folder else None for record in records]
    return samples, list(dataset.label_names), counts


__all__ = [
    "MultiViewVideos",
    "ProtocolEvaluator",
    "ViewSettings",
    "class_scores",
    "closed_set_protocol",
    "encode_videos",
    "iter_video_embeddings",
    "samples_from_dataset_args",
    "three_crops",
]
