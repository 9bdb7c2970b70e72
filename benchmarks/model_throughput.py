"""Model throughput: ActionCLIP against transformers' `XCLIPModel` and against our own eager float32 path.

Both models get the same backbone (vision width / layers / heads / patch / image size, text width / layers /
heads), the same projection size, frames and batch; X-CLIP keeps its own defaults for what it adds (one-layer
multi-frame integration transformer, two-layer video-specific prompt generator, cross-frame message tokens). All
weights are random: throughput does not depend on them.

Workloads (one row per model and variant):

- ``zero-shot``: scoring a batch of videos against a label set. Ours: ``get_video_features`` and a matmul against
  the L2-normalised embeddings of every (template, class) prompt, computed once before timing (the text tower is
  not in the loop), then the template ensemble. X-CLIP's text embeddings depend on the video (its prompt
  generator attends to the video's patch features) and its ``forward`` takes no precomputed text, so its row
  runs the whole forward with the labels' ``input_ids`` (its text tower on every batch). The extra row
  "X-CLIP text-cached" runs X-CLIP's own modules with the text tower's output computed once: the fair
  "as fast as X-CLIP can be" comparison (our re-composition of its forward's video side, checked against its
  forward in the smoke test).
- ``train``: one optimisation step, both towers: forward with one prompt per video, the model's own loss
  (ours: fusion + symmetric KL; X-CLIP: its contrastive loss), backward, AdamW (fused where the device has it).

Variants: ``eager fp32`` (the baseline of the "vs baseline" column is our eager fp32 row of the same workload),
``sdpa fp32``, ``sdpa bf16`` (autocast), ``sdpa bf16 compile`` (``torch.compile``; opt-in, skipped with the
reason when compiling fails).

FLOPs are counted once per workload with ``torch.utils.flop_counter.FlopCounterMode`` on one eager float32 step
(matmuls, convolutions and attention, forward and backward; the optimizer's elementwise work is not counted)
and reused for every variant of that workload: the model's FLOPs, not what a kernel happened to execute.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actionclip import ActionCLIPConfig, ActionCLIPModel  # noqa: E402
from actionclip.data.labels import load_label_names  # noqa: E402
from actionclip.prompts import ACTIONCLIP_TEMPLATES  # noqa: E402
from actionclip.scoring import template_ensemble_probs  # noqa: E402
from actionclip.tokenizer import load_clip_tokenizer  # noqa: E402

# Dense bf16 tensor-core peak per device, FLOP/s. H100 SXM: NVIDIA's datasheet (989 TFLOP/s). H200: the value of
# the performance issue (790 TFLOP/s); NVIDIA's H200 SXM datasheet lists the same 989 as the H100, so rescale
# the MFU column by 790 / 989 to compare with that. Override with --peak-tflops.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 790e12}


@dataclass(frozen=True)
class Preset:
    """One benchmark configuration, shared by every model and variant of a run."""

    name: str
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    projection_dim: int = 512
    num_frames: int = 8
    batch_size: int = 32
    num_classes: int = 400
    num_templates: int = 16
    fusion: str = "transf"
    fusion_layers: int = 6
    joint: bool = False
    warmup: int = 3
    iters: int = 10

    def describe(self) -> str:
        joint = ", joint prompt" if self.joint else ""
        return (
            f"ViT width {self.vision_width} x {self.vision_layers} layers, patch {self.patch_size}, "
            f"{self.image_size} px; text width {self.text_width} x {self.text_layers}; D {self.projection_dim}; "
            f"{self.num_frames} frames; batch {self.batch_size}; {self.num_classes} classes x {self.num_templates} "
            f"templates; ours: fusion {self.fusion} ({self.fusion_layers} layers){joint}; "
            f"{self.warmup} warm-up + {self.iters} timed steps"
        )


PRESETS = {
    # The configuration: CLIP ViT-B/16 towers, 224 px, 8 frames, batch 32, Kinetics-400 x 16 templates.
    "h200": Preset("h200", 224, 16, 768, 12, 12, 512, 12, 8, batch_size=32),
    # A few minutes on a small shared CPU.
    "cpu": Preset("cpu", 112, 16, 256, 4, 4, 256, 4, 4, batch_size=4, num_classes=100, warmup=1, iters=5),
    # The smoke test's: every code path once.
    "tiny": Preset(
        "tiny", 32, 16, 64, 1, 2, 64, 1, 1, projection_dim=64, num_frames=4, batch_size=2, num_classes=5,
        num_templates=2, fusion_layers=1, warmup=0, iters=1,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Variant:
    name: str
    attn: str
    autocast: torch.dtype | None = None
    compile: bool = False


BASELINE = Variant("eager fp32", "eager")
OUR_VARIANTS = (
    BASELINE,
    Variant("sdpa fp32", "sdpa"),
    Variant("sdpa bf16", "sdpa", torch.bfloat16),
    Variant("sdpa bf16 compile", "sdpa", torch.bfloat16, compile=True),
)
XCLIP_VARIANTS = (BASELINE, Variant("sdpa bf16", "sdpa", torch.bfloat16))


@dataclass
class Row:
    """One line of the table. ``seconds`` is per step (``None`` when the variant was skipped)."""

    task: str
    model: str
    variant: str
    batch_size: int
    seconds: float | None = None
    flops_per_step: float | None = None
    peak_memory: int | None = None
    finite_output: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def videos_per_second(self) -> float | None:
        return None if self.seconds is None else self.batch_size / self.seconds


# ---------------------------------------------------------------------------------------------------- models


def _tower(width: int, layers: int, heads: int) -> dict:
    return dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers, num_attention_heads=heads)


def build_ours(preset: Preset, device: torch.device, seed: int = 0) -> ActionCLIPModel:
    vision = dict(
        _tower(preset.vision_width, preset.vision_layers, preset.vision_heads),
        patch_size=preset.patch_size,
        image_size=preset.image_size,
    )
    config = ActionCLIPConfig(
        text_config=_tower(preset.text_width, preset.text_layers, preset.text_heads),
        vision_config=vision,
        projection_dim=preset.projection_dim,
        num_frames=preset.num_frames,
        fusion=preset.fusion,
        fusion_num_layers=preset.fusion_layers,
        joint=preset.joint,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        return ActionCLIPModel(config)


def build_xclip(preset: Preset, device: torch.device, seed: int = 0):
    from transformers import XCLIPConfig, XCLIPModel

    # X-CLIP's multi-frame integration transformer works on projected frame features, so its width is the
    # projection size (its defaults, 512 / 2048, are the projection_dim=512 case).
    vision = dict(
        _tower(preset.vision_width, preset.vision_layers, preset.vision_heads),
        patch_size=preset.patch_size,
        image_size=preset.image_size,
        num_frames=preset.num_frames,
        mit_hidden_size=preset.projection_dim,
        mit_intermediate_size=4 * preset.projection_dim,
    )
    config = XCLIPConfig(
        text_config=_tower(preset.text_width, preset.text_layers, preset.text_heads),
        vision_config=vision,
        projection_dim=preset.projection_dim,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        return XCLIPModel(config)


def xclip_logits_with_cached_text(model, pixel_values: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """X-CLIP's forward with the text tower's projected output given: its video side and prompt generator.

    Args:
        pixel_values: (B, T, C, H, W).
        text_embeds: (N, D) ``model.get_text_features(...)`` output (projected, not normalised).

    Returns:
        (B, N) ``logits_per_video``, equal to ``model(input_ids, pixel_values).logits_per_video``.
    """
    batch_size, num_frames, channels, height, width = pixel_values.shape
    vision = model.vision_model(pixel_values=pixel_values.reshape(-1, channels, height, width))
    frame_embeds = model.visual_projection(vision.pooler_output).view(batch_size, num_frames, -1)
    video_embeds = model.mit(frame_embeds).pooler_output
    patches = model.prompts_visual_layernorm(vision.last_hidden_state[:, 1:, :]) @ model.prompts_visual_projection
    patches = patches.view(batch_size, num_frames, -1, video_embeds.shape[-1]).mean(dim=1)
    texts = text_embeds.unsqueeze(0).expand(batch_size, -1, -1)
    texts = texts + model.prompts_generator(texts, patches)
    video_embeds = F.normalize(video_embeds, dim=-1)
    texts = F.normalize(texts, dim=-1)
    return torch.einsum("bd,bkd->bk", video_embeds, model.logit_scale.exp() * texts)


# ---------------------------------------------------------------------------------------------------- inputs


def label_names(count: int) -> list[str]:
    """Kinetics-400 class names (repeated with a suffix beyond 400): realistic prompt lengths."""
    names = load_label_names("kinetics400")
    return [names[i % len(names)] + ("" if i < len(names) else f" {i // len(names)}") for i in range(count)]


@dataclass
class Inputs:
    pixel_values: torch.Tensor  # (B, T, 3, H, W)
    prompt_ids: torch.Tensor  # (K * N, L) every template x class, template-major (ours, zero-shot)
    prompt_mask: torch.Tensor
    label_ids: torch.Tensor  # (N, L) the class names (X-CLIP, zero-shot)
    label_mask: torch.Tensor
    labels: torch.Tensor  # (B,) class of every video (train)
    train_ids: torch.Tensor  # (B, L) one prompt per video: its class under a random template (train)
    train_mask: torch.Tensor


def make_inputs(preset: Preset, device: torch.device, seed: int = 0) -> Inputs:
    tokenizer = load_clip_tokenizer()
    names = label_names(preset.num_classes)
    templates = ACTIONCLIP_TEMPLATES[: preset.num_templates]
    generator = torch.Generator().manual_seed(seed)

    def tokenize(texts):
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        return encoded["input_ids"].to(device), encoded["attention_mask"].to(device)

    labels = torch.randint(preset.num_classes, (preset.batch_size,), generator=generator)
    template_of = torch.randint(len(templates), (preset.batch_size,), generator=generator)
    prompt_ids, prompt_mask = tokenize([t.format(name) for t in templates for name in names])
    label_ids, label_mask = tokenize(names)
    train_ids, train_mask = tokenize([templates[k].format(names[c]) for k, c in zip(template_of, labels)])
    shape = (preset.batch_size, preset.num_frames, 3, preset.image_size, preset.image_size)
    return Inputs(
        pixel_values=torch.randn(shape, generator=generator).to(device),
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        label_ids=label_ids,
        label_mask=label_mask,
        labels=labels.to(device),
        train_ids=train_ids,
        train_mask=train_mask,
    )


# ---------------------------------------------------------------------------------------------------- steps


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _adamw(model, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    parameters = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(parameters, lr=1e-5, weight_decay=0.2, fused=True), "fused AdamW"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(parameters, lr=1e-5, weight_decay=0.2, foreach=True), "foreach AdamW"


def _maybe_compile(function: Callable, variant: Variant) -> Callable:
    return torch.compile(function) if variant.compile else function


def our_zero_shot(model, inputs: Inputs, preset: Preset, variant: Variant, device: torch.device, cache: dict):
    model.eval()
    if "text_bank" not in cache:
        # The label set's prompt embeddings: computed once per label set, outside the timed loop.
        with torch.inference_mode():
            text = model.get_text_features(inputs.prompt_ids, inputs.prompt_mask).pooler_output
            cache["text_bank"] = F.normalize(text.float(), dim=-1)
    text_bank = cache["text_bank"]
    encode = _maybe_compile(lambda pixel_values: model.get_video_features(pixel_values).pooler_output, variant)

    def step():
        with torch.inference_mode(), _autocast(device, variant.autocast):
            video_embeds = F.normalize(encode(inputs.pixel_values), dim=-1)
            return template_ensemble_probs(100.0 * video_embeds @ text_bank.t(), preset.num_templates)

    return step, []


def xclip_zero_shot(model, inputs: Inputs, preset: Preset, variant: Variant, device: torch.device, cache: dict):
    model.eval()
    forward = _maybe_compile(model, variant)

    def step():
        with torch.inference_mode(), _autocast(device, variant.autocast):
            outputs = forward(
                input_ids=inputs.label_ids, attention_mask=inputs.label_mask, pixel_values=inputs.pixel_values
            )
            return outputs.logits_per_video.float().softmax(dim=-1)

    return step, []


def xclip_zero_shot_cached_text(
    model, inputs: Inputs, preset: Preset, variant: Variant, device: torch.device, cache: dict
):
    model.eval()
    if "text_embeds" not in cache:
        with torch.inference_mode():
            text = model.get_text_features(input_ids=inputs.label_ids, attention_mask=inputs.label_mask)
            cache["text_embeds"] = text.pooler_output
    text_embeds = cache["text_embeds"]

    def step():
        with torch.inference_mode(), _autocast(device, variant.autocast):
            return xclip_logits_with_cached_text(model, inputs.pixel_values, text_embeds).float().softmax(dim=-1)

    return step, []


def _train_workload(model, variant: Variant, device: torch.device, **forward_inputs):
    """One full training step (forward, loss, backward, fused AdamW) of ``model`` on ``forward_inputs``."""
    model.train()
    optimizer, optimizer_name = _adamw(model, device)
    forward = _maybe_compile(model, variant)

    def step():
        with _autocast(device, variant.autocast):
            outputs = forward(**forward_inputs)
        outputs.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return outputs.loss.detach()

    return step, [optimizer_name]


def our_train(model, inputs: Inputs, preset: Preset, variant: Variant, device: torch.device, cache: dict):
    return _train_workload(
        model,
        variant,
        device,
        pixel_values=inputs.pixel_values,
        input_ids=inputs.train_ids,
        attention_mask=inputs.train_mask,
        labels=inputs.labels,
    )


def xclip_train(model, inputs: Inputs, preset: Preset, variant: Variant, device: torch.device, cache: dict):
    return _train_workload(
        model,
        variant,
        device,
        input_ids=inputs.train_ids,
        attention_mask=inputs.train_mask,
        pixel_values=inputs.pixel_values,
        return_loss=True,
    )


@dataclass(frozen=True)
class Workload:
    task: str
    model: str
    build: Callable  # (preset, device) -> model
    make_step: Callable  # (model, inputs, preset, variant, device, cache) -> (step, notes)
    variants: tuple[Variant, ...]


def workloads(compile_ours: bool) -> list[Workload]:
    ours = OUR_VARIANTS if compile_ours else tuple(v for v in OUR_VARIANTS if not v.compile)
    return [
        Workload("zero-shot", "ours", build_ours, our_zero_shot, ours),
        Workload("zero-shot", "X-CLIP", build_xclip, xclip_zero_shot, XCLIP_VARIANTS),
        Workload("zero-shot", "X-CLIP text-cached", build_xclip, xclip_zero_shot_cached_text, XCLIP_VARIANTS),
        Workload("train", "ours", build_ours, our_train, ours),
        Workload("train", "X-CLIP", build_xclip, xclip_train, XCLIP_VARIANTS),
    ]


# ---------------------------------------------------------------------------------------------------- measuring


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc), so that the next variant's RSS growth starts from a clean base."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory over a block: CUDA ``max_memory_allocated`` (absolute: weights, gradients, optimizer state and
    activations); on CPU the growth of the resident set over its value at entry (freed heap returned to the OS
    first), sampled every 2 ms."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        _release_freed_memory()
        self._base = _rss_bytes()
        self._highest = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._highest = max(self._highest, _rss_bytes())

    def __exit__(self, *exc_info) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._highest, _rss_bytes()) - self._base


def count_flops(step: Callable) -> tuple[float, object]:
    """(FLOPs of one call of ``step``, its output)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        output = step()
    return float(counter.get_total_flops()), output


def time_steps(step: Callable, device: torch.device, warmup: int, iters: int) -> float:
    """Seconds per step. CUDA: wall time of ``iters`` back-to-back steps with one synchronisation at the end (no
    per-step sync that would hide launch overhead). CPU: the median of per-step times."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    if device.type == "cuda":
        started = time.perf_counter()
        for _ in range(iters):
            step()
        torch.cuda.synchronize(device)
        return (time.perf_counter() - started) / iters
    times = []
    for _ in range(iters):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def count_host_syncs(step: Callable, device: torch.device) -> list[str]:
    """Synchronising CUDA calls one step makes (``torch.cuda.set_sync_debug_mode``); CUDA only."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize(device)
    return [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]


def _short_error(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:160] if lines else ''}"


def _prepare(workload, model, preset, variant, device, inputs, cache, row, flops):
    """The step of one variant, after its first call (compiling, counting FLOPs or warming up); returns
    (step, flops)."""
    model.set_attn_implementation(variant.attn)
    step, notes = workload.make_step(model, inputs, preset, variant, device, cache)
    row.notes.extend(notes)
    if variant.compile:
        started = time.perf_counter()
        output = step()
        _synchronize(device)
        row.notes.append(f"compiled in {time.perf_counter() - started:.0f} s")
    if flops is None:
        # One eager step counted; the same model FLOPs for every variant.
        flops, output = count_flops(step)
    elif not variant.compile:
        output = step()  # every variant has made exactly one step when prepared
    row.flops_per_step = flops
    row.finite_output = bool(torch.isfinite(output).all())
    if not row.finite_output:
        row.notes.append("non-finite output")
    return step, flops


def _fail(row: Row, variant: Variant, error: BaseException) -> None:
    row.seconds = None
    row.notes.append(("skipped: torch.compile failed: " if variant.compile else "failed: ") + _short_error(error))
    if os.environ.get("ACTIONCLIP_BENCH_TRACEBACK"):
        traceback.print_exc()


def run_workload(
    workload: Workload,
    preset: Preset,
    device: torch.device,
    inputs: Inputs,
    *,
    check_syncs: bool = False,
    interleave: bool | None = None,
) -> list[Row]:
    """Every variant of one workload on one model instance (its attention implementation switched per variant).

    CUDA: variant after variant, each timed over back-to-back steps and released before the next (so that peak
    memory is that variant's alone). CPU: every variant prepared and warmed up (peak memory: the resident-set
    growth during one steady-state step), then timed in interleaved rounds (one step of each variant per round,
    medians), so that the load of a shared machine falls on every variant alike. ``interleave`` overrides the
    choice (the smoke test runs the sequential path on a CPU).
    """
    if interleave is None:
        interleave = device.type != "cuda"
    model = workload.build(preset, device)
    cache: dict = {}
    rows = [Row(workload.task, workload.model, v.name, preset.batch_size) for v in workload.variants]
    flops = None
    try:
        if not interleave:
            for row, variant in zip(rows, workload.variants):
                try:
                    step, flops = _prepare(workload, model, preset, variant, device, inputs, cache, row, flops)
                    with PeakMemory(device) as memory:
                        row.seconds = time_steps(step, device, preset.warmup, preset.iters)
                    row.peak_memory = memory.peak
                    if check_syncs and device.type == "cuda":
                        syncs = count_host_syncs(step, device)
                        row.notes.append(f"{len(syncs)} syncs/step" + (f" ({syncs[0][:60]})" if syncs else ""))
                except Exception as error:  # a variant that cannot run here is reported, not fatal
                    _fail(row, variant, error)
                finally:
                    step = None
                    if variant.compile:
                        torch._dynamo.reset()
                    _release_freed_memory()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
            return rows

        ready = []
        for row, variant in zip(rows, workload.variants):
            try:
                step, flops = _prepare(workload, model, preset, variant, device, inputs, cache, row, flops)
                for _ in range(max(preset.warmup - 1, 0)):
                    step()
                # Steady state: a step after the first (lazily created optimizer state is not growth any more).
                with PeakMemory(device) as memory:
                    step()
                row.peak_memory = memory.peak
                ready.append((row, variant, step))
            except Exception as error:
                _fail(row, variant, error)
        times: dict[int, list[float]] = {id(row): [] for row, _, _ in ready}
        for _ in range(preset.iters):
            for row, variant, step in ready:
                model.set_attn_implementation(variant.attn)
                started = time.perf_counter()
                step()
                times[id(row)].append(time.perf_counter() - started)
        for row, _, _ in ready:
            row.seconds = statistics.median(times[id(row)])
        return rows
    finally:
        del model
        if any(v.compile for v in workload.variants):
            torch._dynamo.reset()
        _release_freed_memory()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_all(
    preset: Preset,
    device: torch.device,
    *,
    compile_ours: bool = False,
    check_syncs: bool = False,
    only: set[str] | None = None,
    models: set[str] | None = None,
    log=None,
) -> list[Row]:
    inputs = make_inputs(preset, device)
    rows: list[Row] = []
    for workload in workloads(compile_ours):
        if (only and workload.task not in only) or (models and workload.model not in models):
            continue
        started = time.perf_counter()
        new_rows = run_workload(workload, preset, device, inputs, check_syncs=check_syncs)
        rows.extend(new_rows)
        if log is not None:
            log(f"# {workload.task} / {workload.model}: {time.perf_counter() - started:.0f} s")
    return rows


# ---------------------------------------------------------------------------------------------------- the table


def peak_flops(device: torch.device, override_tflops: float | None = None) -> tuple[float | None, str]:
    """(peak dense bf16 FLOP/s, where it comes from) for the MFU column; (None, reason) where unknown."""
    if override_tflops:
        return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (--peak-tflops)"
    if device.type != "cuda":
        return None, "CPU: achieved GFLOP/s instead of MFU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_FLOPS.items():
        if key in name:
            return value, f"{name}: {value / 1e12:g} TFLOP/s dense bf16"
    return None, f"{name}: peak unknown (pass --peak-tflops)"


def _memory(row: Row, device: torch.device) -> str:
    if row.peak_memory is None:
        return "—"
    return f"{row.peak_memory / 2**30:.2f} GiB" if device.type == "cuda" else f"+{row.peak_memory / 2**20:.0f} MiB"


def format_table(rows: list[Row], device: torch.device, peak: float | None) -> str:
    """The markdown table: one line per (task, model, variant)."""
    baseline = {r.task: r.seconds for r in rows if r.model == "ours" and r.variant == BASELINE.name}
    achieved_header = "achieved TFLOP/s" if device.type == "cuda" else "achieved GFLOP/s"
    memory_header = "peak memory (allocated)" if device.type == "cuda" else "peak memory (RSS growth)"
    header = [
        "task",
        "model",
        "variant",
        "videos/s",
        "vs ours eager fp32",
        "GFLOP/video",
        achieved_header,
        "MFU",
        memory_header,
        "notes",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        per_video = row.flops_per_step / row.batch_size / 1e9 if row.flops_per_step else None
        achieved = row.flops_per_step / row.seconds if row.flops_per_step and row.seconds else None
        base = baseline.get(row.task)
        cells = [
            row.task,
            row.model,
            row.variant,
            f"{row.videos_per_second:.2f}" if row.seconds else "—",
            f"{base / row.seconds:.2f}x" if row.seconds and base else "—",
            f"{per_video:.3g}" if per_video is not None else "—",
            "—" if achieved is None else f"{achieved / (1e12 if device.type == 'cuda' else 1e9):.3g}",
            f"{100 * achieved / peak:.1f}%" if achieved and peak else "—",
            _memory(row, device),
            "; ".join(row.notes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment_line(device: torch.device) -> str:
    import platform

    import transformers

    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    return f"{where}; torch {torch.__version__}; transformers {transformers.__version__}; python {platform.python_version()}"


def preset_from_args(name: str, **overrides) -> Preset:
    preset = PRESETS[name]
    overrides = {key: value for key, value in overrides.items() if value is not None}
    return replace(preset, **overrides) if overrides else preset


__all__ = [
    "PRESETS",
    "Preset",
    "Row",
    "Variant",
    "build_ours",
    "build_xclip",
    "format_table",
    "make_inputs",
    "run_all",
    "xclip_logits_with_cached_text",
]
