"""``actionclip info``: a model folder's architecture, visual prompts, frames, templates and parameter counts."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from ..backbones import backbone_image_size
from ..errors import CommandLineError
from ..model_loading import check_model_path


def register(subparsers) -> None:
    from . import add_command

    info = add_command(
        subparsers,
        "info",
        "describe a model directory",
        "Print a model's architecture, visual prompts, frames, image size, templates and parameter counts.",
        examples=(
            "actionclip info converted/k400-b16",
            "actionclip info converted/k400-b16 --json",
        ),
    )
    info.add_argument("model", help="ActionCLIP model directory (or Hub id)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run)


def _finite_or_none(value: float) -> float | None:
    """``None`` (JSON null) for NaN and infinities, which JSON cannot hold."""
    return value if math.isfinite(value) else None


def model_summary(model) -> dict:
    """What `actionclip info` prints, as a dict."""
    config = model.config

    def count(prefixes: tuple[str, ...] | None = None) -> int:
        return sum(
            parameter.numel()
            for name, parameter in model.named_parameters()
            if prefixes is None or name.startswith(prefixes)
        )

    summary = {
        "architecture": type(model).__name__,
        "model_type": config.model_type,
        "backbone": config.backbone,
        "scores": "softmax" if model.score_bias() is None else "sigmoid",
        "fusion": config.fusion,
        "shift": bool(config.shift),
        "joint": bool(config.joint),
        "num_frames": config.num_frames,
        "image_size": backbone_image_size(config.vision_config),
        "patch_size": config.vision_config.patch_size,
        "projection_dim": config.projection_dim,
        "vision_layers": config.vision_config.num_hidden_layers,
        "vision_width": config.vision_config.hidden_size,
        "text_layers": config.text_config.num_hidden_layers,
        "text_width": config.text_config.hidden_size,
        "logit_scale": _finite_or_none(round(float(model.logit_scale.detach().float().exp()), 4)),
        "eval_logit_scale": config.eval_logit_scale,
        "templates": list(config.templates),
        "training_data": config.training_data,
        "parameters": {
            "total": count(),
            "vision": count(("vision_model.", "visual_projection")),
            "text": count(("text_model.", "text_projection")),
            "visual_prompts": count(("fusion.", "temporal_embedding")),
        },
    }
    import torch

    from ..process_policy import runtime_summary

    summary["runtime"] = {**runtime_summary(), "torch_threads": torch.get_num_threads()}
    if getattr(config, "id2label", None) and type(model).__name__ == "ActionCLIPForVideoClassification":
        summary["labels"] = [config.id2label[i] for i in range(len(config.id2label))]
    return summary


def run(args: argparse.Namespace) -> int:
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

    check_model_path(args.model)
    try:
        config = AutoConfig.from_pretrained(args.model)
        if config.model_type != "actionclip":
            raise CommandLineError(
                f"model {args.model!r} is not an ActionCLIP model (model_type {config.model_type!r})"
            )
        architectures = config.architectures or []
        loader = AutoModelForVideoClassification if "ActionCLIPForVideoClassification" in architectures else AutoModel
        model = loader.from_pretrained(args.model, require_all_weights=True)
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, CommandLineError):
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandLineError(f"cannot load model {args.model!r}: {first_line}") from None
    summary = model_summary(model)
    summary["processor"] = os.path.isfile(os.path.join(args.model, "processor_config.json"))
    if args.json:
        json.dump(summary, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        print()
        return 0
    parameters = summary.pop("parameters")
    templates = summary.pop("templates")
    training_data = summary.pop("training_data")
    labels = summary.pop("labels", None)
    runtime = summary.pop("runtime")
    width = max(len(key) for key in [*summary, *(f"  {key}" for key in [*parameters, *runtime])])
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    print(f"{'training_data':<{width}}  {training_data or 'not recorded'}")
    print("parameters")
    for key, value in parameters.items():
        print(f"  {key:<{width - 2}}  {value:,}")
    print("runtime")
    for key, value in runtime.items():
        print(f"  {key:<{width - 2}}  {value}")
    print(f"templates ({len(templates)})")
    for template in templates:
        print(f"  {template}")
    if labels is not None:
        print(f"labels ({len(labels)})")
        for label in labels:
            print(f"  {label}")
    return 0
