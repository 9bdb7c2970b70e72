"""Label descriptions: several sentences per class, used as extra prompts beside the class name.

A class name alone ("abseiling") gives the text encoder little to go on; a few sentences about what the action
looks like help zero-shot recognition (OST, Chen et al. 2024). The texts of a class are its name followed by its
descriptions (:func:`class_texts`); each is put into every template (:func:`description_prompts`), and `scoring`
averages the class's prompts per template (`scoring.description_averaged_embeddings`, `scoring.encode_label_texts`),
so templates and descriptions go through the one scoring path of the templates.

Descriptions are stored as JSON: an object ``{"label": ["description", ...], ...}`` (:func:`load_descriptions`,
:func:`write_descriptions`); `actionclip describe` generates one with any `text-generation` model
(`commands.describe.generate_descriptions`).

It travels with the pipeline as remote code (`prompts` imports it), so it holds what descriptions are and their
file, not how they are generated; `scoring` imports it, never the reverse.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import InvalidDescriptionsError
from .files import replaced_when_done
from .tokenizer import CONTEXT_LENGTH


def check_descriptions(descriptions, where: str = "descriptions") -> dict[str, list[str]]:
    """``descriptions`` as ``{label: [description, ...]}``, checked: a mapping of non-empty labels to lists of
    non-empty strings (a single string is a list of one; an empty list: the label alone).

    Raises:
        InvalidDescriptionsError: naming the entry that is wrong.
    """
    if not isinstance(descriptions, Mapping):
        raise InvalidDescriptionsError(
            f"{where} must map each label to a list of descriptions, got {type(descriptions).__name__}"
        )
    if not descriptions:
        raise InvalidDescriptionsError(f"{where} is empty: give at least one label")
    checked: dict[str, list[str]] = {}
    for label, texts in descriptions.items():
        if not isinstance(label, str) or not label.strip():
            raise InvalidDescriptionsError(f"{where}: label {label!r} must be a non-empty string")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
            raise InvalidDescriptionsError(
                f"{where}[{label!r}] must be a list of descriptions, got {type(texts).__name__}"
            )
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidDescriptionsError(f"{where}[{label!r}][{index}] must be a non-empty string, got {text!r}")
        checked[label] = list(texts)
    return checked


def load_descriptions(path: str | os.PathLike) -> dict[str, list[str]]:
    """The descriptions JSON at ``path`` (see the module docstring), checked.

    Raises:
        InvalidDescriptionsError: missing, not UTF-8 JSON, or not label -> list of strings.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDescriptionsError(f"descriptions file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidDescriptionsError(f"descriptions file {str(path)!r} is not UTF-8 JSON: {error}") from None
    return check_descriptions(data, where=f"descriptions file {str(path)!r}")


def write_descriptions(path: str | os.PathLike, descriptions: Mapping[str, Sequence[str]]) -> Path:
    """Write ``descriptions`` as JSON (atomically: a temporary file renamed); :func:`load_descriptions` reads it."""
    checked = check_descriptions(descriptions)
    path = Path(path)
    with replaced_when_done(path) as temporary:
        temporary.write_text(json.dumps(checked, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def class_texts(labels: Sequence[str], descriptions: Mapping[str, Sequence[str]] | None) -> list[list[str]]:
    """The texts of each class: its name, then its descriptions (none for a label the mapping lacks)."""
    descriptions = descriptions or {}
    return [[label, *descriptions.get(label, ())] for label in labels]


def description_prompts(templates: Sequence[str], texts: Sequence[Sequence[str]]) -> list[str]:
    """Every template applied to every text of every class: template-major, then class, then text (the layout of
    `scoring.description_averaged_embeddings`)."""
    return [template.replace("{}", text, 1) for template in templates for group in texts for text in group]


def long_prompts(prompts: Sequence[str], tokenizer, limit: int = CONTEXT_LENGTH) -> list[tuple[int, int]]:
    """``(index, token count)`` of the prompts longer than ``limit`` tokens (start and end tokens included)."""
    lengths = [len(ids) for ids in tokenizer(list(prompts), truncation=False, verbose=False)["input_ids"]]
    return [(index, length) for index, length in enumerate(lengths) if length > limit]


def warn_long_descriptions(
    descriptions: Mapping[str, Sequence[str]],
    tokenizer,
    templates: Sequence[str] = ("{}",),
    limit: int = CONTEXT_LENGTH,
) -> int:
    """Count the description prompts (each description in each template) longer than the text tower's ``limit``
    tokens, and warn (`UserWarning`) naming a few: they are truncated, so their ends are lost. Returns the count."""
    items = [(label, text) for label, texts in descriptions.items() for text in texts]
    prompts = [template.replace("{}", text, 1) for template in templates for _, text in items]
    if not prompts:
        return 0
    too_long = long_prompts(prompts, tokenizer, limit)
    if too_long:
        shown = "; ".join(
            f"{items[index % len(items)][0]!r}: {items[index % len(items)][1][:40]!r}... ({length} tokens)"
            for index, length in too_long[:3]
        )
        warnings.warn(
            f"{len(too_long)} of {len(prompts)} description prompts exceed {limit} tokens and will be truncated: "
            f"{shown}",
            UserWarning,
            stacklevel=2,
        )
    return len(too_long)


__all__ = [
    "check_descriptions",
    "class_texts",
    "description_prompts",
    "load_descriptions",
    "long_prompts",
    "warn_long_descriptions",
    "write_descriptions",
]
