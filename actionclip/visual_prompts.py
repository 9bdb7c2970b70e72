"""ActionCLIP's visual prompts as small blocks.

- pre-network ``joint``: learned temporal position embeddings and joint space-time attention (in the model);
- in-network ``shift``: :func:`temporal_shift`, applied before every vision layer;
- post-network fusion of the T frame embeddings into one video embedding, chosen by name from
  :data:`FUSION_REGISTRY`: ``meanP``, ``conv1d``, ``lstm``, ``transf``, ``transf_cls``.

Every fusion block maps ``frame_embeds`` of shape (B, T, D) to a video embedding of shape (B, D).

The fusion's linear layers are named apart from CLIP's (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, ``fc1``,
``fc2``): a LoRA recipe written for CLIP's towers (``target_modules=["q_proj", "v_proj"]``) adapts the towers and
leaves the fusion, which starts fresh on a CLIP checkpoint, to be trained in full rather than frozen at its
initialisation under a low-rank update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.clip.modeling_clip import eager_attention_forward

from .configuration_actionclip import ActionCLIPConfig

FUSION_REGISTRY: dict[str, type[nn.Module]] = {}


def register_fusion(name: str):
    """Class decorator adding a fusion block to :data:`FUSION_REGISTRY` under ``name``."""

    def add(cls):
        FUSION_REGISTRY[name] = cls
        cls.fusion_name = name
        return cls

    return add


def build_fusion(config: ActionCLIPConfig) -> nn.Module:
    """The post-network prompt named by ``config.fusion``."""
    return FUSION_REGISTRY[config.fusion](config)


def temporal_shift(
    hidden_states: torch.Tensor, num_frames: int, fold_div: int, tokens_per_frame: int, class_tokens: int = 1
) -> torch.Tensor:
    """Shift part of the channels of every patch token between neighbouring frames (TSM), leaving class tokens.

    Args:
        hidden_states: (B * T, L, C) per-frame tokens, or (B, T * L, C) joint tokens; L = ``tokens_per_frame``
            with the ``class_tokens`` first.
        num_frames: T.
        fold_div: channels [0, C/fold_div) of frame t come from frame t + 1, channels [C/fold_div, 2C/fold_div)
            from frame t - 1; zeros past the clip ends; the other channels stay.
        class_tokens: tokens before the patches that stay in place (1: CLIP's class token; 0: SigLIP has none and
            every token is a patch).

    Returns:
        A tensor of the input's shape.
    """
    shape = hidden_states.shape
    channels = shape[-1]
    tokens = hidden_states.reshape(-1, num_frames, tokens_per_frame, channels)
    fold = channels // fold_div
    cls_tokens, patches = tokens[:, :, :class_tokens], tokens[:, :, class_tokens:]
    from_next = torch.cat([patches[:, 1:, :, :fold], torch.zeros_like(patches[:, :1, :, :fold])], dim=1)
    from_prev = torch.cat(
        [torch.zeros_like(patches[:, :1, :, fold : 2 * fold]), patches[:, :-1, :, fold : 2 * fold]], 1
    )
    patches = torch.cat([from_next, from_prev, patches[:, :, :, 2 * fold :]], dim=-1)
    return torch.cat([cls_tokens, patches], dim=2).reshape(shape)


class FusionLayerConfig:
    """The few fields a CLIP encoder layer reads, for a fusion layer living outside CLIP's own configs.

    The attention implementation is read from the model's configuration at call time, so switching it on the
    model (``attn_implementation=...``, ``set_attn_implementation``) switches the fusion too.
    """

    def __init__(self, root: ActionCLIPConfig, hidden_act: str):
        self._root = root
        self.hidden_size = root.projection_dim
        self.num_attention_heads = root.resolved_fusion_num_heads
        self.intermediate_size = root.resolved_fusion_intermediate_size
        self.layer_norm_eps = root.resolved_fusion_layer_norm_eps
        self.attention_dropout = root.fusion_dropout
        self.hidden_act = hidden_act

    @property
    def _attn_implementation(self) -> str:
        return self._root._attn_implementation or "eager"


@register_fusion("meanP")
class MeanPooling(nn.Module):
    """Average of the frame embeddings: no parameters, blind to frame order."""

    def __init__(self, config: ActionCLIPConfig):
        super().__init__()

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        return frame_embeds.mean(dim=1)


@register_fusion("conv1d")
class TemporalConv1d(nn.Module):
    """Depthwise temporal convolution (kernel 3) over the real time axis, residual, then the mean over time.

    Initialised as the original: the first quarter of the channels read the previous frame, the middle half the
    frame itself and the last quarter the next frame.
    """

    def __init__(self, config: ActionCLIPConfig):
        super().__init__()
        dim = config.projection_dim
        self.conv = nn.Conv1d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False)

    @staticmethod
    def initial_weight(dim: int) -> torch.Tensor:
        weight = torch.zeros(dim, 1, 3)
        quarter = dim // 4
        weight[:quarter, 0, 0] = 1.0
        weight[quarter : dim - quarter, 0, 1] = 1.0
        weight[dim - quarter :, 0, 2] = 1.0
        return weight

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        mixed = self.conv(frame_embeds.transpose(1, 2)).transpose(1, 2)
        return (frame_embeds + mixed).mean(dim=1)


@register_fusion("lstm")
class TemporalLSTM(nn.Module):
    """One-layer LSTM over time with a residual connection, then the mean over time."""

    def __init__(self, config: ActionCLIPConfig):
        super().__init__()
        dim = config.projection_dim
        self.lstm = nn.LSTM(input_size=dim, hidden_size=dim, num_layers=1, batch_first=True)

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(frame_embeds)
        return (hidden + frame_embeds).mean(dim=1)


class FrameAttention(nn.Module):
    """Multi-head self-attention over a clip's frames through the transformers attention interface (eager, SDPA,
    flash, flex): CLIP's attention with its projections named ``query_proj``, ``key_proj``, ``value_proj`` and
    ``output_proj``. They are created in CLIP's order (keys, values, queries, output), so a seed draws the weights
    CLIP's attention would get."""

    def __init__(self, layer_config: FusionLayerConfig):
        super().__init__()
        self.config = layer_config
        dim = layer_config.hidden_size
        self.num_heads = layer_config.num_attention_heads
        self.head_dim = dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.dropout = layer_config.attention_dropout
        self.is_causal = False
        self.key_proj = nn.Linear(dim, dim)
        self.value_proj = nn.Linear(dim, dim)
        self.query_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) -> (B, T, D) and the attention weights (B, heads, T, T) where the implementation gives them."""
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        queries = self.query_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        keys = self.key_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        values = self.value_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attended, weights = attention_interface(
            self,
            queries,
            keys,
            values,
            None,
            scaling=self.scale,
            dropout=0.0 if not self.training else self.dropout,
        )
        return self.output_proj(attended.reshape(*input_shape, -1).contiguous()), weights


class FrameMLP(nn.Module):
    """The feed-forward block of a fusion layer: ``linear1``, the activation, ``linear2``."""

    def __init__(self, layer_config: FusionLayerConfig):
        super().__init__()
        self.activation_fn = ACT2FN[layer_config.hidden_act]
        self.linear1 = nn.Linear(layer_config.hidden_size, layer_config.intermediate_size)
        self.linear2 = nn.Linear(layer_config.intermediate_size, layer_config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.activation_fn(self.linear1(hidden_states)))


class PreNormEncoderLayer(GradientCheckpointingLayer):
    """CLIP's pre-LayerNorm encoder layer (as the authors' Transf uses it) with the fusion's own names."""

    def __init__(self, layer_config: FusionLayerConfig):
        super().__init__()
        dim = layer_config.hidden_size
        self.self_attn = FrameAttention(layer_config)
        self.layer_norm1 = nn.LayerNorm(dim, eps=layer_config.layer_norm_eps)
        self.mlp = FrameMLP(layer_config)
        self.layer_norm2 = nn.LayerNorm(dim, eps=layer_config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        attended, _ = self.self_attn(self.layer_norm1(hidden_states))
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


@register_fusion("transf")
class TemporalTransformer(nn.Module):
    """The paper's Transf: frame position embeddings, pre-LN layers as CLIP's (QuickGELU), a residual on the input
    without the position embeddings, then the mean over time."""

    def __init__(self, config: ActionCLIPConfig):
        super().__init__()
        layer_config = FusionLayerConfig(config, hidden_act="quick_gelu")
        self.frame_position_embeddings = nn.Embedding(config.fusion_max_frames, config.projection_dim)
        self.layers = nn.ModuleList([PreNormEncoderLayer(layer_config) for _ in range(config.fusion_num_layers)])
        self.dropout = nn.Dropout(config.fusion_dropout)

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        num_frames = frame_embeds.shape[1]
        if num_frames > self.frame_position_embeddings.num_embeddings:
            raise ValueError(
                f"got {num_frames} frames but the temporal transformer has position embeddings for at most "
                f"{self.frame_position_embeddings.num_embeddings}"
            )
        hidden_states = frame_embeds + self.frame_position_embeddings.weight[:num_frames].to(frame_embeds.dtype)
        hidden_states = self.dropout(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return (hidden_states + frame_embeds).mean(dim=1)


class PostNormEncoderLayer(GradientCheckpointingLayer):
    """A post-LayerNorm transformer layer (attention, then ReLU feed-forward), as ``nn.TransformerEncoderLayer``,
    with attention through the transformers attention interface."""

    def __init__(self, layer_config: FusionLayerConfig, dropout: float):
        super().__init__()
        dim, inner = layer_config.hidden_size, layer_config.intermediate_size
        self.self_attn = FrameAttention(layer_config)
        self.linear1 = nn.Linear(dim, inner)
        self.linear2 = nn.Linear(inner, dim)
        self.norm1 = nn.LayerNorm(dim, eps=layer_config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(dim, eps=layer_config.layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        attended, _ = self.self_attn(hidden_states)
        hidden_states = self.norm1(hidden_states + self.dropout(attended))
        fed = self.linear2(self.dropout(torch.relu(self.linear1(hidden_states))))
        return self.norm2(hidden_states + self.dropout(fed))


@register_fusion("transf_cls")
class TemporalTransformerCls(nn.Module):
    """The paper's Transf_cls: a learned class token before the frames, position embeddings, post-LN layers, a
    final LayerNorm; the class token's output is the video embedding."""

    def __init__(self, config: ActionCLIPConfig):
        super().__init__()
        dim = config.projection_dim
        layer_config = FusionLayerConfig(config, hidden_act="relu")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_frames + 1, dim))
        self.layers = nn.ModuleList(
            [PostNormEncoderLayer(layer_config, config.fusion_dropout) for _ in range(config.fusion_num_layers)]
        )
        self.norm = nn.LayerNorm(dim, eps=layer_config.layer_norm_eps)

    def forward(self, frame_embeds: torch.Tensor) -> torch.Tensor:
        batch_size, num_frames, _ = frame_embeds.shape
        if num_frames + 1 > self.pos_embed.shape[1]:
            raise ValueError(
                f"got {num_frames} frames but transf_cls was built for at most {self.pos_embed.shape[1] - 1}"
            )
        cls_tokens = self.cls_token.to(frame_embeds.dtype).expand(batch_size, -1, -1)
        # Cast like the class token: under bf16 autocast a float32 table would turn the whole stream float32.
        position = self.pos_embed[:, : num_frames + 1].to(frame_embeds.dtype)
        hidden_states = torch.cat([cls_tokens, frame_embeds], dim=1) + position
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return self.norm(hidden_states)[:, 0]


__all__ = ["FUSION_REGISTRY", "build_fusion", "register_fusion", "temporal_shift"]
