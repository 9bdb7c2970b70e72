"""Label descriptions written by a text-generation model (`actionclip describe`): a few sentences per label, the
first sentence of each generation, for `descriptions.write_descriptions`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import InvalidDescriptionsError

DEFAULT_GENERATION_PROMPT = "Describe what a person does in a video of the action '{}', in one sentence:"


def first_sentence(text: str) -> str:
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
            sentence = first_sentence(output["generated_text"])
            if sentence and sentence not in texts:
                texts.append(sentence)
        result[label] = texts
    return result


__all__ = ["DEFAULT_GENERATION_PROMPT", "first_sentence", "generate_descriptions"]
