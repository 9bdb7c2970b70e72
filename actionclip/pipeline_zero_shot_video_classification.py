"""The zero-shot video classification pipeline: videos and any label set in, ranked labels out.

This file is copied next to the weights by ``pipeline.save_pretrained`` (with every module it imports relatively), so
it imports only transformers, torch, numpy, PIL and its own package's modules, relatively.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset
from transformers.pipelines.base import Pipeline
from transformers.pipelines.pt_utils import KeyDataset

from .backbones import backbone_image_size
from .errors import (
    InvalidLabelsError,
    MissingProcessorError,
    PipelineArgumentError,
    VideoDecodeError,
    VideoInputError,
    positive_int,
)
from .inference_backends import select_backend
from .model_kinds import IMAGE_TEXT, zero_shot_model_kind
from .model_loading import load_saved_processor
from .processing_actionclip import ActionCLIPProcessor
from .prompts import PromptTemplater, resolve_candidates
from .sampling import average_view_scores
from .scoring import check_finite_scores, label_scores, label_text_embeddings, rank_labels
from .video_clips import MAX_NUM_FRAMES, ClipSpec, clip_from_frames, is_frame, prepare_clip
from .video_decode_pool import DecodePool, default_num_workers, report_errors
from .video_io import check_hwaccel, undecoded_video_source
from .weight_files import check_loaded_weights_complete

TASK = "zero-shot-video-classification"
ENSEMBLES = ("probs", "embedding")
ON_ERROR = ("raise", "skip")
TEXT_CACHE_SIZE = 16


def _is_stream(videos) -> bool:
    """An iterator of videos (a generator, ...), not a file object (which iterates over lines)."""
    return isinstance(videos, (types.GeneratorType, Iterator)) and not hasattr(videos, "read")


def _is_sequence(videos) -> bool:
    """A list, a tuple or another sequence of videos (a ``datasets`` column, ``ds["path"]``), not one path or bytes."""
    return isinstance(videos, Sequence) and not isinstance(videos, (str, bytes, bytearray, memoryview))


def _dataset_items(dataset: Dataset) -> Iterator:
    """The items of a torch dataset (``KeyDataset``, ``Subset``, an ``IterableDataset``), read one at a time."""
    if isinstance(dataset, IterableDataset):
        return iter(dataset)
    return (dataset[index] for index in range(len(dataset)))


def _read_undecoded(videos):
    """``videos`` itself, or, for a ``datasets`` column (``ds["video"]``) or ``KeyDataset(ds, "video")`` of a
    ``datasets.Video()`` feature that decodes, the same column read with decoding off: its values are then
    ``{"bytes", "path"}`` dicts that this package's readers decode (``datasets`` decodes videos with torchcodec, which
    this package does not need). Recognised by duck typing: this file is copied as remote code and imports no
    ``datasets``."""
    if isinstance(videos, KeyDataset):
        dataset, key = videos.dataset, videos.key
    else:
        dataset, key = getattr(videos, "source", None), getattr(videos, "column_name", None)
    features = getattr(dataset, "features", None)
    feature = features.get(key) if isinstance(features, Mapping) and isinstance(key, str) else None
    if not (
        type(feature).__name__ == "Video"
        and dataclasses.is_dataclass(feature)
        and getattr(feature, "decode", False)
        and hasattr(dataset, "cast_column")
    ):
        return videos
    undecoded = dataset.cast_column(key, dataclasses.replace(feature, decode=False))
    return KeyDataset(undecoded, key) if isinstance(videos, KeyDataset) else undecoded[key]


def _as_source(item):
    """A ``datasets.Video(decode=False)`` value as the source it holds (`video_io.undecoded_video_source`); any
    other input as it is."""
    source = undecoded_video_source(item)
    return item if source is None else source


def _weights_dtype(dtype) -> torch.dtype | None:
    """``pipeline(..., dtype=...)`` as a torch dtype (None for ``None`` / ``"auto"``: the model's own)."""
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise PipelineArgumentError(
            f"dtype must be 'auto', torch.float32, torch.bfloat16 or torch.float16 (or their names), got {dtype!r}"
        )
    return dtype


def _positive_int(value, name: str, allowed: Sequence[int] | None = None) -> int:
    return positive_int(value, name, PipelineArgumentError, allowed)


class ZeroShotVideoClassificationPipeline(Pipeline):
    r"""
    Zero-shot video classification with ActionCLIP: ranks any ``candidate_labels`` for each video.

    ```python
    >>> import actionclip  # registers the task
    >>> from transformers import pipeline
    >>> classifier = pipeline("zero-shot-video-classification", model="path/to/actionclip-model")
    >>> classifier("juggling.mp4", candidate_labels=["juggling balls", "playing guitar", "tai chi"])
    [{'score': 0.93, 'label': 'juggling balls'}, {'score': 0.05, 'label': 'tai chi'}, ...]
    ```

    A directory written by ``classifier.save_pretrained(d)`` holds this file (and the modules it needs) and names
    it in ``config.json`` (``custom_pipelines``), so ``pipeline(model=d, trust_remote_code=True)`` works where
    this package is not installed. Where it is imported, ``pipeline("zero-shot-video-classification", model=d)``
    loads such a directory with no ``trust_remote_code``: the installed configuration drops the folder's entry for a
    task this package already serves (`configuration_actionclip.pipelines_needing_remote_code`); name the task
    there, since transformers reads a task from ``config.json`` only for remote code.

    Videos (``inputs``, the name of transformers' pipelines' first argument; one video or many):

    - a path, an http(s) URL, bytes or a binary file object: decoded with `video_io`, ``num_frames`` frames
      chosen by a TSN sampler (evaluation mode: the middle frame of each of ``num_frames`` equal segments);
    - a ``datasets.Video(decode=False)`` value, ``{"bytes": ..., "path": ...}``: its bytes, else its path;
    - decoded frames: a uint8 array ``(T, H, W, 3)``, a tensor ``(T, H, W, 3)`` / ``(T, C, H, W)`` or a list of
      PIL images; a clip whose length is not ``num_frames`` is sampled the same way;
    - pre-processed frames, fed to the model as they are: ``{"pixel_values": (T, C, H, W)}`` (or
      ``(V, T, C, H, W)``, V views whose scores are averaged), or a float tensor ``(T, C, H, W)`` with
      ``preprocessed=True``;
    - clips decoded elsewhere (another process or machine: `actionclip.cluster.ray_data`), as ``preprocess`` makes
      them: ``{"frames": uint8 (V, T, S, S, 3)}``, what ``prepare_clip(video, pipeline.clip_spec(...))`` returns,
      normalised on the model's device like the pipeline's own.

    A list, a tuple, another sequence (a ``datasets`` column such as ``ds["path"]``) or a 5-D array / tensor is a
    batch of videos and gives a list of results (a 5-D tensor with ``preprocessed=True`` holds ``(B, T, C, H, W)``
    pre-processed videos). A torch ``Dataset`` (``KeyDataset(ds, "path")``, a ``Subset``, an ``IterableDataset``)
    or an iterator gives an iterator of results, read as the videos come, as transformers' pipelines do. A
    ``datasets.Video()`` column (``ds["video"]``, ``KeyDataset(ds, "video")``) is read undecoded and decoded here:
    ``datasets`` itself would need torchcodec.

    Text inputs, as they behave:

    - ``candidate_labels``: a list of strings (a single string is split at commas), or a dict
      ``{label: [description, ...]}``: each label's descriptions are extra prompts beside its name, put into
      every template and averaged with it per template (`descriptions.class_texts`); bad entries raise
      `InvalidDescriptionsError`. An empty list, an empty or
      blank label, a label that is not a string and the same label twice raise `InvalidLabelsError`. Labels are
      put into the templates as they are: non-ASCII text is kept (CLIP's byte-level BPE encodes any Unicode), case
      and spaces are not changed. A prompt longer than the text context (77 tokens, with the start and end tokens)
      is truncated to it, keeping the end token, with a `UserWarning` naming the prompt; its class still gets a
      score.
    - ``hypothesis_template``: one template, a list of templates, a template set name (``"actionclip16"``,
      ``"single"``) or the path of a text file with one template per line; default the model's
      ``config.templates`` (the 16 of ActionCLIP). Each template needs exactly one ``{}`` and no other brace;
      otherwise, for an empty list and for duplicates: `InvalidTemplateError`. Long templates are truncated like
      long labels.

    Options (at construction or per call): ``top_k`` (default all), ``num_frames`` (default the processor's),
    ``num_clips`` temporal clips and ``num_crops`` (1 or 3) spatial crops per video (multi-view testing; view
    scores are averaged), ``logit_scale`` (default ``config.eval_logit_scale``, 100 for converted checkpoints of the
    authors' as their evaluation, else the model's ``exp(logit_scale)`` clamped to ``config.logit_scale_max``), ``ensemble`` (``"probs"``: softmax over labels
    per template, then the mean over templates, the paper's; ``"embedding"``: one embedding per label, the
    re-normalised mean of its template embeddings, then one softmax, as `ActionCLIPForVideoClassification`),
    ``batch_size`` (videos per forward pass), ``num_workers`` (decoding processes for a list of videos, default one
    per CPU, less one above two CPUs; ``0`` decodes in this process; decoding runs ahead of the model,
    `actionclip.video_decode_pool`), ``preprocessed``, ``on_error`` (``"raise"``, or
    ``"skip"``: a video that cannot be decoded gives ``None`` instead of raising), ``timeout`` (seconds one video
    may take to open, fetch and decode, default 30, ``float("inf")`` for no limit: transformers' image pipelines
    name their limit on fetching an image ``timeout``, and this one bounds the same wait, a URL's or a pipe's read
    included, so it has the same name), ``hwaccel`` (``None``: decode on the CPU; an FFmpeg device type such as
    ``"cuda"`` decodes there, off by default: see ``benchmarks/gpu_decode.py``). ``device`` and ``dtype`` are given to ``pipeline()``: ``dtype`` (``torch.bfloat16``, ``"float16"``, ...)
    puts the weights themselves in that dtype, a model passed as an object included (inputs follow the weights: no
    autocast). ``compile=True`` (or a dict of ``torch.compile`` options), given to ``pipeline()``, compiles the
    video features with static shapes: a last, partial batch is padded to ``batch_size`` videos and the padding's
    outputs dropped, so nothing compiles twice; a compiler failure raises `ModelCompileError`. Decoded videos reach
    the device as uint8 frames (pinned memory, non-blocking copies on a GPU) and are normalised there.

    A directory written by ``actionclip export`` (`actionclip.onnx.export`) runs with onnxruntime on the CPU, with the
    same pre-processing, scoring and text cache: ``pipeline("zero-shot-video-classification", model=export_dir)``;
    ``backend="onnx"`` (or ``"torch"``) given to ``pipeline()`` insists on one (`actionclip.inference_backends`).

    Returns ``[{"score": float, "label": str}, ...]`` sorted by score (ties keep the label order), as the zero-shot
    image pipeline does, or a list of those for a list of videos. A score is a probability: a softmax over the labels
    (they sum to one), or, on a backbone trained with the sigmoid loss (SigLIP, SigLIP 2: `model.score_bias()` is not
    None), each label's own ``sigmoid(scale * cos + bias)`` (they need not sum to one; several labels, or none, can
    score high), averaged over the templates either way. Text embeddings of a (labels, templates) set are computed once per model, device
    and dtype and kept (the last 16 sets) for later calls.

    Raises:
        VideoDecodeError: a video is missing, unreadable, not a video or of an unsupported type.
        InvalidLabelsError, InvalidTemplateError, PipelineArgumentError: unusable text or options.
        MissingProcessorError: the model directory holds no `ActionCLIPProcessor`.
        WrongModelKindError: a closed-set `ActionCLIPForVideoClassification` (a plain CLIP model is converted with
            `ActionCLIPModel.from_backbone(..., fusion="meanP")`, with a warning).
        InvalidWeightsError: a model directory's weight file is damaged, hostile or of the wrong shapes.
        MissingWeightsError: the weight files the model was loaded from lack some of its tensors (transformers
            initialised them at random, with its warning), naming them.
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, backend: str | None = None, compile: bool | dict = False, **kwargs):
        dtype = _weights_dtype(kwargs.get("dtype"))
        if not isinstance(compile, (bool, dict)):
            raise PipelineArgumentError(
                f"compile must be True, False or a dict of torch.compile options, got {compile!r}"
            )
        super().__init__(*args, **kwargs)
        where = str(getattr(self.model, "name_or_path", "") or "the model")
        # A closed-set model is refused here (its text tower was never saved); a plain image-text model is converted.
        is_plain = zero_shot_model_kind(self.model.config, where) == IMAGE_TEXT
        if is_plain:
            backbone_location = self.model.name_or_path
            self.model = self._actionclip_from_backbone(where)
        elif getattr(self.model, "backend_name", "torch") == "torch":
            # Tensors its files lacked were initialised at random (with transformers' warning): random scores.
            check_loaded_weights_complete(self.model)
        # The weights themselves in the asked dtype (a model passed as an object keeps its own otherwise): inputs
        # follow the weights, so there is no autocast and no float32 copy of the model.
        if dtype is not None and getattr(self.model, "backend_name", "torch") == "torch" and self.model.dtype != dtype:
            self.model = self.model.to(dtype)
        # The model calls go through a backend (PyTorch, or onnxruntime for a directory from `actionclip export`).
        self.backend = select_backend(self.model, self.device, backend, compile)
        if self.processor is None:
            if is_plain:  # the backbone's own tokenizer and image statistics
                self.processor = ActionCLIPProcessor.for_converted_backbone(backbone_location, self.model.config)
            else:
                self.processor = load_saved_processor(self.model)
        elif type(self.processor).__name__ != "ActionCLIPProcessor":  # by name: remote code has its own class
            raise PipelineArgumentError(
                f"processor must be an ActionCLIPProcessor (it adds video decoding, sampling and the prompt "
                f"templates), got {type(self.processor).__name__}: pass none to use the model's, or "
                "ActionCLIPProcessor.from_model_config(model.config)"
            )
        if self.tokenizer is None:
            self.tokenizer = self.processor.tokenizer
        self.model.eval()
        self._text_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._text_cache_lock = threading.Lock()

    def _actionclip_from_backbone(self, where: str):
        """The plain image-text model as an `ActionCLIPModel` (parameter-free meanP prompt: frame embeddings
        averaged)."""
        from .modeling_actionclip import ActionCLIPModel

        warnings.warn(
            f"model {where!r} is a plain image-text model: converted on the fly with "
            "ActionCLIPModel.from_backbone(..., fusion='meanP') (frame embeddings averaged, no trained visual prompt); "
            "save it with its processor to skip this: ActionCLIPModel.from_backbone(path).save_pretrained(d) and "
            "ActionCLIPProcessor.from_backbone(path).save_pretrained(d)",
            UserWarning,
            stacklevel=3,
        )
        return ActionCLIPModel.from_backbone(self.model, fusion="meanP").eval()

    # ------------------------------------------------------------------ parameters

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template=None,
        top_k=None,
        num_frames=None,
        num_clips=None,
        num_crops=None,
        logit_scale=None,
        ensemble=None,
        preprocessed=None,
        on_error=None,
        timeout=None,
        hwaccel=None,
        **unknown,
    ):
        if unknown:
            raise PipelineArgumentError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, sorted(unknown)))} for the "
                "zero-shot video classification pipeline"
            )
        preprocess_params, forward_params, postprocess_params = {}, {}, {}
        for name, value in (("num_frames", num_frames), ("num_clips", num_clips), ("num_crops", num_crops)):
            if value is not None:
                preprocess_params[name] = _positive_int(value, name, (1, 3) if name == "num_crops" else None)
        if "num_frames" in preprocess_params:
            self._check_frame_count(preprocess_params["num_frames"], "num_frames")
        if preprocessed is not None:
            preprocess_params["preprocessed"] = bool(preprocessed)
        if timeout is not None:
            # not True (an int to Python) and not NaN (every comparison with it is False).
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
                raise PipelineArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
            preprocess_params["timeout"] = float(timeout)
        if hwaccel is not None:
            try:
                preprocess_params["hwaccel"] = check_hwaccel("hwaccel", hwaccel)
            except VideoDecodeError as error:
                raise PipelineArgumentError(error.reason) from None
        if candidate_labels is not None:
            forward_params["candidate_labels"] = candidate_labels
        if hypothesis_template is not None:
            forward_params["hypothesis_template"] = hypothesis_template
        if logit_scale is not None:
            if (
                isinstance(logit_scale, bool)
                or not isinstance(logit_scale, (int, float))
                or not (logit_scale > 0 and math.isfinite(logit_scale))
            ):
                raise PipelineArgumentError(f"logit_scale must be a finite positive number, got {logit_scale!r}")
            forward_params["logit_scale"] = float(logit_scale)
        if ensemble is not None:
            if ensemble not in ENSEMBLES:
                raise PipelineArgumentError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
            forward_params["ensemble"] = ensemble
        if on_error is not None:
            if on_error not in ON_ERROR:
                raise PipelineArgumentError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
            forward_params["on_error"] = on_error
        if top_k is not None:
            postprocess_params["top_k"] = _positive_int(top_k, "top_k")
        return preprocess_params, forward_params, postprocess_params

    def call_options(self, **options) -> tuple[dict, dict, dict]:
        """Options of a call (those of ``__call__``) checked and laid over the ones given at construction.

        The one place where a call's options meet the pipeline's defaults: ``__call__`` and the applications
        (`actionclip.apps`) run with what this returns.

        Returns:
            ``(preprocess_params, forward_params, postprocess_params)``, new dicts.

        Raises:
            PipelineArgumentError: an unknown option, or a value it cannot take.
        """
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**options)
        return (
            {**self._preprocess_params, **preprocess_params},
            {**self._forward_params, **forward_params},
            {**self._postprocess_params, **postprocess_params},
        )

    def _check_frame_count(self, count: int, what: str) -> None:
        """Refuse clips longer than the model's frame position tables (or than MAX_NUM_FRAMES without one)."""
        limit = getattr(self.model, "max_frames", None)
        if limit is not None and count > limit:
            raise PipelineArgumentError(
                f"{what} is {count} but this model's frame position table has {limit} rows: use at most {limit}"
            )
        if count > MAX_NUM_FRAMES:
            raise PipelineArgumentError(f"{what} is {count}; at most {MAX_NUM_FRAMES} frames per clip are allowed")

    # ------------------------------------------------------------------ calls

    def __call__(self, inputs, candidate_labels=None, **kwargs):
        """Classify one video or many; see the class docstring for inputs, options and outputs."""
        if "window" in kwargs or "stride" in kwargs:
            raise PipelineArgumentError(
                "window / stride are options of localisation, not of the classifier: "
                "actionclip.apps.localization.localize(classifier, video, labels, window=..., stride=...)"
            )
        inputs = _read_undecoded(inputs)
        if isinstance(inputs, Dataset) or _is_stream(inputs):  # lazily, as transformers' pipelines
            return self.iter_results(inputs, candidate_labels, **kwargs)
        preprocessed = kwargs.get("preprocessed", self._preprocess_params.get("preprocessed"))
        items, is_batch = self._split_inputs(inputs, preprocessed)
        results = list(self.iter_results(items, candidate_labels, **kwargs, _split=False))
        return results if is_batch else results[0]

    def iter_results(self, inputs, candidate_labels=None, *, batch_size=None, num_workers=None, _split=True, **kwargs):
        """Results one video at a time, in input order, while later videos decode (for progress bars).

        ``inputs`` is a sequence, a torch dataset or an iterator of videos; options as for ``__call__``.
        """
        if candidate_labels is not None:
            kwargs["candidate_labels"] = candidate_labels
        preprocess_params, forward_params, postprocess_params = self.call_options(**kwargs)
        if batch_size is None:
            batch_size = self._batch_size or 1
        batch_size = _positive_int(batch_size, "batch_size")
        if num_workers is None:
            num_workers = self._num_workers if self._num_workers is not None else default_num_workers()
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise PipelineArgumentError(f"num_workers must be an integer >= 0, got {num_workers!r}")

        # Everything about the text is checked (and encoded) before any video is decoded.
        labels = forward_params.pop("candidate_labels", None)
        if labels is None:
            raise InvalidLabelsError("candidate_labels is required: the list of class names to rank")
        labels, templater, texts = self.prepare_labels(labels, forward_params.pop("hypothesis_template", None))
        text_embeds = self.text_embeddings(labels, templater, texts)
        on_error = forward_params.pop("on_error", "raise")

        items = inputs
        if _split:
            inputs = _read_undecoded(inputs)
            if isinstance(inputs, Dataset):
                items = _dataset_items(inputs)
            elif _is_stream(inputs):
                items = inputs
            else:
                items, _ = self._split_inputs(inputs, preprocess_params.get("preprocessed"))
        prepared = self._prepare_ahead(items, preprocess_params, num_workers, batch_size, on_error)
        return self._run(prepared, labels, templater, text_embeds, batch_size, forward_params, postprocess_params)

    def _run(self, prepared, labels, templater, text_embeds, batch_size, forward_params, postprocess_params):
        batch: list = []
        for model_inputs in prepared:
            batch.append(model_inputs)
            if len(batch) == batch_size:
                yield from self._classify(
                    batch, labels, templater, text_embeds, forward_params, postprocess_params, batch_size
                )
                batch = []
        if batch:
            yield from self._classify(
                batch, labels, templater, text_embeds, forward_params, postprocess_params, batch_size
            )

    def _classify(self, batch, labels, templater, text_embeds, forward_params, postprocess_params, batch_size=None):
        present = [inputs for inputs in batch if inputs is not None]
        scores = iter(())
        if present:
            model_inputs = self._collate(present, batch_size or len(batch))
            outputs = self._forward(
                model_inputs, text_embeds=text_embeds, num_templates=templater.num_templates, **forward_params
            )
            scores = iter(outputs["scores"])
        for inputs in batch:
            yield (
                None
                if inputs is None
                else self.postprocess({"scores": next(scores), "labels": labels}, **postprocess_params)
            )

    # ------------------------------------------------------------------ inputs

    def _split_inputs(self, videos, preprocessed) -> tuple[list, bool]:
        """The list of single videos in ``videos``, and whether it was a batch."""
        if isinstance(videos, dict):
            return [videos], False
        if isinstance(videos, (np.ndarray, torch.Tensor)):
            if videos.ndim == 5:
                return list(videos), True
            return [videos], False
        if _is_sequence(videos):
            if not videos:
                raise VideoInputError("videos", "the list of videos is empty")
            if all(is_frame(item) for item in videos) and not preprocessed:
                return [videos], False
            return list(videos), True
        return [videos], False

    def _prepare_ahead(self, items: Iterable, params: dict, num_workers: int, batch_size: int, on_error: str):
        """``preprocess`` of every item, in order. Files are decoded by `video_decode_pool` worker processes (with
        ``num_workers > 0``) while the model runs on earlier batches; frames in memory and pre-processed inputs are
        prepared here, in their place in the order."""
        params = dict(params)
        preprocessed = params.pop("preprocessed", False)
        spec = self.clip_spec(**params)
        single = isinstance(items, list) and len(items) == 1
        pool = DecodePool(0 if single else num_workers)

        def local(item, spec, rng):
            if isinstance(item, dict) or preprocessed:
                return self.preprocess(item, preprocessed=preprocessed)
            return torch.from_numpy(clip_from_frames(item, spec, rng))

        jobs = ((_as_source(item), spec, None) for item in items)
        # Closed with this generator (not when it is garbage-collected): the workers end when the consumer stops.
        with contextlib.closing(pool.imap(jobs, ahead=2 * batch_size, local=local)) as prepared:
            yield from self._report_errors(prepared, on_error)

    @staticmethod
    def _report_errors(prepared, on_error: str):
        """Engine results -> model inputs: an error is raised, or (``on_error="skip"``, typed input errors only)
        warned about and given as ``None`` (`video_decode_pool.report_errors`)."""
        for item_result in report_errors(prepared, on_error):
            if item_result is None or isinstance(item_result, dict):
                yield item_result
            else:
                yield {"frames": item_result, "num_views": int(item_result.shape[0])}

    def preprocess(
        self, video, num_frames=None, num_clips=1, num_crops=1, preprocessed=False, timeout=30.0, hwaccel=None
    ):
        """One video -> ``{"frames": (V, T, S, S, 3) uint8, "num_views": V}`` (resized and cropped by `video_clips`;
        `ActionCLIPVideoProcessor.frames_to_pixel_values` finishes them on the model's device), or
        ``{"pixel_values": (V, T, C, H, W), "num_views": V}`` for pre-processed input."""
        video = _as_source(video)
        if isinstance(video, dict):
            if "frames" in video:
                return self._prepared_frames(video["frames"])
            if "pixel_values" not in video:
                raise VideoInputError(
                    "video",
                    "a dict input needs a 'pixel_values' entry (pre-processed frames), a 'frames' entry (clips from "
                    "prepare_clip) or a 'bytes' or 'path' entry (a datasets.Video(decode=False) value), got keys "
                    f"{sorted(video)}",
                )
            return self._preprocessed(video["pixel_values"])
        if preprocessed:
            return self._preprocessed(video)
        frames = torch.from_numpy(
            prepare_clip(video, self.clip_spec(num_frames, num_clips, num_crops, timeout, hwaccel))
        )
        return {"frames": frames, "num_views": int(frames.shape[0])}

    def clip_spec(self, num_frames=None, num_clips=1, num_crops=1, timeout=30.0, hwaccel=None) -> ClipSpec:
        """What `video_clips` makes of each video for this pipeline: ``num_frames`` TSN frames (default the model
        config's, which owns it) per view, resized and cropped as the video processor does, decoded on the
        ``hwaccel`` device type when given."""
        num_frames = num_frames or self.model.config.num_frames
        return ClipSpec.for_video_processor(
            self.processor.video_processor,
            num_frames,
            num_clips=num_clips,
            num_crops=num_crops,
            timeout=timeout,
            hwaccel=hwaccel,
        )

    def video_sampler(self, num_frames: int | None = None, num_clips: int = 1, num_crops: int = 1):
        """The frame sampler ``preprocess`` uses: indices ``(T,)`` for one view, ``(num_clips * num_crops, T)`` else."""
        return self.clip_spec(num_frames, num_clips, num_crops).build_sampler()

    def _prepared_frames(self, frames) -> dict:
        """``{"frames": uint8 (V, T, S, S, 3)}`` decoded elsewhere by ``prepare_clip`` with :meth:`clip_spec`."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(frames)
        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim != 5:
            described = type(frames).__name__
            if isinstance(frames, torch.Tensor):
                described += f" of dtype {frames.dtype} and shape {tuple(frames.shape)}"
            raise VideoInputError(
                "frames", f"prepared frames must be uint8 (V, T, S, S, 3) from prepare_clip, got {described}"
            )
        size = backbone_image_size(self.model.config.vision_config)
        if tuple(frames.shape[2:]) != (size, size, 3):
            raise VideoInputError(
                "frames",
                f"prepared frames are {tuple(frames.shape[2:])} but this model takes ({size}, {size}, 3): prepare "
                "them with prepare_clip(video, pipeline.clip_spec(...))",
            )
        self._check_frame_count(int(frames.shape[1]), "the number of prepared frames")
        return {"frames": frames, "num_views": int(frames.shape[0])}

    def _preprocessed(self, pixel_values) -> dict:
        if isinstance(pixel_values, np.ndarray):
            pixel_values = torch.from_numpy(pixel_values)
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            raise VideoInputError(
                "pixel_values",
                f"pre-processed input must be a float tensor (T, C, H, W) or (V, T, C, H, W), got {type(pixel_values).__name__}"
                + (f" of dtype {pixel_values.dtype}" if isinstance(pixel_values, torch.Tensor) else ""),
            )
        if pixel_values.ndim == 4:
            pixel_values = pixel_values[None]
        if pixel_values.ndim != 5 or pixel_values.shape[2] != 3:
            raise VideoInputError(
                "pixel_values",
                f"pre-processed input must have shape (T, 3, H, W) or (V, T, 3, H, W), got {tuple(pixel_values.shape)}",
            )
        size = backbone_image_size(self.model.config.vision_config)
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise VideoInputError(
                "pixel_values",
                f"pre-processed frames are {pixel_values.shape[-2]}x{pixel_values.shape[-1]} but this model takes "
                f"{size}x{size}: pre-process with the model's processor",
            )
        self._check_frame_count(int(pixel_values.shape[1]), "the number of pre-processed frames")
        return {"pixel_values": pixel_values, "num_views": pixel_values.shape[0]}

    # ------------------------------------------------------------------ text

    def prepare_labels(
        self, candidate_labels, hypothesis_template=None
    ) -> tuple[list[str], PromptTemplater, list[list[str]] | None]:
        """The text inputs of a call (as for ``__call__``) checked, before any video is decoded.

        Args:
            candidate_labels: a list of labels, a string of comma-separated labels, or ``{label: [description]}``.
            hypothesis_template: what ``__call__`` takes; ``None`` for the model's ``config.templates``.

        Returns:
            ``(labels, templater, texts)``, what :meth:`text_embeddings` takes: ``texts`` is each label's name and
            descriptions when descriptions were given, else ``None``.

        Raises:
            InvalidLabelsError, InvalidTemplateError, InvalidDescriptionsError: naming what is wrong.
        """
        return resolve_candidates(candidate_labels, hypothesis_template, self.model.config.templates)

    def text_embeddings(
        self, labels: Sequence[str], templater: PromptTemplater, texts: Sequence[Sequence[str]] | None = None
    ) -> torch.Tensor:
        """L2-normalised embeddings of every (template, label) prompt, template-major ``(K * N, D)`` float32.

        With ``texts`` (each label's name and descriptions, `descriptions.class_texts`), every text is put into
        every template and a label's prompts are averaged per template (`description_averaged_embeddings`).
        Kept for later calls with the same labels, texts and templates (per model, device and dtype).
        """
        text_key = tuple(map(tuple, texts)) if texts is not None else None
        key = (tuple(labels), text_key, templater.templates, self.backend.cache_key)
        with self._text_cache_lock:
            if key in self._text_cache:
                self._text_cache.move_to_end(key)
                return self._text_cache[key]
        # In chunks (`embed_in_chunks`): memory does not grow with the number of labels.
        embeds = label_text_embeddings(
            labels,
            templater,
            texts,
            lambda chunk: self.processor(text=chunk, padding=True, truncation=True, return_tensors="pt"),
            self.backend.text_features,
        )
        with self._text_cache_lock:
            self._text_cache[key] = embeds
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return embeds

    def clear_text_cache(self) -> None:
        """Forget the cached text embeddings (after changing the model's text weights in place)."""
        with self._text_cache_lock:
            self._text_cache.clear()

    # ------------------------------------------------------------------ model

    def _collate(self, present: list[dict], batch_size: int) -> dict:
        """The ``preprocess`` outputs of a batch as one model input: ``frames`` uint8 (rows, T, S, S, 3) (in pinned
        memory when the model is on a GPU, so the copy does not block) or ``pixel_values`` (rows, T, C, H, W),
        rows being the videos' views, and ``num_views``.

        A compiled model sees static shapes: a batch with fewer videos than ``batch_size`` (the last one, or one
        with skipped videos) is padded with copies of its first row up to ``batch_size`` videos' rows;
        ``_forward`` drops their outputs (``num_rows``).
        """
        key = "frames" if "frames" in present[0] else "pixel_values"
        if any(key not in inputs for inputs in present):
            raise VideoInputError("videos", "a batch mixes decoded videos with pre-processed pixel_values")
        parts = [inputs[key] for inputs in present]
        num_views = [inputs["num_views"] for inputs in present]
        rows = sum(part.shape[0] for part in parts)
        padded_rows = rows
        if getattr(self.backend, "compiled", False) and len(present) < batch_size and len(set(num_views)) == 1:
            padded_rows = batch_size * num_views[0]
        shape = (padded_rows, *parts[0].shape[1:])
        if any(tuple(part.shape[1:]) != shape[1:] for part in parts):
            shapes = sorted({tuple(part.shape[1:]) for part in parts})
            raise VideoInputError("videos", f"the videos of a batch have different frame shapes {shapes}")
        pin = key == "frames" and self.device.type == "cuda"
        collated = torch.empty(shape, dtype=parts[0].dtype, pin_memory=pin)
        torch.cat(parts, out=collated[:rows])
        if padded_rows > rows:
            collated[rows:] = parts[0][:1]
        return {key: collated, "num_views": num_views, "num_rows": rows}

    def _pixel_values(self, model_inputs: dict) -> torch.Tensor:
        """The batch's ``pixel_values`` on the model's device in its dtype: uint8 ``frames`` are copied there
        (non-blocking from pinned memory) and normalised there (`frames_to_pixel_values`)."""
        if "frames" not in model_inputs:
            return model_inputs["pixel_values"]
        if self.backend.backend_name == "torch":
            device, dtype = self.device, self.backend.dtype
        else:  # onnxruntime runs on the CPU and converts to its graphs' dtype itself
            device, dtype = torch.device("cpu"), torch.float32
        return self.processor.video_processor.frames_to_pixel_values(model_inputs["frames"], device, dtype)

    def _forward(self, model_inputs, text_embeds=None, num_templates=1, logit_scale=None, ensemble="probs"):
        """``frames`` uint8 (sum of views, T, S, S, 3) or ``pixel_values`` (sum of views, T, C, H, W) ->
        ``{"scores": (videos, N)}`` float32 on the CPU."""
        with torch.no_grad():
            video_embeds = self.backend.video_features(self._pixel_values(model_inputs))
        video_embeds = video_embeds[: model_inputs.get("num_rows", video_embeds.shape[0])]
        probs = self.score_video_embeddings(video_embeds, text_embeds, num_templates, logit_scale, ensemble)
        counts = model_inputs["num_views"]
        scores, start = [], 0
        for count in counts:
            scores.append(average_view_scores(probs[start : start + count], count)[0])
            start += count
        return {"scores": scores}

    def score_video_embeddings(
        self, video_embeds, text_embeds, num_templates=1, logit_scale=None, ensemble="probs"
    ) -> torch.Tensor:
        """Video embeddings ``(B, D)`` (after fusion, not normalised) -> label scores ``(B, N)`` float32 on the CPU.

        ``text_embeds`` ``(K * N, D)`` from :meth:`text_embeddings`; ``ensemble`` and ``logit_scale`` as in the class
        docstring. The one place where the pipeline turns embeddings into scores (localisation reuses it).
        """
        with torch.no_grad():
            scale, bias = self.backend.scale(logit_scale), self.backend.score_bias()
            probs = label_scores(video_embeds, text_embeds, num_templates, scale, ensemble, bias)
        probs = probs.cpu()
        check_finite_scores(probs.numpy(), getattr(self.model, "name_or_path", "") or type(self.model).__name__)
        return probs

    def postprocess(self, model_outputs, top_k=None):
        return rank_labels(model_outputs["scores"], model_outputs["labels"], top_k)

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model, this pipeline's code (as a custom pipeline) and the `ActionCLIPProcessor`."""
        if self.backend.backend_name != "torch":
            raise PipelineArgumentError(
                f"a pipeline on the {self.backend.backend_name} backend cannot be saved: copy the exported directory"
            )
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)


__all__ = [
    "MissingProcessorError",
    "PipelineArgumentError",
    "ZeroShotVideoClassificationPipeline",
]
