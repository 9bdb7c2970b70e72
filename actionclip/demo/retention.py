"""Fine-tuning the pretrained miniature into ActionCLIP without losing its zero-shot recognition: the retention table.

ActionCLIP starts from the miniature (`ActionCLIPModel.from_backbone`), as the paper starts from CLIP, and is
fine-tuned on the base classes of a base-to-novel split of synthetic videos (`SyntheticActionConfig.novel_appearances`
/ ``novel_motions``: a novel class is new in its appearance, its motion, or both). Each way of fine-tuning is scored
on the base classes' validation videos and, zero-shot, on the novel classes, with the harmonic mean of the two:

- the pretrained miniature itself (mean pooling over frames, no training: `fusion="meanP"`);
- plain fine-tuning;
- WiSE-FT (`training.weight_ensembling.wise_ft`) between the two, at the alpha of the best harmonic mean;
- fine-tuning with distillation from the miniature (``distill_weight``: the trainer keeps the video and text
  embeddings near the frozen starting model's);
- distillation + WiSE-FT.

Each way of fine-tuning runs ``runs`` times (seeds ``seed``, ``seed + 1``, ...) and its row is the mean over the runs
(WiSE-FT: the alpha of the best mean harmonic mean), with every run's figures kept beside the table: on so few videos
one run's lead of one way over another moves by many points with the seed alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .profiles import DEMO_TEMPLATES, DemoProfile

# The table's rows, in order: key, title.
RETENTION_ROWS: tuple[tuple[str, str], ...] = (
    ("zero_shot", "pretrained miniature, zero-shot"),
    ("fine_tuned", "plain fine-tuning"),
    ("wise_ft", "WiSE-FT (best alpha)"),
    ("distilled", "distillation"),
    ("distilled_wise_ft", "distillation + WiSE-FT"),
)


def distillation_available() -> bool:
    """Whether the trainer's arguments offer distillation from the starting model (``distill_weight``)."""
    from ..training.trainer import ActionCLIPTrainingArguments

    return "distill_weight" in {field.name for field in dataclasses.fields(ActionCLIPTrainingArguments)}


def harmonic_mean(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def score_base_novel(model, tokenizer, base_clips, novel_clips, novelty: list[str | None]) -> dict:
    """Top-1 on the base classes' videos (against the base label set) and on the novel classes' (against the novel
    label set), their harmonic mean, and the novel top-1 by what is new in the class (``novelty`` per novel class:
    "appearance", "motion" or "both")."""
    import numpy as np
    import torch

    model.eval()
    result = {}
    with torch.no_grad():
        for key, clips in (("base", base_clips), ("novel", novel_clips)):
            text = model.encode_label_set(list(clips.label_names), tokenizer, list(DEMO_TEMPLATES))
            videos = []
            for start in range(0, len(clips.pixel_values), 64):
                features = model.get_video_features(pixel_values=clips.pixel_values[start : start + 64])
                videos.append(torch.nn.functional.normalize(features.pooler_output, dim=-1))
            predicted = (torch.cat(videos) @ text.t()).argmax(dim=1).numpy()
            truth = np.asarray(clips.labels)
            result[key] = float((predicted == truth).mean())
            if key == "novel":
                kinds = np.asarray([novelty[label] for label in truth])
                result["novel_by_kind"] = {
                    kind: float((predicted == truth)[kinds == kind].mean())
                    for kind in ("appearance", "motion", "both")
                    if (kinds == kind).any()
                }
    result["harmonic_mean"] = harmonic_mean(result["base"], result["novel"])
    return result


def _mean_figures(runs: list[dict]) -> dict:
    """The mean of several runs' `score_base_novel` figures (the harmonic mean of the mean base and novel)."""
    base = sum(run["base"] for run in runs) / len(runs)
    novel = sum(run["novel"] for run in runs) / len(runs)
    kinds = runs[0]["novel_by_kind"]
    return {
        "base": base,
        "novel": novel,
        "novel_by_kind": {kind: sum(run["novel_by_kind"][kind] for run in runs) / len(runs) for kind in kinds},
        "harmonic_mean": harmonic_mean(base, novel),
    }


def run_retention(profile: DemoProfile, output_dir: Path, backbone_dir: Path, seed: int, progress: bool = True):
    """The retention table (see the module docstring): data under ``output_dir / "data"``, the fine-tuned models in
    ``output_dir``; returns the rows' figures, the WiSE-FT sweeps and the split."""
    import time

    from transformers import set_seed

    from ..data.datasets import VideoClassificationDataset
    from ..data.in_memory import InMemoryClips
    from ..data.synthetic import SyntheticActionConfig, generate_synthetic_dataset, novelty
    from ..modeling_actionclip import ActionCLIPModel
    from ..processing_actionclip import ActionCLIPProcessor
    from ..training.weight_ensembling import choose_alpha, wise_ft
    from .train import fit

    settings = profile.retention
    start = time.perf_counter()
    size = (profile.image_size, profile.image_size)
    data_config = SyntheticActionConfig(**settings["data"], num_frames=profile.num_frames, size=size, seed=seed)
    dataset = generate_synthetic_dataset(output_dir / "data", data_config, num_workers=0, overwrite=True)
    processor = ActionCLIPProcessor.from_backbone(
        backbone_dir,
        num_frames=profile.num_frames,
        templates=list(DEMO_TEMPLATES),
        size={"shortest_edge": profile.image_size},
    )

    def clips(split: str, labels: list[str], description: str) -> InMemoryClips:
        videos = VideoClassificationDataset.from_list_file(
            dataset.list_file(split),
            labels,
            num_frames=profile.num_frames,
            training=False,  # no augmentation: flips and colour jitter would change the classes
            video_processor=processor.video_processor,
            seed=seed,
        )
        return InMemoryClips(videos, seed, progress, description)

    train = clips("train", dataset.labels, "decoding the base classes' training videos")
    base = clips("val", dataset.labels, "decoding the base classes' validation videos")
    novel = clips("zeroshot", dataset.zeroshot_labels, "decoding the novel classes' videos")
    kinds = [novelty(label, data_config) for label in dataset.zeroshot_labels]

    def score(model) -> dict:
        return score_base_novel(model, processor.tokenizer, base, novel, kinds)

    def from_miniature(fusion: str, run_seed: int = seed):
        set_seed(run_seed)
        return ActionCLIPModel.from_backbone(
            str(backbone_dir), fusion=fusion, num_frames=profile.num_frames, templates=list(DEMO_TEMPLATES)
        )

    zero_shot = from_miniature("meanP")
    results = {"zero_shot": score(zero_shot)}
    ways = [("fine_tuned", {})]
    if distillation_available():
        ways.append(("distilled", {"distill_weight": settings["distill_weight"]}))
    # Each way is fine-tuned once per seed (``runs`` of them: seed, seed + 1, ...) and its rows are the means over
    # the runs; one run's lead of one way over another moves by many points with the seed alone.
    run_seeds = [seed + run for run in range(settings.get("runs", 1))]
    per_run: dict[str, list[dict]] = {}
    sweeps_per_run: dict[str, list[list[dict]]] = {}
    runtimes: dict[str, list[float]] = {}
    for run_seed in run_seeds:
        for key, extra in ways:
            model = from_miniature(profile.temporal_prompt, run_seed)
            model.config.id2label = dict(enumerate(train.label_names))
            model.config.label2id = {name: i for i, name in enumerate(train.label_names)}
            output = fit(
                model,
                {**settings["training"], **extra},
                train,
                processor,
                output_dir / f"model_{key}",
                run_seed,
                progress,
                f"fine-tuning the miniature ({key.replace('_', ' ')}, seed {run_seed})",
                max_grad_norm=settings.get("max_grad_norm", 1.0),
            )
            runtimes.setdefault(key, []).append(output.metrics["train_runtime"])
            if run_seed == seed:  # the first run's models are saved
                model.save_pretrained(str(output_dir / f"model_{key}"))
                processor.save_pretrained(str(output_dir / f"model_{key}"))
            per_run.setdefault(key, []).append(score(model))
            wise_key = "wise_ft" if key == "fine_tuned" else "distilled_wise_ft"
            sweeps_per_run.setdefault(wise_key, []).append(
                [{"alpha": alpha, **score(wise_ft(zero_shot, model, alpha))} for alpha in settings["wise_ft_alphas"]]
            )
    sweeps = {}
    for key, runs in per_run.items():
        results[key] = _mean_figures(runs)
    for wise_key, runs in sweeps_per_run.items():
        rows = [
            {"alpha": alpha, **_mean_figures([run[i] for run in runs])}
            for i, alpha in enumerate(settings["wise_ft_alphas"])
        ]
        for row in rows:
            row["base_top1"] = row["base"]
        best = choose_alpha(rows)
        results[wise_key] = dict(best)
        sweeps[wise_key] = rows
    results = {key: results[key] for key, _ in RETENTION_ROWS if key in results}
    return {
        "rows": results,
        "runs": {"seeds": run_seeds, **per_run},
        "sweeps": sweeps,
        "train_runtime_s": {key: sum(values) for key, values in runtimes.items()},
        "distillation": distillation_available(),
        "data": {
            "root": str(dataset.root),
            "base_labels": list(dataset.labels),
            "novel_labels": list(dataset.zeroshot_labels),
            "novelty": dict(zip(dataset.zeroshot_labels, kinds)),
            "num_train": len(train),
            "num_base_val": len(base),
            "num_novel": len(novel),
        },
        "runtime_s": time.perf_counter() - start,
    }
