"""Batches for ActionCLIP training: stacked clips, labels and the tokenized prompts the loss needs.

- ``contrastive_loss="kl"`` (the paper's) and ``"sigmoid"`` (SigLIP's): one prompt per video, its own class under a
  template drawn at random for that sample; ``input_ids`` / ``attention_mask`` are ``(B, L)``.
- ``contrastive_loss="cross_entropy"``: the prompts of all N classes under one template drawn for the batch;
  ``input_ids`` / ``attention_mask`` are ``(N, L)`` and ``labels`` index them.

Template draws come from each item's ``sample_seed`` (see :mod:`actionclip.data.clip_loader`), so they are the same in
a resumed run; items without one use the collator's own generator.

Every batch also carries the label set's prompts, every template applied to every class (``class_input_ids`` /
``class_attention_mask`` ``(K, N, L)``, tokenized once): in evaluation mode `ActionCLIPModel` scores each video
against them (``class_scores`` ``(B, N)``), which is what transformers' plain `Trainer` gives ``compute_metrics``.
`ActionCLIPTrainer` encodes the label set itself and drops them.

Texts are tokenized as the model's family takes them (`backbones.tokenizer_options` of the model's configuration):
truncated to its text context (CLIP's 77, SigLIP's 64, BERT's and XLM-R's 512), padded to the longest text, or to the
context where the family pools a fixed position (SigLIP).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..backbones import DEFAULT_BACKBONE, tokenizer_options
from ..configuration_actionclip import LOSS_TYPES, ActionCLIPConfig
from ..errors import DatasetFormatError, InvalidLabelsError, ProcessorArgumentError
from ..prompts import DEFAULT_TEMPLATE_SET, PromptTemplater, TemplatesLike
from ..tokenizer import load_clip_tokenizer

# The label set's prompts added to every batch, for transformers' plain `Trainer` (see the module docstring).
CLASS_PROMPT_KEYS = ("class_input_ids", "class_attention_mask")


class ActionCLIPCollator:
    """Collate dataset items ``{"pixel_values": (T, C, H, W), "labels": int[, "sample_seed": int]}``.

    Args:
        label_names: class names in label-id order.
        tokenizer: the model's tokenizer, its family's own (`ActionCLIPProcessor.tokenizer`); default, for a CLIP
            model only: the shipped CLIP tokenizer (`actionclip.tokenizer.load_clip_tokenizer()`).
        templates: prompt templates (anything `prompts.load_templates` accepts, or a `PromptTemplater`).
        contrastive_loss: ``"kl"``, ``"cross_entropy"`` or ``"sigmoid"`` (as `ActionCLIPConfig.contrastive_loss`).
        seed: seed of the generator used for items without ``sample_seed``.
        config: the model's configuration (an `ActionCLIPConfig`): how its family tokenizes texts
            (`backbones.tokenizer_options`); default: a CLIP model's (padded to the longest text, at most 77 tokens).

    Returns (from ``__call__``): ``pixel_values`` (B, T, C, H, W) float32 (or, for items of a dataset with
    ``transform_on_device``, uint8 ``frames`` (B, T, H, W, 3) and in training their ``augmentation``, which
    `ActionCLIPTrainer` turns into ``pixel_values`` on the device), ``labels`` (B,) int64, ``input_ids`` and
    ``attention_mask`` (B or N, L) padded as the model's family takes them (to the longest prompt of the batch, at most
    the text context; SigLIP: to the context), and the label
    set's prompts ``class_input_ids`` / ``class_attention_mask`` (K, N, L), template-major.
    """

    def __init__(
        self,
        label_names: Sequence[str],
        tokenizer=None,
        templates: TemplatesLike | PromptTemplater = DEFAULT_TEMPLATE_SET,
        contrastive_loss: str = "kl",
        seed: int = 0,
        config: ActionCLIPConfig | None = None,
    ):
        if contrastive_loss not in LOSS_TYPES:
            raise ValueError(f"contrastive_loss must be one of {LOSS_TYPES}, got {contrastive_loss!r}")
        if config is None:
            config = ActionCLIPConfig()  # a CLIP model's text tower: its context, its padding
        if tokenizer is None:
            if config.backbone != DEFAULT_BACKBONE:
                raise ProcessorArgumentError(
                    f"ActionCLIPCollator for a {config.backbone} model needs its tokenizer: pass tokenizer= (the "
                    "model's processor's, ActionCLIPProcessor.from_backbone(...).tokenizer)"
                )
            tokenizer = load_clip_tokenizer()
        self.tokenizer = tokenizer
        # `input_ids` and `attention_mask` only: BERT's `token_type_ids` (Chinese-CLIP) are all zeros for a single
        # text, which is what its text tower takes when they are left out, so dropping them changes nothing (and
        # XLM-R's tokenizer gives none); `ActionCLIPModel.embed_prompts` scores label sets the same way.
        self.text_options = tokenizer_options(config)
        self.templater = templates if isinstance(templates, PromptTemplater) else PromptTemplater(templates)
        self.label_names = self.templater.normalize_labels(list(label_names))
        self.contrastive_loss = contrastive_loss
        self._rng = np.random.default_rng(seed)
        self._class_tokens: dict[str, torch.Tensor] | None = None

    def class_prompt_tokens(self) -> dict[str, torch.Tensor]:
        """``class_input_ids`` / ``class_attention_mask`` ``(K, N, L)``: template ``k`` applied to class ``c`` at
        ``[k, c]``, padded to the longest prompt of the label set; tokenized on first use, then the same tensors."""
        if self._class_tokens is None:
            prompts = self.templater.build_prompts(self.label_names)
            tokens = self.tokenizer(prompts, **self.text_options, return_tensors="pt")
            shape = (self.templater.num_templates, len(self.label_names), -1)
            ids_key, mask_key = CLASS_PROMPT_KEYS
            self._class_tokens = {
                ids_key: tokens["input_ids"].reshape(shape),
                mask_key: tokens["attention_mask"].reshape(shape),
            }
        return self._class_tokens

    def _template_ids(self, features: Sequence[dict], count: int) -> np.ndarray:
        if all("sample_seed" in feature for feature in features):
            if count == 1:
                return np.random.default_rng(int(features[0]["sample_seed"])).integers(
                    self.templater.num_templates, size=1
                )
            return np.array(
                [
                    np.random.default_rng(int(feature["sample_seed"])).integers(self.templater.num_templates)
                    for feature in features
                ],
                dtype=np.int64,
            )
        return self._rng.integers(self.templater.num_templates, size=count)

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        clips = _collate_clips(features)
        labels = torch.tensor([int(feature["labels"]) for feature in features], dtype=torch.long)
        if labels.min() < 0 or labels.max() >= len(self.label_names):
            raise InvalidLabelsError(
                f"labels {labels.tolist()} are outside [0, {len(self.label_names)}): the collator's class names do "
                "not match the dataset"
            )
        if self.contrastive_loss != "cross_entropy":  # "kl", "sigmoid": each video's own prompt
            template_ids = self._template_ids(features, len(features))
            texts = self.templater.format_prompts([self.label_names[i] for i in labels.tolist()], template_ids)
        else:
            template_id = int(self._template_ids(features, 1)[0])
            texts = self.templater.format_prompts(self.label_names, [template_id] * len(self.label_names))
        tokens = self.tokenizer(texts, **self.text_options, return_tensors="pt")
        return {
            **clips,
            "labels": labels,
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            **self.class_prompt_tokens(),
        }


def _collate_clips(features: Sequence[dict]) -> dict:
    """``pixel_values`` (B, T, C, H, W) float32, or uint8 ``frames`` (B, T, H, W, 3) of items from datasets with
    ``transform_on_device``: their training crops differ in size, so they are padded (bottom and right) to the
    largest, and their parameters listed in ``augmentation`` (`ClipAugmentation` per clip)."""
    for feature in features:
        if ("pixel_values" not in feature and "frames" not in feature) or "labels" not in feature:
            raise DatasetFormatError(
                f"a batch item holds {sorted(feature)}: ActionCLIPCollator needs 'pixel_values' (or 'frames') and "
                "'labels', as actionclip's datasets give them (VideoClassificationDataset, load_video_dataset; "
                "VideoClassificationDataset.from_hf_dataset for a datasets.Dataset). "
                "With transformers.Trainer pass TrainingArguments(remove_unused_columns=False): otherwise it drops "
                "every column ActionCLIPModel.forward does not name (frames, augmentation, sample_seed, video, ...)"
            )
    kinds = {"frames" if "frames" in feature else "pixel_values" for feature in features}
    if len(kinds) > 1:
        raise ValueError("cannot collate items with pixel_values together with items with uint8 frames")
    if kinds == {"pixel_values"}:
        return {"pixel_values": torch.stack([torch.as_tensor(f["pixel_values"]) for f in features]).float()}
    frames = [torch.as_tensor(feature["frames"]) for feature in features]
    augmentations = [feature.get("augmentation") for feature in features]
    if any(a is None for a in augmentations) != all(a is None for a in augmentations):
        raise ValueError("cannot collate training clips (with an augmentation) together with evaluation clips")
    if augmentations[0] is None:
        return {"frames": torch.stack(frames)}
    height = max(clip.shape[1] for clip in frames)
    width = max(clip.shape[2] for clip in frames)
    batch = torch.zeros((len(frames), frames[0].shape[0], height, width, 3), dtype=torch.uint8)
    for row, clip in enumerate(frames):
        batch[row, :, : clip.shape[1], : clip.shape[2]] = clip
    # The parameters stay Python objects: the Trainer's device placement leaves them on the host, where the
    # device transform takes its decisions without waiting for the device.
    return {"frames": batch, "augmentation": list(augmentations)}


__all__ = ["CLASS_PROMPT_KEYS", "ActionCLIPCollator"]
