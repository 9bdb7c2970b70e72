"""Old import paths kept for one release: each warns (`DeprecationWarning`) and forwards to the new home.

Standard library only: the alias modules import this before anything else.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence


def warn_moved_module(old: str, new: Sequence[str]) -> None:
    """Warn that module ``old`` is deprecated in favour of the modules ``new``."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release: import from {' / '.join(new)}",
        DeprecationWarning,
        stacklevel=3,
    )


def forward(old: str, name: str, new: Sequence[str]):
    """Attribute ``name`` of an alias module ``old``: the first of the modules ``new`` that defines it."""
    for module_name in new:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {old!r} has no attribute {name!r}")


def moved_attribute(old: str, name: str, moved: Mapping[str, str]):
    """Attribute ``name`` of module ``old`` that moved to ``moved[name]``, with a `DeprecationWarning`."""
    if name not in moved:
        raise AttributeError(f"module {old!r} has no attribute {name!r}")
    warnings.warn(
        f"{old}.{name} is deprecated and will be removed in the next release: use {moved[name]}.{name}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(moved[name]), name)


def alias_module(old: str, new: Sequence[str]):
    """The module ``__getattr__`` of an old module path ``old`` that now lives in the modules ``new``; warns once,
    when the old module is imported."""
    warn_moved_module(old, new)

    def __getattr__(name: str):
        return forward(old, name, new)

    return __getattr__
