"""ActionCLIP for Hugging Face Transformers.

``import actionclip`` is cheap: the names below (the model, configuration, processors, pipeline, trainer and
samplers) are imported when first used (PEP 562), so a command that needs none of torch or transformers
(``actionclip --help``) starts in about a second, and neither PyAV, ``datasets``, ``evaluate``, ``peft`` nor
matplotlib is imported before it is used. The errors are in ``actionclip.errors``. The configuration, models,
processors and the ``zero-shot-video-classification`` pipeline are registered with transformers' Auto classes once,
when the first model name is used or as soon as transformers' Auto machinery is imported (see `registration`), so
``import actionclip`` followed by ``pipeline("zero-shot-video-classification", model=...)`` works.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import (
    errors,  # noqa: F401 - imports nothing; `actionclip.errors.X` works after a plain `import actionclip`
    process_policy,  # noqa: F401 - our commands' OpenMP wait policy, set before torch loads
    registration,
)

__version__ = "0.1.0"

# Public name -> the module that defines it: what users build (model, configuration, processors, pipeline, trainer,
# samplers). Nothing is imported until a name is used.
_PUBLIC_NAMES = {
    "ACTIONCLIP_TEMPLATES": "prompts",
    "ActionCLIPConfig": "configuration_actionclip",
    "ActionCLIPLoss": "loss",
    "ActionCLIPForVideoClassification": "modeling_actionclip",
    "ActionCLIPModel": "modeling_actionclip",
    "ActionCLIPOutput": "modeling_actionclip",
    "ActionCLIPPreTrainedModel": "modeling_actionclip",
    "ActionCLIPProcessor": "processing_actionclip",
    "ActionCLIPVideoProcessor": "video_processing_actionclip",
    "ZeroShotVideoClassificationPipeline": "pipeline_zero_shot_video_classification",
    "ActionCLIPTrainer": "training.trainer",
    "ActionCLIPTrainingArguments": "training.trainer",
    "TSNSampler": "sampling",
    "UniformSampler": "sampling",
    "DenseSampler": "sampling",
    "MultiViewSampler": "sampling",
    "get_sampler": "sampling",
    "PromptTemplater": "prompts",
    "normalize_label": "prompts",
    "register_with_transformers": "registration",
}

__all__ = sorted(name for name in _PUBLIC_NAMES if name != "register_with_transformers")


def __getattr__(name: str):
    module_name = _PUBLIC_NAMES.get(name)
    if module_name is None:
        try:  # a submodule used as an attribute (actionclip.video_io) before anyone imported it
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    registration.register_on_use(module_name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC_NAMES})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports these on first use
    from .configuration_actionclip import ActionCLIPConfig  # noqa: F401
    from .loss import ActionCLIPLoss  # noqa: F401
    from .modeling_actionclip import (  # noqa: F401
        ActionCLIPForVideoClassification,
        ActionCLIPModel,
        ActionCLIPOutput,
        ActionCLIPPreTrainedModel,
    )
    from .pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline  # noqa: F401
    from .processing_actionclip import ActionCLIPProcessor  # noqa: F401
    from .prompts import ACTIONCLIP_TEMPLATES, PromptTemplater, normalize_label  # noqa: F401
    from .registration import register_with_transformers  # noqa: F401
    from .sampling import DenseSampler, MultiViewSampler, TSNSampler, UniformSampler, get_sampler  # noqa: F401
    from .training.trainer import ActionCLIPTrainer, ActionCLIPTrainingArguments  # noqa: F401
    from .video_processing_actionclip import ActionCLIPVideoProcessor  # noqa: F401

registration.install()
