"""What the zero-shot pipeline asks of a model, behind one small interface: PyTorch or onnxruntime.

A backend has ``backend_name``, ``cache_key`` (what the pipeline's text-embedding cache is keyed on besides the text),
``text_features(input_ids, attention_mask) -> (N, D)``, ``video_features(pixel_values (B, T, C, H, W)) -> (B, D)``
(projected, not normalised) and ``scale(logit_scale)``. Pre-processing, scoring and caching stay in the pipeline,
so both backends share them. `TorchBackend` wraps an `ActionCLIPModel`; the ONNX backend is
`actionclip.onnx.runtime.ActionCLIPOnnxModel` itself (imported only where an export is loaded).

This module travels with the pipeline as remote code: it imports torch and the package's errors only.
"""

from __future__ import annotations

import torch

from .errors import ModelCompileError, PipelineArgumentError

BACKENDS = ("torch", "onnx")


COMPILE_HINT = "pass compile=False to run the model uncompiled"


class TorchBackend:
    """An `ActionCLIPModel` on ``device``: inputs are moved to the model's device and dtype.

    ``compile``: ``True`` or a dict of `torch.compile` options (``{"mode": "max-autotune"}``, ``{"backend": ...}``)
    compiles the video features (the per-batch work; text embeddings are computed once per label set and cached);
    shapes are static (``dynamic=False``): the pipeline pads a last, partial batch to the full batch size.
    """

    backend_name = "torch"

    def __init__(self, model, device: torch.device, compile: bool | dict = False):
        self.model = model
        self.device = device
        self._video_features = self._eager_video_features
        self.compiled = False
        if compile:
            options = {"dynamic": False, **(compile if isinstance(compile, dict) else {})}
            try:
                self._video_features = torch.compile(self._eager_video_features, **options)
            except Exception as error:  # torch raises several types for unknown backends, modes and options
                raise ModelCompileError(
                    f"torch.compile({options}) failed: {type(error).__name__}: {error}; {COMPILE_HINT}"
                ) from error
            self.compiled = True

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the model takes its inputs in (its weights')."""
        return self.model.dtype

    def _eager_video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_video_features(pixel_values).pooler_output

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
            if not self.compiled:
                return self._video_features(pixel_values)
            try:
                return self._video_features(pixel_values)
            except Exception as error:
                # Compilation happens at the first call of each shape: its failures (no C++ compiler for the CPU
                # backend, an unsupported operation) come from torch's compiler packages.
                if not type(error).__module__.startswith(("torch._dynamo", "torch._inductor")):
                    raise
                raise ModelCompileError(
                    f"torch.compile of the video features failed: {type(error).__name__}: "
                    f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}; {COMPILE_HINT}"
                ) from error

    def scale(self, logit_scale: float | None = None) -> torch.Tensor:
        return self.model.evaluation_scale(logit_scale)

    def score_bias(self) -> torch.Tensor | None:
        """The model's logit bias where it scores with sigmoids (SigLIP), else None (`ActionCLIPModel.score_bias`)."""
        return self.model.score_bias()


def select_backend(model, device: torch.device, backend: str | None = None, compile: bool | dict = False):
    """The backend running ``model``: the ONNX model is its own backend, anything else runs through PyTorch.

    Raises:
        PipelineArgumentError: ``backend`` is unknown or names another backend than the model's, or ``compile`` is
            asked of an ONNX model.
        ModelCompileError: ``torch.compile`` refused its options.
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
    if compile and found != "torch":
        raise PipelineArgumentError(f"compile=True needs a PyTorch model; {found!r} models run uncompiled")
    return model if found == "onnx" else TorchBackend(model, device, compile)


__all__ = ["BACKENDS", "TorchBackend", "select_backend"]
