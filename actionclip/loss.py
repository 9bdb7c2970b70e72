"""ActionCLIP's training objective, as its own module.

Several videos of a batch can share a label, so the video-to-text target is not one-hot. The paper's loss is a
symmetric KL divergence between ``softmax(logits)`` and a target built from the label-equality matrix
``G[i, j] = [label_i == label_j]`` (the original uses ``softmax(10 * G)``, nearly ``G`` row-normalised), averaged
over the video-to-text and text-to-video directions. Under ``torch.distributed`` the batch is the global one:
embeddings are gathered from every process with gradients, so each process computes the loss of the whole batch
and the gradients equal those of one process holding all of it.

The sigmoid objective (SigLIP's, ``contrastive_loss="sigmoid"``) scores every video-text pair on its own:
``-log sigmoid(z_ij * (scale * cos_ij + bias))`` with ``z_ij = +1`` where videos i and j share a label and ``-1``
elsewhere, summed over the texts and averaged over the videos; it is gathered across processes as the KL loss is.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F


def _distributed_world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (N, ...) from every process along dim 0, keeping gradients to every process's part."""
    if _distributed_world() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (N, ...) from every process along dim 0 (no gradient: labels, indices)."""
    world = _distributed_world()
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def label_equality_targets(labels: torch.Tensor, scale: float) -> torch.Tensor:
    """Row-stochastic targets ``softmax(scale * G)`` with ``G[i, j] = 1`` where ``labels[i] == labels[j]``.

    Args:
        labels: (B,) integer labels.

    Returns:
        (B, B) float32 targets; each row sums to one.
    """
    equal = (labels[:, None] == labels[None, :]).float()
    return F.softmax(scale * equal, dim=1)


def symmetric_kl_loss(
    logits_per_video: torch.Tensor, labels: torch.Tensor, target_scale: float = 10.0
) -> torch.Tensor:
    """The paper's loss for a square (B, B) logit matrix of B videos against the B prompts of their own labels."""
    targets = label_equality_targets(labels, target_scale).to(logits_per_video.dtype)
    video_to_text = F.kl_div(F.log_softmax(logits_per_video, dim=1), targets, reduction="batchmean")
    text_to_video = F.kl_div(F.log_softmax(logits_per_video.t(), dim=1), targets.t(), reduction="batchmean")
    return (video_to_text + text_to_video) / 2


def sigmoid_pair_loss(logits_per_video: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SigLIP's loss with label-equality targets for a square (B, B) matrix of biased logits (videos against the
    prompts of their own labels): every pair of a shared label is a positive, every other pair a negative."""
    signs = 2.0 * (labels[:, None] == labels[None, :]).to(logits_per_video.dtype) - 1.0
    return -F.logsigmoid(signs * logits_per_video).sum(dim=1).mean()


class ActionCLIPLoss(nn.Module):
    """Contrastive loss of ActionCLIP.

    Args:
        contrastive_loss: (the configuration field of the same name) ``"kl"``: B videos against the B prompts of their labels (one template each), symmetric KL
            against label-equality targets; ``"cross_entropy"``: each video against the prompts of all N classes,
            ``labels`` indexing them; ``"sigmoid"``: the B x B pairs as for ``"kl"``, each scored with SigLIP's
            sigmoid loss against label-equality signs (:func:`sigmoid_pair_loss`), on logits with the learned bias.
        kl_target_scale: the scale inside ``softmax(scale * G)``.
        gather_distributed: under ``torch.distributed`` with several processes, compute the KL (or sigmoid) loss over the
            global batch (embeddings gathered with gradients). Cross-entropy is per video and needs no gathering.
    """

    def __init__(self, contrastive_loss: str = "kl", kl_target_scale: float = 10.0, gather_distributed: bool = True):
        super().__init__()
        if contrastive_loss not in ("kl", "cross_entropy", "sigmoid"):
            raise ValueError(f"contrastive_loss must be 'kl', 'cross_entropy' or 'sigmoid', got {contrastive_loss!r}")
        self.contrastive_loss = contrastive_loss
        self.kl_target_scale = kl_target_scale
        self.gather_distributed = gather_distributed

    def forward(
        self,
        video_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        labels: torch.Tensor,
        logit_scale: torch.Tensor | float,
        logit_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            video_embeds: (B, D) L2-normalised video embeddings of this process.
            text_embeds: (B, D) for ``"kl"`` (prompt i belongs to video i) or (N, D) class prompts for
                ``"cross_entropy"``; L2-normalised.
            labels: (B,) integer labels (class indices for ``"cross_entropy"``).
            logit_scale: the multiplier of the cosine similarities (``exp(logit_scale)``).
            logit_bias: the learned bias of the pair logits (needed by ``"sigmoid"``; a softmax ignores it).

        Returns:
            The scalar loss.
        """
        labels = labels.to(video_embeds.device).long()
        if labels.ndim != 1 or labels.shape[0] != video_embeds.shape[0]:
            raise ValueError(f"labels must have shape ({video_embeds.shape[0]},), got {tuple(labels.shape)}")
        if self.contrastive_loss == "cross_entropy":
            logits = logit_scale * video_embeds @ text_embeds.t()
            # No range check here: it would cost a host-device sync every step; cross_entropy names a bad target.
            return F.cross_entropy(logits.float(), labels)
        if text_embeds.shape[0] != video_embeds.shape[0]:
            raise ValueError(
                f"the {self.contrastive_loss} loss pairs each video with the prompt of its own label: expected {video_embeds.shape[0]} "
                f"texts, got {text_embeds.shape[0]} (set the configuration's contrastive_loss='cross_entropy' to score "
                "against all classes)"
            )
        if self.gather_distributed:
            video_embeds = gather_with_grad(video_embeds)
            text_embeds = gather_with_grad(text_embeds)
            labels = gather_no_grad(labels)
        logits = logit_scale * video_embeds @ text_embeds.t()
        if self.contrastive_loss == "sigmoid":
            if logit_bias is None:
                raise ValueError("the sigmoid loss needs the model's logit_bias")
            return sigmoid_pair_loss((logits + logit_bias).float(), labels)
        return symmetric_kl_loss(logits.float(), labels, self.kl_target_scale)


__all__ = [
    "ActionCLIPLoss",
    "gather_no_grad",
    "gather_with_grad",
    "label_equality_targets",
    "sigmoid_pair_loss",
    "symmetric_kl_loss",
]
