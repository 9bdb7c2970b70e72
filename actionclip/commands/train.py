"""``actionclip train`` (and `training_scripts/run_actionclip.py`): fine-tune ActionCLIP (video-text matching) with
`transformers.Trainer`.

    actionclip train training_scripts/configs/k400_vitb32_8f.json \\
        --train_path /data/k400/train.csv --eval_path /data/k400/val.csv --video_root /data/k400/videos

A JSON argument file may come first; arguments after it override its values. The arguments are
`transformers.HfArgumentParser` dataclasses (`actionclip.training.arguments` and
`actionclip.training.trainer.ActionCLIPTrainingArguments`), so the subcommand hands everything after ``train`` to that
parser, ``--help`` included. Runs unchanged under `torchrun` and `accelerate launch` (DDP, FSDP and DeepSpeed
through the Trainer's options); see training_scripts/README.md. The program itself is
`actionclip.training.program`.
"""

from __future__ import annotations

import json
import logging
import sys

from .. import process_policy  # noqa: F401  (first: our OpenMP wait policy, set before torch loads)

SUMMARY = "fine-tune a model with the transformers Trainer (training_scripts/run_actionclip.py)"


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "train",
        SUMMARY,
        "Fine-tune ActionCLIP (video-text matching) with transformers.Trainer; the same program as "
        "training_scripts/run_actionclip.py, with the same arguments (run 'actionclip train --help' for them). "
        "A JSON argument file may come first; the arguments after it override its values.",
        examples=(
            "actionclip train training_scripts/configs/k400_vitb32_8f.json --train_path k400/train.csv "
            "--video_root k400/videos",
            "torchrun --nproc_per_node 8 -m actionclip train training_scripts/configs/k400_vitb32_8f.json",
        ),
        add_help=False,  # --help is the HfArgumentParser's: it lists the Trainer's options too
    )
    parser.set_defaults(handler=run, passes_arguments_on=True)


def parse_arguments(argv: list[str] | None = None, prog: str | None = None):
    """Dataclasses from the command line; a leading ``.json`` argument file gives defaults that later flags
    override. ``prog`` names the program in usage and errors (default: the script's file name)."""
    from transformers import HfArgumentParser

    from ..training.arguments import DataArguments, ModelArguments
    from ..training.trainer import ActionCLIPTrainingArguments

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, ActionCLIPTrainingArguments), prog=prog)
    if argv and argv[0].endswith(".json"):
        with open(argv[0], encoding="utf-8") as handle:
            values = json.load(handle)
        from_file = []
        for key, value in values.items():
            if isinstance(value, (list, tuple)):
                from_file += [f"--{key}", *map(str, value)]
            elif isinstance(value, dict):
                from_file += [f"--{key}", json.dumps(value)]
            else:
                from_file += [f"--{key}", str(value)]
        argv = from_file + argv[1:]
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None, callbacks=None, prog: str | None = None) -> dict:
    """The training program (`actionclip.training.program.run_training`) on ``argv`` (default ``sys.argv[1:]``);
    returns the train and eval metrics. ``callbacks`` go to the `Trainer`."""
    from ..training.program import run_training

    model_args, data_args, training_args = parse_arguments(argv, prog)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )
    return run_training(model_args, data_args, training_args, callbacks)


def run(args) -> int:
    """``actionclip train``: everything after ``train`` (``args.arguments``) goes to `main`. A bad value the
    program refuses with ``ValueError`` is a `CommandLineError`: one line and exit status 2, as the script's."""
    from ..errors import ActionCLIPError, CommandLineError

    try:
        main(args.arguments, prog="actionclip train")
    except ActionCLIPError:
        raise
    except ValueError as error:
        raise CommandLineError(" ".join(str(error).split())) from error
    return 0
