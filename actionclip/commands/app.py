"""`actionclip app MODEL`: serve the web app (Gradio) for a model on this machine."""

from __future__ import annotations

import argparse


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The request limits of the app (`actionclip.app.AppLimits`), shared with `actionclip space`."""
    from ._common import int_at_least, positive_float

    parser.add_argument("--max-upload-mb", type=positive_float, default=50.0, help="largest upload, in MB")
    parser.add_argument("--max-duration", type=positive_float, default=300.0, help="longest video, in seconds")
    parser.add_argument(
        "--concurrency", type=int_at_least(1), default=1, help="requests classified at once; the rest wait in a queue"
    )
    parser.add_argument(
        "--max-queue", type=int_at_least(1), default=64, help="requests that may wait; more are turned away"
    )


def limits_from_args(args: argparse.Namespace):
    from ..app import AppLimits

    return AppLimits(
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        concurrency_limit=args.concurrency,
        max_queue=args.max_queue,
    )


def register(subparsers) -> None:
    from . import Formatter
    from ._common import int_at_least

    parser = subparsers.add_parser(
        "app",
        help="serve a web app (Gradio) to try a model in a browser",
        description="Serve a web page where a user uploads a video, names any actions and sees them ranked, with "
        "the frames the model saw. Needs the app extra: pip install 'actionclip[app]'.",
        formatter_class=Formatter,
        epilog="examples:\n"
        "  actionclip app converted/k400-b16\n"
        "  actionclip app converted/k400-b16 --host 0.0.0.0 --port 8080 --max-upload-mb 20\n",
    )
    parser.add_argument("model", metavar="MODEL", help="model directory or Hub id (with its processor)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int_at_least(1), default=7860, help="port to listen on")
    parser.add_argument("--device", default=None, help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--no-example", action="store_true", help="do not offer the synthetic example clip")
    add_limit_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..app import check_gradio_installed, launch_app
    from ._inputs import load_pipeline

    check_gradio_installed()  # before the model loads: a missing extra is said at once
    # One line per request (timing, queue occupancy) on stderr; other libraries' chatter stays at warnings.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("actionclip.app").setLevel(logging.INFO)
    classifier = load_pipeline(args.model, args.device)
    launch_app(
        classifier,
        host=args.host,
        port=args.port,
        limits=limits_from_args(args),
        example=not args.no_example,
    )
    return 0
