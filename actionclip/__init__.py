"""ActionCLIP for Hugging Face Transformers.

``import actionclip`` is cheap: the names below are imported when first used (PEP 562), so a command that needs
none of torch or transformers (``actionclip --help``) starts in about a second. The configuration, models,
processors and the ``zero-shot-video-classification`` pipeline are registered with transformers' Auto classes once,
when the first model name is used or as soon as transformers' Auto machinery is imported (see `_import_hooks`), so
``import actionclip`` followed by ``pipeline("zero-shot-video-classification", model=...)`` works.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import (
    _import_hooks,
    process_policy,  # noqa: F401 - our commands' OpenMP wait policy, set before torch loads
)
from . import errors as _errors

__version__ = "0.1.0"

# Public name -> the module that defines it. errors.py imports nothing, so reading its classes here costs nothing.
_ERROR_NAMES = tuple(
    name
    for name, value in vars(_errors).items()
    if isinstance(value, type) and issubclass(value, (Exception, Warning)) and value.__module__ == _errors.__name__
)
_MODEL_NAMES = {
    "ACTIONCLIP_TEMPLATES": "configuration_actionclip",
    "ActionCLIPConfig": "configuration_actionclip",
    "ActionCLIPLoss": "loss",
    "ActionCLIPForVideoClassification": "modeling_actionclip",
    "ActionCLIPModel": "modeling_actionclip",
    "ActionCLIPOutput": "modeling_actionclip",
    "ActionCLIPPreTrainedModel": "modeling_actionclip",
    "ActionCLIPProcessor": "processing_actionclip",
    "ActionCLIPVideoProcessor": "video_processing_actionclip",
    "PromptTemplater": "prompts",
    "normalize_label": "prompts",
    "register_with_transformers": "registration",
}
_REGISTERING_MODULES = frozenset(
    {"configuration_actionclip", "modeling_actionclip", "processing_actionclip", "video_processing_actionclip"}
)
_LAZY_NAMES = {**{name: "errors" for name in _ERROR_NAMES}, **_MODEL_NAMES}

__all__ = sorted(name for name in _LAZY_NAMES if name != "register_with_transformers")


def __getattr__(name: str):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        try:  # a submodule used as an attribute (actionclip.video_io) before anyone imported it
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    if module_name in _REGISTERING_MODULES:  # a user of these expects the Auto classes and the task to know them
        from .registration import register_with_transformers

        register_with_transformers()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports these on first use
    from .configuration_actionclip import ACTIONCLIP_TEMPLATES, ActionCLIPConfig  # noqa: F401
    from .errors import *  # noqa: F403
    from .loss import ActionCLIPLoss  # noqa: F401
    from .modeling_actionclip import (  # noqa: F401
        ActionCLIPForVideoClassification,
        ActionCLIPModel,
        ActionCLIPOutput,
        ActionCLIPPreTrainedModel,
    )
    from .processing_actionclip import ActionCLIPProcessor  # noqa: F401
    from .prompts import PromptTemplater, normalize_label  # noqa: F401
    from .registration import register_with_transformers  # noqa: F401
    from .video_processing_actionclip import ActionCLIPVideoProcessor  # noqa: F401

_import_hooks.install()
