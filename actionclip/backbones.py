"""The image-text backbones ActionCLIP runs on: one small adapter per family, chosen by name.

An ActionCLIP model is an image-text model's two towers plus the visual prompts. The families differ in how they
pool a text and a frame into one embedding, whether they have projections, and how they score a pair; everything
else (the visual prompts, the loss, the pipeline) is the same for all. `BackboneFamily` says what differs, as data
and three small functions; `BACKBONE_FAMILIES` holds one per family, keyed by the ``model_type`` of the family's
image-text configuration (``"clip"``, ``"siglip"``, ...), which `ActionCLIPConfig.backbone` records.

Weight names are the family's own image-text model's (``text_model.*``, ``vision_model.*``, ``text_projection``,
``visual_projection``, ``logit_scale``, ``logit_bias``), so a family's checkpoint loads into ActionCLIP unchanged.

Families without a class token (SigLIP, SigLIP 2) pool each frame with their attention-pooling head. There the
joint prompt adds its temporal embedding to every patch token and attends jointly over all the frames' tokens; the
head then pools each frame's own tokens into that frame's embedding. Transf_cls is a post-network prompt with its
own learned class token over the frame embeddings, so it means the same on every family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import InvalidConfigError

if TYPE_CHECKING:  # the family table is read without torch (`model_kinds` checks a folder before torch loads)
    import torch
    from torch import nn

# Prompts in Chinese for the family trained on Chinese text (Chinese-CLIP): a video of the action, someone doing it.
CHINESE_TEMPLATES: tuple[str, ...] = (
    "一段{}的视频",
    "{}的视频",
    "有人在{}",
    "一个人正在{}",
    "{}的画面",
    "{}的动作",
    "视频中的人在{}",
    "一张{}的照片",
)


def _pooled_text(model: nn.Module, outputs) -> torch.Tensor:
    """The text tower's own pooled output (CLIP's end-of-text token, SigLIP's last token through its head)."""
    return outputs.pooler_output


def _first_token_text(model: nn.Module, outputs) -> torch.Tensor:
    """The first ([CLS] / <s>) token of the last layer, as Chinese-CLIP and AltCLIP pool a text."""
    return outputs.last_hidden_state[:, 0, :]


def _class_token_frames(vision: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """(N, L, W) last-layer tokens of N frames -> (N, W): the class token through the final LayerNorm."""
    return vision.post_layernorm(hidden_states[:, 0])


def _attention_pooled_frames(vision: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """(N, L, W) last-layer tokens of N frames -> (N, W): the final LayerNorm, then the attention-pooling head."""
    return vision.head(vision.post_layernorm(hidden_states))


def _conv_patch_tokens(vision: nn.Module, pixel_values: torch.Tensor, interpolate_pos_encoding: bool) -> torch.Tensor:
    """(N, C, H, W) frames -> (N, L, W) tokens with their positions, through the family's own embeddings."""
    return vision.embeddings(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)


def frames_to_patches(pixel_values: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) frames -> SigLIP 2's patch sequences: ``(N, rows * columns, p * p * C)`` patches in row-major
    order with the channels last inside a patch (as its image processor makes them), and the ``(N, 2)`` spatial
    shapes ``(rows, columns)``."""
    import torch

    frames, channels, height, width = pixel_values.shape
    rows, columns = height // patch_size, width // patch_size
    patches = (
        pixel_values[..., : rows * patch_size, : columns * patch_size]
        .reshape(frames, channels, rows, patch_size, columns, patch_size)
        .permute(0, 2, 4, 3, 5, 1)
        .reshape(frames, rows * columns, patch_size * patch_size * channels)
    )
    shapes = torch.tensor([[rows, columns]], dtype=torch.long, device=pixel_values.device).expand(frames, 2)
    return patches, shapes


def _patch_sequence_tokens(
    vision: nn.Module, pixel_values: torch.Tensor, interpolate_pos_encoding: bool
) -> torch.Tensor:
    """SigLIP 2 at a fixed resolution: every frame is one full patch sequence (no padding), its position table
    resized to the frame's grid by SigLIP 2's own embeddings."""
    patches, shapes = frames_to_patches(pixel_values, vision.config.patch_size)
    return vision.embeddings(patches, shapes)


@dataclass(frozen=True)
class BackboneFamily:
    """What one image-text family does its own way.

    Attributes:
        model_type: the ``model_type`` of the family's image-text configuration (``"clip"``, ``"siglip"``, ...).
        model_class, text_model_class, vision_model_class: names of the family's classes in transformers.
        text_model_kwargs: extra arguments building the text tower (Chinese-CLIP's has no pooling layer).
        projections: the family projects both towers' pooled outputs with ``text_projection`` and
            ``visual_projection`` (CLIP-like); SigLIP's towers end in their own heads instead.
        sigmoid: trained with the sigmoid loss: pair scores are ``sigmoid(scale * cos + logit_bias)``, each a
            probability of its own; the others' scores are a softmax over the label set.
        class_tokens: tokens before the patches in each frame's sequence (1: the class token; 0: none).
        pad_to_max_length: the family's texts are padded to the text context (SigLIP pools its last token).
        token_type_ids: the text tower takes ``token_type_ids`` (BERT / RoBERTa towers).
        templates: the default prompt templates in the language the family was trained on; `None`: ActionCLIP's
            16 English templates (`prompts.ACTIONCLIP_TEMPLATES`).
        lora_target_modules: the towers' attention projections a LoRA recipe adapts: the ends of their module names
            inside the encoder layers (`training.trainer.lora_target_modules` makes peft's pattern of them).
        text_width_field: the text configuration's field giving the pooled text's width (AltCLIP projects its
            RoBERTa states to ``project_dim`` inside the tower).
        text_config_defaults: the special-token ids of the family's tokenizer, for a text configuration that does
            not give them (the text configuration class's own defaults are CLIP's ids, which CLIP's legacy argmax
            pooling and SigLIP's 32000-token vocabulary do not fit).
        position_offset: rows of the text position table a text cannot use (RoBERTa's padding offset: 2).
        scalar_shape: the shape of ``logit_scale`` and ``logit_bias`` in the family's checkpoints (SigLIP's are
            ``(1,)``, CLIP's 0-d).
        text_pooling: ``(text_model, text tower outputs) -> (N, W)`` pooled texts before any projection.
        frame_tokens: ``(vision_model, (N, C, H, W) frames, interpolate_pos_encoding) -> (N, L, W)`` tokens.
        frame_pooling: ``(vision_model, (N, L, W) last-layer tokens) -> (N, W)`` pooled frames.
    """

    model_type: str
    model_class: str
    text_model_class: str
    vision_model_class: str
    projections: bool
    sigmoid: bool
    class_tokens: int
    text_pooling: Callable[[nn.Module, object], torch.Tensor]
    frame_tokens: Callable[[nn.Module, torch.Tensor, bool], torch.Tensor]
    frame_pooling: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    pad_to_max_length: bool = False
    token_type_ids: bool = False
    templates: tuple[str, ...] | None = None
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj")
    text_model_kwargs: dict = field(default_factory=dict)
    scalar_shape: tuple[int, ...] = ()
    position_offset: int = 0
    text_width_field: str = "hidden_size"
    text_config_defaults: dict = field(default_factory=dict)

    def transformers_class(self, name: str) -> type:
        """A transformers class of this family by attribute name (``"model_class"``, ``"text_model_class"``, ...)."""
        import transformers

        return getattr(transformers, getattr(self, name))

    @property
    def config_class(self) -> type:
        """The family's image-text configuration class (`CLIPConfig`, `SiglipConfig`, ...)."""
        return self.transformers_class("model_class").config_class

    def sub_config_class(self, tower: str) -> type:
        """The configuration class of ``tower`` (``"text_config"`` or ``"vision_config"``)."""
        return self.config_class.sub_configs[tower]

    def build_text_model(self, text_config) -> nn.Module:
        """The family's text tower, as its image-text model builds it."""
        cls = self.transformers_class("text_model_class")
        if self.text_model_kwargs:
            return cls(text_config, **self.text_model_kwargs)
        return cls._from_config(text_config)

    def build_vision_model(self, vision_config) -> nn.Module:
        """The family's vision tower, as its image-text model builds it."""
        return self.transformers_class("vision_model_class")._from_config(vision_config)


# A BERT / RoBERTa text tower (``attention.self.query`` ... ``attention.output.dense``: the counterparts of CLIP's
# ``q_proj`` ... ``out_proj``; a bare ``dense`` would also take the feed-forward layers) beside a CLIP vision tower.
_BERT_TEXT_CLIP_VISION_ATTENTION = (
    "query",
    "key",
    "value",
    "attention.output.dense",
    "q_proj",
    "k_proj",
    "v_proj",
    "out_proj",
)
_CLIP_LIKE = dict(
    projections=True,
    sigmoid=False,
    class_tokens=1,
    frame_tokens=_conv_patch_tokens,
    frame_pooling=_class_token_frames,
)
_SIGLIP_LIKE = dict(
    projections=False,
    sigmoid=True,
    class_tokens=0,
    text_pooling=_pooled_text,
    frame_pooling=_attention_pooled_frames,
    pad_to_max_length=True,
    scalar_shape=(1,),
)

BACKBONE_FAMILIES: dict[str, BackboneFamily] = {
    family.model_type: family
    for family in (
        BackboneFamily(
            "clip",
            "CLIPModel",
            "CLIPTextModel",
            "CLIPVisionModel",
            text_pooling=_pooled_text,
            # OpenAI CLIP's end-of-text token pools the text; the legacy id 2 would make CLIP pool at argmax.
            text_config_defaults={"bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1},
            **_CLIP_LIKE,
        ),
        BackboneFamily(
            "metaclip_2",
            "MetaClip2Model",
            "MetaClip2TextModel",
            "MetaClip2VisionModel",
            text_pooling=_pooled_text,
            **_CLIP_LIKE,
        ),
        BackboneFamily(
            "chinese_clip",
            "ChineseCLIPModel",
            "ChineseCLIPTextModel",
            "ChineseCLIPVisionModel",
            text_pooling=_first_token_text,
            token_type_ids=True,
            templates=CHINESE_TEMPLATES,
            lora_target_modules=_BERT_TEXT_CLIP_VISION_ATTENTION,
            text_model_kwargs={"add_pooling_layer": False},
            **_CLIP_LIKE,
        ),
        BackboneFamily(
            "altclip",
            "AltCLIPModel",
            "AltCLIPTextModel",
            "AltCLIPVisionModel",
            text_pooling=_first_token_text,
            token_type_ids=True,
            lora_target_modules=_BERT_TEXT_CLIP_VISION_ATTENTION,
            position_offset=2,
            text_width_field="project_dim",
            **_CLIP_LIKE,
        ),
        BackboneFamily(
            "siglip",
            "SiglipModel",
            "SiglipTextModel",
            "SiglipVisionModel",
            frame_tokens=_conv_patch_tokens,
            # SigLIP's SentencePiece vocabulary (T5's layout): </s> 1 ends and pads a text; no beginning token.
            text_config_defaults={"bos_token_id": None, "eos_token_id": 1, "pad_token_id": 1},
            **_SIGLIP_LIKE,
        ),
        BackboneFamily(
            "siglip2",
            "Siglip2Model",
            "Siglip2TextModel",
            "Siglip2VisionModel",
            frame_tokens=_patch_sequence_tokens,
            # Gemma's vocabulary: <pad> 0, <eos> 1, <bos> 2.
            text_config_defaults={"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0},
            **_SIGLIP_LIKE,
        ),
    )
}
DEFAULT_BACKBONE = "clip"


def backbone_image_size(vision_config) -> int:
    """The side of the square frames a vision tower takes: its ``image_size`` (SigLIP 2 at a fixed resolution: its
    position grid's side in patches times the patch size)."""
    image_size = getattr(vision_config, "image_size", None)
    if image_size is not None:
        return int(image_size)
    return int(round(vision_config.num_patches**0.5)) * int(vision_config.patch_size)


def text_context_length(config) -> int:
    """The most tokens a text may have for the text tower of ``config`` (an `ActionCLIPConfig`): CLIP's 77,
    SigLIP's 64, BERT's and RoBERTa's 512."""
    family = backbone_family(config.backbone)
    return config.text_config.max_position_embeddings - family.position_offset


def tokenizer_options(config) -> dict:
    """How texts are tokenized for the model of ``config``: truncated to its context, and padded to the longest
    text, or to the context where the family pools a fixed position (SigLIP pools its last token, so texts are padded
    to the length it was trained with)."""
    family = backbone_family(config.backbone)
    return {
        "padding": "max_length" if family.pad_to_max_length else True,
        "truncation": True,
        "max_length": text_context_length(config),
    }


def backbone_family(model_type: str) -> BackboneFamily:
    """The adapter of the family whose image-text configuration has ``model_type``.

    Raises:
        InvalidConfigError: no such family; the message lists the supported ones.
    """
    family = BACKBONE_FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise InvalidConfigError(
            f"backbone {model_type!r} is not a supported image-text family; supported: {sorted(BACKBONE_FAMILIES)}"
        )
    return family


def family_of_config(config) -> BackboneFamily:
    """The family of a loaded image-text configuration (`CLIPConfig`, `SiglipConfig`, ...).

    Raises:
        InvalidConfigError: a configuration of no supported image-text family (a text-only or vision-only model,
            another architecture); the message names its ``model_type``.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in BACKBONE_FAMILIES:
        raise InvalidConfigError(
            f"{type(config).__name__} (model_type {model_type!r}) is not the configuration of a supported "
            f"image-text model; supported families: {sorted(BACKBONE_FAMILIES)}"
        )
    return BACKBONE_FAMILIES[model_type]


__all__ = [
    "BACKBONE_FAMILIES",
    "CHINESE_TEMPLATES",
    "DEFAULT_BACKBONE",
    "backbone_image_size",
    "BackboneFamily",
    "backbone_family",
    "family_of_config",
    "frames_to_patches",
    "text_context_length",
    "tokenizer_options",
]
