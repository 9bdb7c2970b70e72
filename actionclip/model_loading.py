"""A model folder, and the model and processor loaded from it, one way for the zero-shot pipeline, the evaluation
runner, the ONNX export and the commands.

Two kinds of work live here:

- checks of a folder given by name that read only its file names and ``config.json``, before any weight is read:
  `check_model_path` and `read_model_config` import nothing heavy (the command line answers a mistyped path before
  torch is imported, and classifies with an ONNX export without torch); `check_model_folder` and
  `check_saved_processor` apply what a configuration says the model is (open-set, closed-set, plain CLIP:
  `model_kinds.zero_shot_model_kind`);
- loaders (`load_saved_processor`, `load_model_and_processor`).

The model and processor modules (torch, transformers) are imported inside the functions that need them. This module
travels with the pipeline as remote code: it imports only its root siblings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MissingProcessorError, ModelFolderError
from .model_kinds import ZERO_SHOT, is_closed_set, zero_shot_model_kind

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
PROCESSOR_FILE = "processor_config.json"
PROCESSOR_HINT = (
    "create one next to the weights with "
    "`ActionCLIPProcessor.from_model_config(ActionCLIPConfig.from_pretrained(d)).save_pretrained(d)` "
    "(both from actionclip), or pass processor=ActionCLIPProcessor(...) to pipeline()"
)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def check_model_path(model: str) -> None:
    """A model given as a local path must be a directory (a Hub id such as ``org/name`` is left to transformers).

    A name is local when it is absolute, starts with ``.`` or ``~``, has more than one ``/``, or its first part is
    an existing local directory (``demo_output/model_tranf`` where ``demo_output/`` exists): such a typo fails at
    once, naming close matches, instead of after the Hub's retries.

    Raises:
        ModelFolderError: a local path that is not a directory.
    """
    path = Path(model).expanduser()
    first_part = Path(model).parts[0] if Path(model).parts else ""
    looks_local = (
        path.is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or (model.count("/") == 1 and Path(first_part).is_dir())
    )
    if looks_local and not path.is_dir():
        import difflib

        parent = path.parent
        siblings = sorted(entry.name for entry in parent.iterdir() if entry.is_dir()) if parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=3)
        hint = f" (did you mean {', '.join(repr(str(parent / name)) for name in close)}?)" if close else ""
        raise ModelFolderError(f"model {model!r}: no such directory{hint}")


def read_model_config(model: str | os.PathLike) -> dict | None:
    """The ``config.json`` of a local model folder as a dict (empty for JSON that is not an object), or None where
    there is none (a Hub id, or a folder transformers will report on).

    Raises:
        ModelFolderError: the file cannot be read or is not JSON.
    """
    config_path = Path(model).expanduser() / CONFIG_FILE
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"model {str(model)!r}: unreadable config.json ({_one_line(error)})") from None
    return config if isinstance(config, dict) else {}


def has_saved_processor(model: str | os.PathLike) -> bool:
    """Whether a local model folder holds an `ActionCLIPProcessor`'s ``processor_config.json``."""
    return (Path(model).expanduser() / PROCESSOR_FILE).is_file()


def _missing_processor(location: str) -> MissingProcessorError:
    return MissingProcessorError(f"model directory {location!r} has no {PROCESSOR_FILE}: {PROCESSOR_HINT}")


def check_model_folder(model: str) -> str | None:
    """What the zero-shot path needs of a model given by name, checked before its weights are read: a local path is
    a directory, its ``config.json`` holds an ActionCLIP model (not a closed-set one) or a CLIP one
    (`model_kinds.zero_shot_model_kind`), and an ActionCLIP folder holds its processor (a CLIP folder gets
    CLIP's).

    Returns:
        the kind (`model_kinds.ZERO_SHOT` or `model_kinds.IMAGE_TEXT`), or None for a Hub id or a folder
        without ``config.json`` (transformers says what is wrong with it).

    Raises:
        ModelFolderError: no such directory, or an unreadable ``config.json``.
        WrongModelKindError: a closed-set classifier, or neither ActionCLIP nor CLIP.
        MissingProcessorError: an ActionCLIP folder without ``processor_config.json``.
    """
    check_model_path(model)
    config = read_model_config(model)
    if config is None:
        return None
    kind = zero_shot_model_kind(config, model)
    if kind == ZERO_SHOT and not has_saved_processor(model):
        raise _missing_processor(model)
    return kind


def check_saved_processor(model: str) -> None:
    """A local folder of an open-set ActionCLIP model must hold its processor; other folders (a Hub id, a CLIP or a
    closed-set model, whose refusal is the loader's) pass.

    Raises:
        ModelFolderError: an unreadable ``config.json``.
        MissingProcessorError: an ActionCLIP folder without ``processor_config.json``.
    """
    if has_saved_processor(model):
        return
    config = read_model_config(model)
    if config is None:
        return
    if config.get("model_type") == ZERO_SHOT and not is_closed_set(config):
        raise _missing_processor(model)


def load_saved_processor(model):
    """The `ActionCLIPProcessor` saved with a loaded ``model`` (found through ``model.name_or_path``).

    Raises:
        MissingProcessorError: no processor lies there; the message says how to create one.
    """
    location = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
    if not location:
        raise MissingProcessorError(
            f"the model was not loaded from a directory, so no processor can be found: {PROCESSOR_HINT}"
        )
    location = str(location)
    if os.path.isdir(location) and not has_saved_processor(location):
        raise _missing_processor(location)
    from .processing_actionclip import ActionCLIPProcessor

    try:
        return ActionCLIPProcessor.from_pretrained(location)
    except (OSError, ValueError) as error:
        raise MissingProcessorError(
            f"no ActionCLIPProcessor could be loaded from {location!r} ({error}): {PROCESSOR_HINT}"
        ) from None


def load_model_and_processor(model_dir: str | os.PathLike, device: str | torch.device | None = None):
    """``(ActionCLIPModel, ActionCLIPProcessor)`` from one directory, in evaluation mode on ``device``.

    A directory without processor files gets the processor matching its configuration (image size, frames,
    templates) with the shipped tokenizer.

    Raises:
        ModelFolderError: no ``config.json``.
        WrongModelKindError: a closed-set classifier (`ActionCLIPModel.from_pretrained`).
        MissingWeightsError: weight files that lack tensors of the model (evaluated, they would be random).
    """
    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_FILE).is_file():
        raise ModelFolderError(f"{str(model_dir)!r} has no config.json: not a saved model directory")
    from .modeling_actionclip import ActionCLIPModel
    from .processing_actionclip import ActionCLIPProcessor

    model = ActionCLIPModel.from_pretrained(model_dir, require_all_weights=True).eval()
    if device is not None:
        model = model.to(device)
    if any((model_dir / name).is_file() for name in (PROCESSOR_FILE, "preprocessor_config.json")):
        processor = ActionCLIPProcessor.from_pretrained(model_dir)
    else:
        processor = ActionCLIPProcessor.from_model_config(model.config)
    return model, processor


__all__ = [
    "PROCESSOR_HINT",
    "check_model_folder",
    "check_model_path",
    "check_saved_processor",
    "has_saved_processor",
    "load_model_and_processor",
    "load_saved_processor",
    "read_model_config",
]
