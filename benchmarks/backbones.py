"""The cost of ActionCLIP's video path on each image-text family: frames/s of our video encoder (the parameter-free
meanP prompt: the vision tower on every frame, run layer by layer so that the shift and joint prompts fit in, then
the mean) against the family's own `get_image_features` on the same frames, in the same run.

Usage::

    python benchmarks/backbones.py                      # ViT-B/16 towers at 224 px, 8 frames, batch 2 (CPU: minutes)
    python benchmarks/backbones.py --size tiny          # every code path once (the smoke test)
    python benchmarks/backbones.py --device cuda --batch-size 32

Weights are random (none are downloadable here); the text towers are built small (a 1,000-token vocabulary and one
layer: they are not timed). One markdown table: per family, frames/s of both and our overhead in percent of the
family's own time (the issue's goal: at most 5 %).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import actionclip.process_policy  # noqa: F401  (first: our OpenMP wait policy, set before torch loads)

# isort: split
import torch
import transformers

from actionclip import ActionCLIPModel
from actionclip.backbones import BACKBONE_FAMILIES, backbone_family, frames_to_patches

# ViT-B/16 at 224 px (the families' base models), and the smallest towers that run every code path.
SIZES = {
    "vit-b16": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch=16, image=224),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2, patch=16, image=32),
}  # fmt: skip
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2, vocab_size=1000)


def backbone_config(family: str, size: dict):
    """A family's image-text configuration with the vision tower of ``size`` and a small text tower."""
    config_class = backbone_family(family).config_class
    vision = {
        key: size[key] for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
    }
    vision["patch_size"] = size["patch"]
    text = dict(TEXT)
    if family == "siglip2":
        vision["num_patches"] = (size["image"] // size["patch"]) ** 2
    else:
        vision["image_size"] = size["image"]
    if family in ("siglip", "siglip2"):
        text["projection_size"] = size["hidden_size"]
    else:
        text["max_position_embeddings"] = 80 if family == "altclip" else 77
    if family == "altclip":
        text["project_dim"] = 64
    return config_class(text_config=text, vision_config=vision)


def family_image_features(backbone, frames: torch.Tensor) -> torch.Tensor:
    """The family's own `get_image_features` of ``(N, C, H, W)`` frames (SigLIP 2: as patch sequences, the
    patchifying timed too, as our model does it inside)."""
    if backbone.config.model_type == "siglip2":
        patches, shapes = frames_to_patches(frames, backbone.config.vision_config.patch_size)
        mask = torch.ones(patches.shape[:2], dtype=torch.long, device=frames.device)
        return backbone.get_image_features(
            pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes
        ).pooler_output
    return backbone.get_image_features(pixel_values=frames).pooler_output


def seconds(call, device: torch.device, iters: int, warmup: int) -> float:
    """The median seconds of ``call()`` over ``iters`` runs after ``warmup``."""
    times = []
    for index in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(family: str, size: dict, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    config = backbone_config(family, size)
    backbone = backbone_family(family).transformers_class("model_class")(config).to(device).eval()
    ours = ActionCLIPModel.from_backbone(backbone, fusion="meanP", num_frames=args.frames).to(device).eval()
    frames = torch.randn(args.batch_size, args.frames, 3, size["image"], size["image"], device=device)
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(
            family_image_features(backbone, frames.flatten(0, 1)).view(args.batch_size, args.frames, -1).mean(1),
            dim=-1,
        )
        video = torch.nn.functional.normalize(ours.get_video_features(frames).pooler_output, dim=-1)
        error = float((video - reference).abs().max())
        # Interleaved, so that a slower spell of a shared machine falls on both.
        theirs_times, ours_times = [], []
        for _ in range(args.rounds):
            theirs_times.append(
                seconds(lambda: family_image_features(backbone, frames.flatten(0, 1)), device, args.iters, args.warmup)
            )
            ours_times.append(seconds(lambda: ours.get_video_features(frames), device, args.iters, args.warmup))
    theirs, mine = min(theirs_times), min(ours_times)
    count = args.batch_size * args.frames
    return {
        "family": family,
        "theirs": count / theirs,
        "ours": count / mine,
        "overhead": 100.0 * (mine - theirs) / theirs,
        "error": error,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="vit-b16")
    parser.add_argument("--families", default=",".join(BACKBONE_FAMILIES), help="comma-separated model types")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the fastest of each is kept")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    size = SIZES[args.size]
    families = [name.strip() for name in args.families.split(",") if name.strip()]
    unknown = sorted(set(families) - set(BACKBONE_FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {sorted(BACKBONE_FAMILIES)}")
    print(
        f"vision tower {size['hidden_size']} x {size['num_hidden_layers']}, patch {size['patch']}, {size['image']} px; "
        f"{args.frames} frames x batch {args.batch_size}; {device}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}; random weights; eval, inference mode, float32"
    )
    print()
    print(
        "| family | family's get_image_features, frames/s | ActionCLIP meanP video encoder, frames/s | overhead | max abs diff of the normalised video embedding |"
    )  # noqa: E501
    print("| --- | --- | --- | --- | --- |")
    for family in families:
        row = measure(family, size, args, device)
        print(
            f"| {family} | {row['theirs']:.1f} | {row['ours']:.1f} | {row['overhead']:+.1f} % | {row['error']:.1e} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
