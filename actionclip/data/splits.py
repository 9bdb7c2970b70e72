"""Split and list files: which videos a dataset's train and test sets hold.

- list files of lines ``relative/path.mp4 label_id`` (:func:`read_list_file`, :func:`write_list_file`);
- the datasets' official split files: UCF101's ``classInd.txt`` / ``trainlist0k.txt`` / ``testlist0k.txt``
  (:func:`load_ucf101_splits`) and HMDB51's ``<class>_test_split{k}.txt`` (:func:`load_hmdb51_splits`).

A sample is ``(relative_path, label_id)`` with ``label_id`` 0-based, indexing the class names it comes with.
Malformed lines raise `InvalidSplitFileError` naming the file and the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidSplitFileError
from ..files import read_text_file
from .labels import is_label_id, load_label_names

Sample = tuple[str, int]


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines, stripped (the official files have CRLF endings and trailing blanks), 1-based numbers."""
    if not path.is_file():
        raise FileNotFoundError(f"split file {str(path)!r} not found")
    text = read_text_file(path, "split file")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


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


__all__ = [
    "DatasetSplit",
    "Sample",
    "load_hmdb51_splits",
    "load_ucf101_splits",
    "read_list_file",
    "write_list_file",
]
