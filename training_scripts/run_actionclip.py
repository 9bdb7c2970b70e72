#!/usr/bin/env python
"""Fine-tune ActionCLIP (video-text matching) with `transformers.Trainer`.

    python training_scripts/run_actionclip.py training_scripts/configs/k400_vitb32_8f.json \\
        --train_path /data/k400/train.csv --eval_path /data/k400/val.csv --video_root /data/k400/videos

A JSON argument file may come first; arguments after it override its values. Runs unchanged under `torchrun` and
`accelerate launch` (DDP, FSDP and DeepSpeed through the Trainer's options); see training_scripts/README.md.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import actionclip.process_policy  # noqa: F401  (first: our OpenMP wait policy, set before torch loads)

# isort: split
import torch
import transformers
from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

import actionclip  # noqa: F401  (registers the Auto classes)
from actionclip import ActionCLIPConfig, ActionCLIPModel
from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import DATASET_FORMATS, load_video_dataset
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.training import (
    ActionCLIPTrainer,
    ActionCLIPTrainingArguments,
    apply_lora,
    freeze_towers,
    unwrap_actionclip,
)

logger = logging.getLogger("run_actionclip")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A CLIP checkpoint (transformers CLIPModel folder or Hub id: the visual prompts start fresh) or "
            "an ActionCLIP checkpoint. Leave it out with --config_overrides to train from scratch."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "JSON of ActionCLIPConfig fields. Without --model_name_or_path: the configuration of a model "
            "trained from scratch (e.g. small text_config/vision_config); with a CLIP checkpoint: prompt options."
        },
    )
    fusion: str = field(default="transf", metadata={"help": "Post-network prompt: meanP, conv1d, lstm, transf, ..."})
    joint: bool = field(default=False, metadata={"help": "Joint (space-time) prompt in the vision tower."})
    shift: bool = field(default=False, metadata={"help": "Temporal shift prompt in the vision tower."})
    contrastive_loss: str = field(default="kl", metadata={"help": "'kl' (the paper's) or 'cross_entropy'."})
    templates: str | None = field(
        default=None, metadata={"help": "Prompt templates: a set name ('actionclip16', 'single') or a file."}
    )
    freeze_text_tower: bool = field(default=False, metadata={"help": "Do not train the text tower."})
    freeze_vision_tower: bool = field(default=False, metadata={"help": "Do not train the vision tower."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the towers' attention (0: no LoRA)."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    save_merged_lora: bool = field(default=True, metadata={"help": "With LoRA, also save the merged model."})
    attn_implementation: str | None = field(default=None, metadata={"help": "eager, sdpa, flash_attention_2, ..."})


@dataclass
class DataArguments:
    dataset_format: str = field(default="folder", metadata={"help": f"One of {', '.join(DATASET_FORMATS)}."})
    train_path: str | None = field(
        default=None,
        metadata={
            "help": "folder: class-folder root; list: list file; ucf101/hmdb51: split-file folder; kinetics_csv: "
            "the CSV; tar: shard pattern (train-{000000..000099}.tar); hf: videofolder root or saved dataset."
        },
    )
    eval_path: str | None = field(default=None, metadata={"help": "The same for the evaluation set."})
    video_root: str | None = field(default=None, metadata={"help": "Where list/split/CSV paths are relative to."})
    eval_video_root: str | None = field(default=None, metadata={"help": "video_root of the evaluation set."})
    class_names: str | None = field(
        default=None, metadata={"help": "Class names: a label file (id,name CSV or TXT) or a packaged list name."}
    )
    split: int = field(default=1, metadata={"help": "Official split of UCF101 / HMDB51."})
    num_frames: int = field(default=8, metadata={"help": "Frames per clip (TSN segments)."})
    decode_timeout: float = field(default=30.0, metadata={"help": "Seconds allowed to decode one video."})
    skip_bad_samples: bool = field(default=False, metadata={"help": "Replace unreadable samples, logging them."})
    max_bad_samples: int = field(default=100, metadata={"help": "Fail past this many unreadable samples."})
    frame_template: str = field(default="img_{:05d}.jpg", metadata={"help": "Frame file names of frame folders."})
    transform_on_device: bool | None = field(
        default=None,
        metadata={
            "help": "Workers hand over uint8 frames; augmentation and normalisation run batched on the device "
            "(default: when a GPU is available; on a CPU the per-clip transforms in the workers are cheaper)."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training samples."})
    novel_eval_path: str | None = field(
        default=None,
        metadata={
            "help": "Retention tracking: test videos of held-out classes never trained on (same format as "
            "--eval_path), evaluated zero-shot at every evaluation (--eval_strategy steps --eval_steps N: every N "
            "steps) and at the end, beside the training classes; logged as novel_top1_accuracy, written to "
            "evaluation/novel/evaluation.json and the model card."
        },
    )
    descriptions: str | None = field(
        default=None,
        metadata={"help": "Label descriptions JSON ({label: [sentence, ...]}): extra prompts in evaluation."},
    )
    novel_class_names: str | None = field(default=None, metadata={"help": "Label file of the held-out classes."})
    novel_video_root: str | None = field(default=None, metadata={"help": "video_root of the held-out videos."})


def parse_arguments(argv: list[str] | None = None):
    """Dataclasses from the command line; a leading ``.json`` argument file gives defaults that later flags
    override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, ActionCLIPTrainingArguments))
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


def build_model(model_args: ModelArguments, num_frames: int) -> ActionCLIPModel:
    overrides = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    prompt_options = {
        "fusion": model_args.fusion,
        "joint": model_args.joint,
        "shift": model_args.shift,
        "contrastive_loss": model_args.contrastive_loss,
        "num_frames": num_frames,
    }
    if model_args.templates:
        from actionclip.prompts import load_templates

        prompt_options["templates"] = list(load_templates(model_args.templates))
    load_kwargs = {}
    if model_args.attn_implementation:
        load_kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.model_name_or_path is None:
        if not overrides:
            raise ValueError("give --model_name_or_path (a CLIP or ActionCLIP checkpoint) or --config_overrides")
        config = ActionCLIPConfig(**{**prompt_options, **overrides})
        return ActionCLIPModel(config)
    model_type = transformers.PretrainedConfig.get_config_dict(model_args.model_name_or_path)[0].get("model_type")
    if model_type == "clip":
        return ActionCLIPModel.from_clip(model_args.model_name_or_path, **prompt_options, **overrides, **load_kwargs)
    if model_type == "actionclip":
        keep = {"num_frames": num_frames, "contrastive_loss": model_args.contrastive_loss, **overrides}
        return ActionCLIPModel.from_pretrained(model_args.model_name_or_path, **keep, **load_kwargs)
    raise ValueError(f"{model_args.model_name_or_path!r} is a {model_type!r} checkpoint, not CLIP or ActionCLIP")


def _dataset_options(data_args: DataArguments, video_processor) -> dict:
    common = dict(
        num_frames=data_args.num_frames,
        video_processor=video_processor,
        decode_timeout=data_args.decode_timeout,
        skip_bad_samples=data_args.skip_bad_samples,
        max_bad_samples=data_args.max_bad_samples,
        transform_on_device=(
            torch.cuda.is_available() if data_args.transform_on_device is None else data_args.transform_on_device
        ),
    )
    if data_args.dataset_format != "tar":
        common["frame_template"] = data_args.frame_template
    return common


def build_datasets(data_args: DataArguments, training_args, video_processor):
    common = _dataset_options(data_args, video_processor)
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    train_dataset = eval_dataset = None
    if data_args.train_path:
        train_dataset = load_video_dataset(
            data_args.dataset_format,
            data_args.train_path,
            label_names=data_args.class_names,
            video_root=data_args.video_root,
            split=data_args.split,
            subset="train",
            training=True,
            seed=seed,
            **common,
        )
        if data_args.max_train_samples is not None and hasattr(train_dataset, "records"):
            train_dataset.records = train_dataset.records[: data_args.max_train_samples]
    if data_args.eval_path:
        eval_dataset = load_video_dataset(
            data_args.dataset_format,
            data_args.eval_path,
            label_names=data_args.class_names,
            video_root=data_args.eval_video_root or data_args.video_root,
            split=data_args.split,
            subset="test",
            training=False,
            seed=seed,
            **common,
        )
    return train_dataset, eval_dataset


def build_novel_dataset(data_args: DataArguments, training_args, video_processor):
    """The held-out classes' test set of retention tracking (``--novel_eval_path``), or None."""
    if not data_args.novel_eval_path:
        return None
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    return load_video_dataset(
        data_args.dataset_format,
        data_args.novel_eval_path,
        label_names=data_args.novel_class_names,
        video_root=data_args.novel_video_root or data_args.eval_video_root or data_args.video_root,
        split=data_args.split,
        subset="test",
        training=False,
        seed=seed,
        **_dataset_options(data_args, video_processor),
    )


def write_retention_reports(trainer, eval_dataset, novel_dataset, data_args, output_dir: str) -> list[dict]:
    """Evaluation reports (``evaluation/base`` and ``evaluation/novel``) of the final model on the training classes
    and on the held-out ones, the retention history (held-out top-1 at each evaluation step) in their metadata,
    and the model card written from them."""
    from actionclip.evaluation.reports import write_evaluation_report

    history = trainer.retention_history()
    dataset = os.path.basename(os.path.normpath(data_args.eval_path))
    outputs = {"base": trainer.predict(eval_dataset)}
    with trainer.label_set(trainer.novel_label_names):
        outputs["novel"] = trainer.predict(novel_dataset)
    if not trainer.is_world_process_zero():
        return []
    reports = []
    for split, label_names, protocol in (
        ("base", eval_dataset.label_names, "closed-set (training classes)"),
        ("novel", trainer.novel_label_names, "zero-shot (held-out classes)"),
    ):
        metadata = {
            "model": output_dir,
            "dataset": dataset,
            "dataset_config": f"retention-{split}",
            "split": split,
            "protocol": protocol,
            "frames": data_args.num_frames,
            "templates": list(unwrap_actionclip(trainer.model).config.templates),
            "retention_history": history,
        }
        output = outputs[split]
        reports.append(
            write_evaluation_report(
                os.path.join(output_dir, "evaluation", split), output.predictions, output.label_ids, label_names,
                metadata,
            )
        )  # fmt: skip
    if os.path.isfile(os.path.join(output_dir, "config.json")):
        from actionclip.evaluation.model_card import write_model_card

        write_model_card(output_dir, reports)
    return reports


def resolve_resume(training_args) -> str | None:
    """``--resume_from_checkpoint``: a folder, or ``true``/``latest`` for the last complete checkpoint (a
    half-written one is never a ``checkpoint-<step>`` folder, see `ActionCLIPTrainer`)."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("true", "latest", "last"):
        if not os.path.isdir(training_args.output_dir):
            return None
        return get_last_checkpoint(training_args.output_dir)
    if not os.path.isdir(value):
        raise FileNotFoundError(f"--resume_from_checkpoint {value!r} is not a checkpoint folder")
    return value


def main(argv: list[str] | None = None, callbacks=None) -> dict:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if training_args.should_log else logging.WARNING,
    )
    if data_args.dataset_format not in DATASET_FORMATS:
        raise ValueError(f"--dataset_format must be one of {DATASET_FORMATS}, got {data_args.dataset_format!r}")
    if training_args.dataloader_persistent_workers:
        logger.warning("persistent DataLoader workers keep the first epoch's random draws; turn them off")

    set_seed(training_args.seed)  # the fresh fusion weights (or a model from scratch) depend on it
    model = build_model(model_args, data_args.num_frames)
    processor = ActionCLIPProcessor.from_model_config(model.config)
    train_dataset, eval_dataset = build_datasets(data_args, training_args, processor.video_processor)
    if train_dataset is None and eval_dataset is None:
        raise ValueError("give --train_path and/or --eval_path")
    novel_dataset = build_novel_dataset(data_args, training_args, processor.video_processor)
    if novel_dataset is not None and eval_dataset is None:
        raise ValueError("--novel_eval_path (retention tracking) needs --eval_path: the training classes' test set")
    label_names = (train_dataset or eval_dataset).label_names
    descriptions = None
    if data_args.descriptions:
        from actionclip.descriptions import load_descriptions, warn_long_descriptions

        descriptions = load_descriptions(data_args.descriptions)
        warn_long_descriptions(descriptions, processor.tokenizer, list(model.config.templates))
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: i for i, name in enumerate(label_names)}

    if eval_dataset is None and training_args.eval_strategy != "no":
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False
        training_args.metric_for_best_model = None
    freeze_towers(model, text=model_args.freeze_text_tower, vision=model_args.freeze_vision_tower)
    if model_args.lora_r > 0:
        model = apply_lora(model, model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout)
        model.print_trainable_parameters()

    collator = ActionCLIPCollator(
        label_names,
        processor.tokenizer,
        templates=list(unwrap_actionclip(model).config.templates),
        contrastive_loss=unwrap_actionclip(model).config.contrastive_loss,
        seed=training_args.seed,
    )
    from actionclip.evaluation.metrics import make_compute_metrics

    trainer = ActionCLIPTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=processor,
        compute_metrics=make_compute_metrics(),
        callbacks=callbacks,
        eval_label_names=eval_dataset.label_names if eval_dataset is not None else None,
        tokenizer=processor.tokenizer,
        eval_descriptions=descriptions,
        novel_dataset=novel_dataset,
    )
    trainer.base_model_id = model_args.model_name_or_path

    metrics: dict = {}
    if training_args.do_train or train_dataset is not None:
        if train_dataset is None:
            raise ValueError("--do_train needs --train_path")
        checkpoint = resolve_resume(training_args)
        if checkpoint is not None:
            logger.info("resuming from %s", checkpoint)
        result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
        metrics.update(result.metrics)
    if eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        metrics.update(eval_metrics)
    if novel_dataset is not None:
        write_retention_reports(trainer, eval_dataset, novel_dataset, data_args, training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="ActionCLIP fine-tuning", finetuned_from=model_args.model_name_or_path)
    if model_args.lora_r > 0 and model_args.save_merged_lora and trainer.is_world_process_zero():
        merged_dir = os.path.join(training_args.output_dir, "merged")
        trainer.model.merge_and_unload().save_pretrained(merged_dir)
        processor.save_pretrained(merged_dir)
    return metrics


if __name__ == "__main__":
    from actionclip.commands._exit import exit_on_bad_input

    exit_on_bad_input(main, "run_actionclip.py")
