"""Frozen-teacher feature distillation while fine-tuning, so that the fine-tuned model keeps what the starting model
knew (zero-shot on classes it is not trained on).

The starting model, frozen, is the teacher: its video feature is the mean of its per-frame embeddings (no fusion, as
an image-text model scores a video), its text feature that of the same prompt. The student's L2-normalised video and
text embeddings go through a small residual projector each, ``f + W2 gelu(W1 f)`` (FROSTER, ICLR 2024: residual
feature distillation), and the loss pulls the projected student features towards the teacher's:

    loss = distill_weight * mean over the chosen parts of mean over the batch of (1 - cos(projector(student), teacher))

``W2`` starts at zero, so training starts as plain cosine distillation; the projector then lets the student's own
embedding move away from the teacher's (add temporal information) while its projection stays close.

- :class:`FrozenTeacher`: the teacher, never trained: a copy of the starting model (``requires_grad`` off, eval
  mode, bfloat16 on a GPU), or for a LoRA model the same model with its adapters off (no second copy). The text
  features of the label set's prompts are computed once and looked up by their tokens.
- :class:`FeatureDistillation`: the projectors and the loss; `ActionCLIPTrainer` adds the loss to the contrastive
  one when ``ActionCLIPTrainingArguments.distill_weight > 0``. The projectors are trained and saved in checkpoints
  (:data:`PROJECTORS_FILE`), never in the saved model; the teacher is saved nowhere: a resumed run makes it again
  from the starting model, which the training program loads again.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from ..errors import InvalidTrainingOptionError

# What can be distilled: the video embedding and the text (prompt) embedding.
DISTILL_PARTS = ("video", "text")
# The projectors' weights in a checkpoint folder (beside the optimizer's state, which holds their moments).
PROJECTORS_FILE = "distillation_projectors.safetensors"
# The label set's prompts go through the teacher in chunks of this many rows: always the same chunks, so the cached
# features are the same bits in a resumed run.
LABEL_SET_CHUNK = 256


def distillation_parts(value: str | Sequence[str]) -> tuple[str, ...]:
    """The parts named by ``value`` (``"video,text"`` or a sequence such as ``("video", "text")``), in
    :data:`DISTILL_PARTS` order.

    Raises:
        InvalidTrainingOptionError: an empty choice, or a part that is not ``video`` or ``text`` (named).
    """
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(name).strip() for name in names if str(name).strip()]
    unknown = [name for name in names if name not in DISTILL_PARTS]
    if unknown:
        raise InvalidTrainingOptionError(
            f"distill_on names {', '.join(map(repr, unknown))}: the parts are {', '.join(DISTILL_PARTS)} "
            "(e.g. --distill_on video,text)"
        )
    if not names:
        raise InvalidTrainingOptionError(
            "distill_on is empty: name video, text or both (e.g. --distill_on video,text)"
        )
    return tuple(part for part in DISTILL_PARTS if part in names)


def check_distill_weight(value) -> float:
    """``value`` as a float if it is a finite number >= 0 (0: no distillation), else `InvalidTrainingOptionError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidTrainingOptionError(f"distill_weight must be a finite number >= 0 (0: off), got {value!r}")
    return float(value)


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``mean_i (1 - cos(student_i, teacher_i))`` of ``(N, D)`` features, in float32 (0: same directions; 1:
    orthogonal; 2: opposite)."""
    if student.shape != teacher.shape:
        raise ValueError(f"student features {tuple(student.shape)} and teacher features {tuple(teacher.shape)} differ")
    return (1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)).mean()


class ResidualProjector(nn.Module):
    """``features + W2 gelu(W1 features)`` on ``(N, D)`` features, hidden width D; ``W2`` (and its bias) start at
    zero, so a fresh projector is the identity. ``generator`` draws ``W1`` (the global random state is untouched)."""

    def __init__(self, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.down = nn.Linear(dim, dim)
        self.up = nn.Linear(dim, dim)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(dim)  # nn.Linear's own range
            self.down.weight.copy_(torch.rand(dim, dim, generator=generator) * 2 * bound - bound)
            self.down.bias.zero_()
            self.up.weight.zero_()
            self.up.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.up(F.gelu(self.down(features)))


def _token_key(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[int, ...]:
    """A prompt's tokens without its padding: the same prompt padded to different lengths has one key."""
    if attention_mask is not None:
        input_ids = input_ids[attention_mask.bool()]
    return tuple(input_ids.tolist())


class FrozenTeacher:
    """The starting model, frozen, as the distillation teacher. Not an `nn.Module`: holding it puts no weight in a
    module's ``state_dict`` or in an optimizer.

    Args:
        model: an `ActionCLIPModel`, or a `peft.PeftModel` of one (LoRA): its adapters are switched off while it
            teaches, so the base weights (frozen by peft) are the teacher and no copy is made.
        copy_model: copy the model (the default: the student is trained in place) or freeze it as it is (a separate
            teacher model); a LoRA model is never copied.
        device: where the teacher runs (default: where the model is). On a GPU it runs in bfloat16.
    """

    def __init__(self, model: nn.Module, copy_model: bool = True, device: torch.device | str | None = None):
        self._peft = model if hasattr(model, "disable_adapter") else None
        if self._peft is not None:
            self.model = model.get_base_model()
        else:
            self.model = copy.deepcopy(model) if copy_model else model
            self.model.requires_grad_(False)
            self.model.eval()
            if device is not None:
                self.model.to(device)
        self.device = next(self.model.parameters()).device
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if self._peft is None:
            self.model.to(dtype=self.dtype)
        self._label_set_ids: torch.Tensor | None = None
        self._label_set_features: torch.Tensor | None = None
        self._label_set_rows: dict[tuple[int, ...], int] = {}

    @contextlib.contextmanager
    def _teaching(self) -> Iterator[None]:
        """No gradients; for a LoRA model its adapters off and eval mode (restored after); bfloat16 on a GPU."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            if self._peft is not None:
                stack.enter_context(self._peft.disable_adapter())
                was_training = self.model.training
                self.model.eval()
                stack.callback(self.model.train, was_training)
                if self.device.type == "cuda":
                    stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
            yield

    def parameters(self) -> Iterator[nn.Parameter]:
        """The teacher's weights (for a LoRA model: the base weights, without the adapters)."""
        return (
            p for name, p in self.model.named_parameters() if "lora_" not in name and "modules_to_save" not in name
        )

    def video_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` float32: the mean of the teacher's ``(B, T, D)`` projected frame embeddings (no fusion) of
        ``(B, T, C, H, W)`` frames."""
        pixel_values = pixel_values.to(self.device, self.dtype if self._peft is None else pixel_values.dtype)
        with self._teaching():
            frames = self.model.get_frame_features(pixel_values)
        return frames.float().mean(dim=1)

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, D)`` float32 projected text embeddings of ``(N, L)`` prompts."""
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        with self._teaching():
            return self.model.get_text_features(input_ids, attention_mask).pooler_output.float()

    def _remember_label_set(self, class_input_ids: torch.Tensor, class_attention_mask: torch.Tensor | None) -> None:
        """Compute the text features of the label set's ``(K, N, L)`` prompts once (again only for another set)."""
        if self._label_set_ids is not None and torch.equal(self._label_set_ids, class_input_ids.cpu()):
            return
        ids = class_input_ids.reshape(-1, class_input_ids.shape[-1]).cpu()
        mask = None if class_attention_mask is None else class_attention_mask.reshape(ids.shape).cpu()
        features = [
            self.text_features(ids[start : start + LABEL_SET_CHUNK], None if mask is None else mask[start : start + LABEL_SET_CHUNK])
            for start in range(0, ids.shape[0], LABEL_SET_CHUNK)
        ]  # fmt: skip
        self._label_set_ids = class_input_ids.cpu().clone()
        self._label_set_features = torch.cat(features)
        self._label_set_rows = {}
        for row in range(ids.shape[0]):
            self._label_set_rows.setdefault(_token_key(ids[row], None if mask is None else mask[row]), row)

    def prompt_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        class_input_ids: torch.Tensor | None = None,
        class_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(N, D)`` float32 teacher text features of a batch's ``(N, L)`` prompts. With the label set's prompts
        (``class_input_ids`` ``(K, N, L)``, as `ActionCLIPCollator` adds them to every batch) a prompt of the set is
        looked up among their features, computed once; other prompts are encoded now."""
        if class_input_ids is None:
            return self.text_features(input_ids, attention_mask)
        self._remember_label_set(class_input_ids, class_attention_mask)
        host_ids = input_ids.cpu()
        host_mask = None if attention_mask is None else attention_mask.cpu()
        rows = [
            self._label_set_rows.get(_token_key(host_ids[i], None if host_mask is None else host_mask[i]), -1)
            for i in range(host_ids.shape[0])
        ]
        missing = [i for i, row in enumerate(rows) if row < 0]
        features = self._label_set_features[[max(row, 0) for row in rows]]
        if missing:
            features[missing] = self.text_features(
                host_ids[missing], None if host_mask is None else host_mask[missing]
            )
        return features


class FeatureDistillation(nn.Module):
    """The residual projectors (one per part) and the distillation loss against a :class:`FrozenTeacher`.

    Its ``state_dict`` holds the projectors only (the teacher is a plain attribute): what a checkpoint saves.

    Args:
        teacher: the frozen teacher.
        dim: the embedding width D (``config.projection_dim``).
        parts: the distilled parts, a subset of :data:`DISTILL_PARTS`.
        weight: the multiplier of the loss (``distill_weight``).
        seed: seed of the projectors' first layers.
    """

    def __init__(
        self,
        teacher: FrozenTeacher,
        dim: int,
        parts: Sequence[str] = DISTILL_PARTS,
        weight: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        self.parts = distillation_parts(parts)
        self.weight = check_distill_weight(weight)
        self.teacher = teacher
        generator = torch.Generator().manual_seed(seed)
        self.projectors = nn.ModuleDict({part: ResidualProjector(dim, generator) for part in self.parts})

    def targets(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        class_input_ids: torch.Tensor | None = None,
        class_attention_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The teacher's features of a batch, by part: ``video`` ``(B, D)``, ``text`` ``(N, D)`` (float32)."""
        targets = {}
        if "video" in self.parts:
            targets["video"] = self.teacher.video_features(pixel_values)
        if "text" in self.parts:
            targets["text"] = self.teacher.prompt_features(
                input_ids, attention_mask, class_input_ids, class_attention_mask
            )
        return targets

    def forward(
        self, student: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(weighted loss, {part: 1 - cos averaged over the batch})`` of the student's features by part
        (``video`` ``(B, D)``, ``text`` ``(N, D)``) against the teacher's ``targets``."""
        losses = {}
        for part in self.parts:
            projector = self.projectors[part]
            features = student[part].to(projector.down.weight.dtype)
            losses[part] = cosine_distillation_loss(projector(features), targets[part].to(features.device))
        total = self.weight * torch.stack(list(losses.values())).mean()
        return total, losses

    def average_gradients(self) -> None:
        """Average the projectors' gradients over the processes (they are outside the DDP-wrapped model); each
        process's loss is its own shard's mean, so the average is the whole batch's gradient."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def save(self, folder: str | os.PathLike) -> None:
        """Write the projectors into ``folder`` (:data:`PROJECTORS_FILE`)."""
        from safetensors.torch import save_file

        state = {name: value.detach().contiguous().cpu() for name, value in self.state_dict().items()}
        save_file(state, os.path.join(folder, PROJECTORS_FILE))

    def load(self, folder: str | os.PathLike) -> bool:
        """Read the projectors from ``folder``; False when it has none (a run started without distillation)."""
        path = os.path.join(folder, PROJECTORS_FILE)
        if not os.path.isfile(path):
            return False
        from safetensors.torch import load_file

        self.load_state_dict(load_file(path))
        return True


__all__ = [
    "DISTILL_PARTS",
    "LABEL_SET_CHUNK",
    "PROJECTORS_FILE",
    "FeatureDistillation",
    "FrozenTeacher",
    "ResidualProjector",
    "check_distill_weight",
    "cosine_distillation_loss",
    "distillation_parts",
]
