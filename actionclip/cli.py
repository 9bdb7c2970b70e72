"""The `actionclip` command."""

from __future__ import annotations

import argparse
import sys


def _convert(args: argparse.Namespace) -> int:
    from .convert_original import convert_original_checkpoint

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actionclip", description="ActionCLIP video action recognition.")
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert an original ActionCLIP (or OpenAI CLIP) checkpoint into a model directory",
        description="Convert a released ActionCLIP checkpoint (or a plain OpenAI CLIP state dict) into a directory "
        "that ActionCLIPModel.from_pretrained and ActionCLIPProcessor.from_pretrained load.",
        epilog="example: actionclip convert vit-b-16-32f.pt converted/k400-b16-32f --num-frames 32",
    )
    convert.add_argument("checkpoint", help="the .pt / .pth / .safetensors file")
    convert.add_argument("output_dir", help="where to write the model and processor")
    convert.add_argument("--num-frames", type=int, default=None, help="frames per video (default: from the file, else 8)")
    convert.add_argument("--fusion", default=None, help="post-network prompt (default: inferred from the weights)")
    convert.add_argument("--joint", action="store_true", help="add the Joint pre-network prompt (fresh weights)")
    convert.set_defaults(handler=_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import ActionCLIPError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ActionCLIPError as error:
        print(f"actionclip {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
