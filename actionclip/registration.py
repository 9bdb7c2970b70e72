"""The one piece of global state: registering ActionCLIP with transformers' Auto classes and pipelines, and with
peft's ``AutoPeftModel``.

Importing this module is cheap: transformers and the model code are imported by `register_with_transformers`.

When registration runs (this module is the one place that decides it):
``import actionclip`` is cheap (the package ``__init__`` resolves its names lazily), so the Auto*/pipeline
registration cannot run there. It runs instead as soon as transformers' Auto machinery is imported and no import
it depends on is half done: when one of transformers' Auto modules or its pipelines module, or one of this
package's modules, has finished importing. So ``import actionclip`` followed by
``pipeline("zero-shot-video-classification", model=...)`` or ``AutoModel.from_pretrained(...)`` works as it did when
the package imported everything eagerly. A trigger that completes while a transformers, torch or actionclip module
is still being executed (an Auto module imported by ``modeling_utils``, or by one of our modules) waits for the
next trigger: registering then would import half-initialised modules.

peft's ``AutoPeftModel`` gets this package on its import allowlist the same way: when ``peft.auto`` has finished
importing (or at once, if it already has); see `registration.allow_in_peft`.
"""

from __future__ import annotations

import importlib.abc
import sys

_registered = False

# The package's modules whose names, used through ``actionclip.X``, register at once: a user of these expects the Auto
# classes and the task to know them.
REGISTERING_MODULES = frozenset(
    {
        "configuration_actionclip",
        "modeling_actionclip",
        "processing_actionclip",
        "video_processing_actionclip",
        "pipeline_zero_shot_video_classification",
        "training.trainer",
    }
)


def register_on_use(module_name: str) -> None:
    """Register when a public name of ``actionclip.<module_name>`` is used (the package ``__init__`` asks)."""
    if module_name in REGISTERING_MODULES:
        register_with_transformers()


def is_registered() -> bool:
    """Whether `register_with_transformers` has run in this process."""
    return _registered


def register_with_transformers() -> None:
    """Register the configuration, models, processors and pipeline; safe to call again.

    Also marks the classes for `save_pretrained` to copy their code next to the weights (with ``auto_map`` entries),
    so a saved directory loads with `AutoModel` / `AutoProcessor` / `pipeline` and ``trust_remote_code=True`` where
    this package is not installed.
    """
    global _registered
    if _registered:
        return
    uninstall()  # the imports below complete modules it watches: no second registration inside this one
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForVideoClassification,
        AutoProcessor,
        AutoVideoProcessor,
    )
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_actionclip import ActionCLIPConfig
    from .modeling_actionclip import ActionCLIPForVideoClassification, ActionCLIPModel
    from .onnx.runtime import ActionCLIPOnnxModel
    from .pipeline_zero_shot_video_classification import TASK, ZeroShotVideoClassificationPipeline
    from .processing_actionclip import ActionCLIPProcessor
    from .video_processing_actionclip import ActionCLIPVideoProcessor

    AutoConfig.register(ActionCLIPConfig.model_type, ActionCLIPConfig, exist_ok=True)
    AutoModel.register(ActionCLIPConfig, ActionCLIPModel, exist_ok=True)
    AutoModelForVideoClassification.register(ActionCLIPConfig, ActionCLIPForVideoClassification, exist_ok=True)
    AutoVideoProcessor.register(ActionCLIPConfig, ActionCLIPVideoProcessor, exist_ok=True)
    AutoProcessor.register(ActionCLIPConfig, ActionCLIPProcessor, exist_ok=True)
    ActionCLIPConfig.register_for_auto_class()
    ActionCLIPModel.register_for_auto_class("AutoModel")
    ActionCLIPForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    ActionCLIPProcessor.register_for_auto_class("AutoProcessor")
    ActionCLIPVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    # The zero-shot pipeline: `pipeline("zero-shot-video-classification", model=...)`; `pipe.save_pretrained`
    # then writes it into the directory as a custom pipeline (loadable with trust_remote_code=True).
    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not ZeroShotVideoClassificationPipeline:
        # pipeline() tries the loaders in turn: a PyTorch model directory, else a directory from `actionclip export`.
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=ZeroShotVideoClassificationPipeline,
            pt_model=(AutoModel, ActionCLIPOnnxModel),
            type="multimodal",
        )
        # A saved pipeline names its loaders, which transformers looks up in its own namespace: name AutoModel only.
        saved = ZeroShotVideoClassificationPipeline._registered_impl[TASK]
        ZeroShotVideoClassificationPipeline._registered_impl = {TASK: {**saved, "pt": (AutoModel,)}}
    _registered = True


def allow_in_peft(peft_auto) -> None:
    """Register with peft's ``AutoPeftModel``: put this package on its default import allowlist; safe to call again.

    An adapter saved from an ActionCLIP model records its base model's class (``auto_mapping``:
    ``actionclip.modeling_actionclip.ActionCLIPModel``), and ``AutoPeftModel.from_pretrained`` imports that class only
    from the packages on its allowlist (transformers, diffusers, ...). peft has no registry for a model library's
    classes, so the allowlist is where this package registers, as transformers' Auto classes are where it registers
    its models; only this package joins it, in a process that imported it.

    Args:
        peft_auto: the imported ``peft.auto`` module.
    """
    original = peft_auto.get_default_import_allowlist
    if getattr(original, "allows_actionclip", False):
        return

    def get_default_import_allowlist() -> list[str]:
        return [*original(), __package__]

    get_default_import_allowlist.allows_actionclip = True
    peft_auto.get_default_import_allowlist = get_default_import_allowlist


# transformers modules whose completed import means a user may be about to resolve an Auto class or a pipeline task.
TRANSFORMERS_TRIGGERS = frozenset(
    {
        "transformers.pipelines",
        "transformers.models.auto.configuration_auto",
        "transformers.models.auto.modeling_auto",
        "transformers.models.auto.processing_auto",
        "transformers.models.auto.video_processing_auto",
    }
)
# Registration imports these (and our model code); none of them may be half executed when it runs.
_WATCHED_PREFIXES = ("transformers", "torch", "actionclip.")
_SELF = frozenset({"actionclip.registration"})


def _is_trigger(name: str) -> bool:
    return name in TRANSFORMERS_TRIGGERS or (name.startswith("actionclip.") and name not in _SELF)


def _imports_in_progress(finished: str) -> bool:
    """Whether a module registration depends on, other than ``finished`` and its packages, is being executed."""
    parents = {finished.rsplit(".", depth)[0] for depth in range(finished.count(".") + 1)}
    for name, module in list(sys.modules.items()):
        if name in parents or not name.startswith(_WATCHED_PREFIXES):
            continue
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "_initializing", False):
            return True
    return False


def register_if_ready(finished: str = "actionclip") -> bool:
    """Register with transformers if its Auto machinery is imported and nothing it needs is half imported.

    Returns whether the registration has happened (now or before).
    """
    if is_registered():
        return True
    if "transformers.models.auto.configuration_auto" not in sys.modules or _imports_in_progress(finished):
        return False
    register_with_transformers()
    uninstall()
    return True


def allow_in_peft_if_imported(finished: str = "peft.auto") -> bool:
    """Put this package on peft's ``AutoPeftModel`` import allowlist if ``peft.auto`` is imported.

    Returns whether it is (now or before).
    """
    peft_auto = sys.modules.get(PEFT_AUTO)
    if peft_auto is None or not hasattr(peft_auto, "get_default_import_allowlist"):
        return False
    allow_in_peft(peft_auto)
    sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not _PEFT_TRIGGER]
    return True


class _AfterImportLoader(importlib.abc.Loader):
    """Runs the wrapped loader, then ``after(name)`` (see the module docstring)."""

    def __init__(self, loader, name: str, after):
        self._loader = loader
        self._name = name
        self._after = after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._after(self._name)

    def __getattr__(self, name):  # get_source, get_resource_reader, ...: those of the real loader
        return getattr(self._loader, name)


class _ImportTrigger(importlib.abc.MetaPathFinder):
    """Finds the modules ``is_trigger`` names with the other finders and runs ``after(name)`` once they are
    imported."""

    def __init__(self, is_trigger, after):
        self._is_trigger = is_trigger
        self._after = after

    def find_spec(self, fullname, path, target=None):
        if not self._is_trigger(fullname):
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _ImportTrigger) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(spec.loader, _AfterImportLoader):
                    spec.loader = _AfterImportLoader(spec.loader, fullname, self._after)
                return spec
        return None


PEFT_AUTO = "peft.auto"
_TRIGGER = _ImportTrigger(_is_trigger, register_if_ready)
_PEFT_TRIGGER = _ImportTrigger(PEFT_AUTO.__eq__, allow_in_peft_if_imported)


def install() -> None:
    """Register now if transformers' Auto machinery is already imported, else as soon as it is; the same for peft's
    ``AutoPeftModel``."""
    if not register_if_ready() and not any(finder is _TRIGGER for finder in sys.meta_path):
        sys.meta_path.insert(0, _TRIGGER)
    if not allow_in_peft_if_imported() and not any(finder is _PEFT_TRIGGER for finder in sys.meta_path):
        sys.meta_path.insert(0, _PEFT_TRIGGER)


def uninstall() -> None:
    """Stop watching for transformers' Auto machinery (peft's is watched on its own)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not _TRIGGER]
