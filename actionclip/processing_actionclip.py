"""One object from raw inputs to model inputs: decoding, frame sampling, the video transform and the tokenizer."""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, TextKwargs
from transformers.utils import cached_file

from .backbones import backbone_family, backbone_image_size, family_of_config
from .errors import (
    InvalidLabelsError,
    MissingProcessorError,
    ProcessorArgumentError,
    VideoInputError,
    VideoProcessingError,
)
from .prompts import DEFAULT_TEMPLATE_SET, PromptTemplater, TemplatesLike, load_templates
from .tokenizer import (
    CONTEXT_LENGTH,
    TOKENIZER_FILES,
    has_tokenizer_files,
    load_clip_tokenizer,
    long_texts,
    tokenizer_class,
    warn_truncated,
)
from .video_clips import ClipSpec, decode_for_processor, split_clips
from .video_io import is_video_source
from .video_processing_actionclip import ActionCLIPVideoProcessor, ActionCLIPVideoProcessorKwargs

# Settings the model's config owns; the processor reads them from it (`ActionCLIPProcessor.from_pretrained`).
MODEL_SETTINGS = ("num_frames", "templates")
# Keyword arguments of `from_pretrained` that say where and how to load, not what the processor is.
_LOADING_OPTIONS = frozenset(
    {"cache_dir", "force_download", "local_files_only", "revision", "token", "subfolder", "proxies",
     "trust_remote_code", "_from_auto", "_from_pipeline"}
)  # fmt: skip


class ActionCLIPVideosKwargs(ActionCLIPVideoProcessorKwargs, total=False):
    """The processor's video options: the video processor's (`ActionCLIPVideoProcessorKwargs`, transformers'
    `VideosKwargs`) and those of decoding and sampling.

    training (`bool`): random frame sampling and the training augmentation instead of the evaluation transform.
    seed (`int`), generator (`torch.Generator`, CPU): the randomness of sampling and augmentation (one of them).
    decode_kwargs (`dict`): decoding options (`video_clips.DECODE_OPTIONS`: ``timeout``, ``backend``,
        ``max_shorter_side``, ``shorter_side``, ``size``).
    """

    training: bool | None
    seed: int | None
    generator: torch.Generator | None
    decode_kwargs: dict | None


# What `ActionCLIPProcessor.__call__` routes: text options to CLIP's tokenizer, video options to decoding, sampling
# and the video processor. Written as a call: `ProcessorMixin._merge_kwargs` reads the modalities' TypedDicts from
# `__annotations__`, which this module's postponed annotations would leave as strings.
ActionCLIPProcessorKwargs = TypedDict(
    "ActionCLIPProcessorKwargs",
    {**ProcessingKwargs.__annotations__, "text_kwargs": TextKwargs, "videos_kwargs": ActionCLIPVideosKwargs},
    total=False,
)


# Text options of transformers' processors that concern placeholder tokens of multimodal chat models: CLIP has none.
_PLACEHOLDER_TEXT_OPTIONS = {"return_mm_token_type_ids", "return_text_replacement_offsets", "sanitize_control_tokens"}
_TEXT_OPTIONS = frozenset(TextKwargs.__annotations__) - _PLACEHOLDER_TEXT_OPTIONS
_VIDEO_OPTIONS = frozenset(ActionCLIPVideosKwargs.__annotations__)
# The call's defaults where the caller gives nothing: texts are not padded (as CLIPProcessor) but cut to the model's
# context; tensors are PyTorch's.
_TEXT_DEFAULTS = {"padding": False, "truncation": True, "max_length": None, "return_tensors": "pt"}
_VIDEO_DEFAULTS = {"return_tensors": "pt"}


def _check_known(options: dict, known, where: str) -> None:
    unknown = sorted(set(options) - set(known))
    if not unknown:
        return
    hints = []
    for name in unknown:
        if name in ("images_kwargs", "audio_kwargs"):
            hints.append(f"{name}: this processor has no image or audio processor; frames go in videos_kwargs")
        else:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            if close:
                hints.append(f"{name}: did you mean {close[0]!r}?")
    raise ProcessorArgumentError(
        f"{where} got unknown option(s) {unknown}"
        + (f" ({'; '.join(hints)})" if hints else "")
        + "; text options are transformers' TextKwargs, video options ActionCLIPVideosKwargs"
    )


class _TokenizerLock:
    """Serialises calls of one tokenizer. The fast tokenizer keeps its truncation and padding settings in state that
    every call rewrites, so threads sharing it corrupt each other's calls ("Unable to create tensor"). Copies get
    a fresh lock: `ProcessorMixin.to_dict` deep-copies the processor's attributes."""

    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self) -> _TokenizerLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.release()

    def __deepcopy__(self, memo) -> _TokenizerLock:
        return _TokenizerLock()

    def __reduce__(self):
        return (_TokenizerLock, ())


class ActionCLIPProcessor(ProcessorMixin):
    r"""
    Prepares videos and texts for `ActionCLIPModel`: videos -> ``pixel_values`` ``(B, T, C, H, W)``, texts ->
    ``input_ids`` / ``attention_mask`` ``(N, L)`` with ``L <= 77``.

    Args:
        video_processor (`ActionCLIPVideoProcessor`): the frame transform.
        tokenizer: the backbone family's tokenizer (CLIP's by default: `actionclip.tokenizer.load_clip_tokenizer()`;
            SigLIP's SentencePiece, SigLIP 2's Gemma, XLM-R, BERT: `from_backbone` loads the backbone's own).
        num_frames (`int`, defaults to 8): frames per clip; videos to decode are sampled with a TSN sampler of this
            many segments, and decoded clips with another number of frames are resampled the same way.
        templates: the prompt templates for `encode_labels` (anything `prompts.load_templates` accepts); saved as
            the resolved list of templates.
        pad_to_context (`bool`, defaults to `False`): texts are always padded to the text context (SigLIP pools
            its last token, so its texts are padded to the length it was trained with); otherwise to the longest
            text where a call asks for padding.
    """

    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        num_frames: int = 8,
        templates: TemplatesLike = DEFAULT_TEMPLATE_SET,
        pad_to_context: bool = False,
    ):
        if video_processor is None:
            video_processor = ActionCLIPVideoProcessor()
        if tokenizer is None:
            tokenizer = load_clip_tokenizer()
        if num_frames is not None and (
            isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1
        ):
            raise VideoProcessingError(
                f"num_frames must be a positive integer (or None to keep every frame), got {num_frames!r}"
            )
        if not isinstance(pad_to_context, bool):
            raise ProcessorArgumentError(f"pad_to_context must be True or False, got {pad_to_context!r}")
        self.pad_to_context = pad_to_context
        self.num_frames = num_frames
        self.templates = list(load_templates(templates))
        self.templater = PromptTemplater(self.templates)
        super().__init__(video_processor, tokenizer)
        self._tokenizer_lock = _TokenizerLock()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_settings(
        cls,
        image_size: int = 224,
        num_frames: int = 8,
        templates: TemplatesLike = DEFAULT_TEMPLATE_SET,
        **video_processor_kwargs,
    ) -> ActionCLIPProcessor:
        """A processor for a model of ``image_size`` pixels and ``num_frames`` frames, with the shipped tokenizer
        and the original's evaluation resize (shorter side ``image_size * 256 // 224``)."""
        video_processor = ActionCLIPVideoProcessor(crop_size=image_size, **video_processor_kwargs)
        return cls(video_processor, load_clip_tokenizer(), num_frames=num_frames, templates=templates)

    @classmethod
    def from_model_config(cls, config, tokenizer=None, **video_processor_kwargs) -> ActionCLIPProcessor:
        """The processor matching an `ActionCLIPConfig`: its image size, number of frames, templates and text
        padding, with ``tokenizer`` (default: the shipped CLIP tokenizer, for a CLIP backbone; another family's
        model needs its own, as `from_backbone` loads it)."""
        family = backbone_family(config.backbone)
        if tokenizer is None and family.model_type != "clip":
            raise ProcessorArgumentError(
                f"a {family.model_type} model needs its own tokenizer: pass tokenizer= (AutoTokenizer of its "
                "backbone) or use ActionCLIPProcessor.from_backbone(the backbone's folder or Hub id)"
            )
        video_processor = ActionCLIPVideoProcessor(
            crop_size=backbone_image_size(config.vision_config), **video_processor_kwargs
        )
        return cls(
            video_processor,
            load_clip_tokenizer() if tokenizer is None else tokenizer,
            num_frames=config.num_frames,
            templates=list(config.templates),
            pad_to_context=family.pad_to_max_length,
        )

    @classmethod
    def from_backbone(
        cls, name_or_path, num_frames: int = 8, templates: TemplatesLike | None = None, **kwargs
    ) -> ActionCLIPProcessor:
        """The processor of an image-text backbone of any supported family (a folder or Hub id of `CLIPModel`,
        `SiglipModel`, ...: what `ActionCLIPModel.from_backbone` starts from): the backbone's own tokenizer, its
        image processor's mean and standard deviation at its image size, and the family's text padding and
        default templates. ``kwargs`` go to the video processor (`crop_size`, `resample_backend`, ...).

        Frames are resized (shorter side) and centre-cropped to the model's square input, as ActionCLIP's evaluation
        does, also for SigLIP, whose image processor squeezes a whole image to the square instead.
        """
        from transformers import AutoConfig, AutoImageProcessor

        location = str(name_or_path)
        backbone_config = AutoConfig.from_pretrained(location)
        family = family_of_config(backbone_config)
        image_processor = AutoImageProcessor.from_pretrained(location)
        video_processor = ActionCLIPVideoProcessor(
            crop_size=backbone_image_size(backbone_config.vision_config),
            image_mean=list(image_processor.image_mean),
            image_std=list(image_processor.image_std),
            **kwargs,
        )
        return cls(
            video_processor,
            tokenizer_class(location).from_pretrained(location),
            num_frames=num_frames,
            templates=templates if templates is not None else list(family.templates or ()) or DEFAULT_TEMPLATE_SET,
            pad_to_context=family.pad_to_max_length,
        )

    @classmethod
    def for_converted_backbone(cls, location, config) -> ActionCLIPProcessor:
        """The processor of an ActionCLIP model just made from the image-text backbone at ``location`` (its
        configuration ``config``: frames, templates): a CLIP backbone gets the processor of the configuration with the
        shipped CLIP tokenizer (every CLIP checkpoint's vocabulary and image statistics, so a folder holding the model
        alone works); another family its own tokenizer and image processor (`from_backbone`)."""
        if config.backbone == "clip":
            return cls.from_model_config(config)
        return cls.from_backbone(location, num_frames=config.num_frames, templates=list(config.templates))

    @property
    def context_length(self) -> int:
        """The most tokens a text may have: the tokenizer's limit (CLIP's 77, SigLIP's 64, ...)."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and 2 <= limit <= 100_000 else CONTEXT_LENGTH

    @property
    def text_padding(self) -> bool | str:
        """The padding a batch of texts for the model takes: ``"max_length"`` (the text context) where the family
        pools a fixed position, else ``True`` (the longest text)."""
        return "max_length" if self.pad_to_context else True

    # ------------------------------------------------------------------ saving and loading

    def to_dict(self) -> dict:
        """The processor's settings; without ``num_frames`` and ``templates`` when it is being saved next to a model
        ``config.json``, which owns them (`from_pretrained` reads them from there)."""
        output = super().to_dict()
        if getattr(self, "_saving_beside_model_config", False):
            for name in MODEL_SETTINGS:
                output.pop(name, None)
        output.pop("_saving_beside_model_config", None)
        output.pop("_saved_settings", None)
        return output

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save the processor. Saved next to a model's ``config.json`` (save the model first, as the pipeline does),
        ``processor_config.json`` leaves ``num_frames`` and ``templates`` to it; saved alone, it keeps them."""
        self._saving_beside_model_config = os.path.isfile(os.path.join(save_directory, "config.json"))
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            del self._saving_beside_model_config

    # How transformers builds a loaded processor: `from_dict` (5.25 and later) or `from_args_and_dict` (before).
    # Older processor_config.json files hold their own copy of the model's settings; kept to compare with the
    # model's in `from_pretrained`.

    @classmethod
    def from_dict(cls, processor_dict: dict, **kwargs):
        result = super().from_dict(processor_dict, **kwargs)
        _keep_saved_settings(result[0] if isinstance(result, tuple) else result, processor_dict)
        return result

    @classmethod
    def from_args_and_dict(cls, args, processor_dict: dict, **kwargs):
        processor = super().from_args_and_dict(args, processor_dict, **kwargs)
        _keep_saved_settings(processor, processor_dict)
        return processor

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> ActionCLIPProcessor:
        """Load the processor, with ``num_frames`` and ``templates`` from the model's ``config.json`` next to it (the
        one owner of both). A ``processor_config.json`` that still holds other values warns once and loses; a
        processor saved without a model config keeps what its file holds (or the defaults)."""
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        config = _model_config(pretrained_model_name_or_path, kwargs)
        if config is None:
            return processor
        saved = getattr(processor, "_saved_settings", {})
        owned = {"num_frames": config.num_frames, "templates": list(config.templates)}
        for name, value in owned.items():
            if name in saved and saved[name] != value:
                warnings.warn(
                    f"{pretrained_model_name_or_path}: processor_config.json has {name}={_short(saved[name])} but the "
                    f"model's config.json has {_short(value)}; the model's is used (save the processor again to drop "
                    "the stale copy)",
                    UserWarning,
                    stacklevel=2,
                )
        processor.num_frames = owned["num_frames"]
        processor.templates = owned["templates"]
        processor.templater = PromptTemplater(processor.templates)
        return processor

    # Our sub-processor classes are known: they are loaded directly, not through the Auto* classes, so that loading
    # depends neither on the Auto* registration having happened nor, in remote code, on a second
    # ``trust_remote_code`` for the video processor that the processor's own module defines.

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # transformers before 5.25.
        loaded = cls._load_subprocessors(pretrained_model_name_or_path, ("video_processor", "tokenizer"), **kwargs)
        return [loaded["video_processor"], loaded["tokenizer"]]

    @classmethod
    def _resolve_subprocessors(cls, pretrained_model_name_or_path, processor_dict: dict, **kwargs):
        # transformers 5.25 and later: the sub-processors go into ``processor_dict``; a video processor or tokenizer
        # given by the caller is kept (and not loaded); the loading options are not settings of the processor.
        processor_dict = dict(processor_dict)
        given = {name: kwargs.pop(name) for name in ("video_processor", "tokenizer") if kwargs.get(name) is not None}
        kwargs.pop("return_unused_kwargs", None)
        missing = [name for name in ("video_processor", "tokenizer") if name not in given]
        processor_dict.update(cls._load_subprocessors(pretrained_model_name_or_path, missing, **kwargs))
        processor_dict.update(given)
        return processor_dict, {name: value for name, value in kwargs.items() if name not in _LOADING_OPTIONS}

    @classmethod
    def _load_subprocessors(cls, pretrained_model_name_or_path, names, **kwargs) -> dict:
        """The sub-processors ``names`` (``"video_processor"``, ``"tokenizer"``) loaded from the saved folder."""
        subfolder = kwargs.pop("subfolder", "")
        classes = {
            "video_processor": ActionCLIPVideoProcessor,
            "tokenizer": tokenizer_class(pretrained_model_name_or_path, subfolder),
        }
        where = str(pretrained_model_name_or_path)
        folder = os.path.join(where, subfolder)
        # Without tokenizer files transformers builds a tokenizer of its special tokens alone (every label would
        # become unknown tokens and every score the same) or fails in its converter: both are a missing tokenizer.
        missing = MissingProcessorError(
            f"{where!r} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): save the processor with its "
            "tokenizer, or pass tokenizer= to from_pretrained"
        )
        if "tokenizer" in names and os.path.isdir(folder) and not has_tokenizer_files(folder):
            raise missing
        loaded = {}
        for name in names:
            try:
                loaded[name] = classes[name].from_pretrained(
                    pretrained_model_name_or_path, subfolder=subfolder, **kwargs
                )
            except ValueError:
                if name != "tokenizer":
                    raise
                raise missing from None
        tokenizer = loaded.get("tokenizer")
        if tokenizer is not None and tokenizer.vocab_size <= len(set(tokenizer.all_special_tokens)):
            raise missing
        return loaded

    valid_processor_kwargs = ActionCLIPProcessorKwargs

    @property
    def num_templates(self) -> int:
        return len(self.templates)

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values", "input_ids", "attention_mask"]

    # ------------------------------------------------------------------ calls

    def __call__(self, videos=None, text: str | Sequence[str] | None = None, images=None, **kwargs) -> BatchFeature:
        """Prepare ``videos`` and/or ``text``. Keyword arguments are routed as `ProcessorMixin` routes them: flat
        (``padding=True``, ``do_flip=False``), per modality (``text_kwargs={...}``, ``videos_kwargs={...}``) or for
        both (``common_kwargs={...}``), a flat one winning over the dictionaries; an unknown one raises
        `ProcessorArgumentError`.

        Args:
            videos: a video or a list of videos. A video is a path, URL, bytes or binary file object (decoded with
                `video_io` and sampled with a TSN sampler of ``num_frames`` segments, in eval or train mode), a
                uint8 numpy array ``(T, H, W, 3)``, a torch tensor ``(T, C, H, W)`` or ``(T, H, W, C)`` (uint8, or
                float in [0, 1]) or a list of PIL images. Decoded clips whose length differs from ``num_frames``
                are sampled the same way.
            text: a string or a list of strings.
            images: X-CLIP's name for ``videos`` (its processor takes the frames as images); not both.

        Text options (`TextKwargs`, given to CLIP's tokenizer): ``padding`` (default ``False``, as `CLIPProcessor`:
        ``True`` pads to the longest text, ``"max_length"`` to ``max_length``), ``truncation`` (default ``True``:
        texts longer than ``max_length`` are cut, with a warning, keeping the end-of-text token; ``False`` keeps
        them whole and refuses texts longer than the model's 77 tokens), ``max_length`` (default 77, at most 77),
        ``return_tensors`` and the tokenizer's other options (``return_length``, ``pad_to_multiple_of``, ...).

        Video options (`VideosKwargs` and `ActionCLIPVideoProcessorKwargs`, given to the video processor; see
        ``ActionCLIPVideosKwargs``): ``training`` (random frame sampling and the training augmentation),
        ``seed`` / ``generator`` (their randomness: an int, or a CPU ``torch.Generator``, which advances),
        ``num_frames`` (overrides ``self.num_frames``), ``decode_kwargs`` (decoding options,
        `video_clips.DECODE_OPTIONS`: ``timeout``, ``backend``, ``max_shorter_side``, ``shorter_side``, ``size``),
        ``device``, ``do_flip``, ``resample_backend``, ... and ``return_tensors``.

        ``return_tensors`` (default ``"pt"`` for both): ``"pt"``, ``"np"``, or ``None`` (token ids as lists,
        ``pixel_values`` as a list of ``(T, C, H, W)`` tensors, one per video).

        Returns:
            `BatchFeature` with ``pixel_values`` ``(B, T, C, H, W)`` float32 when videos are given and
            ``input_ids`` / ``attention_mask`` ``(N, L)`` when text is given.
        """
        if images is not None:
            if videos is not None:
                raise ProcessorArgumentError("pass the frames as videos= or as images= (X-CLIP's name), not both")
            videos = images
        if videos is None and text is None:
            raise VideoProcessingError("ActionCLIPProcessor needs videos, text or both; got neither")
        options = self._route_options(kwargs)
        data = {}
        if videos is not None:
            data.update(self._process_videos(videos, **options["videos_kwargs"]))
        if text is not None:
            data.update(self._tokenize(text, **options["text_kwargs"]))
        return BatchFeature(data=data)

    def encode_labels(
        self, labels: Sequence[str], templates: TemplatesLike | PromptTemplater | None = None, **tokenizer_kwargs
    ) -> BatchFeature:
        """Tokenize every template applied to every label, template-major: row ``k * len(labels) + c`` is template
        ``k`` of label ``c`` (``(num_templates * len(labels), L)``). ``templates`` defaults to ``self.templates``;
        ``tokenizer_kwargs`` are text options of the call (default ``padding="max_length"``, 77 tokens, as the
        original's ``clip.tokenize``)."""
        if templates is None:
            templater = self.templater
        elif isinstance(templates, PromptTemplater):
            templater = templates
        else:
            templater = PromptTemplater(templates)
        _check_known(tokenizer_kwargs, _TEXT_OPTIONS, "encode_labels")
        options = {**_TEXT_DEFAULTS, "padding": "max_length", "max_length": None, **tokenizer_kwargs}
        return BatchFeature(data=self._tokenize(templater.build_prompts(labels), **options))

    def build_prompts(self, labels: Sequence[str]) -> list[str]:
        """The template-major prompts of ``labels`` with ``self.templates``."""
        return self.templater.build_prompts(labels)

    # ------------------------------------------------------------------ pieces

    def _route_options(self, kwargs: dict) -> dict[str, dict]:
        """``{"text_kwargs": {...}, "videos_kwargs": {...}}`` of a call's keyword arguments: checked against the
        known options, merged by `ProcessorMixin._merge_kwargs` (its priorities and type checks), then our
        defaults where the caller gave nothing."""
        video_options = _VIDEO_OPTIONS | set(self.video_processor.valid_kwargs.__annotations__)
        known = {"text_kwargs": _TEXT_OPTIONS, "videos_kwargs": video_options}
        known["common_kwargs"] = _TEXT_OPTIONS | video_options
        for key, value in kwargs.items():
            if key in known:
                if not isinstance(value, dict):
                    raise ProcessorArgumentError(f"{key} must be a dict of options, got {type(value).__name__}")
                _check_known(value, known[key], key)
            elif key not in known["common_kwargs"]:
                _check_known({key: value}, known["common_kwargs"], "ActionCLIPProcessor")
        # `_merge_kwargs` deep-copies its arguments: a generator would be copied and the caller's would not
        # advance. It is taken out and put back, with the same priorities.
        kwargs = dict(kwargs)
        generator = None
        for place in ("common_kwargs", "videos_kwargs", None):
            holder = kwargs if place is None else kwargs.get(place)
            if holder and "generator" in holder:
                if place is not None:
                    holder = kwargs[place] = dict(holder)
                generator = holder.pop("generator")
        try:
            merged = self._merge_kwargs(
                ActionCLIPProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
            )
        except (StrictDataclassError, TypeError, ValueError) as error:
            raise ProcessorArgumentError(f"ActionCLIPProcessor: {error}") from error
        if generator is not None:
            merged["videos_kwargs"]["generator"] = generator
        for name, defaults in (("text_kwargs", _TEXT_DEFAULTS), ("videos_kwargs", _VIDEO_DEFAULTS)):
            for option, value in defaults.items():
                merged[name].setdefault(option, value)
        return merged

    def _process_videos(
        self,
        videos,
        training: bool | None = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        decode_kwargs: dict | None = None,
        **video_options,
    ) -> dict:
        """``{"pixel_values": ...}`` of ``videos``: decoded, sampled, then transformed by the video processor."""
        if training is None:
            training = False
        if not isinstance(training, bool):
            raise ProcessorArgumentError(f"training must be True or False, got {training!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ProcessorArgumentError(f"seed must be an integer, got {seed!r}")
        if seed is not None and generator is not None:
            raise VideoProcessingError("pass either seed or generator, not both")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise VideoProcessingError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        clips = self._decode_and_sample(videos, num_frames, training, generator, decode_kwargs or {})
        processed = self.video_processor(clips, training=training, generator=generator, **video_options)
        return {"pixel_values": processed["pixel_values"]}

    def _tokenize(
        self,
        text,
        padding: bool | str = False,
        truncation: bool | str | None = True,
        max_length: int | None = None,
        return_tensors: str | None = "pt",
        **tokenizer_options,
    ) -> dict:
        """Token ids of ``text`` with the tokenizer's options; a dict of lists (``return_tensors=None``) or of
        tensors ``(N, L)``."""
        if isinstance(text, str):
            text = [text]
        if isinstance(text, (bytes, bytearray)) or not isinstance(text, Sequence):
            raise InvalidLabelsError(f"text must be a string or a list of strings, got {type(text).__name__}")
        text = list(text)
        if not text:
            raise InvalidLabelsError("text is an empty list: give at least one string")
        for index, item in enumerate(text):
            if not isinstance(item, str):
                raise InvalidLabelsError(f"text[{index}] must be a string, got {type(item).__name__}: {item!r}")
        context = self.context_length
        if max_length is None:
            max_length = context
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= context:
            raise InvalidLabelsError(f"max_length={max_length!r}: must be an integer in [2, {context}]")
        if self.pad_to_context and padding not in (False, None, "do_not_pad"):
            padding, max_length = "max_length", context  # the family pools a fixed position: always the full context
        return_tensors = getattr(return_tensors, "value", return_tensors)
        if return_tensors not in ("pt", "np", None):
            raise ProcessorArgumentError(f"return_tensors={return_tensors!r}: must be 'pt', 'np' or None")
        truncating = truncation not in (False, None, "do_not_truncate")
        add_special_tokens = tokenizer_options.get("add_special_tokens", True)
        with self._tokenizer_lock:
            whole = self.tokenizer(text, truncation=False, add_special_tokens=add_special_tokens, verbose=False)
        lengths = [len(ids) for ids in whole["input_ids"]]
        if truncating:
            warn_truncated(lengths, max_length, stacklevel=3)
        elif named := long_texts(lengths, context):
            raise InvalidLabelsError(
                f"{named} exceed the model's {context} tokens and truncation={truncation!r}: "
                "shorten them or pass truncation=True"
            )
        try:
            with self._tokenizer_lock:
                encoded = self.tokenizer(
                    text, padding=padding, truncation=truncation, max_length=max_length, **tokenizer_options
                )
        except (TypeError, ValueError) as error:
            raise ProcessorArgumentError(f"text options unusable by the tokenizer: {error}") from error
        encoded = dict(encoded)
        if return_tensors is not None:
            ragged = sorted({len(row) for row in encoded["input_ids"]})
            if len(ragged) > 1:
                raise ProcessorArgumentError(
                    f"the texts have different lengths ({', '.join(map(str, ragged))} tokens) and padding="
                    f"{padding!r}: one tensor needs one length; pass padding=True (to the longest) or "
                    "padding='max_length', or return_tensors=None for lists"
                )
            encoded = BatchFeature(data=encoded, tensor_type=return_tensors)
        return dict(encoded)

    def _decode_and_sample(self, videos, num_frames, training, generator, decode_kwargs) -> list:
        """Every video as a clip of ``num_frames`` decoded frames (arrays, tensors or lists of PIL images)."""
        num_frames = self.num_frames if num_frames is None else num_frames
        items = split_clips(videos)
        if not items:
            raise VideoInputError("videos", "the list of videos is empty")
        # One numpy generator drawn from the torch one, so that a single seed fixes sampling and augmentation.
        rng = None
        if training:
            rng = np.random.default_rng(int(torch.randint(2**62, (), generator=generator)))
        # `video_clips` decodes and samples (`ClipSpec.for_decoding`); the video processor transforms, or augments.
        spec = ClipSpec.for_decoding(self.video_processor, num_frames, "train" if training else "eval")
        clips = []
        for item in items:
            if is_video_source(item):
                if num_frames is None:
                    raise VideoInputError(item, "num_frames=None keeps every frame, but a file needs a frame count")
                clips.append(decode_for_processor(item, spec, rng, decode_kwargs))
                continue
            length = len(item) if isinstance(item, (list, tuple, np.ndarray, torch.Tensor)) else None
            if num_frames is not None and length and length != num_frames:
                indices = spec.build_sampler()(length, rng=rng)
                if isinstance(item, (list, tuple)):
                    item = [item[int(i)] for i in indices]
                else:
                    item = item[torch.as_tensor(indices) if isinstance(item, torch.Tensor) else indices]
            clips.append(item)
        return clips


def _keep_saved_settings(processor: ActionCLIPProcessor, processor_dict: dict) -> None:
    """The model's settings a processor_config.json still holds a copy of (compared in `from_pretrained`)."""
    processor._saved_settings = {name: processor_dict[name] for name in MODEL_SETTINGS if name in processor_dict}


def _model_config(location, kwargs: dict):
    """The `ActionCLIPConfig` saved at ``location``, or ``None`` where there is none (a processor saved alone)."""
    from .configuration_actionclip import ActionCLIPConfig

    options = {
        key: kwargs[key]
        for key in ("cache_dir", "revision", "token", "local_files_only", "subfolder")
        if key in kwargs
    }
    try:
        # Not ActionCLIPConfig.from_pretrained alone: without a config.json it gives the default configuration.
        if cached_file(location, "config.json", _raise_exceptions_for_missing_entries=False, **options) is None:
            return None
        return ActionCLIPConfig.from_pretrained(location, **options)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _short(value) -> str:
    return f"<{len(value)} templates>" if isinstance(value, list) else repr(value)


__all__ = ["ActionCLIPProcessor"]
