"""Subcommands of the `actionclip` command, one module each.

A module here defines `register(subparsers)`, which adds its parser and sets `handler=run` (a function
`run(args) -> int`). `cli.build_parser` registers every module of this package, so adding a command is adding a
file. Modules import torch, transformers and the model code inside `run`, never at import time: `actionclip --help`
imports every module here.
"""

from __future__ import annotations

import importlib
import pkgutil


def command_modules() -> list:
    """Every command module of this package, by name."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    ]
