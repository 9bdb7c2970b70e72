"""`actionclip describe`: write label descriptions with a text-generation model (see `actionclip.descriptions`). The
generation (:func:`generate_descriptions`) is this command's: the descriptions module, which travels with the
pipeline as remote code, says what descriptions are and reads and writes their file, not how they are made."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

DESCRIPTION = (
    "Generate a few sentences describing each label with any transformers text-generation model and write them "
    "as a descriptions JSON ({label: [sentence, ...]}) for 'actionclip classify --descriptions', "
    "'actionclip eval --descriptions' and the training script's --descriptions. Each description is used as an "
    "extra prompt beside the label, in every template. Descriptions longer than the text context (CLIP's 77 tokens, or --for-model's) are counted and "
    "warned about (they would be truncated)."
)


def register(subparsers) -> None:
    from . import add_command
    from ._common import int_at_least

    parser = add_command(
        subparsers,
        "describe",
        "write label descriptions (extra prompts) with a text-generation model",
        DESCRIPTION,
        examples=(
            "actionclip describe ucf101 --model Qwen/Qwen2.5-0.5B-Instruct --output ucf101_descriptions.json",
            "actionclip describe my_labels.txt --model ./my-gpt2 --output d.json --num 5 --seed 1",
        ),
        exit_status="0 ok, 2 bad input (labels, model, prompt, output exists)",
    )
    parser.add_argument(
        "labels", metavar="LABELS", help="a label file (id,name CSV or one per line), a packaged list name "
        "(ucf101, hmdb51, kinetics400, ...) or comma-separated labels",
    )  # fmt: skip
    parser.add_argument("--model", required=True, help="a text-generation model (folder or Hub id)")
    parser.add_argument("--output", "-o", required=True, help="the descriptions JSON to write")
    parser.add_argument("--num", type=int_at_least(1), default=3, help="descriptions per label (default 3)")
    parser.add_argument("--prompt", default=None, help="generation prompt with '{}' for the label")
    parser.add_argument("--max-new-tokens", type=int_at_least(1), default=40, help="tokens generated per sentence")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the pipeline's)")
    parser.add_argument(
        "--for-model",
        default=None,
        help="the ActionCLIP model (folder or ONNX export) the descriptions are for: their tokens are counted with "
        "its tokenizer against its text context (default: CLIP's tokenizer, 77 tokens)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT when it exists")
    parser.set_defaults(handler=run)


def _labels(text: str) -> list[str]:
    from ..data.labels import available_label_lists, load_label_names
    from ..errors import InvalidLabelsError

    if Path(text).is_file() or text.lower() in available_label_lists():
        return load_label_names(text)
    if "," in text:
        labels = [label.strip() for label in text.split(",") if label.strip()]
        if labels:
            return labels
    raise InvalidLabelsError(
        f"LABELS {text!r} is neither a label file, a packaged list ({', '.join(available_label_lists())}) nor "
        "comma-separated labels"
    )


def run(args: argparse.Namespace) -> int:
    from ..apps import label_descriptions
    from ..descriptions import warn_long_descriptions, write_descriptions
    from ..errors import CommandLineError

    labels = _labels(args.labels)
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise CommandLineError(f"output {str(output)!r} exists: pass --overwrite to replace it")
    prompt = args.prompt or label_descriptions.DEFAULT_GENERATION_PROMPT
    if "{}" not in prompt:
        raise CommandLineError(f"--prompt needs a '{{}}' for the label, got {prompt!r}")
    from transformers import pipeline

    from ..tokenizer import CONTEXT_LENGTH, load_clip_tokenizer
    from ._inputs import check_device, model_tokenizer

    # The model the descriptions are for, checked before the slow generation.
    if args.for_model is not None:
        tokenizer, context_length = model_tokenizer(args.for_model)
    else:
        tokenizer, context_length = load_clip_tokenizer(), CONTEXT_LENGTH

    try:
        generator = pipeline("text-generation", model=args.model, device=check_device(args.device))
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandLineError(f"cannot load text-generation model {args.model!r}: {first_line}") from None
    descriptions = label_descriptions.generate_descriptions(
        labels, generator, args.num, prompt, args.max_new_tokens, do_sample=not args.greedy, seed=args.seed
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        too_long = warn_long_descriptions(descriptions, tokenizer, limit=context_length)
    for warning in caught:
        print(f"actionclip describe: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    write_descriptions(output, descriptions)
    count = sum(map(len, descriptions.values()))
    print(
        f"wrote {output}: {count} descriptions of {len(labels)} labels ({too_long} longer than {context_length} tokens)"
    )
    return 0
