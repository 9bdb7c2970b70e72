"""The one piece of global state: registering ActionCLIP with transformers' Auto classes and pipelines."""

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from .configuration_actionclip import ActionCLIPConfig
from .modeling_actionclip import ActionCLIPForVideoClassification, ActionCLIPModel

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
    ActionCLIPConfig.register_for_auto_class()
    ActionCLIPModel.register_for_auto_class("AutoModel")
    ActionCLIPForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    _registered = True
