"""The one piece of global state: registering ActionCLIP with transformers' Auto classes and pipelines."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoVideoProcessor,
)

from .configuration_actionclip import ActionCLIPConfig
from .modeling_actionclip import ActionCLIPForVideoClassification, ActionCLIPModel
from .processing_actionclip import ActionCLIPProcessor
from .video_processing_actionclip import ActionCLIPVideoProcessor

_registered = False


def register_with_transformers() -> None:
    """Register the configuration, models (and, where present, processor and pipeline); safe to call again.

    Also marks the classes for `save_pretrained` to copy their code next to the weights, so a saved directory
    loads with `trust_remote_code=True` where this package is not installed.
    """
    global _registered
    if _registered:
        return
    AutoConfig.register(ActionCLIPConfig.model_type, ActionCLIPConfig, exist_ok=True)
    AutoModel.register(ActionCLIPConfig, ActionCLIPModel, exist_ok=True)
    AutoModelForVideoClassification.register(ActionCLIPConfig, ActionCLIPForVideoClassification, exist_ok=True)
    AutoVideoProcessor.register(ActionCLIPConfig, ActionCLIPVideoProcessor, exist_ok=True)
    AutoProcessor.register(ActionCLIPConfig, ActionCLIPProcessor, exist_ok=True)
    ActionCLIPConfig.register_for_auto_class()
    ActionCLIPModel.register_for_auto_class("AutoModel")
    ActionCLIPForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    # The zero-shot pipeline: `pipeline("zero-shot-video-classification", model=...)`; `pipe.save_pretrained`
    # then writes it into the directory as a custom pipeline (loadable with trust_remote_code=True).
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_zero_shot_video_classification import TASK, ZeroShotVideoClassificationPipeline

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not ZeroShotVideoClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=ZeroShotVideoClassificationPipeline, pt_model=AutoModel, type="multimodal"
        )
    _registered = True
