"""The one piece of global state: registering ActionCLIP with transformers' Auto classes and pipelines, and with
peft's ``AutoPeftModel``.

Importing this module is cheap (transformers and the model code are imported by `register_with_transformers`), so
`actionclip._import_hooks` can ask `is_registered` at any time.
"""

_registered = False


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
    from . import _import_hooks

    _import_hooks.uninstall()  # the imports below complete modules it watches: no second registration inside this one
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
    from .onnx_runtime import ActionCLIPOnnxModel
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
