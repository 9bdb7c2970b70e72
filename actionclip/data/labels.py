"""Class-name lists: the packaged ones (Kinetics-400/600, HMDB51, UCF101, the Kinetics-600 novel subsets) and users'
label files (an ``id,name`` CSV or one name per line, under an optional ``label`` / ``name`` / ``class`` header),
read by one reader.

``actionclip classify --labels-file`` / ``--label-set``, ``actionclip eval --class_names``, the training script's
``--class_names``, folder datasets and the web app all read labels here. The packaged files and their sources are
in ``label_lists/README.md``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidLabelsError
from ..files import read_text_file, replaced_when_done

LABELS_DIR = Path(__file__).resolve().with_name("label_lists")

# Packaged label lists by name (aliases included); the files and their sources are in label_lists/README.md.
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


# The first line of a plain label file that names its one column (as ``id,name`` names a CSV's two): a header, not a
# label. Compared as the CSV header is, stripped and in any case.
PLAIN_HEADERS = frozenset({"label", "name", "class"})

# Label ids written by hand or by tools: ASCII digits only ('²' and other Unicode digits pass `str.isdigit`).
_LABEL_ID = re.compile(r"[0-9]+")


def is_label_id(text: str) -> bool:
    """Whether ``text`` is a non-negative integer in ASCII digits (no sign, no Unicode digits)."""
    return _LABEL_ID.fullmatch(text) is not None


def available_label_lists() -> list[str]:
    """Names accepted by :func:`load_label_names` for the packaged label lists (aliases included)."""
    return sorted(PACKAGED_LABEL_LISTS)


def load_label_names(name_or_path: str | os.PathLike) -> list[str]:
    """Class names in label-id order, from a packaged list or a file.

    Args:
        name_or_path: a packaged name (see :func:`available_label_lists`), or the path of a CSV file with a
            header ``id,name`` (ids 0..N-1, any row order) or of a text file with one name per line (a first
            line ``label``, ``name`` or ``class``, in any case, is a header and is skipped).

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
    its name), so the ids never become labels. In a plain file, a first non-blank line that is exactly ``label``,
    ``name`` or ``class`` (`PLAIN_HEADERS`, any case) is likewise a header, so it never becomes a candidate. This is
    the one label-file reader: ``actionclip classify --labels-file``, ``actionclip eval --class_names`` and the
    training script's ``--class_names`` all use it.
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
        if names and names[0].lower() in PLAIN_HEADERS:
            names = names[1:]
    _check_names(names, f"label file {str(path)!r}")
    return names


def resolve_label_names(label_names, fallback: Sequence[str] | None = None) -> list[str]:
    """Class names in label-id order, however a dataset was given them: a list of names, or a packaged list's name or
    a label file (read by :func:`load_label_names`); ``None`` takes ``fallback`` (the names the dataset's own files
    give: class folders, CSV labels, label ids).

    Raises:
        InvalidLabelsError: no names at all, an empty or duplicated name, or a bad label file.
    """
    if label_names is None:
        if fallback is None:
            raise InvalidLabelsError("no class names: pass label_names (a list, a label file or a packaged list)")
        names, what = list(fallback), "the class names found in the data"
    elif isinstance(label_names, (str, os.PathLike)):
        return load_label_names(label_names)
    else:
        names, what = [str(name) for name in label_names], "label_names"
    _check_names(names, what)
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
    """Write ``id,name`` rows (whole or not at all); :func:`read_label_file` reads them back."""
    path = Path(path)
    with replaced_when_done(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "name"])
        writer.writerows(enumerate(names))
    return path


__all__ = [
    "LABELS_DIR",
    "PACKAGED_LABEL_LISTS",
    "PLAIN_HEADERS",
    "available_label_lists",
    "is_label_id",
    "load_label_names",
    "read_label_file",
    "resolve_label_names",
    "write_label_csv",
]
