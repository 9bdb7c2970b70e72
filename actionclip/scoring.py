"""From logits to class scores: template ensembling.

Prompts are template-major: text row ``k * N + c`` holds template k applied to class c. A class described by
several texts (its name and descriptions, see :func:`description_averaged_embeddings`) first becomes one embedding
per template, so every scoring below sees that same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F


def template_ensemble_probs(logits_per_video: torch.Tensor, num_templates: int) -> torch.Tensor:
    """The paper's test-time ensemble: softmax over classes for every template, then the mean over templates.

    Args:
        logits_per_video: (B, K * N) logits against template-major prompts.
        num_templates: K.

    Returns:
        (B, N) probabilities; each row sums to one.
    """
    batch, total = logits_per_video.shape
    if num_templates < 1 or total % num_templates:
        raise ValueError(f"{total} prompts cannot be split into {num_templates} templates of equal class count")
    per_template = logits_per_video.float().reshape(batch, num_templates, total // num_templates)
    return F.softmax(per_template, dim=-1).mean(dim=1)


def template_averaged_embeddings(text_embeds: torch.Tensor, num_templates: int) -> torch.Tensor:
    """One embedding per class: the mean of its L2-normalised prompt embeddings over templates, re-normalised.

    Args:
        text_embeds: (K * N, D) template-major prompt embeddings.

    Returns:
        (N, D) unit-norm class embeddings.
    """
    total, dim = text_embeds.shape
    if num_templates < 1 or total % num_templates:
        raise ValueError(f"{total} prompts cannot be split into {num_templates} templates of equal class count")
    normalised = F.normalize(text_embeds.float(), dim=-1).reshape(num_templates, total // num_templates, dim)
    return F.normalize(normalised.mean(dim=0), dim=-1)


def description_averaged_embeddings(
    text_embeds: torch.Tensor, texts_per_class: Sequence[int], num_templates: int
) -> torch.Tensor:
    """One embedding per (template, class) from several texts per class: the re-normalised mean of the class's
    L2-normalised prompt embeddings under that template (a class with one text keeps its embedding as is).

    Args:
        text_embeds: (K * M, D) prompt embeddings, template-major, then class by class, then text by text:
            ``M = sum(texts_per_class)``.
        texts_per_class: the number of texts of each of the N classes (each >= 1).
        num_templates: K.

    Returns:
        (K * N, D) unit-norm embeddings, template-major: what `template_ensemble_probs` and
        `template_averaged_embeddings` take.
    """
    counts = torch.as_tensor(list(texts_per_class), dtype=torch.long)
    total, dim = text_embeds.shape
    if counts.numel() == 0 or bool((counts < 1).any()):
        raise ValueError(f"every class needs at least one text, got counts {counts.tolist()}")
    if num_templates < 1 or total != num_templates * int(counts.sum()):
        raise ValueError(f"{total} prompts are not {num_templates} templates x {int(counts.sum())} texts")
    normalised = F.normalize(text_embeds.float(), dim=-1)
    if bool((counts == 1).all()):
        return normalised
    num_classes = counts.numel()
    class_of_text = torch.repeat_interleave(torch.arange(num_classes), counts).to(normalised.device)
    per_template = normalised.reshape(num_templates, -1, dim)
    sums = per_template.new_zeros(num_templates, num_classes, dim).index_add_(1, class_of_text, per_template)
    means = sums / counts.to(sums)[None, :, None]
    return F.normalize(means, dim=-1).reshape(num_templates * num_classes, dim)


__all__ = ["description_averaged_embeddings", "template_averaged_embeddings", "template_ensemble_probs"]


# Prompts per forward pass of the text tower when a label set is encoded: bounds memory whatever the label count.
TEXT_BATCH_SIZE = 256


def embed_in_chunks(prompts, tokenize, text_features, batch_size: int = TEXT_BATCH_SIZE) -> torch.Tensor:
    """L2-normalised text embeddings ``(len(prompts), D)``, tokenized and encoded ``batch_size`` prompts at a time:
    memory is bounded by the chunk whatever the number of prompts (10,000 labels x 16 templates are 160,000), and
    the result equals encoding them all at once.

    Args:
        prompts: the texts, in the order of the output rows.
        tokenize: a list of texts -> a mapping with ``input_ids`` and ``attention_mask`` tensors ``(n, L)``.
        text_features: ``(input_ids, attention_mask)`` -> ``(n, D)`` projected, not normalised, embeddings.
        batch_size: prompts per call of ``text_features``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    chunks = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenize(list(prompts[start : start + batch_size]))
        chunks.append(F.normalize(text_features(batch["input_ids"], batch["attention_mask"]), dim=-1))
    return torch.cat(chunks, dim=0)
