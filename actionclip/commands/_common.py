"""Arguments shared by the commands (counts, positive numbers, durations, fractions, the label sources). Imports
nothing heavy."""

from __future__ import annotations

import argparse
import math


def int_at_least(minimum: int, note: str = ""):
    """An argparse ``type`` for integers >= ``minimum``; ``note`` is added to the error (e.g. what 0 means)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}" + (f" ({note})" if note else ""))
        return value

    return parse


positive_int = int_at_least(1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite positive number")
    return value


def seconds(text: str) -> float:
    """An argparse ``type`` for a positive duration: ``4``, ``4s``, ``2.5s``, ``500ms``, ``1m``."""
    raw = text.strip().lower()
    factor = 1.0
    for suffix, scale in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if raw.endswith(suffix):
            raw, factor = raw[: -len(suffix)], scale
            break
    try:
        value = float(raw) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 4, 4s, 500ms, 1m)") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return value


def unit_interval(text: str) -> float:
    """An argparse ``type`` for a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 1]")
    return value


def add_label_arguments(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--labels`` / ``--labels-file`` / ``--label-set`` (one required), read by `_inputs.read_labels`.

    Returns the group, so a command can add another source of labels to it.
    """
    from ..data.labels import available_label_lists

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="comma-separated candidate labels")
    source.add_argument(
        "--labels-file",
        help="UTF-8 label file: an 'id,name' CSV (as actionclip/data/label_lists/*.csv, the demo's labels.csv) or one label "
        "per line (a first line 'label', 'name' or 'class' is a header)",
    )
    source.add_argument(
        "--label-set", metavar="NAME", help="a packaged label list: " + ", ".join(available_label_lists())
    )
    return source


def add_window_arguments(parser: argparse.ArgumentParser, stride_help: str) -> None:
    """The labels (`add_label_arguments`), ``--model``, ``--window`` and ``--stride`` of the commands that score
    sliding windows of a video with the zero-shot pipeline (``localize``, ``stream``)."""
    add_label_arguments(parser)
    parser.add_argument("--model", required=True, help="ActionCLIP model directory (or Hub id)")
    parser.add_argument("--window", type=seconds, default=4.0, help="window length, e.g. 4 or 4s (default 4 s)")
    parser.add_argument("--stride", type=seconds, default=1.0, help=stride_help)
