"""What the commands read from their arguments: video files and folders, candidate labels, a model for the zero-shot
pipeline. Every problem is a `CommandLineError` naming the argument; nothing here imports torch before a model is
loaded."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from ..data.video_files import VIDEO_EXTENSIONS, list_video_files
from ..errors import CommandLineError


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
        return read_label_file(path)  # read with a byte cap (`text_files.read_text_file`)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandLineError(f"labels file {args.labels_file!r}: {error}") from None


def load_pipeline(model: str, device: str | None = None):
    """The zero-shot pipeline of ``model``; loading failures become a `CommandLineError`.

    A local directory is checked first (cheaply, from its ``config.json``): a missing one fails at once, a
    closed-set model is refused before its weights load, and an ActionCLIP model's weight files must hold every
    tensor (`MissingWeightsError` before anything is read, instead of random weights and transformers' report).
    Warnings while loading (a plain CLIP model converted on the fly) are printed as one line each.
    """
    check_model_path(model)
    kind = check_model_kind(model)
    check_processor(model)
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


def check_model_path(model: str) -> None:
    """A model given as a local path must exist (a Hub id such as ``org/name`` is left to transformers).

    A name is local when it is absolute, starts with ``.`` or ``~``, has more than one ``/``, or its first part is
    an existing local directory (``demo_output/model_tranf`` where ``demo_output/`` exists): such a typo fails at
    once, naming close matches, instead of after the Hub's retries.
    """
    path = Path(model).expanduser()
    first_part = Path(model).parts[0] if Path(model).parts else ""
    looks_local = (
        path.is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or (model.count("/") == 1 and Path(first_part).is_dir())
    )
    if looks_local and not path.is_dir():
        import difflib

        parent = path.parent
        siblings = sorted(entry.name for entry in parent.iterdir() if entry.is_dir()) if parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=3)
        hint = f" (did you mean {', '.join(repr(str(parent / name)) for name in close)}?)" if close else ""
        raise CommandLineError(f"model {model!r}: no such directory{hint}")


def check_model_kind(model: str) -> str | None:
    """A local model directory must hold an ActionCLIP model or a CLIP one (see `model_kinds`): its kind, or None
    for a Hub id or a directory without ``config.json``."""
    config_path = Path(model).expanduser() / "config.json"
    if not config_path.is_file():
        return None  # a Hub id, or a directory transformers will report on
    from ..model_kinds import zero_shot_model_kind

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandLineError(f"model {model!r}: unreadable config.json ({short(error)})") from None
    return zero_shot_model_kind(config if isinstance(config, dict) else {}, model)


def check_processor(model: str) -> None:
    """A local ActionCLIP model directory must hold its processor; the error says which command writes one (the
    library's own error, raised later, offers Python)."""
    folder = Path(model).expanduser()
    config_path = folder / "config.json"
    if not config_path.is_file() or (folder / "processor_config.json").is_file():
        return
    from ..model_kinds import CLOSED_SET_ARCHITECTURE, ZERO_SHOT

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        model_type, architectures = config.get("model_type"), config.get("architectures") or []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return  # check_model_kind says what is wrong with it
    # A plain CLIP folder gets CLIP's processor on the fly; a closed-set one is refused for what it is.
    if model_type == ZERO_SHOT and CLOSED_SET_ARCHITECTURE not in architectures:
        raise CommandLineError(
            f"model directory {model!r} has no processor (processor_config.json): write the default one beside the "
            f"weights with `actionclip add-processor {model}`"
        )


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
