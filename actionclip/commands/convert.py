"""``actionclip convert``: a released ActionCLIP (or OpenAI CLIP) checkpoint into a model folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import CommandLineError


def register(subparsers) -> None:
    from . import add_command

    convert = add_command(
        subparsers,
        "convert",
        "convert an original ActionCLIP (or OpenAI CLIP) checkpoint into a model directory",
        "Convert a released ActionCLIP checkpoint (or a plain OpenAI CLIP state dict) into a directory "
        "that ActionCLIPModel.from_pretrained and ActionCLIPProcessor.from_pretrained load. Checkpoints are read "
        "without running code (pickles that need code are refused).",
        examples=(
            "actionclip convert vit-b-16-32f.pt converted/k400-b16-32f --num-frames 32",
            "actionclip convert ViT-B-32.pt converted/clip-b32 --fusion meanP",
        ),
    )
    convert.add_argument("checkpoint", help="the .pt / .pth / .safetensors file")
    convert.add_argument("output_dir", help="where to write the model and processor")
    convert.add_argument(
        "--num-frames", type=int, default=None, help="frames per video (default: from the file, else 8)"
    )
    convert.add_argument("--fusion", default=None, help="post-network prompt (default: inferred from the weights)")
    convert.add_argument("--joint", action="store_true", help="add the Joint pre-network prompt (fresh weights)")
    convert.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.convert_original import convert_original_checkpoint

    if not Path(args.checkpoint).is_file():
        raise CommandLineError(f"checkpoint {args.checkpoint!r}: no such file")
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise CommandLineError(f"output {args.output_dir!r} is a file, not a folder")
    model = convert_original_checkpoint(
        args.checkpoint, args.output_dir, num_frames=args.num_frames, fusion=args.fusion, joint=args.joint
    )
    config = model.config
    print(
        f"converted {args.checkpoint} -> {args.output_dir}: fusion={config.fusion} shift={config.shift} "
        f"joint={config.joint} frames={config.num_frames} image={config.vision_config.image_size}px "
        f"D={config.projection_dim}"
    )
    return 0
