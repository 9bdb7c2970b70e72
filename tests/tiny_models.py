"""Tiny real models for tests: the shapes of the reference fixture (vision width 128, text width 64, D 64)."""

from __future__ import annotations

import torch

TEXT = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1)
VISION = dict(
    hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2, patch_size=8, image_size=32
)


def tiny_config(**overrides):
    from actionclip import ActionCLIPConfig

    fields = dict(text_config=TEXT, vision_config=VISION, projection_dim=64, num_frames=8, fusion_num_layers=2)
    fields.update(overrides)
    return ActionCLIPConfig(**fields)


def tiny_model(seed: int = 0, **overrides):
    from actionclip import ActionCLIPModel

    torch.manual_seed(seed)
    return ActionCLIPModel(tiny_config(**overrides))


def random_videos(batch: int = 2, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator)
