"""One demo model trained from scratch with `ActionCLIPTrainer` and saved with its processor."""

from __future__ import annotations

import shutil
from pathlib import Path

from .profiles import UNTRAINED_WEIGHTS, DemoProfile, model_config


def train_model(
    profile: DemoProfile,
    fusion: str,
    train_data,
    processor,
    output_dir: Path,
    seed: int,
    progress: bool = True,
    initial_dir: Path | None = None,
    training_data: str | None = None,
):
    """Train one model from scratch with `ActionCLIPTrainer`; save it with its processor in ``output_dir`` (and its
    weights before training in ``initial_dir``, when given). ``training_data`` goes into the saved config."""
    import torch
    from transformers import set_seed

    from ..modeling_actionclip import ActionCLIPModel
    from ..training.trainer import freeze_towers

    set_seed(seed)
    model = ActionCLIPModel(model_config(profile, fusion))
    with torch.no_grad():
        model.vision_model.embeddings.position_embedding.weight.mul_(profile.position_init_scale)
        if hasattr(model.fusion, "frame_position_embeddings"):
            model.fusion.frame_position_embeddings.weight.mul_(profile.position_init_scale)
    if profile.freeze_text:
        freeze_towers(model, text=True)
    if initial_dir is not None:
        # The untrained weights are the "zero-shot" end of WiSE-FT for a model trained from scratch (README).
        model.config.training_data = UNTRAINED_WEIGHTS.format(fusion=fusion)
        model.save_pretrained(str(initial_dir))
        processor.save_pretrained(str(initial_dir))
    model.config.training_data = training_data
    model.config.id2label = dict(enumerate(train_data.label_names))
    model.config.label2id = {name: i for i, name in enumerate(train_data.label_names)}
    result = fit(
        model, profile.training, train_data, processor, output_dir, seed, progress, f"training the {fusion} model"
    )
    model_dir = output_dir
    model.save_pretrained(str(model_dir))
    processor.save_pretrained(str(model_dir))
    return model, {
        "train_loss": float(result.training_loss),
        "train_runtime_s": result.metrics["train_runtime"],
    }


def fit(
    model,
    training: dict,
    train_data,
    processor,
    output_dir: Path,
    seed: int,
    progress: bool,
    description: str,
    max_grad_norm: float = 1.0,
):
    """Train ``model`` in place with `ActionCLIPTrainer` on ``train_data`` (no evaluation, no checkpoints);
    ``training`` holds the `ActionCLIPTrainingArguments` a profile chooses. Returns the Trainer's `TrainOutput`."""
    import torch

    from ..training.trainer import ActionCLIPTrainingArguments, build_trainer

    args = ActionCLIPTrainingArguments(
        output_dir=str(output_dir / "trainer"),
        **{"warmup_steps": 0.1, "lr_scheduler_type": "cosine", **training},
        max_grad_norm=max_grad_norm,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        metric_for_best_model=None,
        logging_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=not progress,
    )
    trainer = build_trainer(
        model, args, processor, train_data.label_names, train_dataset=train_data, progress_description=description
    )
    if not progress:  # without progress bars the Trainer would print its final metrics dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    shutil.rmtree(output_dir / "trainer", ignore_errors=True)
    return result
