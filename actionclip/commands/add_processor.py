"""``actionclip add-processor MODEL_DIR``: the default `ActionCLIPProcessor` saved beside a model's weights, for a folder
written with ``model.save_pretrained`` alone (the pipeline, ``classify`` and ``export`` refuse such a folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CommandLineError
from ..model_loading import check_model_path, has_saved_processor, read_model_config


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "add-processor",
        "save the default processor beside a model's weights",
        "Write the processor the pipeline, classify and export need (CLIP's tokenizer, the image size, frames and "
        "templates of the model's config) into MODEL_DIR, a folder saved with model.save_pretrained alone. In "
        "Python: ActionCLIPProcessor.from_model_config(ActionCLIPConfig.from_pretrained(d)).save_pretrained(d).",
        examples=("actionclip add-processor my-actionclip",),
        exit_status="0 written, 2 bad input (not an ActionCLIP model folder, a processor already there)",
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="an ActionCLIP model directory")
    parser.add_argument("--overwrite", action="store_true", help="replace a processor already saved there")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.model_dir).expanduser()
    check_model_path(str(folder))
    if not folder.is_dir():
        raise CommandLineError(f"model {args.model_dir!r}: no such directory")
    config = read_model_config(args.model_dir)
    if config is None:
        raise CommandLineError(f"model directory {args.model_dir!r} has no config.json")
    model_type = config.get("model_type")
    if model_type != "actionclip":
        raise CommandLineError(
            f"model directory {args.model_dir!r} holds a {model_type!r} model, not an ActionCLIP one"
        )
    if has_saved_processor(folder) and not args.overwrite:
        raise CommandLineError(f"{args.model_dir!r} already has a processor: pass --overwrite to replace it")

    from ..configuration_actionclip import ActionCLIPConfig
    from ..processing_actionclip import ActionCLIPProcessor

    ActionCLIPProcessor.from_model_config(ActionCLIPConfig.from_pretrained(folder)).save_pretrained(folder)
    print(f"wrote the default processor into {args.model_dir}")
    return 0
