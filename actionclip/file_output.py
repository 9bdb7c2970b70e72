"""Writing a file whole or not at all.

The bytes go to a temporary name beside the destination, which is renamed over it once the writer has finished and
removed when the writer fails (an error, an interrupt): a reader never sees half a file, and a failed write leaves
the file that was there before as it was. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


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


__all__ = ["replaced_when_done"]
