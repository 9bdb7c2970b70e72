"""``actionclip app MODEL``: serve the web app (`actionclip.apps.web_app`) for a model on this machine. The request
limits' options are shared with ``actionclip space``."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ._common import int_at_least, positive_float

# The request limits a user sets on the command line: `AppLimits` field -> (flag, parser of its value, help). The
# defaults are the fields'.
LIMIT_OPTIONS: dict[str, tuple[str, object, str]] = {
    "max_upload_mb": ("--max-upload-mb", positive_float, "largest upload, in MB"),
    "max_duration_s": ("--max-duration", positive_float, "longest video, in seconds"),
    "concurrency_limit": ("--concurrency", int_at_least(1), "requests classified at once; the rest wait in a queue"),
    "max_queue": ("--max-queue", int_at_least(1), "requests that may wait; more are turned away"),
}


def add_served_model_arguments(parser: argparse.ArgumentParser, model_help: str) -> None:
    """MODEL and the request limits: what `actionclip app` serves and what `actionclip space` writes an app for
    (read back by ``args.model`` and `limits_from_args`)."""
    parser.add_argument("model", metavar="MODEL", help=model_help)
    add_limit_arguments(parser)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The request limits of `LIMIT_OPTIONS`, with the `AppLimits` defaults; `limits_from_args` reads them back."""
    from ..apps.web_app import AppLimits

    defaults = {limit.name: limit.default for limit in fields(AppLimits)}
    for name, (flag, parse, help) in LIMIT_OPTIONS.items():
        parser.add_argument(flag, type=parse, default=defaults[name], help=help)


def limits_from_args(args: argparse.Namespace):
    """The `AppLimits` of the options `add_limit_arguments` added."""
    from ..apps.web_app import AppLimits

    return AppLimits(**{name: getattr(args, option_dest(flag)) for name, (flag, _, _) in LIMIT_OPTIONS.items()})


def option_dest(flag: str) -> str:
    """Where argparse stores an option's value: its flag without the dashes, ``-`` read as ``_``."""
    return flag.lstrip("-").replace("-", "_")


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "app",
        "serve a web app (Gradio) to try a model in a browser",
        "Serve a web page where a user uploads a video, names any actions and sees them ranked, with "
        "the frames the model saw. Needs the app extra: pip install 'actionclip[app]'.",
        examples=(
            "actionclip app converted/k400-b16",
            "actionclip app converted/k400-b16 --host 0.0.0.0 --port 8080 --max-upload-mb 20",
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int_at_least(1), default=7860, help="port to listen on")
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--no-example", action="store_true", help="do not offer the synthetic example clip")
    add_served_model_arguments(parser, "model directory or Hub id (with its processor)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..apps import web_app
    from ._inputs import load_pipeline

    web_app.check_gradio_installed()  # before the model loads: a missing extra is said at once
    # One line per request (timing, queue occupancy) on stderr; other libraries' chatter stays at warnings.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    web_app.logger.setLevel(logging.INFO)
    classifier = load_pipeline(args.model, args.device)
    web_app.launch_app(
        classifier,
        host=args.host,
        port=args.port,
        limits=limits_from_args(args),
        example=not args.no_example,
    )
    return 0
