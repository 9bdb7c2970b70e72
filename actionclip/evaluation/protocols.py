"""Evaluation protocols: which classes and which videos each evaluation uses, and how results are summarised.

The library part of the standard video-text evaluations (the evaluation program lives in ``training_scripts/``):

- label lists: :func:`load_label_names` for the packaged lists (``kinetics400``, ``kinetics600``, ``hmdb51``,
  ``ucf101``, ``k600_novel_split1`` .. ``k600_novel_split3``) or a user's CSV / TXT file;
- the datasets' official split files: :func:`load_ucf101_splits`, :func:`load_hmdb51_splits`;
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

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidLabelsError, InvalidProtocolError, InvalidSplitFileError
from .text_files import read_text_file

Sample = tuple[str, int]

LABELS_DIR = Path(__file__).resolve().with_name("labels")

# Packaged label lists by name (aliases included); the files and their sources are in labels/README.md.
PACKAGED_LABEL_LISTS: dict[str, str] = {
    "kinetics400": "kinetics400.csv",
    "k400": "kinetics400.csv",
    "kinetics600": "kinetics600.csv",
    "k600": "kinetics600.csv",
    "hmdb51": "hmdb51.csv",
    "ucf101": "ucf101.csv",
    **{f"k600_novel_split{k}": f"kinetics600_zeroshot_novel160_split{k}.csv" for k in (1, 2, 3)},
    **{f"kinetics600_zeroshot_novel160_split{k}": f"kinetics600_zeroshot_novel160_split{k}.csv" for k in (1, 2, 3)},
}


def _stable_rank(*parts) -> int:
    """A 64-bit integer from the parts' text, the same in every process, platform and Python version."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


# Label ids written by hand or by tools: ASCII digits only ('²' and other Unicode digits pass `str.isdigit`).
_LABEL_ID = re.compile(r"[0-9]+")


def is_label_id(text: str) -> bool:
    """Whether ``text`` is a non-negative integer in ASCII digits (no sign, no Unicode digits)."""
    return _LABEL_ID.fullmatch(text) is not None


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines, stripped (the official files have CRLF endings and trailing blanks), 1-based numbers."""
    if not path.is_file():
        raise FileNotFoundError(f"split file {str(path)!r} not found")
    text = read_text_file(path, "split file")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


# ----------------------------------------------------------------------------------------------------------------
# Label lists and list files


def available_label_lists() -> list[str]:
    """Names accepted by :func:`load_label_names` for the packaged label lists (aliases included)."""
    return sorted(PACKAGED_LABEL_LISTS)


def load_label_names(name_or_path: str | os.PathLike) -> list[str]:
    """Class names in label-id order, from a packaged list or a file.

    Args:
        name_or_path: a packaged name (see :func:`available_label_lists`), or the path of a CSV file with a
            header ``id,name`` (ids 0..N-1, any row order) or of a text file with one name per line.

    Raises:
        InvalidLabelsError: neither a packaged name nor an existing file; a malformed, empty or duplicated list.
    """
    key = str(name_or_path)
    if key.lower() in PACKAGED_LABEL_LISTS and not Path(key).is_file():
        return read_label_file(LABELS_DIR / PACKAGED_LABEL_LISTS[key.lower()])
    path = Path(name_or_path)
    if not path.is_file():
        raise InvalidLabelsError(
            f"{key!r} is neither a packaged label list ({', '.join(available_label_lists())}) nor an existing file"
        )
    return read_label_file(path)


def read_label_file(path: str | os.PathLike) -> list[str]:
    """Class names from a CSV (``id,name`` header) or a text file (one name per line); see :func:`load_label_names`.

    A file is read as CSV when it ends in ``.csv`` or its first non-blank line is the ``id,name`` header (whatever
    its name), so the ids never become labels. This is the one label-file reader: ``actionclip classify
    --labels-file``, ``actionclip eval --class_names`` and the training script's ``--class_names`` all use it.
    """
    path = Path(path)
    try:
        text = read_text_file(path, "label file")
    except UnicodeDecodeError:
        raise InvalidLabelsError(f"label file {str(path)!r} is not UTF-8 text") from None
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    has_header = [cell.strip().lower() for cell in first_line.split(",")[:2]] == ["id", "name"]
    if path.suffix.lower() == ".csv" or has_header:
        rows = list(csv.reader(text.splitlines()))
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows or [cell.strip().lower() for cell in rows[0][:2]] != ["id", "name"]:
            raise InvalidLabelsError(f"label file {str(path)!r} must start with the header 'id,name'")
        by_id: dict[int, str] = {}
        for number, row in enumerate(rows[1:], start=2):
            try:
                label_id, name = int(row[0]), row[1].strip()
            except (ValueError, IndexError):
                raise InvalidLabelsError(
                    f"label file {str(path)!r}, row {number}: expected 'id,name', got {row}"
                ) from None
            if label_id in by_id:
                raise InvalidLabelsError(f"label file {str(path)!r}: id {label_id} appears twice")
            by_id[label_id] = name
        if sorted(by_id) != list(range(len(by_id))):
            raise InvalidLabelsError(f"label file {str(path)!r}: ids must be 0..{len(by_id) - 1}, each once")
        names = [by_id[i] for i in range(len(by_id))]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    _check_names(names, f"label file {str(path)!r}")
    return names


def _check_names(names: Sequence[str], what: str) -> None:
    if not names:
        raise InvalidLabelsError(f"{what} has no class names")
    if any(not name for name in names):
        raise InvalidLabelsError(f"{what} has an empty class name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidLabelsError(f"{what} has duplicate class names: {duplicates}")


def write_label_csv(path: str | os.PathLike, names: Sequence[str]) -> Path:
    """Write ``id,name`` rows; :func:`read_label_file` reads them back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "name"])
        writer.writerows(enumerate(names))
    return path


def read_list_file(path: str | os.PathLike) -> list[Sample]:
    """``(relative_path, label_id)`` from a list file of lines ``relative/path.mp4 label_id`` (paths may hold spaces)."""
    path = Path(path)
    samples = []
    for number, line in _read_lines(path):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not is_label_id(parts[1]):
            raise InvalidSplitFileError(path, number, f"expected 'relative/path label_id', got {line!r}")
        samples.append((parts[0], int(parts[1])))
    return samples


def write_list_file(path: str | os.PathLike, samples: Iterable[Sample]) -> Path:
    """Write ``relative/path label_id`` lines; :func:`read_list_file` reads them back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{video} {label}\n" for video, label in samples), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Official split files


@dataclass(frozen=True)
class DatasetSplit:
    """One official train/test split of a dataset; label ids index ``class_names``."""

    name: str
    class_names: tuple[str, ...]
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]


def load_ucf101_splits(split_dir: str | os.PathLike, splits: Sequence[int] = (1, 2, 3)) -> list[DatasetSplit]:
    """Parse UCF101's ``classInd.txt``, ``trainlist0{k}.txt`` and ``testlist0{k}.txt``.

    ``classInd.txt`` lines are ``1 ApplyEyeMakeup`` (1-based ids, made 0-based here); train lines are
    ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``; test lines have no label, which comes from the folder.
    Class names are the CamelCase folder names, as in the packaged ``ucf101`` list.

    Raises:
        FileNotFoundError: a file is missing.
        InvalidSplitFileError: a malformed line, an unknown class, or a label that contradicts its folder.
    """
    split_dir = Path(split_dir)
    index_path = split_dir / "classInd.txt"
    by_number: dict[int, str] = {}
    for number, line in _read_lines(index_path):
        parts = line.split()
        if len(parts) != 2 or not is_label_id(parts[0]):
            raise InvalidSplitFileError(index_path, number, f"expected '<1-based id> <ClassName>', got {line!r}")
        by_number[int(parts[0])] = parts[1]
    if sorted(by_number) != list(range(1, len(by_number) + 1)):
        raise InvalidSplitFileError(index_path, None, f"class ids must be 1..{len(by_number)}, each once")
    class_names = tuple(by_number[i] for i in range(1, len(by_number) + 1))
    label_of = {name: i for i, name in enumerate(class_names)}

    def label_from_folder(path: Path, number: int, video: str) -> int:
        folder = video.split("/", 1)[0]
        if "/" not in video or folder not in label_of:
            raise InvalidSplitFileError(path, number, f"{video!r} is not in a class folder of classInd.txt")
        return label_of[folder]

    result = []
    for k in splits:
        train_path, test_path = split_dir / f"trainlist0{k}.txt", split_dir / f"testlist0{k}.txt"
        train = []
        for number, line in _read_lines(train_path):
            parts = line.split()
            if len(parts) != 2 or not is_label_id(parts[1]):
                raise InvalidSplitFileError(
                    train_path, number, f"expected 'Class/video.avi <1-based id>', got {line!r}"
                )
            label = label_from_folder(train_path, number, parts[0])
            if int(parts[1]) - 1 != label:
                raise InvalidSplitFileError(
                    train_path,
                    number,
                    f"label {parts[1]} contradicts the folder {class_names[label]!r} (id {label + 1})",
                )
            train.append((parts[0], label))
        test = []
        for number, line in _read_lines(test_path):
            video = line.split()[0]
            test.append((video, label_from_folder(test_path, number, video)))
        result.append(DatasetSplit(f"split{k}", class_names, tuple(train), tuple(test)))
    return result


_HMDB_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")


def load_hmdb51_splits(
    split_dir: str | os.PathLike,
    splits: Sequence[int] = (1, 2, 3),
    class_names: Sequence[str] | None = None,
) -> list[DatasetSplit]:
    """Parse HMDB51's ``<class>_test_split{k}.txt`` files (lines ``video.avi 1``: 1 train, 2 test, 0 unused).

    Relative paths are ``<class>/<video>.avi`` (the dataset's folder per class).

    Args:
        split_dir: the folder holding the split files (``testTrainMulti_7030_splits``).
        splits: which of the three splits.
        class_names: the label order; a name matches a file's class with spaces for underscores
            (``"brush hair"`` ~ ``brush_hair``). ``None``: the packaged ``hmdb51`` order when the files hold
            exactly its 51 classes; otherwise the classes in the order of their sorted split-file names, with
            spaces for underscores.

    Raises:
        FileNotFoundError: no split file for a requested split.
        InvalidSplitFileError: a malformed line, a class without a name in ``class_names``, or a split whose
            classes differ from the others'.
    """
    split_dir = Path(split_dir)
    files: dict[int, dict[str, Path]] = {}
    for path in sorted(split_dir.iterdir()) if split_dir.is_dir() else []:
        match = _HMDB_SPLIT_FILE.match(path.name)
        if match:
            files.setdefault(int(match["k"]), {})[match["cls"]] = path
    if class_names is None:
        found = [cls.replace("_", " ") for cls in files.get(splits[0], {})] if splits else []
        packaged = load_label_names("hmdb51")
        # The customary order is neither alphabetical by class nor by file name ("climb" < "climb stairs" but
        # "kick ball" < "kick"): use it when the files hold the 51 classes, else the sorted file-name order.
        class_names = packaged if sorted(found) == sorted(packaged) else found
    label_of = {name.replace("_", " ").lower(): i for i, name in enumerate(class_names)}
    result = []
    for k in splits:
        if k not in files:
            raise FileNotFoundError(f"no HMDB51 split files '*_test_split{k}.txt' in {str(split_dir)!r}")
        found = {cls.replace("_", " ").lower() for cls in files[k]}
        if found != set(label_of):
            raise InvalidSplitFileError(
                split_dir,
                None,
                f"split {k} has classes {sorted(found - set(label_of))} without a class name and lacks "
                f"{sorted(set(label_of) - found)}",
            )
        train, test = [], []
        for cls, path in sorted(files[k].items(), key=lambda item: label_of[item[0].replace("_", " ").lower()]):
            label = label_of[cls.replace("_", " ").lower()]
            for number, line in _read_lines(path):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise InvalidSplitFileError(path, number, f"expected 'video.avi 0|1|2', got {line!r}")
                if parts[1] == "1":
                    train.append((f"{cls}/{parts[0]}", label))
                elif parts[1] == "2":
                    test.append((f"{cls}/{parts[0]}", label))
        result.append(DatasetSplit(f"split{k}", tuple(class_names), tuple(train), tuple(test)))
    return result


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
    "LABELS_DIR",
    "PACKAGED_LABEL_LISTS",
    "DatasetSplit",
    "EvalSplit",
    "InvalidProtocolError",
    "InvalidSplitFileError",
    "Protocol",
    "ProtocolResult",
    "Sample",
    "aggregate_metrics",
    "available_label_lists",
    "base_to_novel",
    "few_shot_protocol",
    "few_shot_subset",
    "full_class_zero_shot",
    "half_class_zero_shot",
    "harmonic_mean",
    "hmdb51_zero_shot",
    "kinetics600_novel_zero_shot",
    "load_hmdb51_splits",
    "load_label_names",
    "load_ucf101_splits",
    "official_splits_zero_shot",
    "read_label_file",
    "read_list_file",
    "seeded_class_subset",
    "ucf101_zero_shot",
    "write_few_shot_lists",
    "write_label_csv",
    "write_list_file",
]
