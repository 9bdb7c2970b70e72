"""The base-to-novel and few-shot splits as X-CLIP and ViFi-CLIP released them, so numbers are comparable with
their tables.

`protocols.base_to_novel` and `protocols.few_shot_protocol` draw their own classes and videos from a seed; papers
after ActionCLIP instead train and test on fixed lists they published (ViFi-CLIP, Rasheed et al. CVPR 2023, repository
``muzairkhattak/ViFi-CLIP``: ``labels/`` and ``datasets_splits/``, in X-CLIP's annotation format). Their files:

Class-index file (``labels/<dataset>_labels.csv``, ``<dataset>_base_labels.csv``, ``<dataset>_novel_labels.csv``)::

    id,name
    0,brush hair
    1,cartwheel

a header ``id,name``, then one class per line, ids 0-based and consecutive. A video list's label ids index the class
file it is used with (base lists the base classes, novel lists the novel classes).

Video list (one per split / seed / K)::

    v_ApplyEyeMakeup_g24_c04.avi 0
    Aussie_Brunette_Brushing_Long_Hair_brush_hair_u_nm_np1_ba_med_3.avi 0

the video's path relative to the dataset's video folder (the released lists name the files of one flat folder), a
space, the 0-based label id.

**Base-to-novel** (``datasets_splits/base2novel_splits/<dataset>_splits/``, :func:`published_base_to_novel`): each
dataset's classes are split once into base and novel halves (HMDB-51: 26 base / 25 novel; UCF-101: 51 / 50;
Kinetics-400: 200 / 200; SSv2: 87 / 87). For each of three seeds, ``fs_base_s<seed>_train.txt`` holds 16 training
videos per base class; the model trained on it is tested on ``base_val.txt`` with the base classes and on
``novel_val.txt`` with the novel classes (zero-shot). The tables report each accuracy averaged over the three
seeds and the harmonic mean of those averages. Here one run is one seed (``--seed``): its ``base`` and ``novel``
splits and their harmonic mean.

**Few-shot** (``datasets_splits/<dataset>_splits/``, :func:`published_few_shot`): all-way K-shot on HMDB-51, UCF-101
and SSv2: ``train1_few_shot_<K>.txt`` holds K training videos of every class (K = 2, 4, 8, 16, drawn once from
the first official training split), and every model is tested on ``val1.txt`` (the first official test split)
with all classes (``labels/<dataset>_labels.csv``). One split per K; a separate model per K.

Every parse error is an :class:`~actionclip.errors.InvalidSplitFileError` naming the file and, where one line is
at fault, the 1-based line number.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..data.splits import Sample
from ..errors import InvalidSplitFileError
from .protocols import EvalSplit, Protocol

BASE_TO_NOVEL_TRAIN = "fs_base_s{seed}_train.txt"
BASE_TO_NOVEL_BASE_TEST = "base_val.txt"
BASE_TO_NOVEL_NOVEL_TEST = "novel_val.txt"
FEW_SHOT_TRAIN = "train{split}_few_shot_{shots}.txt"
FEW_SHOT_TEST = "val{split}.txt"
_FEW_SHOT_NAME = re.compile(r"^train(?P<split>\d+)_few_shot_(?P<shots>\d+)\.txt$")


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines, stripped, with 1-based numbers."""
    if not path.is_file():
        raise InvalidSplitFileError(path, None, "no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidSplitFileError(path, None, f"not UTF-8 text ({error})") from None
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_class_index(path: str | os.PathLike) -> list[str]:
    """Class names in id order from a released class-index CSV (header ``id,name``; ids 0..N-1, each once).

    Raises:
        InvalidSplitFileError: no header, a line that is not ``<id>,<name>``, a repeated id or name, or ids that
            are not 0..N-1 (the line number of the first offending line).
    """
    path = Path(path)
    lines = _lines(path)
    if not lines or [cell.strip().lower() for cell in lines[0][1].split(",", 1)] != ["id", "name"]:
        number = lines[0][0] if lines else None
        raise InvalidSplitFileError(path, number, "a class-index file starts with the header 'id,name'")
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for expected, (number, line) in enumerate(lines[1:]):
        parts = line.split(",", 1)
        if len(parts) != 2 or not parts[0].strip().isdigit() or not parts[1].strip():
            raise InvalidSplitFileError(path, number, f"expected '<id>,<class name>', got {line!r}")
        label_id, name = int(parts[0]), parts[1].strip().strip('"')
        if label_id in names:
            raise InvalidSplitFileError(path, number, f"id {label_id} appears twice")
        if label_id != expected:
            raise InvalidSplitFileError(path, number, f"ids must be 0, 1, 2, ... in order: expected {expected}")
        if name in seen:
            raise InvalidSplitFileError(path, number, f"class {name!r} appears twice (first with id {seen[name]})")
        names[label_id], seen[name] = name, label_id
    if not names:
        raise InvalidSplitFileError(path, None, "no class after the header")
    return [names[i] for i in range(len(names))]


def read_video_list(path: str | os.PathLike, num_classes: int) -> list[Sample]:
    """``(relative path, label id)`` from a released video list (lines ``<path> <0-based label id>``).

    Raises:
        InvalidSplitFileError: a line without a path and an integer id, an id outside ``0..num_classes - 1``, or a
            video listed twice.
    """
    path = Path(path)
    samples: list[Sample] = []
    first_line: dict[str, int] = {}
    for number, line in _lines(path):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise InvalidSplitFileError(path, number, f"expected '<video path> <label id>', got {line!r}")
        video, label = parts[0], int(parts[1])
        if label >= num_classes:
            raise InvalidSplitFileError(
                path, number, f"label id {label} is outside the {num_classes} classes of its class-index file"
            )
        if video in first_line:
            raise InvalidSplitFileError(path, number, f"{video!r} is listed twice (first on line {first_line[video]})")
        first_line[video] = number
        samples.append((video, label))
    if not samples:
        raise InvalidSplitFileError(path, None, "lists no video")
    return samples


def _check_shots(path: Path, samples: Sequence[Sample], num_classes: int, shots: int | None) -> None:
    """Every class has ``shots`` videos (or, with ``shots`` None, at least one)."""
    counts = Counter(label for _, label in samples)
    wrong = {c: counts.get(c, 0) for c in range(num_classes) if counts.get(c, 0) != shots and shots is not None}
    missing = [c for c in range(num_classes) if counts.get(c, 0) == 0]
    if wrong:
        shown = dict(list(wrong.items())[:5])
        raise InvalidSplitFileError(path, None, f"expected {shots} videos per class; class id: count {shown}")
    if missing:
        raise InvalidSplitFileError(path, None, f"classes {missing[:10]} have no video")


def published_base_to_novel(
    split_dir: str | os.PathLike,
    base_classes: str | os.PathLike,
    novel_classes: str | os.PathLike,
    seed: int = 1,
    shots: int | None = 16,
    name: str = "base_to_novel_published",
) -> Protocol:
    """One seed of the released base-to-novel split (see the module docstring).

    Args:
        split_dir: the folder with ``fs_base_s<seed>_train.txt``, ``base_val.txt`` and ``novel_val.txt``.
        base_classes, novel_classes: the class-index CSVs of the base and the novel classes.
        seed: which of the released training lists (1, 2 or 3).
        shots: videos per base class expected in the training list (16 in the releases; None: do not check).

    Returns:
        a protocol with splits ``base`` (its ``train_videos`` the seed's list) and ``novel``.

    Raises:
        InvalidSplitFileError: a malformed file, or base and novel classes that overlap.
    """
    split_dir = Path(split_dir)
    base_names, novel_names = read_class_index(base_classes), read_class_index(novel_classes)
    overlap = [(number, n) for number, n in enumerate(novel_names, start=2) if n in set(base_names)]
    if overlap:
        raise InvalidSplitFileError(
            novel_classes,
            overlap[0][0],
            f"novel class {overlap[0][1]!r} is also a base class of {str(base_classes)!r}",
        )
    train_path = split_dir / BASE_TO_NOVEL_TRAIN.format(seed=seed)
    train = read_video_list(train_path, len(base_names))
    _check_shots(train_path, train, len(base_names), shots)
    base_test = read_video_list(split_dir / BASE_TO_NOVEL_BASE_TEST, len(base_names))
    novel_test = read_video_list(split_dir / BASE_TO_NOVEL_NOVEL_TEST, len(novel_names))
    splits = (
        EvalSplit("base", tuple(base_names), tuple(base_test), tuple(train)),
        EvalSplit("novel", tuple(novel_names), tuple(novel_test)),
    )
    settings = {
        "kind": "base_to_novel",
        "published": True,
        "seed": seed,
        "shots": shots,
        "base_classes": list(base_names),
        "train_list": str(train_path),
        "base_test_list": str(split_dir / BASE_TO_NOVEL_BASE_TEST),
        "novel_test_list": str(split_dir / BASE_TO_NOVEL_NOVEL_TEST),
        "class_files": [str(base_classes), str(novel_classes)],
    }
    return Protocol(name, splits, settings)


def available_few_shot_lists(split_dir: str | os.PathLike, split: int = 1) -> list[int]:
    """The K of every ``train<split>_few_shot_<K>.txt`` in ``split_dir``, ascending."""
    split_dir = Path(split_dir)
    found = []
    for path in split_dir.iterdir() if split_dir.is_dir() else []:
        match = _FEW_SHOT_NAME.match(path.name)
        if match and int(match["split"]) == split:
            found.append(int(match["shots"]))
    return sorted(found)


def published_few_shot(
    split_dir: str | os.PathLike,
    class_names: str | os.PathLike,
    shots: Sequence[int] | None = None,
    split: int = 1,
    name: str = "few_shot_published",
) -> Protocol:
    """The released all-way K-shot lists (see the module docstring): one split ``<K>shot`` per K.

    Args:
        split_dir: the folder with ``train<split>_few_shot_<K>.txt`` and ``val<split>.txt``.
        class_names: the class-index CSV of all classes.
        shots: which K (default: every list found).

    Raises:
        InvalidSplitFileError: a missing or malformed list, or a list without exactly K videos per class.
    """
    split_dir = Path(split_dir)
    names = read_class_index(class_names)
    shots = list(shots) if shots else available_few_shot_lists(split_dir, split)
    if not shots:
        raise InvalidSplitFileError(split_dir, None, f"no '{FEW_SHOT_TRAIN.format(split=split, shots='<K>')}' list")
    test = read_video_list(split_dir / FEW_SHOT_TEST.format(split=split), len(names))
    evals = []
    for k in shots:
        path = split_dir / FEW_SHOT_TRAIN.format(split=split, shots=k)
        train = read_video_list(path, len(names))
        _check_shots(path, train, len(names), k)
        evals.append(EvalSplit(f"{k}shot", tuple(names), tuple(test), tuple(train)))
    settings = {
        "kind": "few_shot",
        "published": True,
        "shots": list(shots),
        "split": split,
        "train_lists": {str(k): str(split_dir / FEW_SHOT_TRAIN.format(split=split, shots=k)) for k in shots},
        "test_list": str(split_dir / FEW_SHOT_TEST.format(split=split)),
        "class_file": str(class_names),
    }
    return Protocol(name, tuple(evals), settings)


__all__ = [
    "available_few_shot_lists",
    "published_base_to_novel",
    "published_few_shot",
    "read_class_index",
    "read_video_list",
]
