"""Export an `ActionCLIPModel` to three ONNX graphs that onnxruntime runs without PyTorch.

The graphs follow where the model can be cut:

- ``text_encoder.onnx``: ``input_ids``, ``attention_mask`` int64 ``(N, L)`` -> ``text_embeds`` ``(N, D)``, projected
  and not normalised (dynamic N and L up to the text context: CLIP's 77, SigLIP's 64, ...). No ``token_type_ids``:
  the BERT / RoBERTa towers (Chinese-CLIP, AltCLIP) take the zeros of one text by default;
- ``frame_encoder.onnx``: for post-network prompts (meanP, conv1d, lstm, transf, transf_cls) frames are encoded
  independently, so the graph takes ``pixel_values`` ``(N, 3, H, W)`` -> ``frame_embeds`` ``(N, D)`` with dynamic N.
  With Shift or Joint, frames of a clip meet inside the vision tower's layers, so the graph takes whole clips:
  ``pixel_values`` ``(B, T, 3, H, W)`` -> ``frame_embeds`` ``(B, T, D)``, dynamic B and T (T up to the joint
  prompt's limit);
- ``fusion.onnx``: ``frame_embeds`` ``(B, T, D)`` -> ``video_embeds`` ``(B, D)``, dynamic B and T up to the model's
  frame limit (transf / transf_cls position embeddings; unlimited for meanP, conv1d, lstm).

H and W are the model's image size (position embeddings are not interpolated). Every backbone family exports the
same three graphs: SigLIP's attention-pooling head runs inside the frame encoder, and SigLIP 2's frames are cut into
its patch sequences inside the graph, so its input stays frames. Next to the graphs go the model's ``config.json``,
the processor's files and ``onnx_export.json`` (graphs, their inputs and dtypes, opset, quantisation, the effective
logit scale, the frame limit, and what classifying needs without the model's code: the model's frame count and
templates and the processor's evaluation transform, `evaluation_settings`; the text context, padding and padding
side, and the logit bias of a sigmoid family), and a ``tokenizer.json`` for every family (`tokenizer.tokenizer_json`:
SigLIP's SentencePiece tokenizer converted), checked to give the processor's ids on the model's prompts, so the
directory describes itself: ``pipeline("zero-shot-video-classification", model=directory)`` runs it, and so does
`actionclip.onnx.runtime.OnnxZeroShotClassifier` with onnxruntime and numpy alone (no torch, no transformers).

``dtype="fp16"`` exports the frame encoder and the fusion in float16; the text encoder stays float32, by design:
it runs once per label set (the pipeline caches the text embeddings), so halving it would save neither time per video
nor meaningful memory (it is a few percent of a ViT-B/16 model's weights), while float32 text embeddings are the
same as PyTorch's (1e-4), so an fp16 export scores its videos against exactly the label embeddings of the fp32 one and
only the video side carries the fp16 rounding.

int8 (``quantize="int8"``, the one place where its design is decided, `INT8_DESIGN`): onnxruntime's dynamic
quantisation of the frame encoder's MatMuls with constant weights (int8 weights per output channel, uint8 activations
whose range is measured at run time per call), the graph that runs for every frame. Which MatMuls are quantised is
chosen at export time by measured accuracy, not fixed: every MatMul's own quantisation error is measured on calibration
frames (relative error of its output, weights and activations quantised as onnxruntime does), then the most sensitive
ones are kept in float32, as few as possible, until the int8 frame embeddings are within ``int8_tolerance`` (largest
``1 - cosine`` over the calibration frames, default `DEFAULT_INT8_TOLERANCE`) of the float32 ones: none kept first,
then 1, 2, 4, ... of them, then bisected, each count checked end to end with onnxruntime. The default 5e-4 lets a
ViT-B/16 frame encoder quantise every MatMul (its int8 error is about 3e-4) and stops int8 where it moves embeddings
more. Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI, onnxruntime's uint8 x int8 kernels add pairs of
products in 16 bits, which full-range int8 weights overflow (measured: held-out frame embeddings of the demo's meanP
model down to cosine 0.32 from float32 without it, 0.88 with it). Calibration frames are the caller's (``calibration``;
`actionclip export --calibration VIDEO ...`) or, by default, fixed random frames in the processor's normalised range.
What was chosen (quantised and float32 MatMuls, the measured error) goes into ``onnx_export.json``. A model whose
embeddings separate its classes by less than int8's error (tiny models, scored at a large logit scale) keeps most of
its MatMuls in float32 and gains little speed; a warning says so. Activation ranges are per call (all frames of a batch
together), so a video's int8 embedding depends slightly on its batch.

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

from ..errors import OnnxExportError
from ..model_loading import load_saved_processor

# The directory's format (metadata file, format name and version, graph names) is the runtime's
# (`actionclip.onnx.runtime`), imported where the export writes it: this module's top stays as light as the command
# line's --help needs (no torch, no numpy), since the `export` command reads the options below when it registers.
TEXT_ENCODER_FILE = "text_encoder.onnx"
FRAME_ENCODER_FILE = "frame_encoder.onnx"
FUSION_FILE = "fusion.onnx"
DTYPES = ("fp32", "fp16")
QUANTIZATIONS = ("int8",)
# int8: how close the int8 frame embeddings must stay to the float32 ones on the calibration frames (largest
# 1 - cosine), and the default calibration (fixed random frames in the processor's normalised range).
DEFAULT_INT8_TOLERANCE = 5e-4
DEFAULT_CALIBRATION_FRAMES = 4
INT8_DESIGN = (
    "onnxruntime dynamic quantisation of constant-weight MatMuls: int8 weights per output channel, 7-bit "
    "(reduce_range), uint8 activations ranged per call; the most sensitive MatMuls kept float32 until the "
    "calibration error is within the tolerance"
)
# The TorchScript-based exporter's range (14: Trilu for CLIP's causal mask; 20: its newest opset).
SUPPORTED_OPSETS = range(14, 21)
# Labels whose prompts (in every template of the model) check that the export's tokenizer.json gives the processor's
# ids: English, accents, punctuation, case, Chinese.
TOKENIZER_CHECK_LABELS = ("juggling balls", "Playing the guitar, fast!", "café crème", "跳绳", "tai-chi (slow)")
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


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool, overwrite_hint: str = "overwrite=True") -> None:
    """Refuse an export directory that is a file, or holds files unless ``overwrite``; ``overwrite_hint`` is how the
    caller's user says overwrite (``--overwrite`` on the command line)."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OnnxExportError(f"output directory {str(output_dir)!r} is a file")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise OnnxExportError(
            f"output directory {str(output_dir)!r} is not empty: choose a new directory or pass {overwrite_hint}"
        )


def export_onnx(
    model,
    output_dir: str | os.PathLike,
    *,
    processor=None,
    opset: int = DEFAULT_OPSET,
    dtype: str = "fp32",
    quantize: str | None = None,
    overwrite: bool = False,
    calibration=None,
    int8_tolerance: float = DEFAULT_INT8_TOLERANCE,
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
        calibration: with ``quantize="int8"``, the frames on which the int8 error is measured: ``pixel_values`` as
            the processor makes them, ``(N, 3, H, W)`` or ``(B, T, 3, H, W)`` (a few real frames of the kind the
            model will see; 4 to 32 frames are enough). Default: `DEFAULT_CALIBRATION_FRAMES` fixed random frames.
        int8_tolerance: with ``quantize="int8"``, the largest ``1 - cosine`` between int8 and float32 frame
            embeddings on the calibration frames; MatMuls are kept in float32, most sensitive first, until it holds.

    Returns:
        ``output_dir`` as a `Path`.

    Raises:
        OnnxExportError: unsupported options, a model without a text encoder, or ``output_dir`` in the way.
        MissingProcessorError: no ``processor`` given and none saved with the model.
    """
    check_export_options(opset, dtype, quantize)
    if isinstance(int8_tolerance, bool) or not isinstance(int8_tolerance, (int, float)) or not 0 < int8_tolerance < 1:
        raise OnnxExportError(f"int8_tolerance must be a number between 0 and 1, got {int8_tolerance!r}")
    if calibration is not None and quantize != "int8":
        raise OnnxExportError("calibration frames are only used with quantize='int8'")
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite)
    if quantize is not None:
        import onnxruntime.quantization  # noqa: F401  (missing: refused before the slow part)

    import torch

    from ..model_kinds import ZERO_SHOT, is_open_set
    from ..modeling_actionclip import ActionCLIPModel

    if isinstance(model, (str, os.PathLike)):
        from transformers import PretrainedConfig

        source = str(model)
        # The saved configuration as it is (a folder's or a Hub id's config.json): no Auto class needs to know it.
        config, _ = PretrainedConfig.get_config_dict(source)
        model_type, architectures = config.get("model_type"), list(config.get("architectures") or [])
        if model_type != ZERO_SHOT or (architectures and not is_open_set(config)):
            raise OnnxExportError(
                f"model {source!r} is not an ActionCLIPModel (model_type {model_type!r}, architectures "
                f"{architectures}): only the video-text model, with its text encoder, is exported"
            )
        model = ActionCLIPModel.from_pretrained(source, dtype=torch.float32)
    if not isinstance(model, ActionCLIPModel):
        raise OnnxExportError(
            f"only an ActionCLIPModel (video-text, with its text encoder) is exported, got {type(model).__name__}"
        )
    if processor is None:
        processor = load_saved_processor(model)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0o700 would otherwise become the export's mode
    try:
        _write_export(model, processor, staging, opset, dtype, quantize, calibration, int8_tolerance)
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


def _write_export(
    model, processor, directory: Path, opset: int, dtype: str, quantize, calibration, int8_tolerance: float
) -> None:
    import torch

    from ..backbones import backbone_image_size
    from ..configuration_actionclip import ActionCLIPConfig
    from ..processing_actionclip import ActionCLIPProcessor
    from .runtime import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, EXPORT_METADATA_NAME

    config = model.config
    # The scoring scale: config.eval_logit_scale (the authors' 100 when converted), else the clamped learned one.
    effective_scale = float(model.evaluation_scale().detach().float())
    # A copy: the caller's model keeps its mode, dtype and device.
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    visual_dtype = torch.float16 if dtype == "fp16" else torch.float32
    text_encoder, frame_encoder, clip_encoder, fusion = _graph_modules(model)
    whole_clips = exports_whole_clips(config)
    size = backbone_image_size(config.vision_config)  # SigLIP 2 at a fixed resolution has no image_size
    num_frames = min(config.num_frames, frame_limit(model) or config.num_frames)

    with torch.no_grad():
        # Padding in the traced example keeps the attention-mask path in the graph. No token_type_ids: the BERT and
        # RoBERTa towers (Chinese-CLIP, AltCLIP) take zeros for one text, what they default to.
        tokens = processor(text=["a video of a person juggling balls", "a"], padding=True, return_tensors="pt")
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
    int8 = None
    if quantize == "int8":
        calibration = _calibration_frames(calibration, whole_clips, num_frames, size)
        int8 = _quantize_frame_encoder_int8(float_frame_path, frame_path, calibration, int8_tolerance)
        float_frame_path.unlink()

    # Saved as a registered model saves them: config.json and the processor's files name their classes (auto_map)
    # and their code is copied beside them, so AutoConfig / AutoProcessor read the export with trust_remote_code=True
    # where this package is absent. Each class's own registration, whether or not the Auto classes know ActionCLIP.
    ActionCLIPConfig.register_for_auto_class()
    ActionCLIPProcessor.register_for_auto_class("AutoProcessor")
    config.save_pretrained(directory)
    processor.save_pretrained(directory)
    text_settings = {
        "context_length": processor.context_length,
        "padding": "max_length" if processor.pad_to_context else "longest",
        "padding_side": processor.tokenizer.padding_side,
        "truncation_side": processor.tokenizer.truncation_side,
    }
    _write_numpy_tokenizer(processor, directory, text_settings)
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
        # A family scored with sigmoids (SigLIP) adds its learned bias to every logit; None: a softmax.
        "logit_bias": None
        if model.score_bias() is None
        else float(model.score_bias().detach().float().reshape(-1)[0]),
        # How the runtime tokenizes (`tokenizer.NumpyTokenizer`): the model's text context and the family's padding.
        "text": text_settings,
        "num_frames": int(config.num_frames),
        "templates": list(config.templates),
        "video_processing": processor.video_processor.evaluation_settings(),
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
                **({"int8": int8} if int8 is not None else {}),
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


def _write_numpy_tokenizer(processor, directory: Path, text_settings: dict) -> None:
    """Give the export a ``tokenizer.json`` the runtime's `NumpyTokenizer` reads (SigLIP's saved tokenizer is only its
    SentencePiece ``spiece.model``: converted, `tokenizer.tokenizer_json`), and check that it gives the processor's
    ids on the model's prompts.

    Raises:
        OnnxExportError: no conversion exists for the tokenizer, or its ids differ from the processor's (named).
    """
    from ..tokenizer import tokenizer_json
    from .runtime import export_tokenizer

    path = directory / "tokenizer.json"
    if not path.is_file():
        try:
            path.write_text(tokenizer_json(processor.tokenizer), encoding="utf-8")
        except ValueError as error:
            raise OnnxExportError(f"the export needs a tokenizer.json for the ONNX runtime: {error}") from None
    numpy_tokenizer = export_tokenizer(directory, {"text": text_settings})
    texts = [template.replace("{}", label, 1) for template in processor.templates for label in TOKENIZER_CHECK_LABELS]
    texts += list(TOKENIZER_CHECK_LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation warnings: these texts are the check's, not the user's
        expected = processor(text=texts, padding=True, return_tensors="np")
        got = numpy_tokenizer(texts)
    for name in ("input_ids", "attention_mask"):
        if got[name].shape != expected[name].shape or (got[name] != expected[name]).any():
            rows = [
                i for i in range(len(texts)) if i >= len(got[name]) or list(got[name][i]) != list(expected[name][i])
            ]
            first = rows[0] if rows else 0
            raise OnnxExportError(
                f"the exported tokenizer.json gives other {name} than the model's {type(processor.tokenizer).__name__}"
                f" (first on {texts[first]!r}): the ONNX runtime would score other texts than PyTorch"
            )


def read_int8_choice(directory: str | os.PathLike) -> dict | None:
    """What the int8 export of ``directory`` chose (``onnx_export.json``), or None for a float export.

    Raises:
        OnnxModelError: ``directory`` is not an export (`actionclip.onnx.runtime.read_export_metadata`).
    """
    from .runtime import read_export_metadata

    return read_export_metadata(directory)["graphs"]["frame_encoder"].get("int8")


def _calibration_frames(calibration, whole_clips: bool, num_frames: int, size: int):
    """The calibration input of the frame encoder graph as float32 numpy: ``(N, 3, H, W)``, or ``(B, T, 3, H, W)``
    for a whole-clip graph.

    Raises:
        OnnxExportError: not a tensor or array of frames of the exported size.
    """
    import numpy as np
    import torch

    if calibration is None:
        generator = torch.Generator().manual_seed(0)
        shape = (1, num_frames) if whole_clips else (DEFAULT_CALIBRATION_FRAMES,)
        return torch.randn(*shape, 3, size, size, generator=generator).numpy()
    if isinstance(calibration, torch.Tensor):
        calibration = calibration.detach().cpu().float().numpy()
    calibration = np.asarray(calibration, dtype=np.float32) if isinstance(calibration, np.ndarray) else None
    if calibration is None or calibration.ndim not in (4, 5) or calibration.shape[-3:] != (3, size, size):
        raise OnnxExportError(
            f"calibration must be pixel_values (N, 3, {size}, {size}) or (B, T, 3, {size}, {size}) as the "
            f"processor makes them, got {getattr(calibration, 'shape', type(calibration).__name__)}"
        )
    if whole_clips and calibration.ndim == 4:
        calibration = calibration[None]
    elif not whole_clips and calibration.ndim == 5:
        calibration = calibration.reshape(-1, 3, size, size)
    return np.ascontiguousarray(calibration)


def _matmul_sensitivities(model_proto, calibration) -> dict[str, float]:
    """Each constant-weight MatMul's own int8 error on ``calibration``: ``|Q(A) Q(W) - A W| / |A W|`` (Frobenius),
    activations quantised per tensor to uint8 and weights per column to 7-bit int8, as the runtime does."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    weights = {init.name: init for init in model_proto.graph.initializer}
    nodes = [
        node
        for node in model_proto.graph.node
        if node.op_type == "MatMul" and node.input[1] in weights and len(weights[node.input[1]].dims) == 2
    ]
    probe = onnx.ModelProto()
    probe.CopyFrom(model_proto)
    del probe.graph.output[:]
    seen = set()
    for node in nodes:  # the MatMuls' inputs as outputs (one run gives them all)
        if node.input[0] not in seen:
            seen.add(node.input[0])
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.input[0]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # Two frames (one clip) are enough to rank the MatMuls and keep the probe's memory small at ViT-B size.
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = dict(
        zip([output.name for output in probe.graph.output], session.run(None, {"pixel_values": calibration[:2]}))
    )

    def quantized_activation(values):
        low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
        scale = (high - low) / 255 or 1.0
        zero = np.round(-low / scale)
        return (np.clip(np.round(values / scale) + zero, 0, 255) - zero) * scale

    sensitivities = {}
    for node in nodes:
        activation = outputs[node.input[0]].reshape(-1, outputs[node.input[0]].shape[-1]).astype(np.float64)
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float64)
        scale = np.abs(weight).max(axis=0) / 63
        scale[scale == 0] = 1.0
        exact = activation @ weight
        approximate = quantized_activation(activation) @ (np.clip(np.round(weight / scale), -63, 63) * scale)
        sensitivities[node.name] = float(np.linalg.norm(approximate - exact) / (np.linalg.norm(exact) or 1.0))
    return sensitivities


def _quantize_frame_encoder_int8(float_path: Path, int8_path: Path, calibration, tolerance: float) -> dict:
    """Write ``int8_path``: ``float_path`` with its MatMuls dynamically quantised, the most sensitive kept float32
    until the int8 embeddings are within ``tolerance`` (largest ``1 - cosine``) of the float32 ones on
    ``calibration`` (`INT8_DESIGN`). Returns what was chosen, for ``onnx_export.json``."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    sensitivities = _matmul_sensitivities(onnx.load(str(float_path)), calibration)
    ranked = sorted(sensitivities, key=sensitivities.get, reverse=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1

    def embeddings(path: Path):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        output = session.run(None, {"pixel_values": calibration})[0].astype(np.float64)
        return output.reshape(-1, output.shape[-1])

    reference = embeddings(float_path)

    def attempt(kept: int) -> float:
        """Quantise all but the ``kept`` most sensitive MatMuls; the largest 1 - cosine on the calibration frames."""
        with warnings.catch_warnings():  # its advice to run shape inference first: the graphs are already inferred
            warnings.simplefilter("ignore")
            quantize_dynamic(
                float_path,
                int8_path,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=ranked[:kept],
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
            )
        output = embeddings(int8_path)
        norms = np.linalg.norm(output, axis=-1) * np.linalg.norm(reference, axis=-1)
        return float(1 - ((output * reference).sum(-1) / np.maximum(norms, 1e-30)).min())

    # Keep 0, 1, 2, 4, ... MatMuls in float32 until the error is within the tolerance, then bisect between the last
    # count that failed and the first that passed (each try quantises the graph once: about 30 s at ViT-B size).
    errors = {0: attempt(0)}
    failed, kept, last = -1, 0, 0
    while errors[kept] > tolerance and kept < len(ranked):
        failed, kept = kept, min(max(1, 2 * kept), len(ranked))
        errors[kept], last = attempt(kept), kept
    while kept - failed > 1 and errors[kept] <= tolerance:
        middle = (failed + kept) // 2
        errors[middle], last = attempt(middle), middle
        if errors[middle] <= tolerance:
            kept = middle
        else:
            failed = middle
    if last != kept:  # the file holds the last try: write the chosen one again
        attempt(kept)
    error = errors[kept]
    if kept * 2 > len(ranked):
        warnings.warn(
            f"int8: {kept} of the frame encoder's {len(ranked)} MatMuls stay float32 to keep its embeddings within "
            f"{tolerance:g} (1 - cosine) of float32's on the calibration frames; expect little speed-up. This model "
            "is more sensitive to int8 than the tolerance allows (or raise int8_tolerance)",
            UserWarning,
            stacklevel=4,
        )
    return {
        "design": INT8_DESIGN,
        "tolerance": tolerance,
        "calibration_frames": int(np.prod(calibration.shape[:-3])),
        "calibration_error": error,
        "quantized_matmuls": len(ranked) - kept,
        "float32_matmuls": ranked[:kept],
        "error_by_float32_count": {str(count): errors[count] for count in sorted(errors)},
        "sensitivity": {name: round(value, 6) for name, value in sensitivities.items()},
    }


def calibration_pixel_values(classifier, videos):
    """``pixel_values`` ``(V, T, 3, H, W)`` float32 of ``videos`` as the zero-shot ``classifier`` prepares them (its
    decoding, sampling and transforms), for `export_onnx`'s int8 calibration."""
    import torch

    parts = []
    for video in videos:
        inputs = classifier.preprocess(video)
        if "frames" in inputs:  # uint8 frames, normalised where the model runs
            video_processor = classifier.processor.video_processor
            inputs["pixel_values"] = video_processor.frames_to_pixel_values(
                inputs["frames"], torch.device("cpu"), torch.float32
            )
        parts.append(inputs["pixel_values"])
    return torch.cat(parts)


__all__ = [
    "DEFAULT_CALIBRATION_FRAMES",
    "DEFAULT_INT8_TOLERANCE",
    "DEFAULT_OPSET",
    "calibration_pixel_values",
    "SUPPORTED_OPSETS",
    "check_export_options",
    "export_onnx",
    "exports_whole_clips",
    "frame_limit",
    "read_int8_choice",
]
