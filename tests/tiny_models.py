"""Tiny real models for tests: the shapes of the reference fixture (vision width 128, text width 64, D 64)."""

from __future__ import annotations

import math
from pathlib import Path

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


def token_ids(num_texts: int, length: int = 12, seed: int = 0) -> torch.Tensor:
    """Random CLIP token ids ``(num_texts, length)`` framed by the start and end tokens."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 49000, (num_texts, length), generator=generator)
    ids[:, 0], ids[:, -1] = 49406, 49407
    return ids


def make_tiny_clip_dir(directory: Path) -> str:
    """A transformers CLIPModel folder with the tiny towers (no pretrained weights exist offline)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=64)).save_pretrained(directory)
    return str(directory)


def save_tiny_model_dir(directory: Path, seed: int = 0, logit_scale: float | None = None, **overrides) -> Path:
    """A saved tiny model with its processor beside it (what the pipeline loads); ``logit_scale`` (e.g. 60) spreads
    the scores away from uniform."""
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = tiny_model(seed=seed, **overrides)
    if logit_scale is not None:
        with torch.no_grad():
            model.logit_scale.fill_(math.log(logit_scale))
    model.save_pretrained(directory)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(directory)
    return Path(directory)
