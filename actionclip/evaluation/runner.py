"""Evaluating a saved model: closed-set accuracy with single- or multi-view testing, and the zero-shot protocols.

The program is `training_scripts/run_eval.py` (and `actionclip eval`); this module is what it runs, so it can be
called from Python too:

- :func:`encode_videos`: the L2-normalised video embeddings ``(N, V, D)`` of every view of every video. Views are
  ``num_clips`` temporal clips (:class:`~actionclip.sampling.MultiViewSampler`) times ``num_crops`` spatial crops
  (1: the processor's resize + centre crop; 3: the processor's resize, then three crops along the longer side:
  start, centre, end, as the zero-shot pipeline does).
- :func:`class_scores`: the template-ensembled class probabilities of each view, averaged over the views
  (:func:`~actionclip.sampling.average_view_scores`): ``(N, C)``.
- :func:`run_protocol`: every split of a :class:`~actionclip.protocols.Protocol` (the closed-set test set, HMDB51 /
  UCF101 official splits, Kinetics-600 novel subsets, half-class, full-class, base-to-novel, few-shot), an
  evaluation report per split (:func:`~actionclip.evaluation.write_evaluation_report`) and a
  :class:`~actionclip.protocols.ProtocolResult` JSON stating the protocol, templates, views and frames next to
  the numbers.

Video embeddings do not depend on the label set, so the videos shared by several splits (the ten half-class
subsets, the three novel subsets) are encoded once per run.

Output layout of :func:`run_protocol` under ``output_dir``::

    <protocol>/protocol.json, <split>_labels.csv, <split>_test.txt[, <split>_train.txt]   # what was evaluated
    <protocol>/<split>/evaluation.json, report.md, confusion_matrix.png, ...              # one report per split
    <protocol>/result.json                                                                # ProtocolResult
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .errors import ActionCLIPError
from .protocols import (
    EvalSplit,
    Protocol,
    ProtocolResult,
    Sample,
    base_to_novel,
    few_shot_protocol,
    full_class_zero_shot,
    half_class_zero_shot,
    hmdb51_zero_shot,
    kinetics600_novel_zero_shot,
    load_label_names,
    read_list_file,
    ucf101_zero_shot,
    write_few_shot_lists,
)

logger = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = (
    "closed_set",
    "hmdb51",
    "ucf101",
    "k600_novel",
    "half_class",
    "full_class",
    "base_to_novel",
    "few_shot",
)
RESULT_JSON_NAME = "result.json"
# The report keys that go into a ProtocolResult (fractions in [0, 1]).
SUMMARY_METRICS: tuple[str, ...] = ("top1_accuracy", "top5_accuracy", "mean_class_accuracy")


class EvaluationSetupError(ActionCLIPError, ValueError):
    """An evaluation was asked for with inputs that do not fit (missing files or arguments, a bad view count)."""


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
        from .sampling import MultiViewSampler, TSNSampler, UniformSampler

        base = TSNSampler(self.num_frames) if self.sampler == "tsn" else UniformSampler(self.num_frames)
        return MultiViewSampler(self.num_clips, base=base, num_crops=self.num_crops)


# ----------------------------------------------------------------------------------------------------------------
# Model and videos


def load_model_and_processor(model_dir: str | os.PathLike, device: str | torch.device | None = None):
    """``(ActionCLIPModel, ActionCLIPProcessor)`` from one directory, in evaluation mode on ``device``.

    A directory without processor files gets the processor matching its configuration (image size, frames,
    templates) with the shipped tokenizer.
    """
    from .modeling_actionclip import ActionCLIPModel
    from .processing_actionclip import ActionCLIPProcessor

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise EvaluationSetupError(f"{str(model_dir)!r} has no config.json: not a saved model directory")
    model = ActionCLIPModel.from_pretrained(model_dir).eval()
    if device is not None:
        model = model.to(device)
    has_processor = any((model_dir / name).is_file() for name in ("processor_config.json", "preprocessor_config.json"))
    if has_processor:
        processor = ActionCLIPProcessor.from_pretrained(model_dir)
    else:
        processor = ActionCLIPProcessor.from_model_config(model.config)
    return model, processor


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
    if width >= height:
        top = (height - crop_height) // 2
        boxes = [(top, left) for left in (0, (width - crop_width) // 2, width - crop_width)]
    else:
        left = (width - crop_width) // 2
        boxes = [(top, left) for top in (0, (height - crop_height) // 2, height - crop_height)]
    crops = [pixel_values[..., top : top + crop_height, left : left + crop_width] for top, left in boxes]
    return torch.stack(crops, dim=1).flatten(0, 1)


class MultiViewVideos(torch.utils.data.Dataset):
    """Every view of each video as ``pixel_values`` ``(V, T, C, H, W)``, V = clips x crops (clip-major).

    Args:
        sources: video files (or frame folders, with ``frame_counts``).
        video_processor: the model's `ActionCLIPVideoProcessor` (evaluation transform).
        views: the :class:`ViewSettings`.
        frame_counts: for frame folders, their frame counts (``None`` entries for video files).
    """

    def __init__(
        self,
        sources: Sequence[str],
        video_processor,
        views: ViewSettings,
        frame_counts: Sequence[int | None] | None = None,
        frame_template: str = "img_{:05d}.jpg",
        frame_start_index: int = 1,
        decode_timeout: float | None = 30.0,
    ):
        self.sources = [str(source) for source in sources]
        self.video_processor = video_processor
        self.views = views
        self.sampler = views.build_sampler()
        self.frame_counts = list(frame_counts) if frame_counts is not None else [None] * len(self.sources)
        self.frame_template = frame_template
        self.frame_start_index = frame_start_index
        self.decode_timeout = decode_timeout

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> torch.Tensor:
        from .input_engine import ClipSpec, FrameFolder, read_clip

        spec = ClipSpec.for_video_processor(
            self.video_processor,
            self.views.num_frames,
            num_clips=self.views.num_clips,
            num_crops=self.views.num_crops,
            sampler=self.views.sampler,
            timeout=self.decode_timeout,
            frame_template=self.frame_template,
            frame_start_index=self.frame_start_index,
        )
        source, count = self.sources[index], self.frame_counts[index]
        # The input engine resizes and crops (the three crops for num_crops=3) the uint8 frames (V, T, S, S, 3).
        frames = read_clip(source if count is None else FrameFolder(source, int(count)), spec)
        return self.video_processor.frames_to_pixel_values(torch.from_numpy(frames))


@torch.no_grad()
def encode_videos(
    model,
    videos: MultiViewVideos,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "encoding videos",
) -> torch.Tensor:
    """L2-normalised video embeddings of every view: float32 ``(N, V, D)`` on the CPU."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(videos, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    device = model.logit_scale.device
    dtype = model.logit_scale.dtype
    chunks = []
    for pixel_values in tqdm(loader, desc=description, unit="batch", disable=not progress, leave=False):
        batch, views = pixel_values.shape[:2]
        embeds = model.get_video_features(pixel_values.flatten(0, 1).to(device=device, dtype=dtype)).pooler_output
        chunks.append(F.normalize(embeds.float(), dim=-1).view(batch, views, -1).cpu())
    return torch.cat(chunks)


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
    from .sampling import average_view_scores
    from .scoring import template_ensemble_probs

    num_videos, num_views, dim = video_embeds.shape
    logits = logit_scale * video_embeds.reshape(num_videos * num_views, dim) @ text_embeds.float().t()
    return average_view_scores(template_ensemble_probs(logits, num_templates), num_views)


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


def retrieval_ranks(similarity) -> np.ndarray:
    """1-based rank of the true match of every query: row ``i`` of ``similarity`` ``(Q, Q)`` scores the candidates
    of query ``i``, whose true match is candidate ``i`` (the diagonal). Rank = 1 + candidates scored strictly higher
    + half of the other candidates scored equal (a tie is a coin flip, as in :func:`order_pair_accuracy`)."""
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
        decode_timeout: float | None = 30.0,
        model_name: str | None = None,
        progress: bool = True,
        descriptions: dict[str, list[str]] | None = None,
    ):
        self.model = model
        self.processor = processor
        self.views = views or ViewSettings(num_frames=model.config.num_frames)
        self.templates = list(model.config.templates if templates is None else templates)
        self.logit_scale = float(model.evaluation_scale(logit_scale).detach())
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.decode_timeout = decode_timeout
        self.model_name = model_name
        self.progress = progress
        self.descriptions = descriptions
        """Label descriptions (``{label: [sentence, ...]}``), extra prompts beside the class names."""
        self.frame_counts: dict[str, int] = {}
        """Frame counts of the sources that are frame folders (video files need none)."""
        self._embeddings: dict[str, torch.Tensor] = {}

    def video_embeddings(self, sources: Sequence[str]) -> torch.Tensor:
        """(N, V, D) embeddings of ``sources``, encoding only those not seen before."""
        sources = [str(source) for source in sources]
        todo = {}
        for source in sources:
            if source not in self._embeddings and source not in todo:
                todo[source] = self.frame_counts.get(source)
        if todo:
            videos = MultiViewVideos(
                list(todo), self.processor.video_processor, self.views, list(todo.values()),
                decode_timeout=self.decode_timeout,
            )  # fmt: skip
            embeds = encode_videos(
                self.model, videos, self.batch_size, self.num_workers, self.progress, f"encoding {len(todo)} videos"
            )
            self._embeddings.update(zip(todo, embeds))
        return torch.stack([self._embeddings[source] for source in sources])

    @torch.no_grad()
    def text_embeddings(self, class_names: Sequence[str]) -> torch.Tensor:
        """(K * C, D) unit-norm prompt embeddings of ``class_names`` under the templates, template-major."""
        from .descriptions import encode_label_texts

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
        the protocol's ``result.json``; returns the result's summary with a ``reports`` entry (split -> report)."""
        output_dir = Path(output_dir) / protocol.name
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
        reports = {}
        for split in protocol.splits:
            if not split.videos:
                raise EvaluationSetupError(f"{protocol.name}/{split.name} has no videos to evaluate")
            sources = [_resolve(video_root, path) for path, _ in split.videos]
            labels = np.array([label for _, label in split.videos], dtype=np.int64)
            scores = self.scores(sources, split.class_names).numpy()
            metadata = self.metadata(protocol.name, split.name, dataset, kind, extra_metadata)
            report = write_split_report(output_dir / split.name, scores, labels, split, metadata)
            result.add_split(split.name, **{key: report["metrics"][key] for key in _summary_keys(report)})
            reports[split.name] = report
        result.to_json(output_dir / RESULT_JSON_NAME)
        summary = result.summary()
        summary["reports"] = reports
        summary["output_dir"] = str(output_dir)
        return summary


def _summary_keys(report: dict) -> list[str]:
    return [key for key in SUMMARY_METRICS if key in report["metrics"]]


def write_split_report(output_dir: Path, scores: np.ndarray, labels: np.ndarray, split: EvalSplit, metadata: dict):
    """`write_evaluation_report` of one split, its scores saved beside it (``scores.npy``, ``labels.npy``)."""
    from .evaluation import write_evaluation_report

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
    from .data.datasets import load_video_dataset

    dataset = load_video_dataset(
        dataset_format, path, label_names=class_names, video_root=video_root, split=split, subset=subset
    )
    records = getattr(dataset, "records", None)
    if records is None:
        raise EvaluationSetupError(f"the {dataset_format!r} format streams its videos; evaluation needs a file list")
    samples = [(str(record.source), int(record.label)) for record in records]
    counts = [record.frame_count if record.is_frame_folder else None for record in records]
    return samples, list(dataset.label_names), counts


# ----------------------------------------------------------------------------------------------------------------
# Command line (training_scripts/run_eval.py and `actionclip eval`)


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `run_eval.py` / `actionclip eval`."""
    parser.add_argument("--model", required=True, help="a saved model directory (with its processor); for "
                        "--protocol few_shot it may hold '{shots}' to evaluate one model per K")  # fmt: skip
    parser.add_argument("--output_dir", "--output-dir", required=True, help="where the reports go")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="closed_set", help="what to evaluate")
    parser.add_argument(
        "--dataset_format",
        "--dataset-format",
        default="list",
        help="closed_set: how --eval_path is given: folder, list, ucf101, hmdb51, kinetics_csv, hf",
    )
    parser.add_argument("--eval_path", "--eval-path", help="test videos: list file (path label), or a folder")
    parser.add_argument("--train_path", "--train-path", help="training list file (base_to_novel, few_shot)")
    parser.add_argument("--video_root", "--video-root", help="where list paths are relative to (default: the list's)")
    parser.add_argument("--split_dir", "--split-dir", help="hmdb51/ucf101: the folder of the official split files")
    parser.add_argument("--class_names", "--class-names", help="label file (id,name CSV or TXT) or packaged list")
    parser.add_argument("--dataset_name", "--dataset-name", help="dataset name in the reports")
    parser.add_argument("--num_frames", "--num-frames", type=int, help="frames per view (default: the model's)")
    parser.add_argument("--num_clips", "--num-clips", type=int, default=1, help="temporal views per video")
    parser.add_argument("--num_crops", "--num-crops", type=int, default=1, choices=(1, 3), help="spatial views")
    parser.add_argument("--sampler", choices=("tsn", "uniform"), default="tsn", help="frame sampler of each clip")
    parser.add_argument("--templates", help="prompt templates: a set name, a file, or one template with {}")
    parser.add_argument(
        "--logit_scale",
        "--logit-scale",
        type=float,
        help="similarity multiplier (default: the config's eval_logit_scale, else the learned one)",
    )
    parser.add_argument("--descriptions", help="label descriptions JSON ({label: [sentence, ...]}): extra prompts")
    parser.add_argument("--num_subsets", "--num-subsets", type=int, default=10, help="half_class: class subsets")
    parser.add_argument("--fraction", type=float, default=0.5, help="half_class: fraction of the classes")
    parser.add_argument("--base_fraction", "--base-fraction", type=float, default=0.5, help="base_to_novel")
    parser.add_argument("--base_classes", "--base-classes", help="base_to_novel: label file of the base classes")
    parser.add_argument("--shots", type=int, nargs="+", help="few_shot: K values (default 2 4 8 16); "
                        "base_to_novel: one K for the base training list")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the class subsets and K-shot choices; with "
                        "--published_splits, which released base-to-novel training list (1, 2, 3; default 1)")  # fmt: skip
    parser.add_argument("--published_splits", "--published-splits", help="base_to_novel, few_shot: the folder of "
                        "the splits X-CLIP / ViFi-CLIP released (actionclip/published_splits.py) instead of drawing")  # fmt: skip
    parser.add_argument("--novel_classes", "--novel-classes", help="base_to_novel with --published_splits: "
                        "the novel classes' class-index CSV (the base ones: --base_classes)")  # fmt: skip
    parser.add_argument("--batch_size", "--batch-size", type=int, default=8, help="videos per batch")
    parser.add_argument("--num_workers", "--num-workers", type=int, default=0, help="decoding processes")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--no_progress", "--no-progress", action="store_true", help="no progress bars")
    return parser


def _require(args, *names: str) -> None:
    missing = [f"--{name}" for name in names if getattr(args, name) is None]
    if missing:
        raise EvaluationSetupError(f"--protocol {args.protocol} needs {' and '.join(missing)}")


def _list_samples(path, class_names_arg, default_names: str | None = None) -> tuple[list[Sample], list[str]]:
    samples = read_list_file(path)
    names_source = class_names_arg or default_names
    if names_source is None:
        raise EvaluationSetupError(f"{path}: give --class_names (a label file) for the classes its ids index")
    return samples, load_label_names(names_source)


def build_protocol(args) -> tuple[Protocol, str | None, list[int | None] | None]:
    """``(protocol, video root, frame counts of the first split or None)`` from the command-line arguments."""
    kind = args.protocol
    if kind == "closed_set":
        _require(args, "eval_path")
        samples, names, counts = samples_from_dataset_args(
            args.dataset_format, args.eval_path, args.video_root, args.class_names
        )
        return closed_set_protocol(samples, names), None, counts
    if kind in ("hmdb51", "ucf101"):
        _require(args, "split_dir", "video_root")
        if kind == "hmdb51":
            return (
                hmdb51_zero_shot(args.split_dir, args.class_names and load_label_names(args.class_names)),
                (args.video_root),
                None,
            )
        return ucf101_zero_shot(args.split_dir), args.video_root, None
    root = args.video_root or (str(Path(args.eval_path).parent) if args.eval_path else None)
    if kind == "k600_novel":
        _require(args, "eval_path")
        samples, names = _list_samples(args.eval_path, args.class_names, "kinetics600")
        return kinetics600_novel_zero_shot(samples, names), root, None
    if kind in ("half_class", "full_class"):
        _require(args, "eval_path")
        samples, names = _list_samples(args.eval_path, args.class_names)
        if kind == "full_class":
            return full_class_zero_shot(samples, names), root, None
        return half_class_zero_shot(samples, names, args.num_subsets, args.fraction, args.seed), root, None
    if getattr(args, "published_splits", None):
        return _published_protocol(args), args.video_root, None
    _require(args, "eval_path", "train_path")
    test, names = _list_samples(args.eval_path, args.class_names)
    train = read_list_file(args.train_path)
    if kind == "base_to_novel":
        if args.shots is not None and len(args.shots) != 1:
            raise EvaluationSetupError("base_to_novel takes one --shots value")
        base = load_label_names(args.base_classes) if args.base_classes else None
        shots = args.shots[0] if args.shots else None
        protocol = base_to_novel(train, test, names, base, args.base_fraction, shots, args.seed)
        return protocol, root, None
    return few_shot_protocol(train, test, names, tuple(args.shots or (2, 4, 8, 16)), args.seed), root, None


def _published_protocol(args) -> Protocol:
    """base_to_novel / few_shot on the released lists of ``--published_splits``."""
    from .published_splits import published_base_to_novel, published_few_shot

    if args.protocol not in ("base_to_novel", "few_shot"):
        raise EvaluationSetupError(f"--published_splits is for base_to_novel and few_shot, not {args.protocol}")
    if args.protocol == "base_to_novel":
        _require(args, "base_classes", "novel_classes", "video_root")
        seed = args.seed if args.seed >= 1 else 1
        if args.shots is not None and len(args.shots) != 1:
            raise EvaluationSetupError("base_to_novel takes one --shots value")
        shots = args.shots[0] if args.shots else 16  # the releases hold 16 videos per base class
        return published_base_to_novel(args.published_splits, args.base_classes, args.novel_classes, seed, shots)
    _require(args, "class_names", "video_root")
    return published_few_shot(args.published_splits, args.class_names, args.shots)


def _dataset_name(args) -> str:
    if args.dataset_name:
        return args.dataset_name
    if args.protocol in ("hmdb51", "ucf101"):
        return args.protocol.upper()
    if args.protocol == "k600_novel":
        return "Kinetics-600"
    path = args.eval_path or args.split_dir
    return Path(path).stem if path else args.protocol


def run_evaluation(args) -> dict:
    """Everything `run_eval.py` does, from parsed arguments; returns ``{protocol name: summary}`` and writes
    ``<output_dir>/summary.json``."""
    from .prompts import load_templates

    for name in ("num_clips", "batch_size"):
        if getattr(args, name) < 1:
            raise EvaluationSetupError(f"--{name} must be >= 1, got {getattr(args, name)}")
    # Checked before any data is read; 0 frames is not "the model's default", and a scale that is not a finite
    # positive number gives NaN or inverted rankings (the model refuses it too, later).
    if args.num_frames is not None and args.num_frames < 1:
        raise EvaluationSetupError(f"--num_frames must be >= 1, got {args.num_frames}")
    if args.logit_scale is not None and not (args.logit_scale > 0 and math.isfinite(args.logit_scale)):
        raise EvaluationSetupError(f"--logit_scale must be a finite positive number, got {args.logit_scale}")
    output_dir = Path(args.output_dir)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    protocol, root, counts = build_protocol(args)
    templates = list(load_templates(args.templates)) if args.templates else None
    descriptions = None
    if getattr(args, "descriptions", None):
        from .descriptions import load_descriptions

        descriptions = load_descriptions(args.descriptions)
        from .descriptions import warn_long_descriptions
        from .tokenizer import load_clip_tokenizer

        warn_long_descriptions(descriptions, load_clip_tokenizer(), templates or ("{}",))
    kind = "closed-set" if args.protocol == "closed_set" else "zero-shot"
    dataset = _dataset_name(args)
    summaries = {}

    def evaluator_for(model_dir: str) -> ProtocolEvaluator:
        model, processor = load_model_and_processor(model_dir, device)
        # --num_frames 0 is refused by ViewSettings, not taken as "the model's default".
        num_frames = model.config.num_frames if args.num_frames is None else args.num_frames
        views = ViewSettings(num_frames, args.num_clips, args.num_crops, args.sampler)
        return ProtocolEvaluator(
            model, processor, views, templates, args.logit_scale, args.batch_size, args.num_workers,
            model_name=str(model_dir), progress=not args.no_progress, descriptions=descriptions,
        )  # fmt: skip

    if args.protocol == "few_shot":
        # Training is the training script's job: write the K-shot lists it trains on, then evaluate the models
        # already trained on them (``--model runs/k{shots}``), each on the full test set.
        protocol.write(output_dir / protocol.name)
        shots = protocol.settings["shots"]
        if protocol.settings.get("published"):  # the released lists, as they are
            lists = {int(k): Path(path) for k, path in protocol.settings["train_lists"].items()}
        else:
            train = read_list_file(args.train_path)
            lists = write_few_shot_lists(
                train, output_dir / protocol.name, shots, protocol.settings["seed"],
                len(protocol.splits[0].class_names),
            )  # fmt: skip
        summary = {"protocol": protocol.name, "lists": {str(k): str(path) for k, path in lists.items()}, "splits": {}}
        for split, k in zip(protocol.splits, shots):
            model_dir = args.model.format(shots=k) if "{shots}" in args.model else None
            if model_dir is None or not Path(model_dir, "config.json").is_file():
                continue
            one = Protocol(protocol.name, (split,), protocol.settings)
            result = evaluator_for(model_dir).run_protocol(
                one, root, output_dir / f"{k}shot", dataset, f"few-shot-{k}", write_protocol_files=False
            )
            summary["splits"][split.name] = result["splits"][split.name]
        (output_dir / protocol.name / RESULT_JSON_NAME).write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        summaries[protocol.name] = summary
    else:
        evaluator = evaluator_for(args.model)
        if counts is not None:
            sources = [path for path, _ in protocol.splits[0].videos]
            evaluator.frame_counts.update((s, c) for s, c in zip(sources, counts) if c is not None)
        summary = evaluator.run_protocol(protocol, root, output_dir, dataset, kind)
        summary.pop("reports")
        summaries[protocol.name] = summary
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    return summaries


def format_summary(summaries: dict) -> str:
    """A few lines per protocol: each metric's mean and standard deviation over the splits, in percent."""
    lines = []
    for name, summary in summaries.items():
        metrics = summary.get("metrics")
        if not metrics:
            lines.append(f"{name}: lists written ({', '.join(summary.get('lists', {}))}-shot)")
            continue
        views = f"{summary['num_clips']}x{summary['num_crops']} views, {summary['num_frames']} frames"
        lines.append(f"{name} ({summary['num_splits']} splits, {views}, {summary['num_templates']} templates):")
        for metric, value in metrics.items():
            lines.append(f"  {metric}: {100 * value['mean']:.2f} +- {100 * value['std']:.2f}")
        if "harmonic_mean" in summary:
            lines.append(f"  harmonic mean (top-1): {100 * summary['harmonic_mean']['top1_accuracy']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = add_eval_arguments(
        argparse.ArgumentParser(description="Evaluate an ActionCLIP model: closed-set or zero-shot protocols.")
    )
    args = parser.parse_args(argv)
    print(format_summary(run_evaluation(args)))
    return 0


__all__ = [
    "PROTOCOLS",
    "EvaluationSetupError",
    "MultiViewVideos",
    "ProtocolEvaluator",
    "ViewSettings",
    "add_eval_arguments",
    "build_protocol",
    "class_scores",
    "closed_set_protocol",
    "encode_videos",
    "load_model_and_processor",
    "main",
    "order_pair_accuracy",
    "retrieval_metrics",
    "retrieval_ranks",
    "run_evaluation",
    "samples_from_dataset_args",
    "three_crops",
]
