"""Export an `ActionCLIPModel` to three ONNX graphs that onnxruntime runs without PyTorch.

The graphs follow where the model can be cut:

- ``text_encoder.onnx``: ``input_ids``, ``attention_mask`` int64 ``(N, L)`` -> ``text_embeds`` ``(N, D)``, projected
  and not normalised (dynamic N and L <= 77);
- ``frame_encoder.onnx``: for post-network prompts (meanP, conv1d, lstm, transf, transf_cls) frames are encoded
  independently, so the graph takes ``pixel_values`` ``(N, 3, H, W)`` -> ``frame_embeds`` ``(N, D)`` with dynamic N.
  With Shift or Joint, frames of a clip meet inside CLIP's layers, so the graph takes whole clips: ``pixel_values``
  ``(B, T, 3, H, W)`` -> ``frame_embeds`` ``(B, T, D)``, dynamic B and T (T up to the joint prompt's limit);
- ``fusion.onnx``: ``frame_embeds`` ``(B, T, D)`` -> ``video_embeds`` ``(B, D)``, dynamic B and T up to the model's
  frame limit (transf / transf_cls position embeddings; unlimited for meanP, conv1d, lstm).

H and W are the model's image size (CLIP's position embeddings are not interpolated). Next to the graphs go the
model's ``config.json``, the processor's files and ``onnx_export.json`` (graphs, their inputs and dtypes, opset,
quantisation, the effective logit scale and the frame limit), so the directory describes itself and
``pipeline("zero-shot-video-classification", model=directory)`` runs it (`actionclip.onnx_runtime`).

``dtype="fp16"`` exports the frame encoder and the fusion in float16; the text encoder stays float32 (it runs once
per label set, whose embeddings the pipeline caches, and transformers' CLIP text mask mixes float32 into a float16
trace). ``quantize="int8"`` applies onnxruntime's dynamic quantisation (int8 weights, activations quantised at run
time) to the frame encoder's MatMuls, the graph that runs for every frame.

Everything is written into a temporary directory beside ``output_dir`` and renamed into place at the end: an
unsupported request fails before anything is written, and a failure part-way leaves no directory behind.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .errors import OnnxExportError

# The directory format (`onnx_runtime` reads what this module writes). This module imports torch only inside the
# export, so the command line and the runtime read these cheaply.
EXPORT_METADATA_NAME = "onnx_export.json"
EXPORT_FORMAT = "actionclip-onnx"
EXPORT_FORMAT_VERSION = 1
GRAPHS = ("text_encoder", "frame_encoder", "fusion")
TEXT_ENCODER_FILE = "text_encoder.onnx"
FRAME_ENCODER_FILE = "frame_encoder.onnx"
FUSION_FILE = "fusion.onnx"
DTYPES = ("fp32", "fp16")
QUANTIZATIONS = ("int8",)
# The TorchScript-based exporter's range (14: Trilu for CLIP's causal mask; 20: its newest opset).
SUPPORTED_OPSETS = range(14, 21)
DEFAULT_OPSET = 17


def check_export_options(opset: int = DEFAULT_OPSET, dtype: str = "fp32", quantize: str | None = None) -> None:
    """Refuse an unsupported combination of export options.

    Raises:
        OnnxExportError: an opset outside `SUPPORTED_OPSETS`, an unknown dtype or quantisation, or fp16 with int8.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in SUPPORTED_OPSETS:
        raise OnnxExportError(
            f"opset {opset!r} is not supported: choose one of {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}"
        )
    if dtype not in DTYPES:
        raise OnnxExportError(f"dtype {dtype!r} is not supported: choose one of {', '.join(DTYPES)}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise OnnxExportError(f"quantize {quantize!r} is not supported: choose {', '.join(QUANTIZATIONS)} or none")
    if quantize == "int8" and dtype != "fp32":
        raise OnnxExportError(
            f"quantize='int8' needs dtype='fp32' (dynamic int8 quantisation starts from float32 MatMuls), got {dtype!r}"
        )


def frame_limit(model) -> int | None:
    """The most frames per video the model's visual prompts accept, or None where any number works."""
    limits = []
    if getattr(model, "temporal_embedding", None) is not None:
        limits.append(model.temporal_embedding.shape[0])
    fusion = model.fusion
    if hasattr(fusion, "frame_position_embeddings"):
        limits.append(fusion.frame_position_embeddings.num_embeddings)
    if hasattr(fusion, "pos_embed"):  # transf_cls: one position for the class token, then the frames
        limits.append(fusion.pos_embed.shape[1] - 1)
    return min(limits) if limits else None


def exports_whole_clips(config) -> bool:
    """Whether the frame encoder must see whole clips: Shift and Joint mix frames inside CLIP's layers."""
    return bool(config.shift or config.joint)


def export_onnx(
    model,
    output_dir: str | os.PathLike,
    *,
    processor=None,
    opset: int = DEFAULT_OPSET,
    dtype: str = "fp32",
    quantize: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (an `ActionCLIPModel` or the path of a saved one) to ``output_dir``.

    Args:
        model: an `ActionCLIPModel`, or a directory / Hub id `ActionCLIPModel.from_pretrained` loads.
        output_dir: the directory to create; must not exist (or be empty) unless ``overwrite``.
        processor: the `ActionCLIPProcessor` to save with the graphs; default the one saved with the model.
        opset: ONNX opset, one of `SUPPORTED_OPSETS`.
        dtype: ``"fp32"`` or ``"fp16"`` (frame encoder and fusion; the text encoder stays float32).
        quantize: ``None`` or ``"int8"`` (dynamic quantisation of the frame encoder's MatMuls; needs fp32).
        overwrite: replace an existing ``output_dir`` (only once the new export is complete).

    Returns:
        ``output_dir`` as a `Path`.

    Raises:
        OnnxExportError: unsupported options, a model without a text encoder, or ``output_dir`` in the way.
        MissingProcessorError: no ``processor`` given and none saved with the model.
    """
    check_export_options(opset, dtype, quantize)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OnnxExportError(f"output directory {str(output_dir)!r} is a file")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise OnnxExportError(
            f"output directory {str(output_dir)!r} is not empty: choose a new directory or pass overwrite=True"
        )
    if quantize is not None:
        import onnxruntime.quantization  # noqa: F401  (missing: refused before the slow part)

    import torch

    from .modeling_actionclip import ActionCLIPModel

    if isinstance(model, (str, os.PathLike)):
        from transformers import AutoConfig

        from . import registration

        source = str(model)
        registration.register_with_transformers()
        config = AutoConfig.from_pretrained(source)
        architectures = list(getattr(config, "architectures", None) or [])
        if config.model_type != "actionclip" or "ActionCLIPModel" not in (architectures or ["ActionCLIPModel"]):
            raise OnnxExportError(
                f"model {source!r} is not an ActionCLIPModel (model_type {config.model_type!r}, architectures "
                f"{architectures}): only the video-text model, with its text encoder, is exported"
            )
        model = ActionCLIPModel.from_pretrained(source, dtype=torch.float32)
    if not isinstance(model, ActionCLIPModel):
        raise OnnxExportError(
            f"only an ActionCLIPModel (video-text, with its text encoder) is exported, got {type(model).__name__}"
        )
    if processor is None:
        from .pipeline_zero_shot_video_classification import load_actionclip_processor

        processor = load_actionclip_processor(model)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0o700 would otherwise become the export's mode
    try:
        _write_export(model, processor, staging, opset, dtype, quantize)
        _move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def _move_into_place(staging: Path, output_dir: Path) -> None:
    """Rename the finished export to ``output_dir``; an existing directory is replaced only after that succeeds."""
    if not output_dir.exists():
        os.replace(staging, output_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
    os.replace(output_dir, retired / "old")
    try:
        os.replace(staging, output_dir)
    except BaseException:
        os.replace(retired / "old", output_dir)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def _graph_modules(model):
    """The three graphs as `torch.nn.Module`s around ``model`` (their forward signatures name the ONNX inputs)."""
    from torch import nn

    class TextEncoder(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model.get_text_features(input_ids, attention_mask).pooler_output

    class FrameEncoder(nn.Module):
        """(N, 3, H, W) -> (N, D): each frame as a one-frame clip (frames are independent without Shift/Joint)."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model.get_frame_features(pixel_values[:, None])[:, 0]

    class ClipEncoder(nn.Module):
        """(B, T, 3, H, W) -> (B, T, D)."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model.get_frame_features(pixel_values)

    class Fusion(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, frame_embeds):
            return self.model.fusion(frame_embeds)

    return TextEncoder(model), FrameEncoder(model), ClipEncoder(model), Fusion(model)


def _export_graph(module, inputs: tuple, path: Path, input_names, output_name: str, dynamic_axes, opset: int) -> None:
    import torch

    # The TorchScript-based exporter: the torch.export-based one needs 30-60 s per graph even for tiny models on
    # a 2-core CPU (a few seconds here) and gives the same outputs. Its deprecation notice and the tracer's
    # warnings about shape checks turned into constants are expected: the limits they guard are recorded in
    # onnx_export.json and checked by the runtime, and the parity tests cover 1 to 16 frames.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*advanced indexing.*", category=UserWarning)
        # The LSTM's zero initial state follows the batch size at run time (the tests run other batch sizes).
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*LSTM.*", category=UserWarning)
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=list(input_names),
            output_names=[output_name],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _write_export(model, processor, directory: Path, opset: int, dtype: str, quantize: str | None) -> None:
    import torch

    config = model.config
    # The scoring scale: config.eval_logit_scale (the authors' 100 when converted), else the clamped learned one.
    effective_scale = float(model.evaluation_scale().detach().float())
    # A copy: the caller's model keeps its mode, dtype and device.
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    visual_dtype = torch.float16 if dtype == "fp16" else torch.float32
    text_encoder, frame_encoder, clip_encoder, fusion = _graph_modules(model)
    whole_clips = exports_whole_clips(config)
    size = config.vision_config.image_size
    num_frames = min(config.num_frames, frame_limit(model) or config.num_frames)

    with torch.no_grad():
        # Padding in the traced example keeps the attention-mask path in the graph.
        tokens = processor.tokenizer(["a video of a person juggling balls", "a"], padding=True, return_tensors="pt")
        _export_graph(
            text_encoder,
            (tokens["input_ids"], tokens["attention_mask"]),
            directory / TEXT_ENCODER_FILE,
            ("input_ids", "attention_mask"),
            "text_embeds",
            {name: {0: "num_texts", 1: "length"} for name in ("input_ids", "attention_mask")},
            opset,
        )
        model.to(visual_dtype)
        if whole_clips:
            example = torch.randn(2, num_frames, 3, size, size, dtype=visual_dtype)
            frame_module, frame_axes = clip_encoder, {"pixel_values": {0: "batch", 1: "frames"}}
            frame_axes["frame_embeds"] = {0: "batch", 1: "frames"}
        else:
            example = torch.randn(2, 3, size, size, dtype=visual_dtype)
            frame_module, frame_axes = frame_encoder, {"pixel_values": {0: "frames"}, "frame_embeds": {0: "frames"}}
        frame_path = directory / FRAME_ENCODER_FILE
        float_frame_path = directory / "frame_encoder.float.onnx" if quantize else frame_path
        _export_graph(frame_module, (example,), float_frame_path, ("pixel_values",), "frame_embeds", frame_axes, opset)
        _export_graph(
            fusion,
            (torch.randn(2, num_frames, config.projection_dim, dtype=visual_dtype),),
            directory / FUSION_FILE,
            ("frame_embeds",),
            "video_embeds",
            {"frame_embeds": {0: "batch", 1: "frames"}, "video_embeds": {0: "batch"}},
            opset,
        )
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            float_frame_path,
            frame_path,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        float_frame_path.unlink()

    config.save_pretrained(directory)
    processor.save_pretrained(directory)
    graph_dtype = "float16" if dtype == "fp16" else "float32"
    metadata = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "opset": opset,
        "dtype": dtype,
        "quantize": quantize,
        "exporter": f"torch.onnx (TorchScript) from torch {torch.__version__}",
        "visual_prompts": {"fusion": config.fusion, "shift": bool(config.shift), "joint": bool(config.joint)},
        "image_size": size,
        "max_frames": frame_limit(model),
        "logit_scale": effective_scale,
        "graphs": {
            "text_encoder": {
                "file": TEXT_ENCODER_FILE,
                "inputs": {"input_ids": ["num_texts", "length"], "attention_mask": ["num_texts", "length"]},
                "output": {"text_embeds": ["num_texts", "projection_dim"]},
                "dtype": "float32",
            },
            "frame_encoder": {
                "file": FRAME_ENCODER_FILE,
                "takes": "clips" if whole_clips else "frames",
                "inputs": {
                    "pixel_values": ["batch", "frames", 3, size, size] if whole_clips else ["frames", 3, size, size]
                },
                "output": {
                    "frame_embeds": ["batch", "frames", "projection_dim"]
                    if whole_clips
                    else ["frames", "projection_dim"]
                },
                "dtype": graph_dtype,
                "quantize": quantize,
            },
            "fusion": {
                "file": FUSION_FILE,
                "inputs": {"frame_embeds": ["batch", "frames", "projection_dim"]},
                "output": {"video_embeds": ["batch", "projection_dim"]},
                "dtype": graph_dtype,
            },
        },
    }
    (directory / EXPORT_METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


__all__ = [
    "DEFAULT_OPSET",
    "EXPORT_METADATA_NAME",
    "SUPPORTED_OPSETS",
    "check_export_options",
    "export_onnx",
    "exports_whole_clips",
    "frame_limit",
]
