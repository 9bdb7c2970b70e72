"""The arguments of `actionclip train` / `training_scripts/run_actionclip.py` (`transformers.HfArgumentParser`
dataclasses, beside `actionclip.training.trainer.ActionCLIPTrainingArguments`). Imported by `commands/train.py` inside its
functions (the dataset formats come from the data layer, which imports torch) and by `actionclip.training.program`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.datasets import DATASET_FORMATS


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "An image-text checkpoint of a supported family (a folder or Hub id of CLIPModel, MetaClip2Model, "
            "ChineseCLIPModel, AltCLIPModel, SiglipModel or Siglip2Model: the visual prompts start fresh; its "
            "tokenizer and image statistics make the processor saved with the model) or an ActionCLIP checkpoint. "
            "Leave it out with --config_overrides to train from scratch."
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
    contrastive_loss: str = field(
        default="kl", metadata={"help": "'kl' (the paper's), 'cross_entropy' or 'sigmoid' (SigLIP's, per pair)."}
    )
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
    timeout: float = field(default=30.0, metadata={"help": "Seconds allowed to decode one video."})
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
