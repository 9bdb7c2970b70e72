"""Which kind of model a configuration (an object, or the dict of a config.json) describes. The zero-shot pipeline,
``actionclip classify`` and `ActionCLIPModel.from_pretrained` (hence `AutoModel`) need an `ActionCLIPModel` (both
towers). A closed-set `ActionCLIPForVideoClassification` saves no text tower (its class embeddings are frozen), so
loading it as an `ActionCLIPModel` would give a randomly initialised text tower and random scores: it is refused. A
plain image-text checkpoint of a supported family (CLIP, SigLIP, ...: `backbones.BACKBONE_FAMILIES`) is accepted by the
zero-shot path (the pipeline converts it with `ActionCLIPModel.from_backbone` defaults and says so). The other way round, an `ActionCLIPModel` folder loaded as a closed-set classifier gets its
class embeddings from the label names. `model_loading` applies these to a folder before its weights are read; `ActionCLIPModel.from_pretrained` to the
configuration it loads.

JSON only: no torch, so a command refuses a wrong folder before anything heavy loads.
"""

from __future__ import annotations

from collections.abc import Mapping

from .backbones import BACKBONE_FAMILIES
from .errors import WrongModelKindError

ZERO_SHOT = "actionclip"
# A plain image-text model of a supported family (CLIP, SigLIP, ...), not yet an ActionCLIP model.
IMAGE_TEXT = "image-text"
CLOSED_SET_ARCHITECTURE = "ActionCLIPForVideoClassification"
OPEN_SET_ARCHITECTURE = "ActionCLIPModel"


def _config_field(config, name: str, default=None):
    return config.get(name, default) if isinstance(config, Mapping) else getattr(config, name, default)


def is_closed_set(config) -> bool:
    """Whether a configuration was saved by a closed-set `ActionCLIPForVideoClassification` (class embeddings, no
    text tower)."""
    architectures = list(_config_field(config, "architectures") or [])
    return bool(architectures) and all(name == CLOSED_SET_ARCHITECTURE for name in architectures)


def is_open_set(config) -> bool:
    """Whether a configuration was saved by an `ActionCLIPModel` (both towers, no class embeddings)."""
    return OPEN_SET_ARCHITECTURE in list(_config_field(config, "architectures") or [])


def check_not_closed_set(config, where: str) -> None:
    """Refuse a closed-set classifier where both towers are needed.

    Raises:
        WrongModelKindError: the message says what the model is and what to use instead.
    """
    if _config_field(config, "model_type") == ZERO_SHOT and is_closed_set(config):
        num_labels = len(_config_field(config, "id2label") or {})
        raise WrongModelKindError(
            f"model {where!r} is a closed-set ActionCLIPForVideoClassification ({num_labels} fixed labels, no "
            "text tower saved), so it cannot rank other labels: for zero-shot labels use the ActionCLIPModel "
            "directory it was made from; for its own labels load it with AutoModelForVideoClassification"
        )


def zero_shot_model_kind(config, where: str) -> str:
    """`ZERO_SHOT` for an `ActionCLIPModel`, `IMAGE_TEXT` for an image-text model of a supported family
    (`CLIPModel`, `SiglipModel`, ...).

    Args:
        config: a configuration object or the dict of a ``config.json``.
        where: the model's directory or Hub id, for the message.

    Raises:
        WrongModelKindError: a closed-set `ActionCLIPForVideoClassification`, or neither ActionCLIP nor a supported
            image-text family; the
            message says what the model is and what to use instead.
    """
    model_type = _config_field(config, "model_type")
    if model_type == ZERO_SHOT:
        check_not_closed_set(config, where)
        return ZERO_SHOT
    if model_type in BACKBONE_FAMILIES:
        return IMAGE_TEXT
    raise WrongModelKindError(
        f"model {where!r} is a {model_type or 'model without model_type'!s} model, not ActionCLIP or an image-text "
        f"model of a supported family ({', '.join(sorted(BACKBONE_FAMILIES))}): give an "
        "ActionCLIP model directory (actionclip convert, or ActionCLIPModel.from_backbone(...).save_pretrained(d) with "
        "ActionCLIPProcessor.from_model_config(model.config).save_pretrained(d))"
    )
