"""The `actionclip` command's old module: ``python -m actionclip.cli`` runs `actionclip.commands.main`.

The command lives in `actionclip.commands` (one module per subcommand). The helpers this module used to hold are
still found here, with a `DeprecationWarning`, for one release.
"""

from __future__ import annotations

import sys

from .commands import build_parser, main

# Old name -> the module that holds it now.
_MOVED = {
    "CommandLineError": "actionclip.errors",
    "find_videos": "actionclip.commands._inputs",
    "read_labels": "actionclip.commands._inputs",
    "load_pipeline": "actionclip.commands._inputs",
    "model_summary": "actionclip.commands.info",
    "int_at_least": "actionclip.commands._common",
}


def __getattr__(name: str):
    from ._deprecation import moved_attribute

    return moved_attribute(__name__, name, _MOVED)


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
