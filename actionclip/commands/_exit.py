"""One-line errors for our programs: bad input ends with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..errors import ActionCLIPError


def exit_on_bad_input(main: Callable[[], object], program: str) -> None:
    """Run ``main()`` and exit with its status; an `ActionCLIPError`, a ``ValueError`` (a bad argument value) or an
    ``OSError`` (a missing or unwritable path) prints ``<program>: error: <message>`` and exits with 2."""
    try:
        status = main()
    except (ActionCLIPError, ValueError, OSError) as error:
        print(f"{program}: error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
