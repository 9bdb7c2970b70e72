"""``actionclip card``: a model card (README.md with Hub metadata) for a model folder, from its config and evaluation
reports (`actionclip.hub.model_card`), checked offline before it is written."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CommandLineError


def register(subparsers) -> None:
    from . import add_command

    card = add_command(
        subparsers,
        "card",
        "write a model card (README.md with Hub metadata) for a model directory",
        "Generate a model card for an ActionCLIP model directory: Hub metadata with a model-index "
        "filled from evaluation reports (every evaluation.json under the directory unless --eval or --no-eval), "
        "base model, visual prompts, frames, templates, intended use and limitations. The card is checked "
        "offline with huggingface_hub before it is written.",
        examples=(
            "actionclip card runs/ucf101-b16",
            "actionclip card runs/ucf101-b16 --eval eval/ucf101 eval/hmdb51 --base-model openai/clip-vit-base-patch16",
            "actionclip card runs/ucf101-b16 --stdout",
        ),
    )
    card.add_argument("model_dir", help="ActionCLIP model directory (with config.json)")
    reports = card.add_mutually_exclusive_group()
    reports.add_argument(
        "--eval", nargs="+", metavar="REPORT", help="evaluation.json files, or folders searched (with subfolders)"
    )
    reports.add_argument("--no-eval", action="store_true", help="no evaluation results in the card")
    card.add_argument("--base-model", default=None, help="Hub id of the CLIP checkpoint it was fine-tuned from")
    card.add_argument("--name", default=None, help="model name (default: the directory's name)")
    card.add_argument("--repo-id", default=None, help="Hub id for the usage example (default: the name)")
    card.add_argument("--summary", default=None, help="the card's opening paragraph")
    card.add_argument("--dataset", action="append", help="Hub id of a training dataset (repeatable)")
    card.add_argument("--training-data", default=None, help="a sentence on what it was trained on")
    card.add_argument("--synthetic", action="store_true", help="trained on synthetic videos (said under limits)")
    card.add_argument("--intended-use", default=None, help="replaces the default intended-use paragraph")
    card.add_argument("--limitation", action="append", help="an extra limitation (repeatable)")
    card.add_argument("--license", default="mit", help="license id for the metadata (default mit)")
    card.add_argument("--tag", action="append", help="an extra Hub tag (repeatable)")
    card.add_argument("--template", default=None, help="a Jinja2 markdown template (default: the packaged one)")
    destination = card.add_mutually_exclusive_group()
    destination.add_argument("--output", default=None, help="where to write (default MODEL_DIR/README.md)")
    destination.add_argument("--stdout", action="store_true", help="print the card instead of writing it")
    card.add_argument("--overwrite", action="store_true", help="replace an existing file")
    card.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.reports import REPORT_JSON_NAME
    from ..hub.model_card import check_model_card, generate_model_card

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise CommandLineError(f"model directory {args.model_dir!r}: no such directory")
    if args.template is not None and not Path(args.template).is_file():
        raise CommandLineError(f"template {args.template!r}: no such file")
    if args.eval is not None:  # a folder stands for every evaluation report under it (as for MODEL_DIR)
        reports = []
        for given in args.eval:
            if not Path(given).is_dir():
                reports.append(given)  # a file (a missing one is reported by the report reader)
                continue
            found = sorted(Path(given).rglob(REPORT_JSON_NAME))
            if not found:
                raise CommandLineError(
                    f"evaluation folder {given!r} holds no {REPORT_JSON_NAME} (searched subfolders)"
                )
            reports.extend(str(path) for path in found)
    elif args.no_eval:
        reports = []
    else:  # every evaluation report saved under the model folder
        reports = [str(path) for path in sorted(model_dir.rglob(REPORT_JSON_NAME))]
    card = generate_model_card(
        model_dir,
        reports,
        args.base_model,
        model_name=args.name,
        repo_id=args.repo_id,
        summary=args.summary,
        datasets=args.dataset or None,
        training_data=args.training_data,
        synthetic_training_data=args.synthetic,
        intended_use=args.intended_use,
        limitations=args.limitation or (),
        license=args.license,
        tags=args.tag or (),
        template_path=args.template,
    )
    check_model_card(card)
    if args.stdout:
        print(str(card))
        return 0
    output = Path(args.output) if args.output else model_dir / "README.md"
    if output.exists() and not args.overwrite:
        raise CommandLineError(f"output {str(output)!r} exists: pass --overwrite to replace it, or --output elsewhere")
    output.parent.mkdir(parents=True, exist_ok=True)
    card.save(output)
    model_index = card.data.to_dict().get("model-index", [])
    metrics = sum(len(result["metrics"]) for entry in model_index for result in entry["results"])
    print(f"wrote {output}: {len(reports)} evaluation report(s), {metrics} model-index metric(s); checked offline")
    return 0
