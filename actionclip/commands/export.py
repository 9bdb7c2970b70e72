"""`actionclip export MODEL OUT_DIR`: the model's text encoder, frame encoder and fusion as ONNX graphs."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..onnx_export import DEFAULT_OPSET, DTYPES, QUANTIZATIONS, SUPPORTED_OPSETS

    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX (text encoder, frame encoder, fusion) for onnxruntime",
        description="Export an ActionCLIP model to three ONNX graphs (text encoder; frame encoder, dynamic "
        "batch; fusion, dynamic frame count up to the model's limit) with its config and processor, so that "
        "pipeline('zero-shot-video-classification', model=OUT_DIR) runs it with onnxruntime. With Shift or Joint "
        "the frame encoder takes whole clips. OUT_DIR is written in a temporary directory and renamed at the end.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  actionclip export converted/k400-b16 onnx/k400-b16\n"
        "  actionclip export converted/k400-b16 onnx/k400-b16-int8 --quantize int8\n"
        "  actionclip classify clip.mp4 --labels 'juggling,tai chi' --model onnx/k400-b16",
    )
    parser.add_argument("model", metavar="MODEL", help="an ActionCLIPModel directory (with its processor)")
    parser.add_argument("output_dir", metavar="OUT_DIR", help="the directory to create (must not exist or be empty)")
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset, {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1} (default {DEFAULT_OPSET})",
    )
    parser.add_argument(
        "--dtype",
        default="fp32",
        help=f"precision of the frame encoder and fusion: {' or '.join(DTYPES)} (default fp32; text stays fp32)",
    )
    parser.add_argument(
        "--quantize",
        default=None,
        help=f"{' or '.join(QUANTIZATIONS)}: dynamic quantisation of the frame encoder's MatMuls (needs fp32)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR once the new export is complete")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..cli import CommandLineError
    from ..onnx_export import export_onnx

    if not Path(args.model).is_dir():
        raise CommandLineError(f"model {args.model!r}: no such directory")
    output = export_onnx(
        args.model,
        args.output_dir,
        opset=args.opset,
        dtype=args.dtype,
        quantize=args.quantize,
        overwrite=args.overwrite,
    )
    files = sorted(path.name for path in output.iterdir() if path.suffix == ".onnx")
    size = sum(path.stat().st_size for path in output.iterdir() if path.suffix == ".onnx") / 2**20
    print(
        f"exported {args.model} -> {output}: {', '.join(files)} ({size:.1f} MiB), opset {args.opset}, {args.dtype}"
        + (f", {args.quantize} frame encoder" if args.quantize else "")
    )
    return 0
