"""`actionclip export MODEL OUT_DIR`: the model's text encoder, frame encoder and fusion as ONNX graphs."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..onnx.export import DEFAULT_INT8_TOLERANCE, DEFAULT_OPSET, DTYPES, QUANTIZATIONS, SUPPORTED_OPSETS
    from . import add_command

    parser = add_command(
        subparsers,
        "export",
        "export a model to ONNX (text encoder, frame encoder, fusion) for onnxruntime",
        "Export an ActionCLIP model to three ONNX graphs (text encoder; frame encoder, dynamic "
        "batch; fusion, dynamic frame count up to the model's limit) with its config and processor, so that "
        "pipeline('zero-shot-video-classification', model=OUT_DIR) runs it with onnxruntime. With Shift or Joint "
        "the frame encoder takes whole clips. OUT_DIR is written in a temporary directory and renamed at the end.",
        examples=(
            "actionclip export converted/k400-b16 onnx/k400-b16",
            "actionclip export converted/k400-b16 onnx/k400-b16-int8 --quantize int8 --calibration a.mp4 b.mp4",
            "actionclip classify clip.mp4 --labels 'juggling,tai chi' --model onnx/k400-b16",
        ),
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
    parser.add_argument(
        "--calibration",
        nargs="+",
        metavar="VIDEO",
        help="with --quantize int8: videos (a few, of the kind the model will see) on which the int8 error is "
        "measured to choose which MatMuls stay float32 (default: fixed random frames)",
    )
    parser.add_argument(
        "--int8-tolerance",
        type=float,
        default=DEFAULT_INT8_TOLERANCE,
        help="with --quantize int8: the largest 1 - cosine between int8 and float32 frame embeddings on the "
        f"calibration frames (default {DEFAULT_INT8_TOLERANCE:g})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR once the new export is complete")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import CommandLineError
    from ..model_loading import check_saved_processor
    from ..onnx.export import (
        calibration_pixel_values,
        check_export_options,
        check_output_dir,
        export_onnx,
        read_int8_choice,
    )
    from ._inputs import add_processor_hint

    check_export_options(args.opset, args.dtype, args.quantize)  # before any slow decoding
    check_output_dir(args.output_dir, args.overwrite, overwrite_hint="--overwrite")
    if not Path(args.model).is_dir():
        raise CommandLineError(f"model {args.model!r}: no such directory")
    with add_processor_hint(args.model):
        check_saved_processor(args.model)
    model, options = args.model, {}
    if args.calibration:
        if args.quantize is None:
            raise CommandLineError("--calibration is only used with --quantize int8")
        for video in args.calibration:
            if not Path(video).is_file():
                raise CommandLineError(f"calibration video {video!r}: no such file")
        from ._inputs import load_pipeline

        # The pipeline's own decoding and pre-processing: calibration frames are what classification will see.
        classifier = load_pipeline(args.model, "cpu")
        options["calibration"] = calibration_pixel_values(classifier, args.calibration)
        model, options["processor"] = classifier.model, classifier.processor
    output = export_onnx(
        model,
        args.output_dir,
        opset=args.opset,
        dtype=args.dtype,
        quantize=args.quantize,
        overwrite=args.overwrite,
        int8_tolerance=args.int8_tolerance,
        **options,
    )
    files = sorted(path.name for path in output.iterdir() if path.suffix == ".onnx")
    size = sum(path.stat().st_size for path in output.iterdir() if path.suffix == ".onnx") / 2**20
    print(
        f"exported {args.model} -> {output}: {', '.join(files)} ({size:.1f} MiB), opset {args.opset}, {args.dtype}"
        + (f", {args.quantize} frame encoder" if args.quantize else "")
    )
    int8 = read_int8_choice(output)
    if int8 is not None:
        total = int8["quantized_matmuls"] + len(int8["float32_matmuls"])
        print(
            f"int8: {int8['quantized_matmuls']} of {total} MatMuls quantised, {len(int8['float32_matmuls'])} kept "
            f"float32; calibration error (1 - cosine) {int8['calibration_error']:.1e} <= {int8['tolerance']:g} on "
            f"{int8['calibration_frames']} frames"
        )
    return 0
