"""Evaluation protocols: which classes and which videos each evaluation uses, and how results are summarised.

The library part of the standard video-text evaluations (the program is ``actionclip eval``,
`actionclip.evaluation.program`); label lists and split files are read by `actionclip.data.labels` and
`actionclip.data.splits`:

- zero-shot protocols: official three splits of HMDB51 / UCF101 (:func:`official_splits_zero_shot`), the
  Kinetics-600 novel classes in three 160-class subsets (:func:`kinetics600_novel_zero_shot`), half-class
  (:func:`half_class_zero_shot`), full-class (:func:`full_class_zero_shot`) and base-to-novel
  (:func:`base_to_novel`);
- few-shot K-shot training sets (:func:`few_shot_subset`, :func:`few_shot_protocol`, :func:`write_few_shot_lists`);
- :class:`ProtocolResult`, which aggregates per-split metrics into mean and standard deviation and records the
  protocol, templates, views and frames used, as a dict ready for JSON.

Every random choice (class subsets, base/novel classes, K-shot videos) ranks items by a keyed hash of
``(seed, purpose, item name)``. The choice therefore depends on the seed and the names only, not on the order
the inputs come in, the platform or the library versions, and K-shot sets are nested (the 2-shot videos are among
the 4-shot ones).

A sample is ``(relative_path, label_id)`` with ``label_id`` 0-based, indexing the class names it comes with.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.labels import load_label_names, write_label_csv
from ..data.splits import DatasetSplit, Sample, load_hmdb51_splits, load_ucf101_splits, write_list_file
from ..errors import InvalidProtocolError

# The protocols `actionclip eval --protocol` runs.
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


def _stable_rank(*parts) -> int:
    """A 64-bit integer from the parts' text, the same in every process, platform and Python version."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


# ----------------------------------------------------------------------------------------------------------------
# Protocols: which classes and which videos each evaluation split uses


@dataclass(frozen=True)
class EvalSplit:
    """One evaluation of a protocol. Label ids of ``videos`` and ``train_videos`` index ``class_names``."""

    name: str
    class_names: tuple[str, ...]
    """The candidate labels given to the text encoder, in label-id order."""
    videos: tuple[Sample, ...]
    """The videos evaluated."""
    train_videos: tuple[Sample, ...] = ()
    """The videos trained on, where the protocol trains (few-shot, base-to-novel); empty for zero-shot."""

    def to_dict(self, include_videos: bool = False) -> dict:
        result = {
            "name": self.name,
            "num_classes": len(self.class_names),
            "num_videos": len(self.videos),
            "num_train_videos": len(self.train_videos),
            "class_names": list(self.class_names),
        }
        if include_videos:
            result["videos"] = [list(sample) for sample in self.videos]
            result["train_videos"] = [list(sample) for sample in self.train_videos]
        return result


@dataclass(frozen=True)
class Protocol:
    """A named set of evaluation splits whose metrics are reported as mean and standard deviation."""

    name: str
    splits: tuple[EvalSplit, ...]
    settings: dict = field(default_factory=dict)
    """How the splits were made (seed, fractions, shots, source files), for the record."""

    def to_dict(self, include_videos: bool = False) -> dict:
        return {
            "protocol": self.name,
            "settings": dict(self.settings),
            "splits": [split.to_dict(include_videos) for split in self.splits],
        }

    def write(self, output_dir: str | os.PathLike) -> Path:
        """Write each split's ``<split>_labels.csv``, ``<split>_test.txt`` (and ``<split>_train.txt`` where it
        trains) plus ``protocol.json``, so an evaluation program can run from the files alone."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        for split in self.splits:
            write_label_csv(output_dir / f"{split.name}_labels.csv", split.class_names)
            write_list_file(output_dir / f"{split.name}_test.txt", split.videos)
            if split.train_videos:
                write_list_file(output_dir / f"{split.name}_train.txt", split.train_videos)
        path = output_dir / "protocol.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _subset_split(name: str, videos: Iterable[Sample], class_names: Sequence[str], keep: Sequence[int]) -> EvalSplit:
    """The videos of classes ``keep`` (ids into ``class_names``), relabelled to positions in ``keep``."""
    new_id = {old: new for new, old in enumerate(keep)}
    subset = tuple((video, new_id[label]) for video, label in videos if label in new_id)
    return EvalSplit(name, tuple(class_names[i] for i in keep), subset)


def _check_labels(videos: Sequence[Sample], num_classes: int, what: str) -> None:
    bad = sorted({label for _, label in videos if not 0 <= label < num_classes})
    if bad:
        raise InvalidProtocolError(f"{what}: label ids {bad[:10]} are outside 0..{num_classes - 1}")


def official_splits_zero_shot(name: str, splits: Sequence[DatasetSplit]) -> Protocol:
    """Zero-shot on the official splits (HMDB51, UCF101): all classes, each split's test videos."""
    if not splits:
        raise InvalidProtocolError(f"{name}: no splits given")
    evals = tuple(EvalSplit(split.name, split.class_names, split.test) for split in splits)
    return Protocol(name, evals, {"kind": "official_splits", "splits": [split.name for split in splits]})


def hmdb51_zero_shot(split_dir: str | os.PathLike, class_names: Sequence[str] | None = None) -> Protocol:
    """HMDB51 zero-shot: all 51 classes, mean and std over the three official test splits."""
    return official_splits_zero_shot("hmdb51_zero_shot", load_hmdb51_splits(split_dir, class_names=class_names))


def ucf101_zero_shot(split_dir: str | os.PathLike) -> Protocol:
    """UCF101 zero-shot: all 101 classes, mean and std over the three official test splits."""
    return official_splits_zero_shot("ucf101_zero_shot", load_ucf101_splits(split_dir))


def kinetics600_novel_zero_shot(
    videos: Sequence[Sample],
    class_names: Sequence[str] | None = None,
    subsets: Sequence[Sequence[str]] | None = None,
) -> Protocol:
    """Kinetics-600 novel classes: the videos of each 160-class subset, relabelled to the subset's order.

    Args:
        videos: Kinetics-600 (validation) videos labelled with ids into ``class_names``.
        class_names: Kinetics-600 class names (``None``: the packaged ``kinetics600`` list).
        subsets: the class subsets (``None``: the packaged ``k600_novel_split1..3``, 160 classes each).

    Raises:
        InvalidProtocolError: a subset names a class missing from ``class_names``, or a label id is out of range.
    """
    class_names = list(class_names) if class_names is not None else load_label_names("kinetics600")
    if subsets is None:
        subsets = [load_label_names(f"k600_novel_split{k}") for k in (1, 2, 3)]
    _check_labels(videos, len(class_names), "kinetics600_novel")
    label_of = {name: i for i, name in enumerate(class_names)}
    evals = []
    for k, subset in enumerate(subsets, start=1):
        missing = [name for name in subset if name not in label_of]
        if missing:
            raise InvalidProtocolError(f"novel subset {k} names classes not in class_names: {missing[:10]}")
        evals.append(_subset_split(f"split{k}", videos, class_names, [label_of[name] for name in subset]))
    return Protocol(
        "kinetics600_novel_zero_shot",
        tuple(evals),
        {"kind": "class_subsets", "subset_sizes": [len(s) for s in subsets]},
    )


def seeded_class_subset(class_names: Sequence[str], size: int, seed: int, purpose: str = "subset") -> list[int]:
    """``size`` class ids chosen by ``(seed, purpose)``, in ascending id order; see the module docstring."""
    if not 0 < size <= len(class_names):
        raise InvalidProtocolError(f"cannot choose {size} of {len(class_names)} classes")
    ranked = sorted(range(len(class_names)), key=lambda i: (_stable_rank(purpose, seed, class_names[i]), i))
    return sorted(ranked[:size])


def half_class_zero_shot(
    videos: Sequence[Sample],
    class_names: Sequence[str],
    num_subsets: int = 10,
    fraction: float = 0.5,
    seed: int = 0,
    name: str = "half_class_zero_shot",
) -> Protocol:
    """Zero-shot on ``num_subsets`` random class subsets of ``fraction`` of the classes (seeded), mean and std."""
    if num_subsets < 1:
        raise InvalidProtocolError(f"num_subsets must be >= 1, got {num_subsets}")
    if not 0 < fraction <= 1:
        raise InvalidProtocolError(f"fraction must be in (0, 1], got {fraction}")
    _check_labels(videos, len(class_names), name)
    size = max(1, round(fraction * len(class_names)))
    evals = tuple(
        _subset_split(
            f"subset{i}", videos, class_names, seeded_class_subset(class_names, size, seed, f"half_class:{i}")
        )
        for i in range(num_subsets)
    )
    settings = {"kind": "random_class_subsets", "num_subsets": num_subsets, "fraction": fraction, "seed": seed}
    return Protocol(name, evals, settings)


def full_class_zero_shot(
    videos: Sequence[Sample], class_names: Sequence[str], name: str = "full_class_zero_shot"
) -> Protocol:
    """Zero-shot on all classes at once (one split)."""
    _check_labels(videos, len(class_names), name)
    return Protocol(name, (EvalSplit("all", tuple(class_names), tuple(videos)),), {"kind": "all_classes"})


def base_to_novel(
    train_videos: Sequence[Sample],
    test_videos: Sequence[Sample],
    class_names: Sequence[str],
    base_classes: Sequence[str] | None = None,
    base_fraction: float = 0.5,
    shots: int | None = None,
    seed: int = 0,
    name: str = "base_to_novel",
) -> Protocol:
    """Train on the base classes, test on base and on novel classes (report both and their harmonic mean).

    Args:
        train_videos, test_videos: samples with ids into ``class_names``.
        base_classes: the base class names; ``None``: ``round(base_fraction * N)`` classes chosen by ``seed``.
        shots: train on ``shots`` videos per base class (:func:`few_shot_subset`, e.g. 16), or all when ``None``.

    Returns:
        a protocol with splits ``base`` (``train_videos`` set, relabelled to the base classes) and ``novel``.
    """
    _check_labels(train_videos, len(class_names), name)
    _check_labels(test_videos, len(class_names), name)
    if base_classes is None:
        if not 0 < base_fraction < 1:
            raise InvalidProtocolError(f"base_fraction must be in (0, 1), got {base_fraction}")
        size = min(len(class_names) - 1, max(1, round(base_fraction * len(class_names))))
        base_ids = seeded_class_subset(class_names, size, seed, "base_to_novel")
    else:
        unknown = [c for c in base_classes if c not in class_names]
        if unknown:
            raise InvalidProtocolError(f"base classes not in class_names: {unknown[:10]}")
        base_ids = sorted(class_names.index(c) for c in base_classes)
        if not 0 < len(base_ids) < len(class_names):
            raise InvalidProtocolError("base_classes must be a non-empty proper subset of class_names")
    novel_ids = sorted(set(range(len(class_names))) - set(base_ids))
    base = _subset_split("base", test_videos, class_names, base_ids)
    base_train = _subset_split("base", train_videos, class_names, base_ids).videos
    if shots is not None:
        base_train = tuple(few_shot_subset(base_train, shots, seed, num_classes=len(base_ids)))
    base = EvalSplit("base", base.class_names, base.videos, base_train)
    novel = _subset_split("novel", test_videos, class_names, novel_ids)
    settings = {"kind": "base_to_novel", "seed": seed, "shots": shots, "base_classes": list(base.class_names)}
    settings["base_fraction"] = base_fraction if base_classes is None else None
    return Protocol(name, (base, novel), settings)


# ----------------------------------------------------------------------------------------------------------------
# Few-shot


def few_shot_subset(
    videos: Sequence[Sample], shots: int, seed: int = 0, num_classes: int | None = None
) -> list[Sample]:
    """``shots`` videos of every class, chosen by ``seed``; the K-shot sets of one seed are nested.

    Args:
        videos: the training samples to choose from.
        shots: videos per class (K).
        num_classes: the number of classes (ids 0..num_classes-1) that must all be present; ``None``: the
            classes present in ``videos``.

    Returns:
        samples in class order, then in path order (independent of the order of ``videos``).

    Raises:
        InvalidProtocolError: a class has fewer than ``shots`` videos.
    """
    if shots < 1:
        raise InvalidProtocolError(f"shots must be >= 1, got {shots}")
    by_class: dict[int, list[int]] = {}
    for position, (_, label) in enumerate(videos):
        by_class.setdefault(label, []).append(position)
    classes = range(num_classes) if num_classes is not None else sorted(by_class)
    short = {label: len(by_class.get(label, [])) for label in classes if len(by_class.get(label, [])) < shots}
    if short:
        shown = dict(list(short.items())[:10])
        raise InvalidProtocolError(f"{shots}-shot needs {shots} videos per class; these classes have fewer: {shown}")
    chosen = []
    for label in classes:
        ranked = sorted(by_class[label], key=lambda p: (_stable_rank("few_shot", seed, videos[p][0]), p))
        chosen.extend(sorted(videos[p] for p in ranked[:shots]))
    return chosen


def few_shot_protocol(
    train_videos: Sequence[Sample],
    test_videos: Sequence[Sample],
    class_names: Sequence[str],
    shots: Sequence[int] = (2, 4, 8, 16),
    seed: int = 0,
    name: str = "few_shot",
) -> Protocol:
    """One split per K: train on K videos per class, test on all ``test_videos`` with all classes."""
    _check_labels(train_videos, len(class_names), name)
    _check_labels(test_videos, len(class_names), name)
    evals = tuple(
        EvalSplit(
            f"{k}shot",
            tuple(class_names),
            tuple(test_videos),
            tuple(few_shot_subset(train_videos, k, seed, len(class_names))),
        )
        for k in shots
    )
    return Protocol(name, evals, {"kind": "few_shot", "shots": list(shots), "seed": seed})


def write_few_shot_lists(
    train_videos: Sequence[Sample],
    output_dir: str | os.PathLike,
    shots: Sequence[int] = (2, 4, 8, 16),
    seed: int = 0,
    num_classes: int | None = None,
    prefix: str = "train",
) -> dict[int, Path]:
    """Write ``<prefix>_<K>shot_seed<seed>.txt`` list files; returns K -> path."""
    output_dir = Path(output_dir)
    return {
        k: write_list_file(
            output_dir / f"{prefix}_{k}shot_seed{seed}.txt", few_shot_subset(train_videos, k, seed, num_classes)
        )
        for k in shots
    }


# ----------------------------------------------------------------------------------------------------------------
# Results


def aggregate_metrics(split_metrics: Mapping[str, Mapping[str, float]], ddof: int = 0) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over splits of each metric: ``{"top1": {"mean": .., "std": ..}, ...}``.

    ``ddof=0`` (population standard deviation, numpy's default) is what the Kinetics-600 / HMDB51 / UCF101
    zero-shot tables report; with one split the std is 0.

    Raises:
        InvalidProtocolError: no splits, or splits that report different metrics.
    """
    if not split_metrics:
        raise InvalidProtocolError("no split metrics to aggregate")
    names = [set(metrics) for metrics in split_metrics.values()]
    if any(keys != names[0] for keys in names):
        raise InvalidProtocolError(
            f"splits report different metrics: { {s: sorted(m) for s, m in split_metrics.items()} }"
        )
    result = {}
    for metric in sorted(names[0]):
        values = [float(metrics[metric]) for metrics in split_metrics.values()]
        mean = math.fsum(values) / len(values)
        denominator = len(values) - ddof
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / denominator) if denominator > 0 else 0.0
        result[metric] = {"mean": mean, "std": std}
    return result


def harmonic_mean(base: float, novel: float) -> float:
    """The base-to-novel summary number: ``2 b n / (b + n)`` (0 when both are 0)."""
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


@dataclass
class ProtocolResult:
    """Per-split metrics of one protocol run and how it was run; :meth:`summary` is a dict ready for JSON."""

    protocol: str
    split_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Split name -> metric name -> value (e.g. ``{"split1": {"top1_accuracy": 0.482, "top5_accuracy": 0.77}}``; the
    evaluation script stores fractions and says so in ``settings["metric_units"]``)."""
    templates: list[str] = field(default_factory=list)
    """The prompt templates ensembled for the class texts."""
    num_frames: int | None = None
    """Frames per view given to the model."""
    num_clips: int = 1
    """Temporal views per video."""
    num_crops: int = 1
    """Spatial views per clip."""
    settings: dict = field(default_factory=dict)
    """Anything else worth recording (checkpoint, seed, sampler, logit scale)."""

    def add_split(self, name: str, **metrics: float) -> None:
        if name in self.split_metrics:
            raise InvalidProtocolError(f"split {name!r} of {self.protocol} already has metrics")
        self.split_metrics[name] = {key: float(value) for key, value in metrics.items()}

    def summary(self, ddof: int = 0) -> dict:
        """``protocol``, ``num_splits``, per-split metrics, ``mean``/``std`` per metric, the run's settings and,
        for a base-to-novel run, ``harmonic_mean`` of each metric over the ``base`` and ``novel`` splits."""
        result = {
            "protocol": self.protocol,
            "num_splits": len(self.split_metrics),
            "splits": {name: dict(metrics) for name, metrics in self.split_metrics.items()},
            "metrics": aggregate_metrics(self.split_metrics, ddof),
            "std_ddof": ddof,
            "templates": list(self.templates),
            "num_templates": len(self.templates),
            "num_frames": self.num_frames,
            "num_clips": self.num_clips,
            "num_crops": self.num_crops,
            "num_views": self.num_clips * self.num_crops,
            "settings": dict(self.settings),
        }
        if {"base", "novel"} <= set(self.split_metrics):
            base, novel = self.split_metrics["base"], self.split_metrics["novel"]
            result["harmonic_mean"] = {m: harmonic_mean(base[m], novel[m]) for m in sorted(base) if m in novel}
        return result

    def to_json(self, path: str | os.PathLike, ddof: int = 0) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(ddof), indent=2) + "\n", encoding="utf-8")
        return path


__all__ = [
    "PROTOCOLS",
    "EvalSplit",
    "Protocol",
    "ProtocolResult",
    "aggregate_metrics",
    "base_to_novel",
    "few_shot_protocol",
    "few_shot_subset",
    "full_class_zero_shot",
    "half_class_zero_shot",
    "harmonic_mean",
    "hmdb51_zero_shot",
    "kinetics600_novel_zero_shot",
    "official_splits_zero_shot",
    "seeded_class_subset",
    "ucf101_zero_shot",
    "write_few_shot_lists",
]
