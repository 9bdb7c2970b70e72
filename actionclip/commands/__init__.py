"""The `actionclip` command and the programs behind it, one module per subcommand.

A command module defines `register(subparsers)`, which adds its parser (`add_command`) and sets `handler=run` (a function
`run(args) -> int`). `build_parser` registers every module of this package that defines `register` (the modules
whose names start with ``_`` hold what several commands share), so adding a command is adding a file. Modules import
torch, transformers and the model code inside their functions, never at import time: `actionclip --help` imports
every module here.

The console script ``actionclip`` is `main`; ``python -m actionclip`` runs it too. The programs of
``training_scripts/`` run the eval and train commands' ``main`` through `exit_on_bad_input`, which ends them as `main`
ends a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import select
import sys
from collections.abc import Callable, Sequence

# The first commands in `actionclip --help`, in this order; the others follow by name.
_FIRST_COMMANDS = ("classify", "info", "convert", "eval", "demo", "card")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Every command's help formatter: descriptions and epilogs keep their line breaks (the examples)."""


class ArgumentParser(argparse.ArgumentParser):
    """Every parser of our programs: a long option also answers to its spelling with ``_`` for ``-``
    (``--num_frames`` for ``--num-frames``, the training script's and transformers' style), while ``--help`` shows
    the one spelling each option is declared with."""

    def _parse_optional(self, arg_string):
        name, equals, value = arg_string.partition("=")
        if name.startswith("--") and "_" in name and name not in self._option_string_actions:
            arg_string = "--" + name[2:].replace("_", "-") + equals + value
        return super()._parse_optional(arg_string)


def add_command(
    subparsers,
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str] = (),
    exit_status: str | None = None,
    add_help: bool = True,
) -> argparse.ArgumentParser:
    """The parser of one subcommand, every command's help laid out alike: ``summary`` in `actionclip --help`,
    ``description``, then the example command lines and what the exit statuses mean.

    A command with a parser of its own (``actionclip train``: transformers' `HfArgumentParser`) passes
    ``add_help=False`` and sets the default ``passes_arguments_on=True``: `main` then hands it every argument after
    the command's name, ``--help`` included, as ``args.arguments``."""
    epilog = "examples:\n" + "".join(f"  {line}\n" for line in examples) if examples else ""
    if exit_status:
        epilog += f"\nexit status: {exit_status}"
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        formatter_class=Formatter,
        epilog=epilog or None,
        add_help=add_help,
    )


def command_modules() -> list:
    """Every command module of this package: the first commands, then the others by name."""
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    names.sort(
        key=lambda name: (_FIRST_COMMANDS.index(name) if name in _FIRST_COMMANDS else len(_FIRST_COMMANDS), name)
    )
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return [module for module in modules if hasattr(module, "register")]


def build_parser() -> argparse.ArgumentParser:
    """The `actionclip` parser with every command's subparser."""
    parser = ArgumentParser(
        prog="actionclip",
        description="ActionCLIP video action recognition.",
        formatter_class=Formatter,
        epilog="examples:\n"
        "  actionclip classify clip.mp4 --labels 'juggling,tai chi,playing guitar' --model converted/k400-b16\n"
        "  actionclip info converted/k400-b16\n"
        "  actionclip convert vit-b-16-8f.pt converted/k400-b16\n"
        "  actionclip card converted/k400-b16 --eval eval/k400\n"
        "\nrun 'actionclip COMMAND --help' for a command's options",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def _quiet_progress_bars() -> None:
    """transformers' and the Hub's progress bars off (stderr is for our progress bar and errors), without importing
    transformers: a command that never needs it (``classify`` on an ONNX export) must not pay its import."""
    transformers_logging = sys.modules.get("transformers.utils.logging")
    hub = sys.modules.get("huggingface_hub.utils")
    if transformers_logging is not None:
        transformers_logging.disable_progress_bar()
    elif hub is not None:
        hub.disable_progress_bars()  # transformers reads it when it is imported
    else:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub is imported (by transformers)


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input is one line on stderr and exit status 2, never a traceback."""
    from ..errors import ActionCLIPError
    from ._inputs import short

    parser = build_parser()
    # Before importing transformers: --help and usage errors answer at once.
    args, arguments = parser.parse_known_args(argv)
    if getattr(args, "passes_arguments_on", False):
        args.arguments = arguments
    elif arguments:
        parser.error(f"unrecognized arguments: {' '.join(arguments)}")  # what parse_args says
    _quiet_progress_bars()
    try:
        status = args.handler(args)
        sys.stdout.flush()  # inside the try: a reader that has gone is noticed here, not at exit
        return status
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # `actionclip stream ... | head -n 1`: the reader has what it wanted, a normal end. Later writes (the
        # interpreter flushes stdout at exit) go nowhere instead of failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ActionCLIPError as error:  # CommandLineError included
        print(f"actionclip {args.command}: error: {short(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # an output path that is a file, a folder we may not write, a full disk
        where = f" {error.filename!r}" if getattr(error, "filename", None) else ""
        print(f"actionclip {args.command}: error:{where} {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"actionclip {args.command}: interrupted", file=sys.stderr)
        return 130


def exit_on_bad_input(program_main: Callable[[], object], program: str) -> None:
    """Run a program of its own (``training_scripts/``: ``program_main()`` parses ``sys.argv``) and exit with its
    status; an `ActionCLIPError`, a ``ValueError`` (a bad argument value) or an ``OSError`` (a missing or unwritable
    path) prints ``<program>: error: <message>`` and exits with 2, as `main` does for the subcommands."""
    from ..errors import ActionCLIPError
    from ._inputs import short

    try:
        status = program_main()
    except (ActionCLIPError, ValueError, OSError) as error:
        print(f"{program}: error: {short(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (a `BrokenPipeError` from elsewhere, such as a
    pipe to a worker, is an error). Linux reports that as POLLERR on the writing end."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is reported whatever is asked for
    except (AttributeError, OSError, ValueError):  # no real stdout (a test's capture)
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))
