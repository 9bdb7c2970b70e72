"""The library side of training ActionCLIP with `transformers.Trainer`.

- :class:`ActionCLIPTrainingArguments`: `TrainingArguments` with the paper's recipe as defaults (AdamW with betas
  (0.9, 0.98), eps 1e-8, weight decay 0.2, learning rate 5e-6 for CLIP and 10x for the fusion, linear warm-up over
  the first 10% then cosine decay, evaluation and a checkpoint every epoch, the best top-1 model kept).
- :func:`actionclip_parameter_groups`: CLIP's text side, vision side and the fusion as three AdamW groups.
- :func:`freeze_towers`, :func:`apply_lora`: what is trained.
- :class:`ActionCLIPTrainer`: the optimizer from those groups; evaluation that scores every video against the
  template-ensembled prompts of the whole label set, so `compute_metrics` gets ``(B, N)`` class scores; checkpoints
  written to a temporary folder and renamed when complete, so `get_last_checkpoint` never returns a half-written one.
  :func:`build_trainer` makes one with the collator of the model's prompts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..backbones import DEFAULT_BACKBONE, backbone_family, backbone_image_size
from ..data.collator import CLASS_PROMPT_KEYS
from ..errors import ProcessorArgumentError
from ..scoring import encode_label_texts, template_ensemble_probs
from ..tokenizer import load_clip_tokenizer, load_tokenizer
from .distillation import FeatureDistillation, FrozenTeacher, check_distill_weight, distillation_parts

logger = logging.getLogger(__name__)

# A checkpoint is written under this name and renamed to `checkpoint-<step>` once complete. The name does not match
# transformers' `^checkpoint-\d+$`, so `get_last_checkpoint` and the checkpoint rotation never see it.
STAGING_PREFIX = ".tmp-" + PREFIX_CHECKPOINT_DIR + "-"

PARAMETER_GROUPS = ("text", "vision", "fusion")
# The batch key under which `_prepare_inputs` hands the teacher's features to `compute_loss` (never to the model).
DISTILLATION_TARGETS = "distillation_targets"
# Metric prefix of the held-out ("novel") classes evaluated for retention tracking.
NOVEL_PREFIX = "novel"


def lora_target_modules(backbone: str = DEFAULT_BACKBONE) -> str:
    """The modules LoRA adapts in a model of the ``backbone`` family (peft's ``target_modules``, a regular expression
    matched against whole module names): the attention projections its family names
    (`BackboneFamily.lora_target_modules`: CLIP's ``q_proj`` ... ``out_proj``, BERT's and RoBERTa's ``query``,
    ``key``, ``value`` and ``attention.output.dense``) inside the encoder layers of the two towers.

    Only modules inside numbered encoder layers: SigLIP's attention-pooling head is an ``nn.MultiheadAttention``
    whose ``out_proj`` it multiplies by its weight directly, never calling the module, so an adapter there would
    never act; the head stays frozen, as CLIP's final LayerNorm and projections do. The fusion has its own names
    outside the towers and is trained in full (`apply_lora`).
    """
    names = "|".join(re.escape(name) for name in backbone_family(backbone).lora_target_modules)
    return rf".*(?:text_model|vision_model)\..*\.layers?\.\d+\.(?:.*\.)?(?:{names})"


LORA_TARGET_MODULES = lora_target_modules()  # a CLIP model's


@dataclass
class ActionCLIPTrainingArguments(TrainingArguments):
    """`TrainingArguments` with ActionCLIP's recipe as defaults, and the options of its parameter groups."""

    learning_rate: float = field(default=5e-6, metadata={"help": "Learning rate of the CLIP towers (paper: 5e-6)."})
    weight_decay: float = field(default=0.2, metadata={"help": "AdamW weight decay (paper: 0.2)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1 (paper: 0.9)."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (paper: 0.98)."})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon (paper: 1e-8)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Decay after the warm-up (paper: cosine)."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Linear warm-up: steps, or a fraction (< 1) of all steps (paper: 0.1)."}
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate (top-1 / top-5)."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to write a checkpoint."})
    metric_for_best_model: str | None = field(
        default="top1_accuracy", metadata={"help": "Metric that selects the best checkpoint."}
    )
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Load the best checkpoint at the end."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every column for the collator."})
    label_names: list[str] | None = field(default_factory=lambda: ["labels"], metadata={"help": "Label keys."})
    fusion_lr_ratio: float = field(
        default=10.0, metadata={"help": "Learning rate of the fusion (visual prompt) as a multiple of CLIP's."}
    )
    vision_lr_ratio: float = field(
        default=1.0, metadata={"help": "Learning rate of the vision tower as a multiple of the text tower's."}
    )
    weight_decay_norm_and_bias: bool = field(
        default=True,
        metadata={
            "help": "Apply weight decay to biases, LayerNorm weights and logit_scale too, as the original did; "
            "false exempts them (one-dimensional parameters)."
        },
    )
    eval_logit_scale: float | None = field(
        default=None,
        metadata={
            "help": "Similarity multiplier in evaluation (the original used 100); default: the model config's eval_logit_scale, "
            "else the learned one."
        },
    )
    distill_weight: float = field(
        default=0.0,
        metadata={
            "help": "Frozen-teacher distillation (keeps zero-shot): the weight of the loss that pulls the student's "
            "features (through a residual projector) towards the starting model's, frozen; 0: off."
        },
    )
    distill_on: str = field(
        default="video,text",
        metadata={
            "help": "What is distilled: video (the teacher's frame-averaged embedding), text (the prompts' "
            "embeddings) or video,text; in Python also a tuple such as ('video', 'text')."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.distill_weight = check_distill_weight(self.distill_weight)
        self.distill_on = distillation_parts(self.distill_on)


# ----------------------------------------------------------------------------------------------------------------
# What is trained, and at which learning rate


def parameter_group_of(name: str) -> str:
    """``"fusion"``, ``"vision"`` or ``"text"`` for a parameter name of an `ActionCLIPModel` (optionally wrapped by
    PEFT or DDP): the fusion is the visual prompt after the frame encoder; the vision side is CLIP's vision tower,
    its projection and the joint prompt's temporal embedding; everything else (text tower, text projection,
    ``logit_scale``) is the text side."""
    parts = name.split(".")
    if "fusion" in parts:
        return "fusion"
    if "vision_model" in parts or "visual_projection" in parts or "temporal_embedding" in parts:
        return "vision"
    return "text"


def actionclip_parameter_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float = 0.2,
    fusion_lr_ratio: float = 10.0,
    vision_lr_ratio: float = 1.0,
    weight_decay_norm_and_bias: bool = True,
) -> list[dict]:
    """AdamW parameter groups of the trainable parameters: ``text`` at ``learning_rate``, ``vision`` at
    ``learning_rate * vision_lr_ratio`` and ``fusion`` at ``learning_rate * fusion_lr_ratio`` (the original's
    ``lr``, ``lr * ratio``, ``lr * f_ratio``). With ``weight_decay_norm_and_bias=False`` each group is split in
    two, the one-dimensional parameters (biases, norms, ``logit_scale``) without decay. Each group has a ``name``
    (``"text"``, ``"vision/no_decay"``, ...); empty groups are left out."""
    ratios = {"text": 1.0, "vision": vision_lr_ratio, "fusion": fusion_lr_ratio}
    for key, ratio in ratios.items():
        if not ratio > 0:
            raise ValueError(f"the {key} learning-rate ratio must be > 0, got {ratio}")
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = weight_decay_norm_and_bias or parameter.ndim >= 2
        buckets.setdefault((parameter_group_of(name), decay), []).append(parameter)
    groups = []
    for group in PARAMETER_GROUPS:
        for decay in (True, False):
            params = buckets.get((group, decay))
            if params:
                groups.append(
                    {
                        "name": group if decay else f"{group}/no_decay",
                        "params": params,
                        "lr": learning_rate * ratios[group],
                        "weight_decay": weight_decay if decay else 0.0,
                    }
                )
    if not groups:
        raise ValueError("the model has no trainable parameter (every tower frozen and no fusion weights?)")
    return groups


# The pair logits' temperature and bias (SigLIP's, or the sigmoid objective's): in the text group, never frozen with it.
LOGIT_PARAMETERS = ("logit_scale", "logit_bias")


def freeze_towers(model: nn.Module, text: bool = False, vision: bool = False) -> None:
    """Stop training the text tower (+ text projection) and/or the vision tower (+ visual projection); the fusion,
    ``logit_scale`` and ``logit_bias`` stay trainable."""
    for name, parameter in model.named_parameters():
        group = parameter_group_of(name)
        if (text and group == "text" and not set(LOGIT_PARAMETERS) & set(name.split("."))) or (
            vision and group == "vision" and "temporal_embedding" not in name.split(".")
        ):
            parameter.requires_grad_(False)


def apply_lora(model: nn.Module, r: int = 8, alpha: float = 16, dropout: float = 0.0):
    """Wrap an `ActionCLIPModel` with LoRA adapters (peft) on the attention projections of both towers, as its
    backbone family names them (:func:`lora_target_modules`: CLIP's ``q_proj``, ``k_proj``, ``v_proj``,
    ``out_proj``; BERT's / RoBERTa's ``query``, ``key``, ``value``, ``attention.output.dense``); the fusion is trained
    fully and saved with the adapter (``modules_to_save``). Everything else is frozen.

    Returns the `peft.PeftModel`; `merge_and_unload()` gives back a plain `ActionCLIPModel`.
    """
    from peft import LoraConfig, get_peft_model

    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"lora r must be a positive integer, got {r!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"lora dropout must be in [0, 1), got {dropout!r}")
    fusion = getattr(model, "fusion", None)
    modules_to_save = ["fusion"] if fusion is not None and any(True for _ in fusion.parameters()) else None
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_modules(model.config.backbone),
        modules_to_save=modules_to_save,
        bias="none",
    )
    return get_peft_model(model, config)


def model_tokenizer(model: nn.Module):
    """The tokenizer of an `ActionCLIPModel` when none is given: for a CLIP model the shipped CLIP tokenizer (the
    same ids as every CLIP checkpoint's); for another family the one saved where the model was loaded from (its
    folder or Hub id, `tokenizer.load_tokenizer`).

    Raises:
        ProcessorArgumentError: a model of another family that was not loaded from anywhere.
        OSError: its folder holds no tokenizer (named).
    """
    config = model.config
    if config.backbone == DEFAULT_BACKBONE:
        return load_clip_tokenizer()
    location = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
    if location:
        return load_tokenizer(location, config)
    raise ProcessorArgumentError(
        f"a {config.backbone} model loaded from no folder has no tokenizer to fall back to: pass the trainer "
        "processing_class=ActionCLIPProcessor.from_backbone(the backbone's folder) or tokenizer="
    )


def unwrap_actionclip(model: nn.Module) -> nn.Module:
    """The `ActionCLIPModel` inside DDP / accelerate / PEFT wrappers (PEFT's LoRA layers stay in place)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


# ----------------------------------------------------------------------------------------------------------------
# The Trainer


class DescribedProgressCallback(ProgressCallback):
    """The Trainer's progress bar, with a description (``"training: 30/240 steps"`` alone says nothing)."""

    def __init__(self, description: str = "training", max_str_len: int = 100):
        super().__init__(max_str_len=max_str_len)
        self.description = description

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if getattr(self, "training_bar", None) is not None:
            self.training_bar.set_description(self.description)
            self.training_bar.unit = "step"


class _DatasetEpochCallback(TrainerCallback):
    """Tells the training dataset which epoch starts, on every path into an epoch.

    The datasets draw each sample's randomness from ``(seed, epoch, index)`` (`data.datasets`). accelerate's
    ``DataLoaderShard.set_epoch`` forwards the epoch to the dataset only when the sampler is not wrapped: after a
    mid-epoch resume the Trainer iterates a ``skip_first_batches`` loader whose sampler is wrapped, and the dataset
    would keep epoch 0 for the rest of the resumed epoch. Setting it here, before the epoch's loader (and its worker
    processes, which get a copy of the dataset) is created, does not depend on that.
    """

    def __init__(self, trainer: Trainer):
        self._trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        dataset = self._trainer.train_dataset
        if hasattr(dataset, "set_epoch"):
            # ``state.epoch`` is the epoch's index at its start, and epoch + fraction done after a mid-epoch resume.
            dataset.set_epoch(int(state.epoch or 0))


class _ClearProjectorGradientsCallback(TrainerCallback):
    """Clears the distillation projectors' gradients after each optimizer step: the Trainer clears only the model's,
    and the projectors live outside it."""

    def __init__(self, distillation: nn.Module):
        self._distillation = distillation

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._distillation.zero_grad(set_to_none=True)


class ActionCLIPTrainer(Trainer):
    """`Trainer` for ActionCLIP.

    Args (besides the Trainer's):
        eval_label_names: the class names of the evaluation set (default: ``eval_dataset.label_names``).
        eval_templates: the templates ensembled in evaluation (default: the model's ``config.templates``).
        tokenizer: the model's tokenizer for the evaluation prompts (default: the processing class's, else the one
            saved with the model, `model_tokenizer`).
        eval_descriptions: label descriptions (``{label: [sentence, ...]}``), extra evaluation prompts averaged with
            each class name per template (`actionclip.descriptions`).
        novel_dataset, novel_label_names: retention tracking: held-out classes never trained on (their videos, with
            labels indexing ``novel_label_names``; default ``novel_dataset.label_names``), evaluated zero-shot after
            every evaluation of the training classes (``eval_strategy="steps"``, ``eval_steps=N``: every N steps;
            and whenever `evaluate()` is called, e.g. at the end). Logged as ``novel_top1_accuracy``, ... and
            ``novel_harmonic_mean`` (of the two top-1s); :meth:`retention_history` collects them by step.
        progress_description: the description of the training progress bar (when progress bars are on).
        distillation_teacher: the teacher of frozen-teacher distillation (``args.distill_weight > 0``), frozen where it
            is; default: a frozen copy of ``model`` as it is now, the starting model (for a LoRA model: ``model``
            with its adapters off). See `actionclip.training.distillation`.

    With ``args.distill_weight > 0`` the training loss is the contrastive loss plus the distillation loss, both
    logged (``contrastive_loss``, ``distillation_loss``, and ``distillation_<part>_loss``: the unweighted
    ``1 - cos`` of each part); the projectors (`distillation`) are trained in a group of their own (``distillation``,
    the fusion's learning rate) and saved in each checkpoint, so a resumed run continues exactly.

    Evaluation scores each video against the ``K * N`` prompts of the label set (encoded once per evaluation) and
    returns template-ensembled class probabilities ``(B, N)`` (`scoring.template_ensemble_probs`) as predictions;
    ``eval_loss`` is their negative log-likelihood of the true class.
    """

    def __init__(
        self,
        *args,
        eval_label_names: Sequence[str] | None = None,
        eval_templates: Sequence[str] | None = None,
        tokenizer=None,
        eval_descriptions: dict[str, list[str]] | None = None,
        novel_dataset=None,
        novel_label_names: Sequence[str] | None = None,
        progress_description: str = "training",
        distillation_teacher: nn.Module | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.pop_callback(ProgressCallback) is not None:  # the same bar, described
            self.add_callback(DescribedProgressCallback(progress_description))
        # The loss is a per-batch mean that ignores `num_items_in_batch`: the Trainer must scale it for gradient
        # accumulation itself, and must not multiply it by the number of processes.
        self.model_accepts_loss_kwargs = False
        self.eval_label_names = list(eval_label_names) if eval_label_names is not None else None
        self.eval_templates = list(eval_templates) if eval_templates is not None else None
        self.eval_descriptions = eval_descriptions
        self._eval_tokenizer = tokenizer
        self._eval_text_embeds: torch.Tensor | None = None
        self._eval_num_templates = 1
        self._staging_dir: str | None = None
        self.novel_dataset = novel_dataset
        if novel_dataset is not None and novel_label_names is None:
            novel_label_names = getattr(novel_dataset, "label_names", None)
            if novel_label_names is None:
                raise ValueError("novel_dataset needs novel_label_names (or a dataset with label_names)")
        self.novel_label_names = list(novel_label_names) if novel_label_names is not None else None
        self._label_names_override: list[str] | None = None
        self.add_callback(_DatasetEpochCallback(self))
        self.distillation: FeatureDistillation | None = None
        self._loss_parts: dict[str, torch.Tensor] = {}
        self._loss_part_steps = 0
        if getattr(self.args, "distill_weight", 0.0) > 0:
            self.distillation = self._build_distillation(distillation_teacher)
            self.add_callback(_ClearProjectorGradientsCallback(self.distillation))
        elif distillation_teacher is not None:
            raise ValueError("distillation_teacher is given but args.distill_weight is 0 (distillation is off)")

    def _build_distillation(self, teacher_model: nn.Module | None) -> FeatureDistillation:
        """The teacher (made now, before any training step or checkpoint load: the starting model) and the
        projectors, on the training device."""
        if self.model is None:
            raise ValueError("distillation needs the model (model_init is not supported with distill_weight > 0)")
        device = self.args.device
        if teacher_model is None:
            teacher = FrozenTeacher(self.model, copy_model=True, device=device)
        else:
            teacher = FrozenTeacher(unwrap_actionclip(teacher_model), copy_model=False, device=device)
        dim = unwrap_actionclip(self.model).config.projection_dim
        distillation = FeatureDistillation(
            teacher, dim, self.args.distill_on, self.args.distill_weight, self.args.seed
        )
        return distillation.to(device)

    # ------------------------------------------------------------------ training

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """`Trainer.train`, except that resuming from a checkpoint already at ``max_steps`` trains nothing.

        transformers' loop takes one optimizer step before it checks ``max_steps``, so resuming a finished run (one
        whose ``max_steps`` is not a whole number of epochs) would train one step too many and write a checkpoint
        past the end. Here the checkpoint's weights are loaded and its state kept instead.
        """
        finished = self._finished_checkpoint_state(resume_from_checkpoint)
        if finished is None:
            return super().train(resume_from_checkpoint, *args, **kwargs)
        from transformers.trainer_utils import TrainOutput

        logger.warning(
            "%s already reached max_steps=%d (global step %d): nothing left to train; keeping its weights",
            resume_from_checkpoint,
            self.args.max_steps,
            finished.global_step,
        )
        self._load_from_checkpoint(resume_from_checkpoint)
        self.state = finished
        losses = [entry["train_loss"] for entry in finished.log_history if "train_loss" in entry]
        metrics = {"train_loss": losses[-1]} if losses else {}
        return TrainOutput(finished.global_step, losses[-1] if losses else float("nan"), metrics)

    def _finished_checkpoint_state(self, checkpoint):
        """The `TrainerState` of ``checkpoint`` when its global step is at or past ``args.max_steps``, else None."""
        if not isinstance(checkpoint, (str, os.PathLike)) or self.args.max_steps <= 0:
            return None
        state_file = os.path.join(checkpoint, "trainer_state.json")
        if not os.path.isfile(state_file):
            return None
        from transformers import TrainerState

        state = TrainerState.load_from_json(state_file)
        return state if state.global_step >= self.args.max_steps else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's contrastive loss, plus the distillation loss when the batch carries the teacher's targets
        (`_prepare_inputs` adds them in training with ``distill_weight > 0``); both parts are logged."""
        targets = inputs.get(DISTILLATION_TARGETS)
        if targets is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = {key: value for key, value in inputs.items() if key != DISTILLATION_TARGETS}
        contrastive, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        student = {"video": outputs["video_embeds"], "text": outputs["text_embeds"]}
        distillation, per_part = self.distillation(student, targets)
        parts = {"contrastive_loss": contrastive, "distillation_loss": distillation}
        parts.update({f"distillation_{part}_loss": value for part, value in per_part.items()})
        self._record_loss_parts(parts)
        loss = contrastive + distillation
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """The Trainer's step; then the distillation projectors' gradients averaged over the processes."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.distillation is not None:
            self.distillation.average_gradients()
        return loss

    def _record_loss_parts(self, parts: dict[str, torch.Tensor]) -> None:
        for name, value in parts.items():
            self._loss_parts[name] = self._loss_parts.get(name, 0.0) + value.detach().float()
        self._loss_part_steps += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log; a training log (``loss``) also gets the loss's parts since the last one, averaged
        over the steps and the processes as ``loss`` is."""
        if "loss" in logs and self._loss_part_steps:
            names = sorted(self._loss_parts)
            values = torch.stack([self._loss_parts[name] for name in names]) / self._loss_part_steps
            if self.accelerator.num_processes > 1:
                values = self.accelerator.gather(values[None]).mean(dim=0)
            logs.update({name: value for name, value in zip(names, values.tolist(), strict=True)})
            self._loss_parts, self._loss_part_steps = {}, 0
        super().log(logs, start_time)

    # ------------------------------------------------------------------ optimizer

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """AdamW (or the ``--optim`` choice) over :func:`actionclip_parameter_groups`, and the distillation
        projectors (a ``distillation`` group at the fusion's learning rate: they start fresh, as the fusion does)."""
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            args = self.args
            groups = actionclip_parameter_groups(
                opt_model,
                args.learning_rate,
                args.weight_decay,
                getattr(args, "fusion_lr_ratio", 10.0),
                getattr(args, "vision_lr_ratio", 1.0),
                getattr(args, "weight_decay_norm_and_bias", True),
            )
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(args, opt_model)
            optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k not in ("params", "model")}
            if self.distillation is not None:
                groups.append(
                    {
                        "name": "distillation",
                        "params": list(self.distillation.parameters()),
                        "lr": args.learning_rate * getattr(args, "fusion_lr_ratio", 10.0),
                        "weight_decay": args.weight_decay,
                    }
                )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """The Trainer's evaluation; when the held-out ``novel_dataset`` is set and the training classes' own
        evaluation set is evaluated, the novel classes too (see the class docstring), their metrics merged in."""
        self._eval_text_embeds = None  # the text tower may have changed since the last evaluation
        try:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            self._eval_text_embeds = None
        if self.novel_dataset is not None and eval_dataset is None and metric_key_prefix == "eval":
            metrics.update(self._evaluate_novel(metrics.get(f"{metric_key_prefix}_top1_accuracy"), ignore_keys))
        return metrics

    def _evaluate_novel(self, base_top1: float | None, ignore_keys=None) -> dict:
        """Zero-shot metrics on the held-out classes (``novel_*``), logged at the current step."""
        with self.label_set(self.novel_label_names):
            output = self.evaluation_loop(
                self.get_eval_dataloader(self.novel_dataset),
                description="Retention (held-out classes)",
                ignore_keys=ignore_keys,
                metric_key_prefix=NOVEL_PREFIX,
            )
        metrics = dict(output.metrics)
        novel_top1 = metrics.get(f"{NOVEL_PREFIX}_top1_accuracy")
        if base_top1 is not None and novel_top1 is not None:
            total = base_top1 + novel_top1
            metrics[f"{NOVEL_PREFIX}_harmonic_mean"] = 0.0 if total == 0 else 2 * base_top1 * novel_top1 / total
        self.log(metrics)
        return metrics

    def retention_history(self) -> list[dict]:
        """Per evaluation step: ``step``, ``base_top1_accuracy`` (training classes), ``novel_top1_accuracy``
        (held-out classes) and ``harmonic_mean``, from the logged metrics (they survive a resume)."""
        base_by_step = {
            entry["step"]: entry["eval_top1_accuracy"]
            for entry in self.state.log_history
            if "eval_top1_accuracy" in entry and "step" in entry
        }
        history = []
        for entry in self.state.log_history:
            if f"{NOVEL_PREFIX}_top1_accuracy" in entry and "step" in entry:
                history.append(
                    {
                        "step": entry["step"],
                        "base_top1_accuracy": base_by_step.get(entry["step"]),
                        "novel_top1_accuracy": entry[f"{NOVEL_PREFIX}_top1_accuracy"],
                        "harmonic_mean": entry.get(f"{NOVEL_PREFIX}_harmonic_mean"),
                    }
                )
        return history

    @contextlib.contextmanager
    def label_set(self, label_names: Sequence[str] | None):
        """Evaluate and predict against ``label_names`` instead of the evaluation set's classes, inside the block."""
        saved = self._label_names_override
        self._label_names_override = list(label_names) if label_names is not None else None
        self._eval_text_embeds = None
        try:
            yield
        finally:
            self._label_names_override = saved
            self._eval_text_embeds = None

    def predict(self, *args, **kwargs):
        self._eval_text_embeds = None
        try:
            return super().predict(*args, **kwargs)
        finally:
            self._eval_text_embeds = None

    def _label_set_embeddings(self, model: nn.Module) -> torch.Tensor:
        if self._eval_text_embeds is None:
            labels = self._label_names_override or self.eval_label_names
            if labels is None:
                labels = getattr(self.eval_dataset, "label_names", None)
            if labels is None:
                raise ValueError(
                    "evaluation needs the class names: pass eval_label_names or use a dataset with label_names"
                )
            templates = self.eval_templates or list(model.config.templates)
            tokenizer = self._eval_tokenizer or getattr(self.processing_class, "tokenizer", None)
            if tokenizer is None:
                tokenizer = self._eval_tokenizer = model_tokenizer(model)
            self._eval_text_embeds = encode_label_texts(model, tokenizer, labels, templates, self.eval_descriptions)
            self._eval_num_templates = len(templates)
        return self._eval_text_embeds

    def _prepare_inputs(self, inputs: dict) -> dict:
        """`Trainer._prepare_inputs` (tensors to the device), then uint8 ``frames`` from datasets with
        ``transform_on_device`` become ``pixel_values`` there, in the model's dtype: the training augmentation
        (``augmentation`` present) or the evaluation normalisation, batched
        (`ActionCLIPVideoProcessor.augment_frames` / `frames_to_pixel_values`). The collator's label-set prompts
        are dropped: evaluation here encodes the label set once (`_label_set_embeddings`), and training never
        uses them. In training with distillation the teacher's features of the batch are added
        (``distillation_targets``; the label set's prompts give the teacher's text features once)."""
        class_prompts = [inputs.get(key) for key in CLASS_PROMPT_KEYS]
        prompts = (inputs.get("input_ids"), inputs.get("attention_mask"))  # still on the host: the teacher's lookup
        inputs = {key: value for key, value in inputs.items() if key not in CLASS_PROMPT_KEYS}
        inputs = super()._prepare_inputs(inputs)
        if "frames" in inputs:
            inputs = dict(inputs)
            frames, augmentation = inputs.pop("frames"), inputs.pop("augmentation", None)
            processor = self._device_video_processor()
            dtype = unwrap_actionclip(self.model).dtype
            if augmentation is not None:
                inputs["pixel_values"] = processor.augment_frames(frames, augmentation, dtype=dtype)
            else:
                inputs["pixel_values"] = processor.frames_to_pixel_values(frames, dtype=dtype)
        if self.distillation is not None and self.model.training and prompts[0] is not None:
            inputs = dict(inputs)
            inputs[DISTILLATION_TARGETS] = self.distillation.targets(inputs["pixel_values"], *prompts, *class_prompts)
        return inputs

    def _device_video_processor(self):
        """The video processor whose options (crop size, normalisation) the device transform uses: the training
        set's, else the evaluation set's, else one for the model's image size."""
        for dataset in (self.train_dataset, self.eval_dataset, self.novel_dataset):
            processor = getattr(dataset, "video_processor", None)
            if processor is not None:
                return processor
        from ..video_processing_actionclip import ActionCLIPVideoProcessor

        return ActionCLIPVideoProcessor(
            crop_size=backbone_image_size(unwrap_actionclip(self.model).config.vision_config)
        )

    def prediction_step(self, model, inputs, prediction_loss_only: bool, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        actionclip = unwrap_actionclip(model)
        with torch.no_grad(), self.compute_loss_context_manager():
            text_embeds = self._label_set_embeddings(actionclip)
            video_embeds = F.normalize(actionclip.get_video_features(inputs["pixel_values"]).pooler_output, dim=-1)
            scale = actionclip.evaluation_scale(getattr(self.args, "eval_logit_scale", None))
            logits = scale * video_embeds @ text_embeds.to(video_embeds.dtype).t()
            scores = template_ensemble_probs(logits, self._eval_num_templates, actionclip.score_bias())
            loss = None
            if labels is not None:
                loss = F.nll_loss(scores.clamp_min(1e-12).log(), labels.long()).detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, scores, labels

    # ------------------------------------------------------------------ checkpoints

    def _get_output_dir(self, trial) -> str:
        if self._staging_dir is not None:
            return self._staging_dir
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Write the checkpoint into ``.tmp-checkpoint-<step>/`` and rename it to ``checkpoint-<step>`` once every
        file is written (rotation and pushing follow the rename)."""
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final_dir = os.path.join(run_dir, name)
        staging_root = os.path.join(run_dir, f"{STAGING_PREFIX}{self.state.global_step}")
        staged_dir = os.path.join(staging_root, name)
        if self.args.should_save and os.path.exists(staging_root):
            shutil.rmtree(staging_root)  # left over by a run killed while writing this step
        self.accelerator.wait_for_everyone()
        push_to_hub = self.args.push_to_hub
        self._staging_dir = staging_root
        self.args.push_to_hub = False
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
            self.args.push_to_hub = push_to_hub
        if self.distillation is not None and self.args.should_save:
            self.distillation.save(staged_dir)  # the projectors: the optimizer's state alone cannot resume them
        if self.state.best_model_checkpoint == staged_dir:
            self.state.best_model_checkpoint = final_dir
            if self.args.should_save:
                self.state.save_to_json(os.path.join(staged_dir, "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            _publish_directory(staged_dir, final_dir)
            shutil.rmtree(staging_root, ignore_errors=True)
            self._rotate(run_dir)
        self.accelerator.wait_for_everyone()
        if push_to_hub:
            self._push_from_checkpoint(final_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        """The Trainer's load, and the distillation projectors saved beside the weights."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.distillation is not None and not self.distillation.load(resume_from_checkpoint):
            logger.warning("%s holds no distillation projectors: they start fresh", resume_from_checkpoint)

    def _rotate(self, run_dir: str) -> None:
        try:
            from transformers.trainer_utils import rotate_checkpoints
        except ImportError:  # older transformers 5.x: a Trainer method
            self._rotate_checkpoints(use_mtime=True, output_dir=run_dir)
            return
        rotate_checkpoints(
            output_dir=run_dir,
            save_total_limit=self.args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=True,
        )

    # ------------------------------------------------------------------ model card

    def create_model_card(self, *args, **kwargs):
        """ActionCLIP's model card (`actionclip.hub.model_card.write_model_card`) when the output folder holds a full
        model; the Trainer's otherwise (e.g. a LoRA adapter)."""
        output_dir = self.args.output_dir
        if not self.is_world_process_zero():
            return None
        if os.path.isfile(os.path.join(output_dir, "config.json")):
            try:
                from ..hub.model_card import write_model_card
            except ImportError:
                write_model_card = None
            if write_model_card is not None:
                card_kwargs = {}
                base_model = getattr(self, "base_model_id", None)
                if base_model and not os.path.exists(base_model):
                    card_kwargs["base_model"] = base_model
                return write_model_card(output_dir, model_name=kwargs.get("model_name"), **card_kwargs)
        return super().create_model_card(*args, **kwargs)


def build_trainer(model: nn.Module, args: TrainingArguments, processor, label_names: Sequence[str], **trainer_kwargs):
    """An `ActionCLIPTrainer` for ``model``, with the collator that turns ``label_names`` into the prompts of the
    model's own ``config.templates`` and ``contrastive_loss`` (seeded with ``args.seed``); ``processor`` is the
    trainer's processing class and its tokenizer encodes the evaluation prompts.

    ``trainer_kwargs`` go to the trainer as they are (``train_dataset``, ``eval_dataset``, ``compute_metrics``,
    ``callbacks``, ``novel_dataset``, ...).
    """
    from ..data.collator import ActionCLIPCollator

    config = unwrap_actionclip(model).config
    collator = ActionCLIPCollator(
        label_names,
        processor.tokenizer,
        templates=list(config.templates),
        contrastive_loss=config.contrastive_loss,
        seed=args.seed,
        config=config,
    )
    return ActionCLIPTrainer(
        model=model,
        args=args,
        data_collator=collator,
        processing_class=processor,
        tokenizer=processor.tokenizer,
        **trainer_kwargs,
    )


def _publish_directory(staged_dir: str, final_dir: str) -> None:
    """Make ``staged_dir`` appear as ``final_dir`` in one rename (an older ``final_dir`` is moved aside first)."""
    parent, name = os.path.split(final_dir.rstrip(os.sep))
    if os.path.exists(final_dir):
        replaced = os.path.join(parent, f".replaced-{name}")
        shutil.rmtree(replaced, ignore_errors=True)
        os.replace(final_dir, replaced)
        os.replace(staged_dir, final_dir)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        os.replace(staged_dir, final_dir)
    try:  # make the rename itself durable
        fd = os.open(parent or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a checkpoint folder this Trainer published (a ``checkpoint-<step>`` with its state)."""
    return os.path.isfile(os.path.join(path, "trainer_state.json"))


__all__ = [
    "LOGIT_PARAMETERS",
    "LORA_TARGET_MODULES",
    "NOVEL_PREFIX",
    "PARAMETER_GROUPS",
    "STAGING_PREFIX",
    "ActionCLIPTrainer",
    "ActionCLIPTrainingArguments",
    "actionclip_parameter_groups",
    "apply_lora",
    "freeze_towers",
    "is_complete_checkpoint",
    "lora_target_modules",
    "model_tokenizer",
    "parameter_group_of",
    "unwrap_actionclip",
]
