"""What the commands read from their arguments: video files and folders, candidate labels, a model for the zero-shot
pipeline (checked and loaded by `model_loading`), a device. Every problem is one line naming the argument (a
`CommandLineError`, or the library's typed error); nothing here imports torch before a model is loaded."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..data.video_files import VIDEO_EXTENSIONS, list_video_files
from ..errors import CommandLineError, MissingProcessorError
from ..model_loading import check_model_folder


def find_videos(paths: list[str]) -> list[str]:
    """Every path given, with directories replaced by the video files under them (by extension, sorted)."""
    videos = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [str(video) for video in list_video_files(path)]
            if not found:
                raise CommandLineError(
                    f"directory {given!r} holds no video file ({', '.join(sorted(VIDEO_EXTENSIONS))})"
                )
            videos.extend(found)
        elif given.lower().startswith(("http://", "https://")) or path.is_file():
            videos.append(given)
        elif path.exists():
            raise CommandLineError(
                f"video {given!r} is not a regular file (a FIFO, a device or a socket): give a video file"
            )
        else:
            raise CommandLineError(f"video {given!r}: no such file or directory")
    return videos


def read_labels(args: argparse.Namespace) -> list[str]:
    """The candidate labels of ``--labels``, ``--labels-file`` or ``--label-set``.

    Label files are read by `data.labels.read_label_file`, the one reader shared with ``eval`` and the training
    script's ``--class_names``: an ``id,name`` CSV (our label lists, the demo's ``labels.csv``) or one label per line
    (under an optional ``label`` / ``name`` / ``class`` header line).
    """
    from ..data.labels import load_label_names, read_label_file

    if args.labels is not None:
        return [label.strip() for label in args.labels.split(",")]
    if getattr(args, "label_set", None) is not None:
        return load_label_names(args.label_set)
    path = Path(args.labels_file)
    if not path.exists():
        raise CommandLineError(f"labels file {args.labels_file!r}: no such file")
    if not path.is_file():
        raise CommandLineError(f"labels file {args.labels_file!r} is not a regular file (a FIFO, a device, a folder)")
    try:
        return read_label_file(path)  # read with a byte cap (`files.read_text_file`)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandLineError(f"labels file {args.labels_file!r}: {error}") from None


def load_pipeline(model: str, device: str | None = None):
    """The zero-shot pipeline of ``model``; loading failures become a `CommandLineError`.

    A local directory is checked first, cheaply (`model_loading.check_model_folder`): a missing one fails at once, a
    closed-set model is refused before its weights load, and an ActionCLIP model's weight files must hold every
    tensor (`MissingWeightsError` before anything is read, instead of random weights and transformers' report).
    Warnings while loading (a plain CLIP model converted on the fly) are printed as one line each.
    """
    with add_processor_hint(model):
        kind = check_model_folder(model)
    device = check_device(device)
    from transformers import pipeline

    from ..errors import ActionCLIPError
    from ..model_kinds import ZERO_SHOT

    # Only for a local ActionCLIP directory (the only kind checked): a CLIP model's __init__ refuses the keyword.
    model_kwargs = {"require_all_weights": True} if kind == ZERO_SHOT else {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            classifier = pipeline(
                "zero-shot-video-classification", model=model, device=device, model_kwargs=model_kwargs
            )
    except ActionCLIPError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise model_load_error(model, error) from None
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"actionclip: warning: {short(warning.message)}", file=sys.stderr)
    return classifier


def model_load_error(model: str, error: BaseException) -> CommandLineError:
    """A loader's failure as one line naming the model."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return CommandLineError(f"cannot load model {model!r}: {first_line}")


def model_tokenizer(model: str):
    """The tokenizer of ``model`` and its text context: an export's own ``tokenizer.json`` without transformers,
    else the tokenizer saved with the model (its family's; a plain image-text model's own, which the pipeline
    converts)."""
    from ..onnx.runtime import export_tokenizer, is_onnx_export

    if is_onnx_export(model):
        tokenizer = export_tokenizer(model)
        return tokenizer, tokenizer.max_length
    from transformers import AutoConfig

    from ..backbones import BACKBONE_FAMILIES, text_context_length
    from ..configuration_actionclip import ActionCLIPConfig
    from ..tokenizer import load_tokenizer

    try:
        config = AutoConfig.from_pretrained(model)
        if config.model_type in BACKBONE_FAMILIES:
            config = ActionCLIPConfig.from_backbone_config(config)
        return load_tokenizer(model, config), text_context_length(config)
    except (OSError, ValueError) as error:
        raise model_load_error(model, error) from None


@contextlib.contextmanager
def add_processor_hint(model: str) -> Iterator[None]:
    """A model folder's missing processor (`MissingProcessorError`) answered with the command that writes one (the
    library's message offers Python)."""
    try:
        yield
    except MissingProcessorError:
        raise CommandLineError(
            f"model directory {model!r} has no processor (processor_config.json): write the default one beside the "
            f"weights with `actionclip add-processor {model}`"
        ) from None


def check_device(device: str | None) -> str | None:
    """``--device`` as given, once a tensor could be made there: a device this machine lacks (``cuda`` without a
    GPU, ``cuda:3`` with one) or a misspelt one is a `CommandLineError` before any model loads."""
    if device is None:
        return None
    import torch

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as error:  # torch says "not compiled with CUDA" by assert
        raise CommandLineError(f"--device {device!r} cannot be used on this machine: {short(error)}") from None
    return device


def short(error: BaseException) -> str:
    return " ".join(str(error).split())
