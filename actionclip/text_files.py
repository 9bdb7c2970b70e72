"""Reading the small text files users hand us (label, template and split lists) with a byte cap.

Standard library only (and our errors), so the command line can read label files before torch is imported.
"""

from __future__ import annotations

import os

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


__all__ = ["MAX_TEXT_FILE_BYTES", "read_text_file"]
