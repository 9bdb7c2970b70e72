"""The training program of `actionclip train` / `training_scripts/run_actionclip.py`, from its parsed arguments
(`actionclip.training.arguments` and `ActionCLIPTrainingArguments`): the model (from an image-text model of any
supported family, from ActionCLIP or from scratch) and its processor, the datasets, the `ActionCLIPTrainer`, then
train, evaluate, save, and the retention reports.

:func:`run_training` is the whole program; the command (`actionclip.commands.train`) parses the arguments and turns
a ``ValueError`` into a one-line message.
"""

from __future__ import annotations

import json
import logging
import os

import torch
import transformers
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..backbones import BACKBONE_FAMILIES
from ..configuration_actionclip import ActionCLIPConfig
from ..data.datasets import DATASET_FORMATS, load_video_dataset
from ..descriptions import load_descriptions, warn_long_descriptions
from ..evaluation.metrics import make_compute_metrics
from ..evaluation.reports import write_evaluation_report
from ..hub.model_card import write_model_card
from ..model_loading import has_saved_processor
from ..modeling_actionclip import ActionCLIPModel
from ..processing_actionclip import ActionCLIPProcessor
from ..prompts import load_templates
from ..tokenizer import load_tokenizer
from .arguments import DataArguments, ModelArguments
from .trainer import ActionCLIPTrainingArguments, apply_lora, build_trainer, freeze_towers, unwrap_actionclip

logger = logging.getLogger("run_actionclip")


def checkpoint_model_type(model_name_or_path: str) -> str | None:
    """The ``model_type`` of the checkpoint ``--model_name_or_path`` names (``"actionclip"``, ``"clip"``,
    ``"siglip"``, ...)."""
    return transformers.PretrainedConfig.get_config_dict(model_name_or_path)[0].get("model_type")


def build_model(model_args: ModelArguments, num_frames: int) -> ActionCLIPModel:
    """The model to fine-tune, sampling ``num_frames`` frames per video: from an image-text checkpoint of any
    supported family (CLIP, MetaCLIP 2, Chinese-CLIP, AltCLIP, SigLIP, SigLIP 2; fresh visual prompts), from an
    ActionCLIP one, or from ``--config_overrides`` alone (from scratch)."""
    overrides = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    prompt_options = {
        "fusion": model_args.fusion,
        "joint": model_args.joint,
        "shift": model_args.shift,
        "contrastive_loss": model_args.contrastive_loss,
        "num_frames": num_frames,
    }
    if model_args.templates:
        prompt_options["templates"] = list(load_templates(model_args.templates))
    load_kwargs = {}
    if model_args.attn_implementation:
        load_kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.model_name_or_path is None:
        if not overrides:
            raise ValueError("give --model_name_or_path (a CLIP or ActionCLIP checkpoint) or --config_overrides")
        config = ActionCLIPConfig(**{**prompt_options, **overrides})
        return ActionCLIPModel(config)
    model_type = checkpoint_model_type(model_args.model_name_or_path)
    if model_type in BACKBONE_FAMILIES:
        return ActionCLIPModel.from_backbone(
            model_args.model_name_or_path, **prompt_options, **overrides, **load_kwargs
        )
    if model_type == "actionclip":
        keep = {"num_frames": num_frames, "contrastive_loss": model_args.contrastive_loss, **overrides}
        return ActionCLIPModel.from_pretrained(model_args.model_name_or_path, **keep, **load_kwargs)
    raise ValueError(
        f"{model_args.model_name_or_path!r} is a {model_type!r} checkpoint, not ActionCLIP nor an image-text model "
        f"of a supported family ({', '.join(sorted(BACKBONE_FAMILIES))})"
    )


def build_processor(model_name_or_path: str | None, config: ActionCLIPConfig) -> ActionCLIPProcessor:
    """The processor of the model `build_model` made from ``model_name_or_path``, for its configuration ``config``:
    the family's own tokenizer, text padding and image statistics, which the trainer saves with the model (so that
    the output folder loads with ``pipeline("zero-shot-video-classification", model=output_dir)``).

    - an image-text checkpoint: `ActionCLIPProcessor.from_backbone` (its tokenizer and image processor); a CLIP one
      the processor of its configuration with the shipped CLIP tokenizer (every CLIP checkpoint's vocabulary, and
      CLIP's image statistics), as the pipeline does for a plain CLIP model, so a folder with the model alone works;
    - an ActionCLIP checkpoint: the processor saved with it, else one for its configuration with the tokenizer
      saved there (`tokenizer.load_tokenizer`: the shipped one for a CLIP model saved without);
    - from scratch: one for the configuration (a CLIP model's, with the shipped tokenizer).

    The number of frames and the templates are the model's (``config``).
    """
    model_type = None if model_name_or_path is None else checkpoint_model_type(model_name_or_path)
    if model_type is None:
        return ActionCLIPProcessor.from_model_config(config)
    if model_type in BACKBONE_FAMILIES:
        return ActionCLIPProcessor.for_converted_backbone(model_name_or_path, config)
    if has_saved_processor(model_name_or_path):
        processor = ActionCLIPProcessor.from_pretrained(model_name_or_path)
        processor.num_frames = config.num_frames  # --num_frames may differ from the checkpoint's
        return processor
    return ActionCLIPProcessor.from_model_config(config, tokenizer=load_tokenizer(model_name_or_path, config))


def _dataset_options(data_args: DataArguments, video_processor) -> dict:
    common = dict(
        num_frames=data_args.num_frames,
        video_processor=video_processor,
        timeout=data_args.timeout,
        skip_bad_samples=data_args.skip_bad_samples,
        max_bad_samples=data_args.max_bad_samples,
        transform_on_device=(
            torch.cuda.is_available() if data_args.transform_on_device is None else data_args.transform_on_device
        ),
    )
    if data_args.dataset_format != "tar":
        common["frame_template"] = data_args.frame_template
    return common


def build_datasets(data_args: DataArguments, training_args: ActionCLIPTrainingArguments, video_processor):
    """``(train dataset, eval dataset)`` of ``--train_path`` / ``--eval_path``; either is None when not given."""
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


def build_novel_dataset(data_args: DataArguments, training_args: ActionCLIPTrainingArguments, video_processor):
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


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: ActionCLIPTrainingArguments,
    callbacks=None,
) -> dict:
    """The training program: build the model and datasets, train and/or evaluate, save; returns the train and eval
    metrics. ``callbacks`` go to the `Trainer`. A bad argument value is a ``ValueError``."""
    if data_args.dataset_format not in DATASET_FORMATS:
        raise ValueError(f"--dataset_format must be one of {DATASET_FORMATS}, got {data_args.dataset_format!r}")
    if training_args.dataloader_persistent_workers:
        logger.warning("persistent DataLoader workers keep the first epoch's random draws; turn them off")

    set_seed(training_args.seed)  # the fresh fusion weights (or a model from scratch) depend on it
    model = build_model(model_args, data_args.num_frames)
    processor = build_processor(model_args.model_name_or_path, model.config)
    train_dataset, eval_dataset = build_datasets(data_args, training_args, processor.video_processor)
    if train_dataset is None and eval_dataset is None:
        raise ValueError("give --train_path and/or --eval_path")
    novel_dataset = build_novel_dataset(data_args, training_args, processor.video_processor)
    if novel_dataset is not None and eval_dataset is None:
        raise ValueError("--novel_eval_path (retention tracking) needs --eval_path: the training classes' test set")
    label_names = (train_dataset or eval_dataset).label_names
    descriptions = None
    if data_args.descriptions:
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

    trainer = build_trainer(
        model,
        training_args,
        processor,
        label_names,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=make_compute_metrics(),
        callbacks=callbacks,
        eval_label_names=eval_dataset.label_names if eval_dataset is not None else None,
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
