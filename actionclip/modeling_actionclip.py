"""ActionCLIP: video action recognition as video-text matching, on transformers' CLIP towers.

Reads bottom-up like the architecture: the video encoder (CLIP's vision tower on every frame, with the joint and
shift prompts inside, then the post-network fusion), the pretrained base with the weight initialisation, the
video-text model, and the closed-set classifier.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, can_return_tuple

from .backbones import backbone_family, family_of_config, tokenizer_options
from .configuration_actionclip import ActionCLIPConfig
from .errors import HubUnreachableError, InvalidLogitScaleError, ModelInputError, WrongModelKindError
from .loss import ActionCLIPLoss
from .model_kinds import check_not_closed_set, is_open_set
from .scoring import TEXT_BATCH_SIZE, embed_in_chunks, template_averaged_embeddings, template_ensemble_probs
from .tokenizer import load_tokenizer
from .visual_prompts import (
    FrameAttention,
    TemporalConv1d,
    TemporalTransformerCls,
    build_fusion,
    temporal_shift,
)
from .weight_files import check_saved_weights


@dataclass
class ActionCLIPVideoFeaturesOutput(BaseModelOutputWithPooling):
    """
    Output of [`ActionCLIPModel.get_video_features`]: the vision tower's outputs with the projected video embedding
    as `pooler_output`, as transformers' `CLIPModel.get_image_features` gives an image's, plus what the visual
    prompts add.

    Args:
        last_hidden_state (`torch.Tensor` of shape `(batch_size, num_frames * tokens_per_frame, hidden_size)`):
            The vision tower's last layer, every frame's tokens one after the other (frame-major), before the
            post-layernorm: `hidden_states[-1]` viewed per video. `hidden_size` is the vision tower's width.
        pooler_output (`torch.Tensor` of shape `(batch_size, projection_dim)`):
            Video embeddings after every visual prompt (not normalised).
        hidden_states (`tuple(torch.Tensor)`, *optional*, with `output_hidden_states=True`):
            The vision tower's input to its first layer and the output of every layer, each
            `(batch_size * num_frames, tokens_per_frame, hidden_size)` (`(batch_size, num_frames * tokens_per_frame,
            hidden_size)` with the joint prompt).
        attentions (`tuple(torch.Tensor)`, *optional*, with `output_attentions=True` and eager attention):
            Every vision layer's attention weights, `(sequences, heads, tokens, tokens)` over the same sequences.
        frame_embeds (`torch.Tensor` of shape `(batch_size, num_frames, projection_dim)`):
            Projected per-frame embeddings before the post-network fusion (not normalised).
        fusion_attentions (`tuple(torch.Tensor)`, *optional*, with `output_attentions=True` and eager attention):
            Every fusion layer's attention weights over the frames, `(batch_size, heads, num_frames, num_frames)`
            (`num_frames + 1` with the class token of `transf_cls`); None for fusions without attention.
    """

    frame_embeds: torch.Tensor | None = None
    fusion_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ActionCLIPOutput(ModelOutput):
    """
    Output of [`ActionCLIPModel`]. The fields come in `CLIPOutput`'s order (videos where CLIP has images), so
    `return_dict=False` gives CLIP's tuple; what ActionCLIP adds comes last.

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            The contrastive loss, when `labels` were given (or `return_loss=True`).
        logits_per_video (`torch.Tensor` of shape `(batch_size, num_texts)`):
            Scaled cosine similarities of every video with every text.
        logits_per_text (`torch.Tensor` of shape `(num_texts, batch_size)`):
            The transpose of `logits_per_video`.
        text_embeds (`torch.Tensor` of shape `(num_texts, projection_dim)`):
            L2-normalised text embeddings.
        video_embeds (`torch.Tensor` of shape `(batch_size, projection_dim)`):
            L2-normalised video embeddings (after the visual prompts).
        text_model_output (`BaseModelOutputWithPooling`):
            The output of [`ActionCLIPModel.get_text_features`] (the text tower's, with the projected `pooler_output`).
        vision_model_output (`ActionCLIPVideoFeaturesOutput`):
            The output of [`ActionCLIPModel.get_video_features`] (the vision tower's outputs, frame and video
            embeddings and, when asked, hidden states and attention weights).
        frame_embeds (`torch.Tensor` of shape `(batch_size, num_frames, projection_dim)`):
            Projected per-frame embeddings before the post-network fusion (not normalised).
        class_scores (`torch.Tensor` of shape `(batch_size, num_classes)`, *optional*):
            In evaluation mode, given the label set's prompts (`class_input_ids`): every video's template-ensembled
            class probabilities (softmax over the classes for every template, mean over templates; rows sum to
            one), at the evaluation scale. What transformers' `Trainer` hands to `compute_metrics`.
    """

    loss: torch.Tensor | None = None
    logits_per_video: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    video_embeds: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    vision_model_output: ActionCLIPVideoFeaturesOutput | None = None
    frame_embeds: torch.Tensor | None = None
    class_scores: torch.Tensor | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        # As `CLIPOutput`: the nested tower outputs become tuples too.
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


@dataclass
class ActionCLIPVideoClassifierOutput(ModelOutput):
    """
    Output of [`ActionCLIPForVideoClassification`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            Cross-entropy against `labels`, when given.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Scaled cosine similarities of every video with every class embedding, plus the learned bias where the
            model scores with sigmoids (as `ActionCLIPModel`'s `logits_per_video`).
        video_embeds (`torch.Tensor` of shape `(batch_size, projection_dim)`):
            L2-normalised video embeddings.
        hidden_states (`tuple(torch.Tensor)`, *optional*, with `output_hidden_states=True`):
            The vision tower's input to its first layer and the output of every layer, each
            `(batch_size * num_frames, tokens_per_frame, hidden_size)` (`(batch_size, num_frames * tokens_per_frame,
            hidden_size)` with the joint prompt).
        attentions (`tuple(torch.Tensor)`, *optional*, with `output_attentions=True` and eager attention):
            Every vision layer's attention weights, `(sequences, heads, tokens, tokens)` over the same sequences.
        fusion_attentions (`tuple(torch.Tensor)`, *optional*, with `output_attentions=True` and eager attention):
            Every fusion layer's attention weights over the frames (see `ActionCLIPVideoFeaturesOutput`).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    video_embeds: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    fusion_attentions: tuple[torch.Tensor, ...] | None = None


def _l2_normalize(embeds: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last axis in float32: in half precision the norm's epsilon underflows, and a zero vector
    (a fresh class embedding) would give NaN."""
    return F.normalize(embeds.float(), dim=-1).to(embeds.dtype)


# The call that records attention weights now, in this thread (see `_recorded_attentions`).
_RECORDING_ATTENTIONS: ContextVar[list | None] = ContextVar("actionclip_recording_attentions", default=None)


@contextmanager
def _recorded_attentions(attention_layers: Sequence[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """The attention weights that `attention_layers` (CLIP's and the fusion's attention modules, which return
    `(output, weights)`) compute inside the block, in call order.

    The weights are taken from the attention modules themselves: CLIP's encoder layers return only their output
    (and the frame path runs them one by one, for the shift and joint prompts). A hook fires in every thread that runs
    the modules while it is installed; each records only for the call that installed it, so concurrent calls on one
    model do not mix their weights.
    """
    records: list[torch.Tensor] = []
    token = _RECORDING_ATTENTIONS.set(records)

    def record(module, args, output):
        if _RECORDING_ATTENTIONS.get() is records:
            records.append(output[1])

    hooks = [layer.register_forward_hook(record) for layer in attention_layers]
    try:
        yield records
    finally:
        for hook in hooks:
            hook.remove()
        _RECORDING_ATTENTIONS.reset(token)


# Held by the calls that switch a model to eager attention for their duration (see `_eager_attention`).
_EAGER_SWITCH = threading.RLock()


@contextmanager
def _eager_attention(config: ActionCLIPConfig) -> Iterator[None]:
    """Eager attention in every part of the model (towers and fusion) for the duration of the block.

    Only eager attention computes attention weights (SDPA, flash and flex compute none: transformers' CLIP towers log
    a warning and return an empty tuple), so a call with `output_attentions=True` runs eager, as on a model loaded
    with `attn_implementation="eager"`. The parts read the implementation from the configuration at call time: calls
    running meanwhile in other threads run eager too (the same results, slower), and calls that switch wait for each
    other, so the configuration ends as it was.
    """
    with _EAGER_SWITCH:
        saved = {"": config._attn_implementation}
        for key in config.sub_configs:
            if getattr(config, key, None) is not None:
                saved[key] = getattr(config, key)._attn_implementation
        config._attn_implementation = "eager"  # sets the sub-configurations too
        try:
            yield
        finally:
            config._attn_implementation = saved


def _check_pixel_values(pixel_values: torch.Tensor | None) -> None:
    if pixel_values is None:
        raise ValueError("pixel_values is required: a float tensor of shape (batch, frames, channels, height, width)")
    if not torch.is_tensor(pixel_values) or pixel_values.ndim != 5:
        shape = tuple(pixel_values.shape) if torch.is_tensor(pixel_values) else type(pixel_values).__name__
        raise ValueError(f"pixel_values must have shape (batch, frames, channels, height, width), got {shape}")


def _resolved_config(cls, pretrained_model_name_or_path, config, kwargs: dict) -> ActionCLIPConfig:
    """The configuration `from_pretrained` builds the model with: ``config`` when it is one (the Auto classes pass
    it), else the folder's with the keyword overrides (``id2label=...``) applied, read as transformers reads it."""
    if isinstance(config, PretrainedConfig):
        return config
    resolved, _ = cls.config_class.from_pretrained(
        config if config is not None else pretrained_model_name_or_path, return_unused_kwargs=True, **kwargs
    )
    return resolved


def _label_names(config: ActionCLIPConfig) -> list[str] | None:
    """The class names of ``config.id2label`` by id, or None when they are transformers' placeholders (``LABEL_0``,
    ``LABEL_1``, ...: what ``num_labels=N`` or no labels at all give)."""
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    return None if all(name == f"LABEL_{i}" for i, name in enumerate(names)) else names


def _train_fusion_with_adapters(model: nn.Module, configs: Mapping) -> None:
    """Wrap the fusion in peft's `ModulesToSaveWrapper` (trained in full, saved with the adapter) for the adapters
    being trained, unless the user's configuration already decided for it (named it in ``modules_to_save``, or
    targeted its layers); see `ActionCLIPPreTrainedModel.peft_config`."""
    fusion = getattr(model, "fusion", None)
    if fusion is None or not any(True for _ in fusion.parameters()):
        return  # meanP: nothing to train
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import AuxiliaryTrainingWrapper, ModulesToSaveWrapper

    if isinstance(fusion, AuxiliaryTrainingWrapper) or any(isinstance(m, BaseTunerLayer) for m in fusion.modules()):
        return
    for adapter_name, config in configs.items():
        # A loaded adapter keeps what it was saved with; prompt learning has no modules to save.
        if getattr(config, "inference_mode", True) or not hasattr(config, "modules_to_save"):
            continue
        config.modules_to_save = [*(config.modules_to_save or []), "fusion"]
        if isinstance(fusion, ModulesToSaveWrapper):
            fusion.update(adapter_name)
        else:
            fusion = ModulesToSaveWrapper(fusion, adapter_name)
            model.fusion = fusion
        fusion.set_adapter(adapter_name, inference_mode=False)


class ActionCLIPPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading for ActionCLIP models.

    The CLIP towers are CLIP's own pretrained models and initialise themselves; this class initialises what
    ActionCLIP adds. It goes through `transformers.initialization`, which leaves loaded weights alone, so a
    model loaded from a CLIP checkpoint gets fresh fusion weights and keeps every CLIP weight. Each branch
    initialises the parameters the module owns directly: transformers skips modules without direct parameters
    (they count as initialised) when it fills in weights missing from a checkpoint.
    """

    config_class = ActionCLIPConfig
    config: ActionCLIPConfig
    base_model_prefix = "actionclip"
    main_input_name = "pixel_values"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The fusion's layers. The towers' own (`CLIPEncoderLayer`, `SiglipEncoderLayer`, `AltRobertaLayer`, ...: the
    # family's `_no_split_modules`) are added to a model's by `post_init`, which gathers those of its sub-models.
    _no_split_modules = ["PreNormEncoderLayer", "PostNormEncoderLayer"]

    # peft gives a model no say in what `get_peft_model` trains besides the adapters: it freezes every other weight,
    # then hands the adapters' configurations to the model as `model.peft_config`. That assignment is where the
    # fusion joins what is trained, in full: it starts fresh on a CLIP checkpoint, and its layers are named apart
    # from the towers' so that CLIP's LoRA targets (`q_proj`, `v_proj`, ...) leave it to this.
    @property
    def peft_config(self) -> dict:
        """The peft adapters' configurations by name, once peft has wrapped this model."""
        try:
            return self.__dict__["_peft_configs"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no adapters (peft_config)") from None

    @peft_config.setter
    def peft_config(self, configs: dict) -> None:
        self.__dict__["_peft_configs"] = configs
        _train_fusion_with_adapters(self, configs)

    @peft_config.deleter
    def peft_config(self) -> None:
        self.__dict__.pop("_peft_configs", None)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, require_all_weights: bool = False, **kwargs):
        """transformers' `from_pretrained`, after checking a local directory's weight files against the model
        (`weight_files.check_saved_weights`): a damaged or hostile file, or a tensor whose shape does not fit the
        configuration, raises `InvalidWeightsError` naming the file before any tensor is read.

        Args:
            require_all_weights (`bool`, *optional*, defaults to `False`):
                Refuse weight files that lack tensors the model needs (`MissingWeightsError`, naming them) instead of
                letting transformers initialise them at random with its warning (`output_loading_info=True` lists
                them as `missing_keys`). The command line asks for it; the zero-shot pipeline refuses such a model
                after loading it.
        """
        check_saved_weights(cls, pretrained_model_name_or_path, kwargs, require_all_weights)
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def is_custom_code(cls) -> bool:
        # transformers treats a model defined outside its package as custom code that may write weights in place,
        # and then marks every module without parameters of its own as initialised without initialising it. That
        # flag is passed down into the CLIP towers, whose scheme lives on such modules (CLIPAttention, CLIPMLP,
        # CLIPTextEmbeddings): weights missing from a checkpoint would get std 0.02 instead of CLIP's. Every
        # `_init_weights` here and in CLIP goes through `transformers.initialization`, which leaves loaded weights
        # alone, so the guard is not needed.
        return False

    def _init_weights(self, module: nn.Module) -> None:
        config = self.config
        std = config.initializer_range
        if isinstance(module, nn.Identity):
            return  # the projections of a family whose towers end in their own heads: nothing to initialise
        if module is getattr(self, "visual_projection", None):
            init.normal_(module.weight, std=config.vision_config.hidden_size**-0.5 * config.initializer_factor)
        elif module is getattr(self, "text_projection", None):
            init.normal_(module.weight, std=module.weight.shape[1] ** -0.5 * config.initializer_factor)
        elif isinstance(module, ActionCLIPPreTrainedModel):
            init.constant_(module.logit_scale, config.logit_scale_init_value)
            if getattr(module, "logit_bias", None) is not None:
                init.constant_(module.logit_bias, SIGMOID_LOGIT_BIAS_INIT)
            if getattr(module, "temporal_embedding", None) is not None:
                init.normal_(module.temporal_embedding, std=std)
            if getattr(module, "class_embeddings", None) is not None:
                init.zeros_(module.class_embeddings)
        elif isinstance(module, nn.Conv1d):
            # The depthwise temporal convolution of the conv1d prompt starts as a fixed channel shift.
            init.copy_(module.weight, TemporalConv1d.initial_weight(module.out_channels))
        elif isinstance(module, nn.LSTM):
            # PyTorch's own LSTM initialisation, as the original used.
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)
        elif isinstance(module, TemporalTransformerCls):
            init.trunc_normal_(module.cls_token, std=std)
            init.trunc_normal_(module.pos_embed, std=std)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class PatchEmbedding(nn.Conv2d):
    """CLIP's patch embedding (a Conv2d whose stride is its kernel) computed as one matmul on the unfolded patches.

    A strided convolution over non-overlapping patches is a matrix product of the ``(N * patches, C * p * p)``
    patch matrix with the ``(C * p * p, D)`` weight; cuDNN's convolution and its layout conversions cost about 9 %
    of a compiled ViT-B/16 step, the matmul does not. Same parameters (``weight``, ``bias``), so state dicts are
    unchanged; any other convolution geometry falls back to `nn.Conv2d`.
    """

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PatchEmbedding:
        """The same layer, sharing ``conv``'s parameters."""
        layer = cls.__new__(cls)
        layer.__dict__.update(conv.__dict__)
        return layer

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D, H // p, W // p), a view of an (N, H // p, W // p, D) tensor: CLIP's
        ``flatten(2).transpose(1, 2)`` then gives the (N, patches, D) tokens without a copy."""
        if (
            isinstance(self.padding, str)
            or self.stride != self.kernel_size
            or any(self.padding)
            or any(d != 1 for d in self.dilation)
            or self.groups != 1
        ):
            return super().forward(pixel_values)
        batch, channels, height, width = pixel_values.shape
        patch_height, patch_width = self.kernel_size
        rows, columns = height // patch_height, width // patch_width
        if channels > 1 and pixel_values.stride(1) == 1:
            # Channels-last frames (as `frames_to_pixel_values` returns them).
            pixels = pixel_values.permute(0, 2, 3, 1)  # (N, H, W, C)
            weight = self.weight.permute(2, 3, 1, 0).reshape(patch_height, patch_width * channels, -1)
            if (
                pixels.device.type == "cpu"
                and pixels.is_contiguous()
                and (height, width)
                == (
                    rows * patch_height,
                    columns * patch_width,
                )
            ):
                # On a CPU, one product per pixel row of the patches, each on a view of the frames (runs of
                # `patch_width * channels` values): no gathered patch matrix, whose copy cost more than the
                # product (3x at 32-px patches, 1.3x at ViT-B/16's).
                by_row = pixels.reshape(batch * rows, patch_height, columns, patch_width * channels)
                embeds = None
                for row in range(patch_height):
                    part = by_row[:, row].reshape(-1, patch_width * channels)
                    if embeds is None:
                        embeds = (
                            torch.matmul(part, weight[row])
                            if self.bias is None
                            else torch.addmm(self.bias, part, weight[row])
                        )
                    else:
                        embeds.addmm_(part, weight[row])
                return embeds.view(batch, rows, columns, self.out_channels).permute(0, 3, 1, 2)
            # Elsewhere one product on the patches gathered in (row, column, channel) order.
            patches = (
                pixels[:, : rows * patch_height, : columns * patch_width]
                .reshape(batch, rows, patch_height, columns, patch_width, channels)
                .permute(0, 1, 3, 2, 4, 5)
                .reshape(batch * rows * columns, patch_height * patch_width * channels)
            )
            weight = weight.reshape(-1, self.out_channels).t()
        else:
            patches = (
                pixel_values[..., : rows * patch_height, : columns * patch_width]
                .reshape(batch, channels, rows, patch_height, columns, patch_width)
                .permute(0, 2, 4, 1, 3, 5)
                .reshape(batch * rows * columns, channels * patch_height * patch_width)
            )
            weight = self.weight.reshape(self.out_channels, -1)
        embeds = (
            torch.matmul(patches, weight.t()) if self.bias is None else torch.addmm(self.bias, patches, weight.t())
        )
        return embeds.view(batch, rows, columns, self.out_channels).permute(0, 3, 1, 2)


# SigLIP's initial bias of the pair logits: with many more negative pairs than positive ones, the sigmoid loss starts
# near its minimum for random embeddings (the SigLIP paper's -10).
SIGMOID_LOGIT_BIAS_INIT = -10.0


def _uses_logit_bias(config: ActionCLIPConfig) -> bool:
    """Pair logits carry a learned bias: on a family trained with the sigmoid loss, or with `contrastive_loss="sigmoid"`."""
    return backbone_family(config.backbone).sigmoid or config.contrastive_loss == "sigmoid"


class ActionCLIPVideoEncoderMixin:
    """The video side shared by the video-text model and the closed-set classifier.

    Needs `vision_model` (the family's vision tower), `visual_projection` (an identity where the family has none),
    `temporal_embedding` (joint prompt, or None) and `fusion` (the post-network prompt).
    """

    @property
    def max_frames(self) -> int | None:
        """The most frames a clip may have: the rows of the frame position tables (the joint prompt's temporal
        embedding, the Transf / Transf_cls position embeddings); None when no table limits it."""
        limits = []
        if getattr(self, "temporal_embedding", None) is not None:
            limits.append(int(self.temporal_embedding.shape[0]))
        table = getattr(self.fusion, "frame_position_embeddings", None)
        if table is not None:
            limits.append(int(table.num_embeddings))
        pos_embed = getattr(self.fusion, "pos_embed", None)
        if pos_embed is not None:
            limits.append(int(pos_embed.shape[1]) - 1)  # one row is the class token's
        return min(limits) if limits else None

    def _build_video_encoder(self, config: ActionCLIPConfig) -> None:
        family = backbone_family(config.backbone)
        self.vision_model = family.build_vision_model(config.vision_config)
        embeddings = self.vision_model.embeddings
        if type(embeddings.patch_embedding) is nn.Conv2d:  # SigLIP 2 embeds its patch sequences with a Linear
            embeddings.patch_embedding = PatchEmbedding.from_conv(embeddings.patch_embedding)
        self.visual_projection = (
            nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
            if family.projections
            else nn.Identity()
        )
        if config.joint:
            self.temporal_embedding = nn.Parameter(
                torch.zeros(config.fusion_max_frames, config.vision_config.hidden_size)
            )
        else:
            self.temporal_embedding = None
        self.fusion = build_fusion(config)

    def _build_logit_parameters(self, config: ActionCLIPConfig) -> None:
        """The learned temperature, and the bias where pair scores are sigmoids, shaped as the family's own."""
        shape = backbone_family(config.backbone).scalar_shape
        self.logit_scale = nn.Parameter(torch.full(shape, config.logit_scale_init_value))
        if _uses_logit_bias(config):
            self.logit_bias = nn.Parameter(torch.full(shape, SIGMOID_LOGIT_BIAS_INIT))

    def get_frame_features(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """Projected per-frame embeddings, before the post-network fusion.

        Args:
            pixel_values: (B, T, C, H, W) CLIP-normalised frames.

        Returns:
            (B, T, D) frame embeddings (not normalised).
        """
        return self._encode_frames(pixel_values, interpolate_pos_encoding).pooler_output

    def _encode_frames(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | Sequence[int] = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        """The vision tower on every frame, run layer by layer so that the shift and joint prompts fit in.

        `output_hidden_states` may list the indices of the hidden states to keep (the others are None), as
        transformers' models accept.

        Returns:
            `last_hidden_state`: the last layer's tokens, (B*T, L, W) ((B, T*L, W) with the joint prompt);
            `pooler_output`: the (B, T, D) projected frame embeddings; `hidden_states`: the input of the first
            layer and every layer's output, shaped as `last_hidden_state`; `attentions`: every layer's attention
            weights (computed by eager attention only: see `_eager_attention`).
        """
        _check_pixel_values(pixel_values)
        batch_size, num_frames = pixel_values.shape[:2]
        vision = self.vision_model
        family = backbone_family(self.config.backbone)
        hidden_states = family.frame_tokens(
            vision, pixel_values.flatten(0, 1), interpolate_pos_encoding
        )  # (B*T, L, W)
        tokens_per_frame, width = hidden_states.shape[1:]
        if self.temporal_embedding is not None:
            if num_frames > self.temporal_embedding.shape[0]:
                raise ValueError(
                    f"got {num_frames} frames but the joint prompt has temporal embeddings for at most "
                    f"{self.temporal_embedding.shape[0]}"
                )
            hidden_states = hidden_states.view(batch_size, num_frames, tokens_per_frame, width)
            hidden_states = hidden_states + self.temporal_embedding[:num_frames, None, :].to(hidden_states.dtype)
            # Joint space-time attention: one sequence of all the frames' tokens per video.
            hidden_states = hidden_states.reshape(batch_size, num_frames * tokens_per_frame, width)
        if hasattr(vision, "pre_layrnorm"):  # CLIP-like towers; SigLIP's have no LayerNorm before the layers
            hidden_states = vision.pre_layrnorm(hidden_states)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        # No recording unless asked: torch.compile cannot trace the context variable the recording sets.
        recording = (
            _recorded_attentions([layer.self_attn for layer in vision.encoder.layers])
            if output_attentions
            else nullcontext()
        )
        with recording as all_attentions:
            for layer in vision.encoder.layers:
                if self.config.shift:
                    hidden_states = temporal_shift(
                        hidden_states, num_frames, self.config.shift_fold_div, tokens_per_frame, family.class_tokens
                    )
                hidden_states = layer(hidden_states, None)
                if output_hidden_states:
                    all_hidden_states.append(hidden_states)
        pooled = family.frame_pooling(vision, hidden_states.reshape(batch_size * num_frames, tokens_per_frame, width))
        if output_hidden_states and not isinstance(output_hidden_states, bool):
            kept = {index % len(all_hidden_states) for index in output_hidden_states}
            all_hidden_states = [state if i in kept else None for i, state in enumerate(all_hidden_states)]
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=self.visual_projection(pooled).view(batch_size, num_frames, -1),
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )

    def _fusion_attention_layers(self) -> list[nn.Module]:
        """The attention modules of the post-network fusion (none for meanP, conv1d and lstm)."""
        return [module for module in self.fusion.modules() if isinstance(module, FrameAttention)]

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | Sequence[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> ActionCLIPVideoFeaturesOutput | tuple:
        """Video embeddings after every visual prompt, as transformers' `CLIPModel.get_image_features` gives an
        image's: the vision tower's outputs with the projected embedding as `pooler_output`.

        Args:
            pixel_values: (B, T, C, H, W) CLIP-normalised frames.
            output_hidden_states: also return the vision tower's per-layer hidden states (default: the config's).
            output_attentions: also return the attention weights of the vision tower and of the fusion (default: the
                config's); the call runs eager attention, the only one that computes them.
            return_dict: `False` gives a tuple (as every transformers model).

        Returns:
            `ActionCLIPVideoFeaturesOutput`: `pooler_output` the (B, D) video embeddings (not normalised),
            `last_hidden_state` the vision tower's last layer (B, T * L, W), `frame_embeds` the (B, T, D) projected
            frame embeddings before the post-network fusion, `hidden_states` / `attentions` the vision tower's,
            `fusion_attentions` the fusion's.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        with _eager_attention(self.config) if output_attentions else nullcontext():
            frames = self._encode_frames(
                pixel_values, interpolate_pos_encoding, output_hidden_states, output_attentions
            )
            frame_embeds = frames.pooler_output
            fusion_attention_layers = self._fusion_attention_layers() if output_attentions else []
            fusion_attentions = None
            if fusion_attention_layers:
                with _recorded_attentions(fusion_attention_layers) as recorded:
                    video_embeds = self.fusion(frame_embeds)
                fusion_attentions = tuple(recorded)
            else:
                video_embeds = self.fusion(frame_embeds)
        last_hidden_state = frames.last_hidden_state
        return ActionCLIPVideoFeaturesOutput(
            last_hidden_state=last_hidden_state.reshape(frame_embeds.shape[0], -1, last_hidden_state.shape[-1]),
            pooler_output=video_embeds,
            hidden_states=frames.hidden_states,
            attentions=frames.attentions,
            frame_embeds=frame_embeds,
            fusion_attentions=fusion_attentions,
        )

    def scale(self, logit_scale: float | torch.Tensor | None = None) -> torch.Tensor:
        """The multiplier of the cosine similarities in training: `logit_scale` when given, else the learned
        `exp(self.logit_scale)` clamped to `config.logit_scale_max`."""
        if logit_scale is not None:
            # inf gives NaN probabilities and a negative scale inverts every ranking: refused, never used silently.
            if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float, torch.Tensor)):
                raise InvalidLogitScaleError(f"logit_scale must be a finite positive number, got {logit_scale!r}")
            value = torch.as_tensor(logit_scale, dtype=self.logit_scale.dtype, device=self.logit_scale.device)
            if not bool(torch.isfinite(value).all() and (value > 0).all()):
                raise InvalidLogitScaleError(f"logit_scale must be a finite positive number, got {logit_scale!r}")
            return value
        return self.logit_scale.exp().clamp(max=self.config.logit_scale_max)

    def evaluation_scale(self, logit_scale: float | torch.Tensor | None = None) -> torch.Tensor:
        """The multiplier of the cosine similarities when scoring: `logit_scale` when given, else
        `config.eval_logit_scale` (100 for converted checkpoints of the authors'), else the learned one."""
        if logit_scale is None:
            logit_scale = self.config.eval_logit_scale
        return self.scale(logit_scale)

    def score_bias(self) -> torch.Tensor | None:
        """The learned bias of the pair logits where scores are sigmoid probabilities (a family trained with the
        sigmoid loss, such as SigLIP, or `contrastive_loss="sigmoid"`); `None` where they are a softmax over the
        label set. What `scoring.template_ensemble_probs` and `scoring.label_scores` take as ``bias``."""
        return getattr(self, "logit_bias", None)

    def pair_logits(self, video_embeds: torch.Tensor, text_embeds: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` logits of L2-normalised video and text (or class) embeddings: ``scale * cos``, plus the learned
        bias where the model scores with sigmoids (`score_bias`)."""
        logits = scale * video_embeds @ text_embeds.t()
        bias = self.score_bias()
        return logits if bias is None else logits + bias.to(logits.dtype)


class ActionCLIPModel(ActionCLIPVideoEncoderMixin, ActionCLIPPreTrainedModel):
    """ActionCLIP's video-text model: any label set, any prompts; the zero-shot and fine-tuning model.

    Weight names follow the backbone family's image-text model (`CLIPModel`, `SiglipModel`, ...: `text_model.*`,
    `vision_model.*`, `visual_projection`, `text_projection`, `logit_scale`, `logit_bias`), so every checkpoint of the
    family loads unchanged (`from_backbone`); the visual prompts add `temporal_embedding` (joint) and `fusion.*`.
    """

    # The loss is a batch mean computed here: the Trainer must scale it for gradient accumulation itself.
    accepts_loss_kwargs = False

    def __init__(self, config: ActionCLIPConfig):
        super().__init__(config)
        family = backbone_family(config.backbone)
        self.text_model = family.build_text_model(config.text_config)
        self.text_projection = (
            nn.Linear(getattr(config.text_config, family.text_width_field), config.projection_dim, bias=False)
            if family.projections
            else nn.Identity()
        )
        self._build_video_encoder(config)
        self._build_logit_parameters(config)
        self.criterion = ActionCLIPLoss(config.contrastive_loss, config.kl_target_scale, config.gather_distributed)
        self.post_init()

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """Projected text embeddings, as the family's `get_text_features` (`CLIPModel`'s, `SiglipModel`'s, ...)
        gives them.

        Args:
            input_ids: (N, L) token ids from the family's tokenizer (L <= its text context: 77 for CLIP).
            attention_mask: (N, L), optional (CLIP's causal mask already ignores what follows the end token).
            position_ids: (N, L), optional.
            token_type_ids: (N, L), optional; only the BERT / RoBERTa text towers (Chinese-CLIP, AltCLIP) take them.
            kwargs: passed to the text model (`output_hidden_states`, `output_attentions`, ...); `return_dict=False`
                gives a tuple. With `output_attentions` the call runs eager attention, the only one that computes
                attention weights.

        Returns:
            The text tower's `BaseModelOutputWithPooling` whose `pooler_output` holds the (N, D) projected text
            embeddings (not normalised).
        """
        if input_ids is None:
            raise ValueError("input_ids is required: token ids of shape (num_texts, length) from CLIP's tokenizer")
        output_attentions = kwargs.get("output_attentions")
        if output_attentions is None:
            output_attentions = self.config.text_config.output_attentions  # what CLIP's text model falls back to
        family = backbone_family(self.config.backbone)
        if token_type_ids is not None and family.token_type_ids:
            kwargs["token_type_ids"] = token_type_ids
        with _eager_attention(self.config) if output_attentions else nullcontext():
            outputs = self.text_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                return_dict=True,
                **kwargs,
            )
        outputs.pooler_output = self.text_projection(family.text_pooling(self.text_model, outputs))
        return outputs

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_loss: bool | None = None,
        logit_scale: float | torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        class_input_ids: torch.Tensor | None = None,
        class_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> ActionCLIPOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_frames, channels, height, width)`):
                CLIP-normalised frames of every video.
            input_ids (`torch.Tensor` of shape `(num_texts, length)`):
                Tokenized prompts. With the `"kl"` loss: one prompt per video (its own label's); for scoring:
                any texts, e.g. the template-major prompts of a label set.
            attention_mask (`torch.Tensor` of shape `(num_texts, length)`, *optional*):
                Padding mask of `input_ids`.
            labels (`torch.Tensor` of shape `(batch_size,)`, *optional*):
                Class ids of the videos; given, the loss is computed.
            return_loss (`bool`, *optional*):
                Compute the loss; defaults to whether `labels` were given. Without `labels`, text i is video i's
                (`labels = arange(batch_size)`, as CLIP pairs them; with distinct labels the KL loss is CLIP's).
            logit_scale (`float`, *optional*):
                Multiplier of the cosine similarities instead of the learned `exp(logit_scale)` (which training
                uses); the original's evaluation used a fixed 100 (`config.eval_logit_scale`, which the pipeline
                and `actionclip eval` apply).
            output_hidden_states, output_attentions (`bool`, *optional*):
                Return both towers' hidden states / attention weights (and the fusion's attention weights) in
                `text_model_output` and `vision_model_output` (default: the config's). With attention weights the
                call runs eager attention, the only one that computes them.
            class_input_ids (`torch.Tensor` of shape `(num_templates, num_classes, length)`, *optional*):
                The label set's prompts, template-major (what `ActionCLIPCollator` adds to every batch). In
                evaluation mode they give `class_scores`, so that transformers' `Trainer` evaluates class accuracy;
                in training mode they are not encoded (the loss does not use them).
            class_attention_mask (`torch.Tensor` of shape `(num_templates, num_classes, length)`, *optional*):
                Padding mask of `class_input_ids`.
            return_dict (`bool`, *optional*):
                `False` gives a tuple in `CLIPOutput`'s order: (`loss` when computed, `logits_per_video`,
                `logits_per_text`, `text_embeds`, `video_embeds`, `text_model_output`, `vision_model_output`,
                `frame_embeds`, then `class_scores` when computed).
        """
        if input_ids is None:
            raise ModelInputError(
                "ActionCLIPModel.forward needs input_ids, the tokenized prompts; a batch without them comes from a "
                "collator that makes no prompts (transformers' default). With transformers.Trainer pass "
                "data_collator=ActionCLIPCollator(label_names, tokenizer) and TrainingArguments("
                "remove_unused_columns=False), or use actionclip's ActionCLIPTrainer (actionclip.training.trainer.build_trainer)"
            )
        tower_kwargs = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        vision_outputs = self.get_video_features(
            pixel_values, interpolate_pos_encoding, return_dict=True, **tower_kwargs
        )
        text_outputs = self.get_text_features(
            input_ids,
            attention_mask,
            position_ids,
            return_dict=True,
            **{key: value for key, value in tower_kwargs.items() if value is not None},
            **kwargs,
        )
        video_embeds = F.normalize(vision_outputs.pooler_output, dim=-1)
        text_embeds = F.normalize(text_outputs.pooler_output, dim=-1)
        scale = self.scale(logit_scale)
        logits_per_video = self.pair_logits(video_embeds, text_embeds, scale)

        if return_loss is None:
            return_loss = labels is not None
        loss = None
        if return_loss:
            if labels is None:
                if text_embeds.shape[0] != video_embeds.shape[0]:
                    raise ValueError(
                        f"return_loss=True without labels pairs text i with video i, but got "
                        f"{text_embeds.shape[0]} texts for {video_embeds.shape[0]} videos: pass labels"
                    )
                labels = torch.arange(video_embeds.shape[0], device=video_embeds.device)
            loss = self.criterion(video_embeds, text_embeds, labels, scale, self.score_bias())

        class_scores = None
        if class_input_ids is not None and not self.training:
            class_scores = self._class_scores(video_embeds, class_input_ids, class_attention_mask, logit_scale)

        return ActionCLIPOutput(
            loss=loss,
            class_scores=class_scores,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            text_embeds=text_embeds,
            video_embeds=video_embeds,
            text_model_output=text_outputs,
            vision_model_output=vision_outputs,
            frame_embeds=vision_outputs.frame_embeds,
        )

    def _class_scores(
        self,
        video_embeds: torch.Tensor,
        class_input_ids: torch.Tensor,
        class_attention_mask: torch.Tensor | None,
        logit_scale: float | torch.Tensor | None,
    ) -> torch.Tensor:
        """Template-ensembled class probabilities ``(B, N)`` of L2-normalised ``video_embeds`` ``(B, D)`` against
        the ``(K, N, L)`` template-major prompts, at the evaluation scale (as `ActionCLIPTrainer` scores them)."""
        if class_input_ids.ndim != 3:
            raise ModelInputError(
                f"class_input_ids must be (num_templates, num_classes, length), got shape {tuple(class_input_ids.shape)}"
            )
        if class_attention_mask is None:
            class_attention_mask = torch.ones_like(class_input_ids)
        if class_attention_mask.shape != class_input_ids.shape:
            raise ModelInputError(
                f"class_attention_mask has shape {tuple(class_attention_mask.shape)}, class_input_ids "
                f"{tuple(class_input_ids.shape)}: they must match"
            )
        num_templates, _, length = class_input_ids.shape
        input_ids = class_input_ids.reshape(-1, length)
        attention_mask = class_attention_mask.reshape(-1, length)
        # In chunks of rows, as a label set is encoded elsewhere: memory bounded whatever the number of classes.
        text_embeds = embed_in_chunks(
            range(input_ids.shape[0]),
            lambda rows: {
                "input_ids": input_ids[rows[0] : rows[-1] + 1],
                "attention_mask": attention_mask[rows[0] : rows[-1] + 1],
            },
            lambda ids, mask: self.get_text_features(ids, mask).pooler_output,
        )
        logits = self.evaluation_scale(logit_scale) * video_embeds @ text_embeds.to(video_embeds.dtype).t()
        return template_ensemble_probs(logits, num_templates, self.score_bias())

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """As `PreTrainedModel.from_pretrained` (and `AutoModel`), refusing the folder of a closed-set
        `ActionCLIPForVideoClassification`: it saves no text tower, which would otherwise start random.

        Raises:
            WrongModelKindError: a closed-set classifier's folder; the message says how to load it instead.
        """
        resolved = _resolved_config(cls, pretrained_model_name_or_path, config, kwargs)
        check_not_closed_set(resolved, str(pretrained_model_name_or_path))
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, config=config, **kwargs)

    @classmethod
    def from_backbone(cls, name_or_path, **kwargs) -> ActionCLIPModel:
        """Start from an image-text model of any supported family: CLIP, MetaCLIP 2, Chinese-CLIP, AltCLIP, SigLIP,
        SigLIP 2 (a saved folder or Hub id of `CLIPModel`, `SiglipModel`, ..., or such a model already loaded).

        The family's own class loads the checkpoint (with transformers' own conversions of older weight layouts),
        and every one of its weights is copied unchanged; only the visual prompts' weights start fresh. Keyword
        arguments that are `ActionCLIPConfig` fields (`fusion`, `shift`, `joint`, `num_frames`, `templates`,
        `contrastive_loss`, ...) choose the visual prompts and training; the rest go to the family's
        `from_pretrained` (`dtype`, `attn_implementation`, `revision`, ...).

        Raises:
            InvalidConfigError: the checkpoint is of no supported family (its `model_type` is named).
            HubUnreachableError: a Hub id while the Hub is out of reach and the cache does not hold it.
            ValueError: the checkpoint's weights do not fit the towers (named).
        """
        config_fields = set(ActionCLIPConfig.__init__.__code__.co_varnames) - {"self", "kwargs"}
        config_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in config_fields}
        if isinstance(name_or_path, PreTrainedModel):  # already loaded: copy its weights, no second read
            backbone = name_or_path
            family_of_config(backbone.config)
        else:
            load_kwargs = dict(kwargs)
            unreachable = None
            if not load_kwargs.get("local_files_only"):
                unreachable = hub_unreachable(name_or_path)
                if unreachable:  # the cache may hold it; transformers would retry the Hub for half a minute first
                    load_kwargs["local_files_only"] = True
            try:
                hub_kwargs = {key: value for key, value in load_kwargs.items() if key in _HUB_KWARGS}
                family = family_of_config(AutoConfig.from_pretrained(name_or_path, **hub_kwargs))
                backbone = family.transformers_class("model_class").from_pretrained(name_or_path, **load_kwargs)
            except OSError:
                if not unreachable:
                    raise
                raise HubUnreachableError(
                    f"{name_or_path!r} is not a local folder, the Hugging Face Hub is out of reach ({unreachable}) "
                    f"and the local cache does not hold it: download it where the Hub is reachable (`hf download "
                    f"{name_or_path} --local-dir DIR`) and pass that folder, ActionCLIPModel.from_backbone(DIR)"
                ) from None
        name = backbone.name_or_path or type(backbone).__name__
        model = cls(ActionCLIPConfig.from_backbone_config(backbone.config, **config_kwargs))
        result = model.load_state_dict(backbone.state_dict(), strict=False)
        model.to(device=backbone.device, dtype=backbone.dtype)
        model.config._name_or_path = backbone.name_or_path
        allowed_missing = ("fusion.", "temporal_embedding")
        if model.config.contrastive_loss == "sigmoid" and not hasattr(backbone, "logit_bias"):
            allowed_missing += ("logit_bias",)  # the sigmoid objective on a softmax family: a fresh bias
        missing = [key for key in result.missing_keys if not key.startswith(allowed_missing)]
        unexpected = [key for key in result.unexpected_keys if not key.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(
                f"{name!r} does not fit ActionCLIP's {model.config.backbone} towers: missing {missing[:10]}, "
                f"unexpected {unexpected[:10]}"
            )
        return model

    @torch.no_grad()
    def encode_label_set(
        self,
        labels: Sequence[str],
        tokenizer,
        templates: Sequence[str] | None = None,
        batch_size: int = TEXT_BATCH_SIZE,
    ) -> torch.Tensor:
        """L2-normalised text embeddings of every (template, label) prompt, template-major.

        Returns:
            (K * N, D) embeddings; row `k * N + c` is template k applied to label c.
        """
        templates = list(self.config.templates if templates is None else templates)
        prompts = [template.format(label) for template in templates for label in labels]
        options = tokenizer_options(self.config)
        return self.embed_prompts(prompts, lambda chunk: tokenizer(chunk, **options, return_tensors="pt"), batch_size)

    def embed_prompts(
        self, prompts: Sequence[str], tokenize: Callable[[list[str]], Mapping], batch_size: int = TEXT_BATCH_SIZE
    ) -> torch.Tensor:
        """L2-normalised text embeddings ``(len(prompts), D)`` of ``prompts``, ``batch_size`` at a time (memory
        bounded whatever the number of prompts; `scoring.embed_in_chunks`). ``tokenize``: a list of texts -> a
        mapping with ``input_ids`` and ``attention_mask`` ``(n, L)``."""
        device = self.logit_scale.device
        return embed_in_chunks(
            prompts,
            tokenize,
            lambda input_ids, attention_mask: (
                self.get_text_features(input_ids.to(device), attention_mask.to(device)).pooler_output
            ),
            batch_size,
        )


HUB_PROBE_TIMEOUT = 3.0  # seconds the Hub has to answer before it counts as out of reach


def hub_unreachable(name_or_path: str) -> str | None:
    """Why the Hugging Face Hub cannot serve the Hub id ``name_or_path`` (offline mode, no answer), or None: it
    answered, or ``name_or_path`` is a local folder or no Hub id. Asks once, within `HUB_PROBE_TIMEOUT`; transformers'
    own requests retry for about half a minute before failing."""
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if os.path.isdir(name_or_path):
        return None
    try:
        validate_repo_id(str(name_or_path))
    except HFValidationError:
        return None  # a path that does not exist: transformers says so without the network
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT)
    except Exception as error:  # the HTTP client's transport errors (its module differs between versions)
        return f"{constants.ENDPOINT} did not answer: {' '.join(str(error).split())}"
    return None


_HUB_KWARGS = {
    "cache_dir",
    "force_download",
    "local_files_only",
    "token",
    "revision",
    "subfolder",
    "trust_remote_code",
}


class ActionCLIPForVideoClassification(ActionCLIPVideoEncoderMixin, ActionCLIPPreTrainedModel):
    """A closed-set classifier: ActionCLIP's video encoder and a fixed label set (`config.id2label`) whose class
    embeddings are template-averaged text embeddings computed once. Works with `AutoModelForVideoClassification`
    and `pipeline("video-classification")`, and needs no text encoder at inference.
    """

    def __init__(self, config: ActionCLIPConfig):
        super().__init__(config)
        self._build_video_encoder(config)
        self.class_embeddings = nn.Parameter(torch.zeros(config.num_labels, config.projection_dim))
        self._build_logit_parameters(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        logit_scale: float | torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> ActionCLIPVideoClassifierOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_frames, channels, height, width)`):
                CLIP-normalised frames.
            labels (`torch.Tensor` of shape `(batch_size,)`, *optional*):
                Class ids; given, the cross-entropy loss is returned.
            logit_scale (`float`, *optional*):
                Multiplier of the cosine similarities. Default: in training mode the learned `exp(logit_scale)`;
                in evaluation mode `config.eval_logit_scale` when set (100 for the authors' checkpoints), else the
                learned one.
            output_hidden_states, output_attentions, return_dict: as for transformers' models.
        """
        vision_outputs = self.get_video_features(
            pixel_values,
            interpolate_pos_encoding,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        video_embeds = _l2_normalize(vision_outputs.pooler_output)
        scale = self.scale(logit_scale) if self.training else self.evaluation_scale(logit_scale)
        # With the family's bias where it scores with sigmoids, as the video-text model's `logits_per_video` (the
        # softmax and its cross-entropy are the same with or without it).
        logits = self.pair_logits(video_embeds, _l2_normalize(self.class_embeddings).to(video_embeds.dtype), scale)
        loss = F.cross_entropy(logits.float(), labels.to(logits.device).long()) if labels is not None else None
        return ActionCLIPVideoClassifierOutput(
            loss=loss,
            logits=logits,
            video_embeds=video_embeds,
            hidden_states=vision_outputs.hidden_states,
            attentions=vision_outputs.attentions,
            fusion_attentions=vision_outputs.fusion_attentions,
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """As `PreTrainedModel.from_pretrained` (and `AutoModelForVideoClassification`, `pipeline("video-classification")`).

        The folder of a closed-set classifier loads as saved. The folder of an `ActionCLIPModel` (open-set: no class
        embeddings saved, a text tower instead) becomes the classifier of the labels named by ``id2label`` (a
        keyword, or in ``config``), whose class embeddings the folder's text tower computes from the names under
        the model's templates, as `from_actionclip` does; it then fine-tunes like any classifier.

        Raises:
            WrongModelKindError: an `ActionCLIPModel` folder without class names (``num_labels=N`` alone, or no
                labels, gives transformers' placeholders ``LABEL_0``, ...): there is nothing to compute the class
                embeddings from, and zeros or random ones would classify nothing.
        """
        resolved = _resolved_config(cls, pretrained_model_name_or_path, config, kwargs)
        if not is_open_set(resolved):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, config=config, **kwargs)
        where = str(pretrained_model_name_or_path)
        labels = _label_names(resolved)
        if labels is None:
            raise WrongModelKindError(
                f"model {where!r} is a zero-shot ActionCLIPModel: a class is the text embedding of its name, and no "
                f"class names were given ({resolved.num_labels} classes named LABEL_0, LABEL_1, ... by transformers). "
                f"Name them: AutoModelForVideoClassification.from_pretrained({where!r}, id2label={{0: 'archery', "
                "1: 'juggling balls'}) computes their embeddings with the folder's text tower (save that model for "
                f"pipeline('video-classification')); or rank any labels with "
                f"pipeline('zero-shot-video-classification', model={where!r})"
            )
        model_kwargs = {
            key: value for key, value in kwargs.items() if key not in ("id2label", "label2id", "num_labels")
        }
        loaded = ActionCLIPModel.from_pretrained(
            pretrained_model_name_or_path, *model_args, config=config, **model_kwargs
        )
        model, info = loaded if isinstance(loaded, tuple) else (loaded, None)
        classifier = cls.from_actionclip(model, labels, load_tokenizer(pretrained_model_name_or_path, model.config))
        classifier.config._name_or_path = model.config._name_or_path
        return classifier if info is None else (classifier, info)

    @classmethod
    @torch.no_grad()
    def from_actionclip(
        cls,
        model: ActionCLIPModel,
        labels: Sequence[str],
        tokenizer,
        templates: Sequence[str] | None = None,
    ) -> ActionCLIPForVideoClassification:
        """Freeze a label set into a closed-set classifier: class embeddings are the template-averaged text
        embeddings of `labels` under `templates` (default: the model's)."""
        labels = list(labels)
        if not labels:
            raise ValueError("labels must hold at least one class name")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct, got duplicates in {labels}")
        templates = list(model.config.templates if templates is None else templates)
        config_dict = model.config.to_dict()
        config_dict.pop("architectures", None)
        config_dict.update(
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            templates=templates,
        )
        if model.score_bias() is not None:
            # Each class's score is its own sigmoid probability, as zero-shot: pipeline("video-classification")
            # applies a sigmoid for this problem type (the loss stays the cross-entropy over the classes).
            config_dict["problem_type"] = "multi_label_classification"
        config = ActionCLIPConfig.from_dict(config_dict)
        config._attn_implementation = model.config._attn_implementation
        text_embeds = model.encode_label_set(labels, tokenizer, templates)
        classifier = cls(config).to(device=model.logit_scale.device, dtype=model.logit_scale.dtype)
        state = {k: v for k, v in model.state_dict().items() if not k.startswith(("text_model.", "text_projection"))}
        state["class_embeddings"] = template_averaged_embeddings(text_embeds, len(templates))
        classifier.load_state_dict(state, strict=True)
        return classifier.eval()


__all__ = [
    "ActionCLIPForVideoClassification",
    "ActionCLIPModel",
    "ActionCLIPOutput",
    "ActionCLIPPreTrainedModel",
    "ActionCLIPVideoClassifierOutput",
    "ActionCLIPVideoFeaturesOutput",
]
