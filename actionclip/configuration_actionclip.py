"""ActionCLIP model configuration."""

from __future__ import annotations

import sys

from transformers import PretrainedConfig

from .backbones import DEFAULT_BACKBONE, backbone_family, family_of_config
from .errors import InvalidConfigError
from .prompts import ACTIONCLIP_TEMPLATES


def pipelines_needing_remote_code(custom_pipelines: dict) -> dict:
    """The entries of a ``config.json``'s ``custom_pipelines`` (written by ``pipeline.save_pretrained``) that this
    process cannot serve without the folder's code.

    transformers asks for ``trust_remote_code=True`` whenever ``config.json`` names a custom pipeline for the task,
    even where this package is installed and has registered that very pipeline. A task that transformers' pipeline
    registry already serves with this package's own class is dropped here, so ``pipeline(task, model=folder)`` works
    with ``import actionclip`` alone. The copy of this file that transformers loads as remote code belongs to
    another package (``transformers_modules...``), so there every entry stays and the folder's code is used.
    """
    pipelines = sys.modules.get("transformers.pipelines")  # not imported: nobody is building a pipeline
    registry = getattr(pipelines, "PIPELINE_REGISTRY", None)
    if registry is None:
        return custom_pipelines
    package = __name__.rpartition(".")[0]

    def served_here(task: str) -> bool:
        impl = registry.supported_tasks.get(task, {}).get("impl")
        return getattr(impl, "__module__", "").rpartition(".")[0] == package

    return {task: entry for task, entry in custom_pipelines.items() if not served_here(task)}


# Post-network prompts by canonical name; the aliases are the spellings of the authors' configs.
FUSION_TYPES: tuple[str, ...] = ("meanP", "conv1d", "lstm", "transf", "transf_cls")
_FUSION_ALIASES = {
    "meanp": "meanP",
    "mean": "meanP",
    "conv1d": "conv1d",
    "conv_1d": "conv1d",
    "lstm": "lstm",
    "transf": "transf",
    "transformer": "transf",
    "transf_cls": "transf_cls",
}
LOSS_TYPES: tuple[str, ...] = ("kl", "cross_entropy", "sigmoid")

MAX_PARAMETERS = 20_000_000_000
"""Most parameters a configuration may describe (8x CLIP ViT-bigG/14): beyond it a config is refused on loading,
before a model of that size is allocated (a crafted ``num_hidden_layers`` of a million would take hours)."""

_TOWER_SIZE_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


def canonical_fusion_name(name: str) -> str:
    """Map a post-network prompt name (any of the original's spellings, case-insensitive) to its canonical name."""
    if not isinstance(name, str) or name.lower() not in _FUSION_ALIASES:
        raise ValueError(f"fusion must be one of {list(FUSION_TYPES)} (or the original's spellings), got {name!r}")
    return _FUSION_ALIASES[name.lower()]


_TOWERS = ("text_config", "vision_config")


class BackboneSubConfigs:
    """`ActionCLIPConfig.sub_configs`: the configuration classes of the two towers, which depend on the backbone.

    transformers reads ``config.sub_configs`` (a mapping of attribute name to configuration class) to reach the
    nested configurations: the attention implementation is set on each, `ModelTesterMixin` and `ConfigTester` load
    each with its class (`SiglipTextConfig.from_pretrained(folder)` reads the ``text_config`` of a saved ActionCLIP
    configuration). `PretrainedConfig` derives it from the class attribute ``sub_configs_defaults``, one class per
    attribute for the whole class, which `__post_init__` would use to build the towers; ActionCLIP's towers are of
    the family that ``backbone`` names, so ``sub_configs_defaults`` stays empty (``__init__`` builds the towers) and
    ``sub_configs`` is read from the instance: on a configuration its family's classes, on the class the default
    family's (transformers asks the class only whether it is composite).
    """

    def __get__(self, config: ActionCLIPConfig | None, owner: type | None = None) -> dict[str, type]:
        # Before `__init__` has recorded the family (a copy being built), the default one.
        backbone = DEFAULT_BACKBONE if config is None else config.__dict__.get("backbone", DEFAULT_BACKBONE)
        family = backbone_family(backbone)
        return {name: family.sub_config_class(name) for name in _TOWERS}


class ActionCLIPConfig(PretrainedConfig):
    r"""
    Configuration of an [`ActionCLIPModel`]: an image-text model's text tower and vision tower plus ActionCLIP's
    visual prompts.

    Args:
        backbone (`str`, defaults to `"clip"`):
            The image-text family of the towers: the `model_type` of its configuration, one of `"clip"`,
            `"metaclip_2"`, `"chinese_clip"`, `"altclip"`, `"siglip"`, `"siglip2"` (see `actionclip.backbones`).
        text_config (`dict` or the family's text configuration, *optional*):
            The text tower (`CLIPTextConfig`, `SiglipTextConfig`, ...). Defaults to the family's default.
        vision_config (`dict` or the family's vision configuration, *optional*):
            The vision tower, applied to every frame. Defaults to the family's default.
        projection_dim (`int`, *optional*):
            Size D of the joint video-text embedding space. Defaults to 512 for families with projections (CLIP,
            MetaCLIP 2, Chinese-CLIP, AltCLIP); SigLIP's towers end in their own heads, so there D is the vision
            tower's width (which the text head's `projection_size` must equal).
        logit_scale_init_value (`float`, defaults to ln(1/0.07) = 2.6592):
            Initial value of the learned log temperature; scores are `exp(logit_scale) * cos`.
        logit_scale_max (`float`, defaults to 100.0):
            Upper clamp of `exp(logit_scale)`, as in CLIP (SigLIP does not clamp: `from_backbone` sets 1e4 there).
        eval_logit_scale (`float`, *optional*):
            Multiplier of the cosine similarities when scoring (the zero-shot pipeline, the closed-set classifier in
            evaluation mode, `actionclip eval`) and no scale is passed. `None` uses the learned
            `exp(logit_scale)`; converted checkpoints of the authors' set 100.0, the fixed scale of their
            evaluation. Training always uses the learned scale.
        num_frames (`int`, defaults to 8):
            Frames T sampled per video (the processor samples this many; the fusion's position tables hold at
            least this many).
        joint (`bool`, defaults to `False`):
            Pre-network prompt: add a learned temporal position embedding to every token of frame t and attend
            jointly over the tokens of all frames of a video in every vision layer.
        shift (`bool`, defaults to `False`):
            In-network prompt: before every vision layer, shift a fraction of the patch tokens' channels one
            frame forward and one frame backward in time (no parameters).
        shift_fold_div (`int`, defaults to 8):
            The shifted fraction each way is `1 / shift_fold_div` of the channels (1/8 forward, 1/8 backward).
        fusion (`str`, defaults to `"transf"`):
            Post-network prompt fusing the T frame embeddings into one video embedding: one of `"meanP"`,
            `"conv1d"`, `"lstm"`, `"transf"`, `"transf_cls"` (the original's spellings are accepted).
        fusion_num_layers (`int`, defaults to 6):
            Layers of the `transf` / `transf_cls` temporal transformer.
        fusion_num_heads (`int`, *optional*):
            Attention heads of the temporal transformer. Defaults to the original's: the text tower's width // 64
            for `transf` (the authors size it like the text transformer, not like D; where that does not divide D,
            as Chinese-CLIP's 768-wide text and D = 512, the largest head count below it that does), 8 for
            `transf_cls`.
        fusion_intermediate_size (`int`, *optional*):
            Feed-forward width of the temporal transformer. Defaults to `4 * D` for `transf`, 2048 for
            `transf_cls` (the original's).
        fusion_layer_norm_eps (`float`, *optional*):
            LayerNorm epsilon of the fusion. Defaults to the original's: 1e-12 for `transf`, 1e-5 for `transf_cls`.
        fusion_dropout (`float`, defaults to 0.0):
            Dropout inside the temporal transformer (attention and residual branches) during training.
        fusion_max_frames (`int`, defaults to 77):
            Rows of the `transf` frame position table (the original sized it like the text context).
        contrastive_loss (`str`, defaults to `"kl"`):
            `"kl"`: the paper's symmetric KL divergence against label-equality targets (one prompt per video);
            `"cross_entropy"`: cross-entropy of each video against all class prompts; `"sigmoid"`: SigLIP's
            pairwise sigmoid loss with label-equality targets (+1 where two videos share a label, -1 elsewhere),
            on `scale * cos + logit_bias` (the bias is learned on every family with this loss). On a family scored
            with sigmoids (SigLIP), `"kl"` and `"cross_entropy"` leave `logit_bias` as loaded (a softmax does not see
            it) while the scale trains, so the scores' calibration can drift: train such a family with `"sigmoid"`
            where calibrated scores matter.
        kl_target_scale (`float`, defaults to 10.0):
            The KL target is `softmax(kl_target_scale * G)` with `G[i, j] = 1` where videos i and j share a label.
        gather_distributed (`bool`, defaults to `True`):
            Under `torch.distributed`, build the loss over the global batch (embeddings gathered with gradients).
        templates (`list[str]`, *optional*):
            Textual prompts used by default; each holds exactly one `{}` where the label goes. Defaults to the
            family's (the 16 ActionCLIP templates; Chinese templates for Chinese-CLIP).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of the fusion's linear, embedding and position weights.
        initializer_factor (`float`, defaults to 1.0):
            Scale of CLIP's own initialisation (as in `CLIPConfig`).
        training_data (`str`, *optional*):
            What the weights were trained on, in a sentence or two, and what that makes them unfit for; shown by
            `actionclip info` and in model cards. `None` when not recorded.
    """

    model_type = "actionclip"
    sub_configs = BackboneSubConfigs()
    # What transformers' `Trainer` leaves out of its predictions: every output but the class scores, so that
    # `compute_metrics` gets `(num_videos, num_classes)` scores (`ActionCLIPOutput.class_scores`), never the per-batch
    # video-by-prompt logits, whose width changes from batch to batch.
    keys_to_ignore_at_inference = [
        "logits_per_video",
        "logits_per_text",
        "video_embeds",
        "text_embeds",
        "frame_embeds",
        "text_model_output",
        "vision_model_output",
    ]

    def __init__(
        self,
        text_config: dict | PretrainedConfig | None = None,
        vision_config: dict | PretrainedConfig | None = None,
        projection_dim: int | None = None,
        logit_scale_init_value: float = 2.6592,
        logit_scale_max: float = 100.0,
        eval_logit_scale: float | None = None,
        num_frames: int = 8,
        joint: bool = False,
        shift: bool = False,
        shift_fold_div: int = 8,
        fusion: str = "transf",
        fusion_num_layers: int = 6,
        fusion_num_heads: int | None = None,
        fusion_intermediate_size: int | None = None,
        fusion_layer_norm_eps: float | None = None,
        fusion_dropout: float = 0.0,
        fusion_max_frames: int = 77,
        contrastive_loss: str = "kl",
        kl_target_scale: float = 10.0,
        gather_distributed: bool = True,
        templates: list[str] | tuple[str, ...] | None = None,
        initializer_range: float = 0.02,
        initializer_factor: float = 1.0,
        training_data: str | None = None,
        backbone: str = DEFAULT_BACKBONE,
        **kwargs,
    ):
        family = backbone_family(backbone)
        self.backbone = family.model_type
        towers = {}
        for name, given in zip(_TOWERS, (text_config, vision_config)):
            tower_class = family.sub_config_class(name)
            if isinstance(given, PretrainedConfig):
                given = given.to_dict()
            given = dict(given or {})
            saved_type = given.pop("model_type", None)
            given.pop("transformers_version", None)
            if saved_type not in (None, tower_class.model_type):
                raise InvalidConfigError(
                    f"ActionCLIPConfig.{name} is a {saved_type!r} configuration, but backbone {self.backbone!r} "
                    f"needs a {tower_class.model_type!r} one"
                )
            if name == "text_config":
                given = {**family.text_config_defaults, **given}
            towers[name] = tower_class(**given)
        self.text_config = towers["text_config"]
        self.vision_config = towers["vision_config"]

        # SigLIP's towers end in their own heads: the embedding is as wide as the vision tower.
        if projection_dim is None:
            projection_dim = 512 if family.projections else self.vision_config.hidden_size
        self.projection_dim = projection_dim
        self.logit_scale_init_value = float(logit_scale_init_value)
        self.logit_scale_max = float(logit_scale_max)
        self.eval_logit_scale = None if eval_logit_scale is None else float(eval_logit_scale)
        self.num_frames = num_frames
        self.joint = joint
        self.shift = shift
        self.shift_fold_div = shift_fold_div
        self.fusion = canonical_fusion_name(fusion)
        self.fusion_num_layers = fusion_num_layers
        self.fusion_num_heads = fusion_num_heads
        self.fusion_intermediate_size = fusion_intermediate_size
        self.fusion_layer_norm_eps = fusion_layer_norm_eps
        self.fusion_dropout = float(fusion_dropout)
        self.fusion_max_frames = fusion_max_frames
        self.contrastive_loss = contrastive_loss
        self.kl_target_scale = float(kl_target_scale)
        self.gather_distributed = gather_distributed
        self.templates = list(templates if templates is not None else family.templates or ACTIONCLIP_TEMPLATES)
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.training_data = training_data
        if kwargs.get("custom_pipelines"):
            kwargs["custom_pipelines"] = pipelines_needing_remote_code(kwargs["custom_pipelines"])
        super().__init__(**kwargs)
        self._validate()

    def _validate_sizes(self) -> None:
        """Every size is a positive integer and the model they describe has at most `MAX_PARAMETERS` parameters.

        Raises:
            InvalidConfigError: naming the field, or the estimated parameter count.
        """
        towers = {"text_config": self.text_config, "vision_config": self.vision_config}
        for tower_name, tower in towers.items():
            extra = (
                ("vocab_size", "max_position_embeddings")
                if tower_name == "text_config"
                else ("num_patches", "patch_size")
                if self.backbone == "siglip2"
                else ("image_size", "patch_size")
            )
            for name in (*_TOWER_SIZE_FIELDS, *extra):
                value = getattr(tower, name, None)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidConfigError(
                        f"ActionCLIPConfig.{tower_name}.{name} must be a positive integer, got {value!r}"
                    )
        for name in ("projection_dim", "fusion_num_layers", "fusion_max_frames", "fusion_intermediate_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidConfigError(f"ActionCLIPConfig.{name} must be a positive integer, got {value!r}")

        def blocks(layers: int, width: int, inner: int) -> int:
            return layers * (4 * width * width + 2 * width * inner)

        text, vision = self.text_config, self.vision_config
        patches = (
            vision.num_patches if self.backbone == "siglip2" else (vision.image_size // vision.patch_size) ** 2 + 1
        )
        fusion_inner = self.fusion_intermediate_size or 4 * self.projection_dim
        counts = {
            "text tower": blocks(text.num_hidden_layers, text.hidden_size, text.intermediate_size)
            + (text.vocab_size + text.max_position_embeddings) * text.hidden_size,
            "vision tower": blocks(vision.num_hidden_layers, vision.hidden_size, vision.intermediate_size)
            + (patches + 3 * vision.patch_size**2) * vision.hidden_size,
            "projections and fusion": (text.hidden_size + vision.hidden_size) * self.projection_dim
            + blocks(self.fusion_num_layers, self.projection_dim, fusion_inner)
            + self.fusion_max_frames * self.projection_dim,
        }
        total = sum(counts.values())
        if total > MAX_PARAMETERS:
            biggest = max(counts, key=counts.get)
            raise InvalidConfigError(
                f"ActionCLIPConfig describes about {total:.3g} parameters (the {biggest}: {counts[biggest]:.3g}), more "
                f"than the limit of {MAX_PARAMETERS:.3g}: a corrupt or crafted config.json (check num_hidden_layers, "
                "hidden_size, intermediate_size, vocab_size)"
            )

    def _validate(self) -> None:
        self._validate_sizes()
        if not backbone_family(self.backbone).projections:
            widths = {
                "projection_dim": self.projection_dim,
                "vision_config.hidden_size": self.vision_config.hidden_size,
                "text_config.projection_size": getattr(self.text_config, "projection_size", None),
            }
            if len(set(widths.values())) != 1:
                raise InvalidConfigError(
                    f"ActionCLIPConfig: a {self.backbone} backbone compares its towers' head outputs directly, so "
                    f"these widths must be equal: {widths}"
                )

        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ActionCLIPConfig.{name} must be a positive integer, got {value!r}")

        for name in ("projection_dim", "num_frames", "fusion_num_layers", "fusion_max_frames"):
            positive_int(name)
        for name in ("joint", "shift", "gather_distributed"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ActionCLIPConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if (
            isinstance(self.shift_fold_div, bool)
            or not isinstance(self.shift_fold_div, int)
            or self.shift_fold_div < 2
        ):
            raise ValueError(
                f"ActionCLIPConfig.shift_fold_div must be an integer >= 2 (1/div of the channels move each way), "
                f"got {self.shift_fold_div!r}"
            )
        if self.num_frames > self.fusion_max_frames:
            raise ValueError(
                f"ActionCLIPConfig.num_frames ({self.num_frames}) exceeds fusion_max_frames ({self.fusion_max_frames})"
            )
        for name in ("fusion_num_heads", "fusion_intermediate_size"):
            if getattr(self, name) is not None:
                positive_int(name)
        if self.fusion_num_heads is not None and self.projection_dim % self.fusion_num_heads:
            raise ValueError(
                f"ActionCLIPConfig.fusion_num_heads ({self.fusion_num_heads}) must divide "
                f"projection_dim ({self.projection_dim})"
            )
        if self.fusion in ("transf", "transf_cls") and self.projection_dim % self.resolved_fusion_num_heads:
            raise ValueError(
                f"ActionCLIPConfig: the {self.fusion} fusion's {self.resolved_fusion_num_heads} attention heads "
                f"(its default) must divide projection_dim ({self.projection_dim}); set fusion_num_heads"
            )
        if self.fusion_layer_norm_eps is not None and not self.fusion_layer_norm_eps > 0:
            raise ValueError(f"ActionCLIPConfig.fusion_layer_norm_eps must be > 0, got {self.fusion_layer_norm_eps!r}")
        if not 0.0 <= self.fusion_dropout < 1.0:
            raise ValueError(f"ActionCLIPConfig.fusion_dropout must be in [0, 1), got {self.fusion_dropout!r}")
        if self.contrastive_loss not in LOSS_TYPES:
            raise ValueError(
                f"ActionCLIPConfig.contrastive_loss must be one of {list(LOSS_TYPES)}, got {self.contrastive_loss!r}"
            )
        if not self.logit_scale_max > 0:
            raise ValueError(f"ActionCLIPConfig.logit_scale_max must be > 0, got {self.logit_scale_max!r}")
        if self.eval_logit_scale is not None and not self.eval_logit_scale > 0:
            raise ValueError(f"ActionCLIPConfig.eval_logit_scale must be > 0 or None, got {self.eval_logit_scale!r}")
        if not self.templates:
            raise ValueError("ActionCLIPConfig.templates must hold at least one template")
        for template in self.templates:
            if not isinstance(template, str) or template.count("{}") != 1:
                raise ValueError(
                    f"ActionCLIPConfig.templates: every template needs exactly one '{{}}' where the label goes, "
                    f"got {template!r}"
                )
        if self.joint and self.num_frames > self.fusion_max_frames:
            raise ValueError("ActionCLIPConfig: joint needs num_frames <= fusion_max_frames")
        if self.training_data is not None and not isinstance(self.training_data, str):
            raise ValueError(
                f"ActionCLIPConfig.training_data must be a string or None, got {type(self.training_data).__name__}"
            )

    @property
    def resolved_fusion_num_heads(self) -> int:
        """Heads of the temporal transformer, with the original's defaults filled in."""
        if self.fusion_num_heads is not None:
            return self.fusion_num_heads
        if self.fusion == "transf_cls":
            return 8
        # The authors' Transf takes `transformer_width // 64` heads, the text transformer's width, whatever D is
        # (in their CLIP models it divides D). Other families pair other widths (Chinese-CLIP ViT-B/16: a 768-wide
        # text tower, D = 512): there the most heads below it that divide D.
        heads = max(1, self.text_config.hidden_size // 64)
        return next(count for count in range(heads, 0, -1) if self.projection_dim % count == 0)

    @property
    def resolved_fusion_intermediate_size(self) -> int:
        """Feed-forward width of the temporal transformer, with the original's defaults filled in."""
        if self.fusion_intermediate_size is not None:
            return self.fusion_intermediate_size
        return 2048 if self.fusion == "transf_cls" else 4 * self.projection_dim

    @property
    def resolved_fusion_layer_norm_eps(self) -> float:
        """LayerNorm epsilon of the fusion, with the original's defaults filled in."""
        if self.fusion_layer_norm_eps is not None:
            return self.fusion_layer_norm_eps
        return 1e-5 if self.fusion == "transf_cls" else 1e-12

    @classmethod
    def from_backbone_config(cls, backbone_config: PretrainedConfig, **kwargs) -> ActionCLIPConfig:
        """An ActionCLIP configuration around the towers of an image-text configuration of any supported family
        (`CLIPConfig`, `SiglipConfig`, `Siglip2Config`, `MetaClip2Config`, `ChineseCLIPConfig`, `AltCLIPConfig`);
        ``kwargs`` are `ActionCLIPConfig` fields (the visual prompts, ...).

        Raises:
            InvalidConfigError: ``backbone_config`` is of no supported family.
        """
        family = family_of_config(backbone_config)
        fields = {
            "backbone": family.model_type,
            "text_config": backbone_config.text_config.to_dict(),
            "vision_config": backbone_config.vision_config.to_dict(),
        }
        if family.projections:
            fields["projection_dim"] = backbone_config.projection_dim
            fields["logit_scale_init_value"] = backbone_config.logit_scale_init_value
        else:
            fields["logit_scale_max"] = 1e4  # SigLIP's learned scale is not clamped
        return cls(**{**fields, **kwargs})


__all__ = ["ActionCLIPConfig", "FUSION_TYPES", "canonical_fusion_name"]
