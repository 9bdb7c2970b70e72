"""Run a directory written by `actionclip.onnx_export` with onnxruntime, behind the pipeline's backend interface.

`ActionCLIPOnnxModel.from_pretrained(directory)` loads the three graphs; the zero-shot pipeline uses it as its model
(``pipeline("zero-shot-video-classification", model=directory)``) and calls it through the same four members as the
PyTorch backend (`actionclip.inference_backends.TorchBackend`): ``text_features``, ``video_features``, ``scale`` and
``cache_key``, so pre-processing, scoring and the text-embedding cache are the pipeline's own.

This module imports onnxruntime only when a directory is loaded.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import OnnxModelError
from .onnx_export import EXPORT_FORMAT, EXPORT_METADATA_NAME, GRAPHS

_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16}


def is_onnx_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory written by `actionclip.onnx_export.export_onnx`."""
    return os.path.isfile(os.path.join(str(path), EXPORT_METADATA_NAME))


class ActionCLIPOnnxModel:
    """The exported graphs of one ActionCLIP model, run on the CPU with onnxruntime.

    Stands in for the PyTorch model in the zero-shot pipeline: it has the ``config``, ``name_or_path``, ``device``
    and ``dtype`` the pipeline reads, and the backend members ``text_features``, ``video_features``, ``scale`` and
    ``cache_key``.

    Args:
        directory: an export directory (``onnx_export.json``, the graphs, ``config.json``, processor files).
        num_threads: onnxruntime's intra-op threads; default ``torch.get_num_threads()``, so one setting
            (``OMP_NUM_THREADS``, ``torch.set_num_threads``) governs both backends.
    """

    backend_name = "onnx"  # the backend interface's name, also what marks this model as its own backend
    input_modalities = ("video", "text")

    def __init__(self, directory: str | os.PathLike, num_threads: int | None = None):
        import onnxruntime as ort

        from .configuration_actionclip import ActionCLIPConfig

        directory = Path(directory)
        self.metadata = read_export_metadata(directory)
        self.config = ActionCLIPConfig.from_pretrained(directory)
        self.name_or_path = str(directory)
        self.device = torch.device("cpu")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
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

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the video graphs (the pipeline's outputs are float32 either way)."""
        return torch.float16 if self.metadata["dtype"] == "fp16" else torch.float32

    def eval(self) -> ActionCLIPOnnxModel:
        return self

    def to(self, device=None, *args, **kwargs) -> ActionCLIPOnnxModel:
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

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids``, ``attention_mask`` (N, L) -> (N, D) projected text embeddings, float32, not normalised."""
        (features,) = self.sessions["text_encoder"].run(
            None,
            {"input_ids": _numpy(input_ids, np.int64), "attention_mask": _numpy(attention_mask, np.int64)},
        )
        return torch.from_numpy(features).float()

    def video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pixel_values`` (B, T, 3, H, W) -> (B, D) video embeddings after the visual prompts, float32.

        Raises:
            OnnxModelError: frames of another size than the exported one, or more frames than the model's limit.
        """
        if pixel_values.ndim != 5 or pixel_values.shape[2] != 3:
            raise OnnxModelError(f"pixel_values must be (B, T, 3, H, W), got {tuple(pixel_values.shape)}")
        batch_size, num_frames, _, height, width = pixel_values.shape
        size = self.metadata["image_size"]
        if (height, width) != (size, size):
            raise OnnxModelError(f"the graphs were exported for {size}x{size} frames, got {height}x{width}")
        limit = self.metadata["max_frames"]
        if limit is not None and num_frames > limit:
            raise OnnxModelError(f"got {num_frames} frames but this model's visual prompts take at most {limit}")
        pixels = _numpy(pixel_values, self._frame_input_dtype)
        if not self._whole_clips:
            pixels = pixels.reshape(batch_size * num_frames, 3, height, width)
        (frame_embeds,) = self.sessions["frame_encoder"].run(None, {"pixel_values": pixels})
        frame_embeds = frame_embeds.reshape(batch_size, num_frames, -1).astype(self._fusion_input_dtype, copy=False)
        (video_embeds,) = self.sessions["fusion"].run(None, {"frame_embeds": frame_embeds})
        return torch.from_numpy(video_embeds).float()

    def scale(self, logit_scale: float | None = None) -> torch.Tensor:
        """``logit_scale`` when given, else the model's scoring scale at export (``evaluation_scale()``)."""
        return torch.tensor(self.metadata["logit_scale"] if logit_scale is None else logit_scale, dtype=torch.float32)


def read_export_metadata(directory: str | os.PathLike) -> dict:
    """``onnx_export.json`` of ``directory``, checked.

    Raises:
        OnnxModelError: missing, not JSON, or not written by `actionclip.onnx_export`.
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


def _numpy(tensor, dtype) -> np.ndarray:
    if isinstance(tensor, torch.Tensor):
        tensor = tensor.detach().cpu().numpy()
    return np.ascontiguousarray(tensor, dtype=dtype)


__all__ = ["ActionCLIPOnnxModel", "is_onnx_export", "read_export_metadata"]
