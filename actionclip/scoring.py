"""From logits to class scores: template ensembling.

Prompts are template-major: text row ``k * N + c`` holds template k applied to class c.
"""

from __future__ import annotations

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


__all__ = ["template_averaged_embeddings", "template_ensemble_probs"]
