"""Files, safely: the small text files users hand us (label, template and split lists) read with a byte cap, and
the files we write written whole or not at all.

A file we write goes to a temporary name beside the destination, which is renamed over it once the writer has
finished and removed when the writer fails (an error, an interrupt): a reader never sees half a file, and a failed
write leaves the file that was there before as it was.

Standard library only (and our errors), so the command line can read label files before torch is imported.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import InputTooLargeError

MAX_TEXT_FILE_BYTES = 16 << 20
"""Largest label, template or split file read (16 MiB; the 700 Kinetics classes take 20 KB)."""


def read_text_file(path: str | os.PathLike, what: str, max_bytes: int = MAX_TEXT_FILE_BYTES) -> str:
    """The UTF-8 text of ``path`` (a label or template list), reading at most ``max_bytes`` + 1 bytes, so that an
    endless or huge input (``/dev/zero``, a FIFO that never ends, a stray video) is refused without filling memory.

    Raises:
        FileNotFoundError / OSError: from opening it. InputTooLargeError: more than ``max_bytes``.
        UnicodeDecodeError: not UTF-8 text.
    """
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputTooLargeError(f"{what} {str(path)!r} holds more than {max_bytes} bytes: not a {what}")
    return data.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not part of the text


@contextlib.contextmanager
def replaced_when_done(path: str | os.PathLike, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder for the caller to write; on a normal exit rename it to ``path``
    (atomically, replacing what was there), on an exception remove it and re-raise.

    The temporary file is created by the caller's writer, so it gets the usual permissions (the process's umask),
    and its name is hidden (leading dot), unique to this call and ends in ``.partial``.
    ``make_parents``: create the destination's missing folders first.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


__all__ = ["MAX_TEXT_FILE_BYTES", "read_text_file", "replaced_when_done"]
