"""What the zero-shot pipeline asks of a model, behind one small interface: PyTorch or onnxruntime.

A backend has ``backend_name``, ``cache_key`` (what the pipeline's text-embedding cache is keyed on besides the text),
``text_features(input_ids, attention_mask) -> (N, D)``, ``video_features(pixel_values (B, T, C, H, W)) -> (B, D)``
(projected, not normalised) and ``scale(logit_scale)``. Pre-processing, scoring and caching stay in the pipeline,
so both backends share them. `TorchBackend` wraps an `ActionCLIPModel`; the ONNX backend is
`actionclip.onnx_runtime.ActionCLIPOnnxModel` itself (imported only where an export is loaded).

This module travels with the pipeline as remote code: it imports torch and the package's errors only.
"""

from __future__ import annotations

import torch

from .errors import PipelineArgumentError

BACKENDS = ("torch", "onnx")


class TorchBackend:
    """An `ActionCLIPModel` on ``device``: inputs are moved to the model's device and dtype."""

    backend_name = "torch"

    def __init__(self, model, device: torch.device):
        self.model = model
        self.device = device

    @property
    def cache_key(self) -> tuple:
        return ("torch", id(self.model), self.device, self.model.dtype)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.get_text_features(
                input_ids.to(self.device), attention_mask.to(self.device)
            ).pooler_output

    def video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixel_values = pixel_values.to(device=self.device, dtype=self.model.dtype)
        with torch.no_grad():
            return self.model.get_video_features(pixel_values).pooler_output

    def scale(self, logit_scale: float | None = None) -> torch.Tensor:
        return self.model.evaluation_scale(logit_scale)


def select_backend(model, device: torch.device, backend: str | None = None):
    """The backend running ``model``: the ONNX model is its own backend, anything else runs through PyTorch.

    Raises:
        PipelineArgumentError: ``backend`` is unknown or names another backend than the model's.
    """
    if backend is not None and backend not in BACKENDS:
        raise PipelineArgumentError(f"backend must be one of {BACKENDS}, got {backend!r}")
    found = getattr(model, "backend_name", "torch")
    if backend is not None and backend != found:
        where = getattr(model, "name_or_path", None) or type(model).__name__
        hint = (
            "export it first with `actionclip export MODEL OUT_DIR` and pass OUT_DIR"
            if backend == "onnx"
            else "pass the PyTorch model's directory"
        )
        raise PipelineArgumentError(f"backend={backend!r} but {where!r} is a {found} model: {hint}")
    return model if found == "onnx" else TorchBackend(model, device)


__all__ = ["BACKENDS", "TorchBackend", "select_backend"]
