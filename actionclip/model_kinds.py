"""Which kind of model a directory (or a loaded model's configuration) holds, for the zero-shot path.

The zero-shot pipeline and ``actionclip classify`` need an `ActionCLIPModel` (both towers). A closed-set
`ActionCLIPForVideoClassification` saves no text tower (its class embeddings are frozen), so loading it as an
`ActionCLIPModel` would give a randomly initialised text tower and random scores: it is refused. A plain CLIP
checkpoint is accepted (the pipeline converts it with `ActionCLIPModel.from_clip` defaults and says so).

This module imports nothing heavy: the command line checks a directory's ``config.json`` with it before loading.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import WrongModelKindError

ZERO_SHOT = "actionclip"
CLIP = "clip"
CLOSED_SET_ARCHITECTURE = "ActionCLIPForVideoClassification"


def _field(config, name: str, default=None):
    return config.get(name, default) if isinstance(config, Mapping) else getattr(config, name, default)


def zero_shot_model_kind(config, where: str) -> str:
    """``"actionclip"`` for an `ActionCLIPModel`, ``"clip"`` for a transformers `CLIPModel`.

    Args:
        config: a configuration object or the dict of a ``config.json``.
        where: the model's directory or Hub id, for the message.

    Raises:
        WrongModelKindError: a closed-set `ActionCLIPForVideoClassification`, or neither ActionCLIP nor CLIP; the
            message says what the model is and what to use instead.
    """
    model_type = _field(config, "model_type")
    architectures = list(_field(config, "architectures") or [])
    if model_type == ZERO_SHOT:
        if architectures and all(name == CLOSED_SET_ARCHITECTURE for name in architectures):
            num_labels = len(_field(config, "id2label") or {})
            raise WrongModelKindError(
                f"model {where!r} is a closed-set ActionCLIPForVideoClassification ({num_labels} fixed labels, no "
                "text tower saved), so it cannot rank other labels: for zero-shot labels use the ActionCLIPModel "
                "directory it was made from; for its own labels load it with AutoModelForVideoClassification "
                "(or run `actionclip eval` on it)"
            )
        return ZERO_SHOT
    if model_type == CLIP:
        return CLIP
    raise WrongModelKindError(
        f"model {where!r} is a {model_type or 'model without model_type'!s} model, not ActionCLIP or CLIP: give an "
        "ActionCLIP model directory (actionclip convert, or ActionCLIPModel.from_clip(...).save_pretrained(d) with "
        "ActionCLIPProcessor.from_model_config(model.config).save_pretrained(d))"
    )
