"""Run a directory written by `actionclip.onnx.export` with onnxruntime: behind the pipeline's backend interface,
or on its own with numpy and no torch.

`ActionCLIPOnnxModel.from_pretrained(directory)` loads the three graphs; the zero-shot pipeline uses it as its model
(``pipeline("zero-shot-video-classification", model=directory)``) and calls it through the same four members as the
PyTorch backend (`actionclip.inference_backends.TorchBackend`): ``text_features``, ``video_features``, ``scale`` and
``cache_key``, so pre-processing, scoring and the text-embedding cache are the pipeline's own.

`OnnxZeroShotClassifier` classifies videos with an export and nothing of torch or transformers (what
``actionclip classify --model EXPORT_DIR`` runs): decoding, sampling, resize and crop by `video_clips` in
`video_decode_pool` workers (PyAV, Pillow, numpy), normalisation by `video_common.normalize_frames` with the settings
the export recorded from the video processor, prompts by `prompts`, tokens by the saved tokenizer through the
`tokenizers` library (`tokenizer.NumpyTokenizer`, with the text context and padding the export recorded), scores by `scoring` on numpy arrays: the pipeline's pieces, so
the scores are the pipeline's.

This module imports onnxruntime only when a directory is loaded, and torch only where the pipeline hands it tensors.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import OnnxModelError, PipelineArgumentError
from ..prompts import resolve_candidates
from ..sampling import average_view_scores
from ..scoring import check_finite_scores, label_scores, label_text_embeddings, rank_labels
from ..tokenizer import CONTEXT_LENGTH, NumpyTokenizer
from ..video_clips import MAX_NUM_FRAMES, ClipSpec
from ..video_common import normalize_frames
from ..video_decode_pool import DecodePool, default_num_workers, report_errors

# The directory format: `actionclip.onnx.export` writes what this module reads, and takes these names from here.
EXPORT_METADATA_NAME = "onnx_export.json"
EXPORT_FORMAT = "actionclip-onnx"
# 2: the model's num_frames and templates and the processor's evaluation settings, for a runtime without torch.
# 3: the logit bias (sigmoid families), the text context and padding ("text"), a tokenizer.json for every family.
EXPORT_FORMAT_VERSION = 3
GRAPHS = ("text_encoder", "frame_encoder", "fusion")

_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16}


def is_onnx_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory written by `actionclip.onnx.export.export_onnx`."""
    return os.path.isfile(os.path.join(str(path), EXPORT_METADATA_NAME))


class ActionCLIPOnnxModel:
    """The exported graphs of one ActionCLIP model, run on the CPU with onnxruntime.

    Stands in for the PyTorch model in the zero-shot pipeline: it has the ``config``, ``name_or_path``, ``device``
    and ``dtype`` the pipeline reads, and the backend members ``text_features``, ``video_features``, ``scale`` and
    ``cache_key``.

    Args:
        directory: an export directory (``onnx_export.json``, the graphs, ``config.json``, processor files).
        num_threads: onnxruntime's intra-op threads; default ``torch.get_num_threads()`` where torch is loaded,
            else ``OMP_NUM_THREADS`` or onnxruntime's own default (one per physical core, as torch's), so one setting
            (``OMP_NUM_THREADS``, ``torch.set_num_threads``) governs both backends.
    """

    backend_name = "onnx"  # the backend interface's name, also what marks this model as its own backend
    input_modalities = ("video", "text")

    def __init__(self, directory: str | os.PathLike, num_threads: int | None = None):
        import onnxruntime as ort

        directory = Path(directory)
        self.metadata = read_export_metadata(directory)
        self.name_or_path = str(directory)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or _default_num_threads()
        options.inter_op_num_threads = 1
        self.sessions = {}
        for name in GRAPHS:
            path = directory / self.metadata["graphs"][name]["file"]
            if not path.is_file():
                raise OnnxModelError(f"exported directory {str(directory)!r} has no {path.name} (the {name} graph)")
            self.sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._frame_input_dtype = _NUMPY_DTYPES[self.metadata["graphs"]["frame_encoder"]["dtype"]]
        self._fusion_input_dtype = _NUMPY_DTYPES[self.metadata["graphs"]["fusion"]["dtype"]]
        self._whole_clips = self.metadata["graphs"]["frame_encoder"]["takes"] == "clips"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, num_threads: int | None = None, dtype=None, **kwargs):
        """Load an export directory (transformers' pipeline loader passes its own keywords: ignored).

        ``dtype`` must be None, ``"auto"`` or the graphs' own dtype: exported graphs cannot change precision.
        """
        if not is_onnx_export(pretrained_model_name_or_path):
            raise OnnxModelError(
                f"{str(pretrained_model_name_or_path)!r} is not an ONNX export: it has no {EXPORT_METADATA_NAME} "
                "(write one with `actionclip export MODEL OUT_DIR`)"
            )
        model = cls(pretrained_model_name_or_path, num_threads=num_threads)
        if dtype not in (None, "auto") and dtype != model.dtype:
            raise OnnxModelError(
                f"the graphs in {model.name_or_path!r} are {model.metadata['dtype']}; dtype={dtype} cannot change "
                "them: export again with --dtype"
            )
        return model

    # ------------------------------------------------------------------ what the pipeline reads of a model

    @cached_property
    def config(self):
        """The model's `ActionCLIPConfig` (read on first use: it imports transformers)."""
        from ..configuration_actionclip import ActionCLIPConfig

        return ActionCLIPConfig.from_pretrained(self.name_or_path)

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    @property
    def dtype(self):
        """The torch dtype of the video graphs (the pipeline's outputs are float32 either way)."""
        import torch

        return torch.float16 if self.metadata["dtype"] == "fp16" else torch.float32

    def eval(self) -> ActionCLIPOnnxModel:
        return self

    def to(self, device=None, *args, **kwargs) -> ActionCLIPOnnxModel:
        import torch

        # pipeline() moves its model to the first GPU by default where there is one: say so rather than fail.
        if device is not None and torch.device(device).type != "cpu":
            warnings.warn(
                f"the ONNX backend runs on the CPU; device {device!r} is not used", UserWarning, stacklevel=2
            )
        return self

    def can_generate(self) -> bool:
        return False

    # ------------------------------------------------------------------ the backend interface

    @property
    def cache_key(self) -> tuple:
        return ("onnx", self.name_or_path, id(self))

    def text_features(self, input_ids, attention_mask):
        """``input_ids``, ``attention_mask`` tensors (N, L) -> (N, D) projected text embeddings, a float32 tensor, not
        normalised."""
        import torch

        return torch.from_numpy(self.encode_text(input_ids, attention_mask))

    def video_features(self, pixel_values):
        """``pixel_values`` tensor (B, T, 3, H, W) -> (B, D) video embeddings after the visual prompts, a float32 tensor
        (:meth:`encode_video`)."""
        import torch

        return torch.from_numpy(self.encode_video(pixel_values))

    def scale(self, logit_scale: float | None = None):
        """:meth:`scoring_scale` as a float32 tensor."""
        import torch

        return torch.tensor(self.scoring_scale(logit_scale), dtype=torch.float32)

    # ------------------------------------------------------------------ the graphs on numpy arrays

    def encode_text(self, input_ids, attention_mask) -> np.ndarray:
        """``input_ids``, ``attention_mask`` (N, L) (arrays or tensors) -> (N, D) projected text embeddings, float32,
        not normalised."""
        (features,) = self.sessions["text_encoder"].run(
            None,
            {"input_ids": _numpy(input_ids, np.int64), "attention_mask": _numpy(attention_mask, np.int64)},
        )
        return features.astype(np.float32, copy=False)

    def encode_video(self, pixel_values) -> np.ndarray:
        """``pixel_values`` (B, T, 3, H, W) (an array or a tensor) -> (B, D) video embeddings after the visual
        prompts, float32.

        Raises:
            OnnxModelError: frames of another size than the exported one, or more frames than the model's limit.
        """
        if pixel_values.ndim != 5 or pixel_values.shape[2] != 3:
            raise OnnxModelError(f"pixel_values must be (B, T, 3, H, W), got {tuple(pixel_values.shape)}")
        batch_size, num_frames, _, height, width = pixel_values.shape
        size = self.metadata["image_size"]
        if (height, width) != (size, size):
            raise OnnxModelError(f"the graphs were exported for {size}x{size} frames, got {height}x{width}")
        self.check_frame_count(num_frames)
        pixels = _numpy(pixel_values, self._frame_input_dtype)
        if not self._whole_clips:
            pixels = pixels.reshape(batch_size * num_frames, 3, height, width)
        (frame_embeds,) = self.sessions["frame_encoder"].run(None, {"pixel_values": pixels})
        frame_embeds = frame_embeds.reshape(batch_size, num_frames, -1).astype(self._fusion_input_dtype, copy=False)
        (video_embeds,) = self.sessions["fusion"].run(None, {"frame_embeds": frame_embeds})
        return video_embeds.astype(np.float32, copy=False)

    def check_frame_count(self, num_frames: int) -> None:
        """Refuse clips longer than the model's frame limit (its position tables).

        Raises:
            OnnxModelError: naming the limit.
        """
        limit = self.metadata["max_frames"]
        if limit is not None and num_frames > limit:
            raise OnnxModelError(f"got {num_frames} frames but this model's visual prompts take at most {limit}")

    def score_bias(self) -> float | None:
        """The logit bias of a family scored with sigmoids (SigLIP), recorded at export; None: a softmax."""
        return self.metadata.get("logit_bias")

    def scoring_scale(self, logit_scale: float | None = None) -> float:
        """``logit_scale`` when given, else the model's scoring scale at export (``evaluation_scale()``)."""
        return float(self.metadata["logit_scale"] if logit_scale is None else logit_scale)


class OnnxZeroShotClassifier:
    """Zero-shot video classification with an export directory, on onnxruntime and numpy alone (no torch, no
    transformers): the zero-shot pipeline's inputs, options and results for video files, with its pieces (see the
    module docstring), so its scores equal the pipeline's on the same export or on the model it was exported from.

    Args:
        directory: a directory written by `actionclip.onnx.export.export_onnx` (format version 2 or later: it records
            the frame count, templates and video processing this class needs).
        num_threads: onnxruntime's intra-op threads (see `ActionCLIPOnnxModel`).

    Raises:
        OnnxModelError: not an export, or one written before its directory recorded the video processing.
    """

    def __init__(self, directory: str | os.PathLike, num_threads: int | None = None):
        self.model = ActionCLIPOnnxModel.from_pretrained(directory, num_threads=num_threads)
        missing = [key for key in ("num_frames", "templates", "video_processing") if key not in self.model.metadata]
        if missing:
            raise OnnxModelError(
                f"export {str(directory)!r} does not record {', '.join(missing)} (it was written by an older version): "
                "export the model again with `actionclip export MODEL OUT_DIR`"
            )
        self.tokenizer = export_tokenizer(directory, self.model.metadata)
        self.video_processing = self.model.metadata["video_processing"]
        self.name_or_path = self.model.name_or_path

    def text_embeddings(self, labels: Sequence[str], templater, texts=None) -> np.ndarray:
        """L2-normalised prompt embeddings ``(K * N, D)`` float32, template-major (`scoring.label_text_embeddings`)."""
        return label_text_embeddings(labels, templater, texts, self.tokenizer, self.model.encode_text)

    def clip_spec(self, num_frames=None, num_clips=1, num_crops=1, decode_timeout=30.0) -> ClipSpec:
        """What `video_clips` makes of each video: ``num_frames`` (default the model's) TSN frames per view, resized
        and cropped as the exported processor does."""
        num_frames = num_frames or self.model.metadata["num_frames"]
        return ClipSpec.for_evaluation(
            self.video_processing, num_frames, num_clips=num_clips, num_crops=num_crops, timeout=decode_timeout
        )

    def pixel_values(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(..., T, S, S, 3)`` resized and cropped frames -> float32 ``(..., T, 3, S, S)`` ``pixel_values``."""
        settings = self.video_processing
        return normalize_frames(frames, settings["image_mean"], settings["image_std"], settings["rescale_factor"])

    def iter_results(
        self,
        videos: Sequence,
        candidate_labels,
        *,
        hypothesis_template=None,
        top_k: int | None = None,
        num_frames: int | None = None,
        num_clips: int = 1,
        num_crops: int = 1,
        logit_scale: float | None = None,
        ensemble: str = "probs",
        batch_size: int = 1,
        num_workers: int | None = None,
        on_error: str = "raise",
        decode_timeout: float = 30.0,
    ) -> Iterator[list[dict] | None]:
        """The ranked labels ``[{"label", "score"}, ...]`` of each video in ``videos`` (paths, URLs, bytes), in
        order, while later videos decode in worker processes; ``None`` for a video skipped with ``on_error="skip"``.

        Options as the zero-shot pipeline's. The labels and templates are checked, and the label set encoded, before
        any video is decoded.

        Raises:
            InvalidLabelsError, InvalidTemplateError, InvalidDescriptionsError, PipelineArgumentError: bad options.
            OnnxModelError: more frames than the model takes.
            VideoDecodeError (and the other input errors): with ``on_error="raise"``.
        """
        if ensemble not in ("probs", "embedding"):
            raise PipelineArgumentError(f"ensemble must be 'probs' or 'embedding', got {ensemble!r}")
        if on_error not in ("raise", "skip"):
            raise PipelineArgumentError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        spec = self.clip_spec(num_frames, num_clips, num_crops, decode_timeout)
        self.model.check_frame_count(spec.num_frames)
        if spec.num_frames > MAX_NUM_FRAMES:
            raise PipelineArgumentError(
                f"num_frames is {spec.num_frames}; at most {MAX_NUM_FRAMES} frames per clip are allowed"
            )
        labels, templater, texts = resolve_candidates(
            candidate_labels, hypothesis_template, self.model.metadata["templates"]
        )
        text_embeds = self.text_embeddings(labels, templater, texts)
        scale = self.model.scoring_scale(logit_scale)
        videos = list(videos)
        pool = DecodePool(0 if len(videos) == 1 else default_num_workers() if num_workers is None else num_workers)
        jobs = ((video, spec, None) for video in videos)
        # Closed with this generator: the workers end when the consumer stops.
        with contextlib.closing(pool.imap(jobs, ahead=2 * batch_size, tensors=False)) as prepared:
            batch: list = []
            for frames in report_errors(prepared, on_error):
                batch.append(frames)
                if len(batch) == batch_size:
                    yield from self._classify(
                        batch, labels, text_embeds, templater.num_templates, scale, ensemble, top_k
                    )
                    batch = []
            if batch:
                yield from self._classify(batch, labels, text_embeds, templater.num_templates, scale, ensemble, top_k)

    def _classify(self, batch, labels, text_embeds, num_templates, scale, ensemble, top_k):
        """One batch of uint8 ``(V, T, S, S, 3)`` clips (``None`` for skipped videos) -> their ranked labels."""
        present = [frames for frames in batch if frames is not None]
        scores = iter(())
        if present:
            video_embeds = self.model.encode_video(self.pixel_values(np.concatenate(present)))
            probs = label_scores(video_embeds, text_embeds, num_templates, scale, ensemble, self.model.score_bias())
            check_finite_scores(probs, self.name_or_path)
            per_video, start = [], 0
            for frames in present:
                views = frames.shape[0]
                per_video.append(average_view_scores(probs[start : start + views], views)[0])
                start += views
            scores = iter(per_video)
        for frames in batch:
            yield None if frames is None else rank_labels(next(scores), labels, top_k)


def export_tokenizer(directory: str | os.PathLike, metadata: dict | None = None) -> NumpyTokenizer:
    """The tokenizer of the export in ``directory`` on the `tokenizers` library alone: its ``tokenizer.json`` with the
    text context, padding and sides the export recorded (an export written before format 3 is a CLIP model's: 77
    tokens, padded to the longest text on the right).

    Raises:
        OnnxModelError: not an export (`read_export_metadata`), or one without a ``tokenizer.json``.
    """
    metadata = read_export_metadata(directory) if metadata is None else metadata
    if not (Path(directory) / "tokenizer.json").is_file():
        raise OnnxModelError(
            f"export {str(directory)!r} has no tokenizer.json (a SigLIP model exported before format 3): export the "
            "model again with `actionclip export MODEL OUT_DIR`"
        )
    text = metadata.get("text") or {}
    return NumpyTokenizer(
        directory,
        int(text.get("context_length", CONTEXT_LENGTH)),
        text.get("padding") == "max_length",
        text.get("padding_side"),
        text.get("truncation_side"),
    )


def read_export_metadata(directory: str | os.PathLike) -> dict:
    """``onnx_export.json`` of ``directory``, checked.

    Raises:
        OnnxModelError: missing, not JSON, or not written by `actionclip.onnx.export`.
    """
    path = Path(directory) / EXPORT_METADATA_NAME
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OnnxModelError(f"{str(directory)!r} has no {EXPORT_METADATA_NAME}: it is not an ONNX export") from None
    except (OSError, ValueError) as error:
        raise OnnxModelError(f"{str(path)!r} cannot be read: {error}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise OnnxModelError(
            f"{str(path)!r} was not written by actionclip's ONNX export (format != {EXPORT_FORMAT!r})"
        )
    graphs = metadata.get("graphs")
    if not isinstance(graphs, dict) or any(name not in graphs for name in GRAPHS):
        raise OnnxModelError(f"{str(path)!r} does not name the graphs {', '.join(GRAPHS)}")
    return metadata


def _numpy(values, dtype) -> np.ndarray:
    if not isinstance(values, np.ndarray) and hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.ascontiguousarray(values, dtype=dtype)


def _default_num_threads() -> int:
    """torch's intra-op threads where torch is loaded; otherwise ``OMP_NUM_THREADS``, or 0 (onnxruntime's default:
    one per physical core, as torch's)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 0


__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "EXPORT_METADATA_NAME",
    "GRAPHS",
    "ActionCLIPOnnxModel",
    "OnnxZeroShotClassifier",
    "export_tokenizer",
    "is_onnx_export",
    "read_export_metadata",
]
