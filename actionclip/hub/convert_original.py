"""Convert checkpoints of the authors' ActionCLIP (and plain OpenAI CLIP state dicts) into ActionCLIP directories.

The released format is a dict ``{"epoch", "model_state_dict", "fusion_model_state_dict", "optimizer_state_dict"}``:
OpenAI CLIP key names (half-precision linear weights, ``in_proj_weight`` stacking q, k, v), vision blocks with an
extra ``.net.`` when the Shift prompt was trained, and fusion keys prefixed with ``module.`` (DataParallel).
Sizes are read from the tensors. Files are read with `weight_files.load_checkpoint` (``torch.load(weights_only=True)``
or safetensors), so no pickled code ever runs; a key that cannot be mapped stops the conversion with its name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..configuration_actionclip import ActionCLIPConfig
from ..errors import CheckpointConversionError
from ..weight_files import load_checkpoint

# The similarity multiplier of the authors' evaluation (their test script uses 100 * cos, whatever was learned).
ORIGINAL_EVAL_LOGIT_SCALE = 100.0

_BLOCK_RENAMES = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
}
_CLIP_PROJECTIONS = ("q_proj", "k_proj", "v_proj")
_FUSION_PROJECTIONS = ("query_proj", "key_proj", "value_proj")
# The fusion's layers name their linear layers apart from CLIP's (`visual_prompts`), so LoRA recipes for CLIP's
# towers leave them alone.
_FUSION_BLOCK_RENAMES = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.linear1.weight",
    "mlp.c_fc.bias": "mlp.linear1.bias",
    "mlp.c_proj.weight": "mlp.linear2.weight",
    "mlp.c_proj.bias": "mlp.linear2.bias",
    "attn.out_proj.weight": "self_attn.output_proj.weight",
    "attn.out_proj.bias": "self_attn.output_proj.bias",
}
_POST_NORM_RENAMES = {
    "self_attn.out_proj.weight": "self_attn.output_proj.weight",
    "self_attn.out_proj.bias": "self_attn.output_proj.bias",
    "linear1.weight": "linear1.weight",
    "linear1.bias": "linear1.bias",
    "linear2.weight": "linear2.weight",
    "linear2.bias": "linear2.bias",
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
}


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return dict(state)


def _block_indices(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(match.group(1)) for key in state if (match := pattern.match(key))})


class _Mapper:
    """Moves tensors from a source state dict to target names, remembering which source keys were used."""

    def __init__(self, source: Mapping[str, torch.Tensor], dtype: torch.dtype):
        self.source = dict(source)
        self.used: set[str] = set()
        self.target: dict[str, torch.Tensor] = {}
        self.dtype = dtype

    def take(self, key: str) -> torch.Tensor:
        if key not in self.source:
            raise CheckpointConversionError(f"checkpoint lacks the expected key {key!r}")
        self.used.add(key)
        value = self.source[key]
        return value.to(self.dtype) if value.is_floating_point() else value

    def put(self, key: str, value: torch.Tensor) -> None:
        self.target[key] = value.contiguous()

    def move(self, source_key: str, target_key: str) -> None:
        self.put(target_key, self.take(source_key))

    def move_attention_in_proj(
        self, source_prefix: str, target_prefix: str, projections: tuple[str, str, str] = _CLIP_PROJECTIONS
    ) -> None:
        """Split a fused ``in_proj`` (queries, keys, values stacked) into the three ``projections``."""
        weight = self.take(source_prefix + "in_proj_weight")
        bias = self.take(source_prefix + "in_proj_bias")
        for name, w, b in zip(projections, weight.chunk(3, dim=0), bias.chunk(3, dim=0)):
            self.put(f"{target_prefix}{name}.weight", w)
            self.put(f"{target_prefix}{name}.bias", b)

    def move_pre_norm_block(self, source_prefix: str, target_prefix: str, fusion: bool = False) -> None:
        """One residual attention block of OpenAI CLIP: a tower's layer, or (``fusion``) a Transf fusion layer."""
        projections, renames = (
            (_FUSION_PROJECTIONS, _FUSION_BLOCK_RENAMES) if fusion else (_CLIP_PROJECTIONS, _BLOCK_RENAMES)
        )
        self.move_attention_in_proj(source_prefix + "attn.", target_prefix + "self_attn.", projections)
        for source_name, target_name in renames.items():
            self.move(source_prefix + source_name, target_prefix + target_name)

    def unused(self) -> list[str]:
        return sorted(set(self.source) - self.used)


def _tower_sizes(state: Mapping[str, torch.Tensor], block_prefix: str, width: int) -> dict:
    indices = _block_indices(state, block_prefix)
    if not indices or indices != list(range(len(indices))):
        raise CheckpointConversionError(f"checkpoint has no consecutive transformer blocks under {block_prefix!r}")
    fc = [key for key in state if key.startswith(f"{block_prefix}0.") and key.endswith("mlp.c_fc.weight")]
    return {
        "hidden_size": width,
        "num_hidden_layers": len(indices),
        "num_attention_heads": max(1, width // 64),
        "intermediate_size": state[fc[0]].shape[0],
    }


def _convert_clip(mapper: _Mapper, state: Mapping[str, torch.Tensor]) -> dict:
    """Map OpenAI CLIP keys onto transformers' CLIP names; returns the configuration fields it read."""
    if (
        "visual.conv1.weight" not in state
        or "visual.transformer.resblocks.0.ln_1.weight" not in state
        and not any(key.startswith("visual.transformer.resblocks.0.net.") for key in state)
    ):
        if any(key.startswith("visual.layer1.") for key in state):
            raise CheckpointConversionError("ResNet CLIP image encoders are not supported: only ViT CLIP models")
        raise CheckpointConversionError(
            "not an OpenAI CLIP ViT state dict: expected keys 'visual.conv1.weight' and 'visual.transformer.resblocks.*'"
        )
    shift = any(key.startswith("visual.transformer.resblocks.0.net.") for key in state)
    for key, ndim in (("visual.conv1.weight", 4), ("visual.positional_embedding", 2), ("positional_embedding", 2)):
        if key not in state:
            raise CheckpointConversionError(f"not an OpenAI CLIP ViT state dict: it has no {key!r}")
        if not isinstance(state[key], torch.Tensor) or state[key].ndim != ndim:
            shape = tuple(getattr(state[key], "shape", ()))
            raise CheckpointConversionError(f"{key} must be a {ndim}-D tensor, got shape {shape}")
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    num_positions = state["visual.positional_embedding"].shape[0]
    grid = math.isqrt(max(num_positions - 1, 0))
    if num_positions < 2 or grid * grid != num_positions - 1:
        raise CheckpointConversionError(
            f"visual.positional_embedding has {num_positions} rows: not a square grid of patches plus a class token"
        )
    vision = _tower_sizes(state, "visual.transformer.resblocks.", vision_width)
    vision.update(patch_size=patch, image_size=grid * patch)
    text_width = state["ln_final.weight"].shape[0]
    text = _tower_sizes(state, "transformer.resblocks.", text_width)
    text.update(
        vocab_size=state["token_embedding.weight"].shape[0],
        max_position_embeddings=state["positional_embedding"].shape[0],
    )
    projection_dim = state["text_projection"].shape[1]
    if state["visual.proj"].shape != (vision_width, projection_dim):
        raise CheckpointConversionError(
            f"visual.proj has shape {tuple(state['visual.proj'].shape)}, expected ({vision_width}, {projection_dim})"
        )

    net = ".net" if shift else ""
    mapper.move("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight")
    mapper.move("visual.class_embedding", "vision_model.embeddings.class_embedding")
    mapper.move("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight")
    for name in ("weight", "bias"):
        mapper.move(f"visual.ln_pre.{name}", f"vision_model.pre_layrnorm.{name}")
        mapper.move(f"visual.ln_post.{name}", f"vision_model.post_layernorm.{name}")
        mapper.move(f"ln_final.{name}", f"text_model.final_layer_norm.{name}")
    for i in range(vision["num_hidden_layers"]):
        mapper.move_pre_norm_block(f"visual.transformer.resblocks.{i}{net}.", f"vision_model.encoder.layers.{i}.")
    mapper.put("visual_projection.weight", mapper.take("visual.proj").t())
    mapper.move("token_embedding.weight", "text_model.embeddings.token_embedding.weight")
    mapper.move("positional_embedding", "text_model.embeddings.position_embedding.weight")
    for i in range(text["num_hidden_layers"]):
        mapper.move_pre_norm_block(f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}.")
    mapper.put("text_projection.weight", mapper.take("text_projection").t())
    mapper.move("logit_scale", "logit_scale")
    # Buffers of OpenAI's model that carry no weights.
    mapper.used.update(key for key in ("input_resolution", "context_length", "vocab_size") if key in state)
    return {
        "vision_config": vision,
        "text_config": text,
        "projection_dim": projection_dim,
        "shift": shift,
        "logit_scale_init_value": float(state["logit_scale"]),
    }


def _convert_fusion(mapper: _Mapper, state: Mapping[str, torch.Tensor], fusion: str | None) -> dict:
    """Map the original fusion ("visual prompt") keys; returns the configuration fields it read."""
    fields: dict = {}
    if fusion is None:
        if any(key.startswith("transformer.cls_token") for key in state):
            fusion = "transf_cls"
        elif any(key.startswith("transformer.resblocks.") for key in state):
            fusion = "transf"
        elif any(key.startswith("lstm_visual.") for key in state):
            fusion = "lstm"
        elif "shift.weight" in state:
            fusion = "conv1d"
        else:
            fusion = "meanP"
    fields["fusion"] = fusion
    if "frame_position_embeddings.weight" in state:
        fields["fusion_max_frames"] = state["frame_position_embeddings.weight"].shape[0]
    if fusion == "transf":
        indices = _block_indices(state, "transformer.resblocks.")
        fields["fusion_num_layers"] = len(indices)
        fields["fusion_intermediate_size"] = state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        mapper.move("frame_position_embeddings.weight", "fusion.frame_position_embeddings.weight")
        for i in indices:
            mapper.move_pre_norm_block(f"transformer.resblocks.{i}.", f"fusion.layers.{i}.", fusion=True)
    elif fusion == "transf_cls":
        prefix = "transformer.transformer_enc.layers."
        indices = _block_indices(state, prefix)
        fields["fusion_num_layers"] = len(indices)
        fields["fusion_intermediate_size"] = state[f"{prefix}0.linear1.weight"].shape[0]
        fields["num_frames"] = state["transformer.pos_embed"].shape[1] - 1
        mapper.move("transformer.cls_token", "fusion.cls_token")
        mapper.move("transformer.pos_embed", "fusion.pos_embed")
        for i in indices:
            mapper.move_attention_in_proj(
                f"{prefix}{i}.self_attn.", f"fusion.layers.{i}.self_attn.", _FUSION_PROJECTIONS
            )
            for source_name, target_name in _POST_NORM_RENAMES.items():
                mapper.move(f"{prefix}{i}.{source_name}", f"fusion.layers.{i}.{target_name}")
        for name in ("weight", "bias"):
            mapper.move(f"transformer.transformer_enc.norm.{name}", f"fusion.norm.{name}")
    elif fusion == "lstm":
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            mapper.move(f"lstm_visual.{name}", f"fusion.lstm.{name}")
    elif fusion == "conv1d":
        mapper.move("shift.weight", "fusion.conv.weight")
    # The original creates frame position embeddings for every fusion but only Transf reads them.
    mapper.used.add("frame_position_embeddings.weight")
    return fields


def original_to_actionclip(
    checkpoint: Mapping,
    *,
    num_frames: int | None = None,
    fusion: str | None = None,
    joint: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[ActionCLIPConfig, dict[str, torch.Tensor]]:
    """Map a loaded original checkpoint (released ActionCLIP dict, or a plain OpenAI CLIP state dict) to an
    `ActionCLIPConfig` and a state dict with our names.

    The configuration records the authors' evaluation scale (`eval_logit_scale=100.0`) and, for Transf, their
    head count (text width // 64).

    Args:
        checkpoint: the loaded file.
        num_frames: frames per video; read from the checkpoint where it fixes them (Transf_cls), else 8.
        fusion: post-network prompt; inferred from the fusion keys when None (no keys: meanP).
        joint: whether the pre-network Joint prompt is used (its weights start fresh: the original never ran it).
        dtype: dtype of the converted weights (the release stores half-precision linear weights).
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointConversionError(f"checkpoint must be a dict of tensors, got {type(checkpoint).__name__}")
    if "model_state_dict" in checkpoint:
        model_state = checkpoint["model_state_dict"]
        fusion_state = checkpoint.get("fusion_model_state_dict") or {}
    elif "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        model_state, fusion_state = checkpoint["state_dict"], {}
    else:
        model_state, fusion_state = checkpoint, {}
    for name, state in (("model_state_dict", model_state), ("fusion_model_state_dict", fusion_state)):
        bad = [key for key, value in state.items() if not torch.is_tensor(value)]
        if bad:
            raise CheckpointConversionError(f"{name} holds entries that are not tensors: {bad[:5]}")
    model_state = _strip_prefix(model_state, "module.")
    fusion_state = _strip_prefix(fusion_state, "module.")

    clip_mapper = _Mapper(model_state, dtype)
    fields = _convert_clip(clip_mapper, model_state)
    fusion_mapper = _Mapper(fusion_state, dtype)
    fields.update(_convert_fusion(fusion_mapper, fusion_state, fusion))
    for what, mapper in (("model_state_dict", clip_mapper), ("fusion_model_state_dict", fusion_mapper)):
        if mapper.unused():
            raise CheckpointConversionError(
                f"cannot map these keys of the {what} onto ActionCLIP: {mapper.unused()[:10]}"
                + (f" (and {len(mapper.unused()) - 10} more)" if len(mapper.unused()) > 10 else "")
            )
    if num_frames is not None:
        limit = fields.get("fusion_max_frames", 77)
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 1 <= num_frames <= limit:
            raise CheckpointConversionError(
                f"num_frames must be an integer from 1 to {limit} (the rows of the frame position table), "
                f"got {num_frames!r}"
            )
        if fields.get("num_frames", num_frames) != num_frames:
            raise CheckpointConversionError(
                f"num_frames={num_frames} conflicts with the checkpoint's Transf_cls, built for {fields['num_frames']}"
            )
        fields["num_frames"] = num_frames
    fields["joint"] = joint
    if fields["fusion"] == "transf":
        # The authors' Transf has `ln_final.weight.shape[0] // 64` heads: the text width, which need not be D.
        fields["fusion_num_heads"] = max(1, fields["text_config"]["hidden_size"] // 64)
    # The authors score with a fixed 100 * cos, not the learned scale: make that the default for scoring.
    fields["eval_logit_scale"] = ORIGINAL_EVAL_LOGIT_SCALE
    config = ActionCLIPConfig(**fields)
    return config, {**clip_mapper.target, **fusion_mapper.target}


def convert_original_checkpoint(
    checkpoint_path: str | Path,
    output_dir: str | Path | None = None,
    *,
    num_frames: int | None = None,
    fusion: str | None = None,
    joint: bool = False,
    save_processor: bool = True,
):
    """Convert an original ActionCLIP (or OpenAI CLIP) checkpoint file into an `ActionCLIPModel`.

    With `output_dir`, writes the model (safetensors + config) and, with `save_processor`, a matching
    `ActionCLIPProcessor` (tokenizer, video transforms for the model's image size, frames, templates).

    Returns:
        The converted `ActionCLIPModel` in evaluation mode, float32.
    """
    from ..modeling_actionclip import ActionCLIPModel

    config, state = original_to_actionclip(
        load_checkpoint(checkpoint_path), num_frames=num_frames, fusion=fusion, joint=joint
    )
    model = ActionCLIPModel(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed_missing = {"temporal_embedding"} if joint else set()
    missing = [key for key in missing if key not in allowed_missing and not key.endswith("position_ids")]
    if missing or unexpected:
        raise CheckpointConversionError(
            f"converted weights do not fit: missing {missing[:10]}, unexpected {unexpected[:10]}"
        )
    model.eval()
    if output_dir is not None:
        output_dir = Path(output_dir)
        model.save_pretrained(output_dir)
        if save_processor:
            from ..processing_actionclip import ActionCLIPProcessor

            processor = ActionCLIPProcessor.from_model_config(config)
            processor.save_pretrained(output_dir)
    return model


__all__ = ["convert_original_checkpoint", "original_to_actionclip"]
