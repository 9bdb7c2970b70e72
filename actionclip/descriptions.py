"""Label descriptions: several sentences per class, used as extra prompts beside the class name.

A class name alone ("abseiling") gives the text encoder little to go on; a few sentences about what the action
looks like help zero-shot recognition (OST, Chen et al. 2024). The texts of a class are its name followed by its
descriptions (:func:`class_texts`); each is put into every template, and the class's prompts are averaged per
template (`scoring.description_averaged_embeddings`), so templates and descriptions go through the one scoring path
of the templates.

Descriptions travel as JSON: an object ``{"label": ["description", ...], ...}`` (:func:`load_descriptions`,
:func:`write_descriptions`); `actionclip describe` writes one with any `text-generation` model
(:func:`generate_descriptions`).

This module imports only the package's errors: it travels with the pipeline as remote code.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import InvalidDescriptionsError
from .file_output import replaced_when_done

CONTEXT_LENGTH = 77
DEFAULT_GENERATION_PROMPT = "Describe what a person does in a video of the action '{}', in one sentence:"


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


def encode_label_texts(
    model,
    tokenizer,
    labels: Sequence[str],
    templates: Sequence[str],
    descriptions: Mapping[str, Sequence[str]] | None = None,
):
    """Unit-norm text embeddings ``(K * N, D)``, template-major, of ``labels`` under ``templates``: the model's
    `encode_label_set`, and with ``descriptions`` each label's texts (:func:`class_texts`) averaged per template."""
    if not descriptions:
        return model.encode_label_set(list(labels), tokenizer, list(templates))
    from .scoring import description_averaged_embeddings

    texts = class_texts(labels, descriptions)
    # encode_label_set is template-major over the texts it gets: flattened class by class, that is the layout
    # description_averaged_embeddings reads.
    embeds = model.encode_label_set([text for group in texts for text in group], tokenizer, list(templates))
    counts = [len(group) for group in texts]
    return description_averaged_embeddings(embeds, counts, len(templates)).to(embeds.dtype)


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


def _first_sentence(text: str) -> str:
    text = " ".join(text.strip().split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).strip(" \"'")


def generate_descriptions(
    labels: Sequence[str],
    generator,
    num_descriptions: int = 3,
    prompt: str = DEFAULT_GENERATION_PROMPT,
    max_new_tokens: int = 40,
    do_sample: bool = True,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Descriptions of each label from a `transformers` ``text-generation`` pipeline.

    Args:
        labels: the class names.
        generator: a ``pipeline("text-generation", ...)``.
        num_descriptions: sentences per label (sampled; duplicates and empty ones are dropped).
        prompt: the generation prompt, with ``{}`` for the label.
        max_new_tokens, do_sample: generation options; ``seed`` makes sampling repeatable.

    Returns:
        ``{label: [description, ...]}``: the first sentence of each generation.
    """
    from transformers import set_seed

    if "{}" not in prompt:
        raise InvalidDescriptionsError(f"the generation prompt needs a '{{}}' for the label, got {prompt!r}")
    if isinstance(num_descriptions, bool) or not isinstance(num_descriptions, int) or num_descriptions < 1:
        raise InvalidDescriptionsError(f"num_descriptions must be a positive integer, got {num_descriptions!r}")
    set_seed(seed)
    result: dict[str, list[str]] = {}
    for label in labels:
        outputs = generator(
            prompt.replace("{}", label, 1),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            num_return_sequences=num_descriptions,
            return_full_text=False,
            pad_token_id=getattr(generator.tokenizer, "eos_token_id", None),
        )
        texts = []
        for output in outputs:
            sentence = _first_sentence(output["generated_text"])
            if sentence and sentence not in texts:
                texts.append(sentence)
        result[label] = texts
    return result


__all__ = [
    "CONTEXT_LENGTH",
    "check_descriptions",
    "class_texts",
    "description_prompts",
    "encode_label_texts",
    "generate_descriptions",
    "load_descriptions",
    "long_prompts",
    "warn_long_descriptions",
    "write_descriptions",
]
