"""``actionclip demo`` / ``make demo``: the whole method, end to end, on a fresh machine without network.

1. Generate the synthetic dataset (:mod:`actionclip.data.synthetic`): coloured shapes doing actions, real H.264
   MP4 files, with order-only pairs (``moving left`` / ``moving right``: the same clips played backwards) and a
   held-out split of new compositions for zero-shot evaluation.
2. Train two small ActionCLIP models from scratch with `transformers.Trainer` (:class:`ActionCLIPTrainer`), with
   the same data, budget and seed: one with a temporal visual prompt, one with mean pooling (``meanP``), which
   cannot see frame order. The text tower stays at its random initialisation (see ``DemoProfile.freeze_text``).
3. Evaluate both (:mod:`actionclip.evaluation.runner`): closed-set on the validation videos, zero-shot on the
   held-out compositions, and the accuracy of telling the two members of each order-only pair apart.
4. Classify one held-out video through the zero-shot pipeline, write the model cards (their config records what
   they were trained on: synthetic videos, not for real ones), the confusion matrices and the output folder's README;
   the temporal model's weights before training are saved too, as the zero-shot end of WiSE-FT.
5. Print a short report with the chance levels and the checks the demo exists to show: closed-set accuracy far
   above chance, the temporal prompt above ``meanP`` on the order-only pairs while ``meanP`` stays near 50%, and
   zero-shot accuracy above chance.

Everything is seeded; on CPU with a fixed number of threads the run is deterministic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# Models trained from scratch on a handful of labels learn fastest from one plain template: the label itself.
DEMO_TEMPLATES: tuple[str, ...] = ("{}",)

# What the demo's weights are fit for, in their config (`actionclip info`) and model cards: a softmax over the offered
# labels always sums to 1, so a real video still gets a confident-looking answer from them, which means nothing.
NOT_FOR_REAL_VIDEOS = (
    "Not for real videos: given one, it still gives one of the offered labels a high score, and that answer means "
    "nothing."
)
UNTRAINED_WEIGHTS = (
    "Nothing: the random initial weights of the demo's {fusion} model, saved by `actionclip demo` before training "
    "(the zero-shot end of `actionclip wise-ft` for a model trained from scratch). Not for any video."
)


@dataclass(frozen=True)
class DemoProfile:
    """Sizes of one demo run; ``full`` (the default, and what CI runs) fits 10 minutes on two CPU cores."""

    name: str
    data: dict
    """the synthetic dataset (`SyntheticActionConfig` fields: colours, shapes, motions, videos per class); its
    frame count and size come from ``num_frames`` and ``image_size``."""
    model: dict
    """the models' `ActionCLIPConfig` arguments (tower sizes, projection, fusion size, loss); the image size, frame
    count, fusion and templates come from the profile, the model trained and `DEMO_TEMPLATES`."""
    training: dict
    """the `ActionCLIPTrainingArguments` the profile chooses (epochs, batch size, learning rates, weight decay)."""
    image_size: int = 32
    num_frames: int = 8
    position_init_scale: float = 10.0
    """multiplies CLIP's std-0.02 position tables at initialisation: from scratch, where things are (and when)
    must be visible from the start for the order-only pairs to be learnable in minutes."""
    temporal_prompt: str = "transf"
    freeze_text: bool = True
    """keep the text tower at its random initialisation (only the vision tower, the fusion and the temperature
    learn). Trained from scratch, the text tower gives both members of an order-only pair ("moving left" / "moving
    right") the same embedding before the video side can tell them apart, and from then on the loss no longer asks
    the video side to: in four runs with a trainable text tower (seeds 0-2) "moving left" and "moving right" ended
    with the same embedding every time (cosine 0.95-1.0), "growing" / "shrinking" in two of them (cosine 0.99).
    Frozen random text embeddings stay distinct, and the held-out compositions still score far above chance."""
    # Pass marks of the report's checks.
    closed_set_factor: float = 3.0
    """closed-set top-1 must reach this many times the chance level."""
    pair_margin: float = 0.15
    """the temporal prompt's pair accuracy must beat meanP's by this much."""
    meanp_pair_tolerance: float = 0.12
    """meanP's pair accuracy must lie within 50% +- this."""


PROFILES: dict[str, DemoProfile] = {
    "full": DemoProfile(
        name="full",
        data=dict(
            colors=("red", "green", "blue"),
            shapes=("circle", "triangle"),
            motions=("moving left", "moving right", "growing", "shrinking"),
            videos_per_class=40,
            val_videos_per_class=6,
            zeroshot_videos_per_class=10,
        ),
        # Small towers trained from scratch (CLIP's proportions: MLP 4x the width, heads of 32 channels).
        model=dict(
            text_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2),
            vision_config=dict(
                hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2, patch_size=8
            ),
            projection_dim=64,
            fusion_num_layers=1,
            fusion_num_heads=2,
            contrastive_loss="kl",
        ),
        training=dict(
            # From scratch, the order-only pairs are learnt late: after about 25 epochs, still improving at 80.
            num_train_epochs=80,
            per_device_train_batch_size=16,
            learning_rate=3e-3,
            weight_decay=0.0,
            fusion_lr_ratio=1.0,  # the fusion learns at the towers' rate: everything starts from scratch
        ),
    ),
}


def synthetic_config(profile: DemoProfile, seed: int):
    from ..data.synthetic import SyntheticActionConfig

    size = (profile.image_size, profile.image_size)
    return SyntheticActionConfig(**profile.data, num_frames=profile.num_frames, size=size, seed=seed)


def demo_processor(profile: DemoProfile):
    """The processor of the demo models: frames already at the model's size, so the resize keeps every pixel."""
    from ..processing_actionclip import ActionCLIPProcessor

    return ActionCLIPProcessor.from_settings(
        image_size=profile.image_size,
        num_frames=profile.num_frames,
        templates=list(DEMO_TEMPLATES),
        size={"shortest_edge": profile.image_size},
    )


def demo_training_data(profile: DemoProfile, dataset) -> str:
    """The sentence the demo's trained models carry as `ActionCLIPConfig.training_data`."""
    data = profile.data
    return (
        f"Synthetic videos written by `actionclip demo` (`actionclip.data.synthetic`), no real footage: "
        f"{len(dataset.labels)} classes, each a coloured shape doing one motion (e.g. '{dataset.labels[0]}'; colours "
        f"{', '.join(data['colors'])}; shapes {', '.join(data['shapes'])}; motions {', '.join(data['motions'])}), "
        f"{len(dataset.samples['train'])} training clips of {profile.num_frames} frames at "
        f"{profile.image_size}x{profile.image_size} px. {NOT_FOR_REAL_VIDEOS}"
    )


def model_config(profile: DemoProfile, fusion: str):
    from ..configuration_actionclip import ActionCLIPConfig

    settings = {**profile.model, "vision_config": {**profile.model["vision_config"], "image_size": profile.image_size}}
    return ActionCLIPConfig(**settings, num_frames=profile.num_frames, fusion=fusion, templates=list(DEMO_TEMPLATES))


# ----------------------------------------------------------------------------------------------------------------
# Training


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
    from ..training.trainer import ActionCLIPTrainingArguments, build_trainer, freeze_towers

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
    args = ActionCLIPTrainingArguments(
        output_dir=str(output_dir / "trainer"),
        **profile.training,
        warmup_steps=0.1,
        lr_scheduler_type="cosine",
        max_grad_norm=1.0,  # from scratch, the first steps' gradients are large: clip them (fine-tuning does not)
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
        model,
        args,
        processor,
        train_data.label_names,
        train_dataset=train_data,
        progress_description=f"training the {fusion} model",
    )
    if not progress:  # without progress bars the Trainer would print its final metrics dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    model_dir = output_dir
    trainer.save_model(str(model_dir))
    processor.save_pretrained(str(model_dir))
    shutil.rmtree(output_dir / "trainer", ignore_errors=True)
    return trainer.model, {
        "train_loss": float(result.training_loss),
        "train_runtime_s": result.metrics["train_runtime"],
    }


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def evaluate_model(model, processor, dataset, output_dir: Path, name: str, progress: bool = True) -> dict:
    """Closed-set (validation videos, seen classes) and zero-shot (held-out compositions) evaluation, plus the
    order-only pair accuracy of both; the reports go under ``output_dir``."""
    import numpy as np

    from ..data.synthetic import order_pairs_of
    from ..evaluation.metrics.order_pairs import order_pair_accuracy
    from ..evaluation.protocols import full_class_zero_shot
    from ..evaluation.runner import ProtocolEvaluator, ViewSettings, closed_set_protocol

    model.eval()
    evaluator = ProtocolEvaluator(
        model,
        processor,
        ViewSettings(num_frames=model.config.num_frames),
        batch_size=32,
        model_name=name,
        progress=progress,
    )
    extra = {"synthetic": True}
    closed = evaluator.run_protocol(
        closed_set_protocol(dataset.samples["val"], dataset.labels),
        dataset.root,
        output_dir,
        "Synthetic shapes (validation)",
        "closed-set",
        extra,
    )
    zero = evaluator.run_protocol(
        full_class_zero_shot(dataset.samples["zeroshot"], dataset.zeroshot_labels, name="zero_shot"),
        dataset.root,
        output_dir,
        "Synthetic shapes (held-out compositions)",
        "zero-shot",
        extra,
    )
    result = {}
    for key, summary, labels in (("closed_set", closed, dataset.labels), ("zero_shot", zero, dataset.zeroshot_labels)):
        split_dir = Path(summary["output_dir"]) / next(iter(summary["splits"]))
        report = next(iter(summary["reports"].values()))
        scores = np.load(split_dir / "scores.npy")
        truth = np.load(split_dir / "labels.npy")
        result[key] = {
            "top1": report["metrics"]["top1_accuracy"],
            "top5": report["metrics"].get("top5_accuracy"),
            "mean_class": report["metrics"]["mean_class_accuracy"],
            "chance": report["chance_level"],
            "num_videos": report["num_videos"],
            "num_classes": report["num_classes"],
            "pairs": order_pair_accuracy(scores, truth, order_pairs_of(labels)),
            "report_dir": str(split_dir),
        }
    return result


# ----------------------------------------------------------------------------------------------------------------
# Report


def _pct(value) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def demo_checks(profile: DemoProfile, results: dict, temporal: str) -> list[dict]:
    """The demo's claims as pass/fail checks with the numbers behind them."""
    t, m = results[temporal], results["meanP"]
    chance = t["closed_set"]["chance"]
    t_pair, m_pair = t["closed_set"]["pairs"]["accuracy"], m["closed_set"]["pairs"]["accuracy"]
    zs, zs_chance = t["zero_shot"]["top1"], t["zero_shot"]["chance"]
    return [
        {
            "name": "closed_set_far_above_chance",
            "passed": t["closed_set"]["top1"] >= profile.closed_set_factor * chance,
            "text": f"closed-set top-1 of {temporal} far above chance: {_pct(t['closed_set']['top1']).strip()} >= "
            f"{profile.closed_set_factor:g} x {_pct(chance).strip()}",
        },
        {
            "name": "temporal_beats_meanp_on_pairs",
            "passed": t_pair - m_pair >= profile.pair_margin,
            "text": f"{temporal} tells order-only pairs apart better than meanP: {_pct(t_pair).strip()} vs "
            f"{_pct(m_pair).strip()} (margin >= {100 * profile.pair_margin:g} points)",
        },
        {
            "name": "meanp_pairs_near_chance",
            "passed": abs(m_pair - 0.5) <= profile.meanp_pair_tolerance,
            "text": f"meanP cannot see frame order: pair accuracy {_pct(m_pair).strip()} within 50% +- "
            f"{100 * profile.meanp_pair_tolerance:g}",
        },
        {
            "name": "zero_shot_above_chance",
            "passed": zs > zs_chance,
            "text": f"zero-shot top-1 of {temporal} on unseen compositions above chance: {_pct(zs).strip()} > "
            f"{_pct(zs_chance).strip()}",
        },
    ]


def format_report(report: dict) -> str:
    temporal = report["temporal_prompt"]
    results = report["results"]
    data = report["data"]
    t, m = results[temporal], results["meanP"]
    lines = [
        f"ActionCLIP demo (profile {report['profile']}, seed {report['seed']}): synthetic actions, models trained "
        "from scratch"
        + (" (text tower frozen at its random initialisation)" if report["profile_settings"]["freeze_text"] else ""),
        f"data: {data['num_seen_classes']} seen classes ({data['num_train']} training / {data['num_val']} validation "
        f"videos), {data['num_zeroshot_classes']} held-out compositions ({data['num_zeroshot']} videos); "
        f"{data['num_frames']} frames of {data['image_size']}x{data['image_size']} px",
        "",
        f"{'':34}{temporal:>9}{'meanP':>9}{'chance':>9}",
    ]
    rows = [
        ("closed-set top-1 (validation)", "closed_set", "top1", t["closed_set"]["chance"]),
        ("closed-set top-5", "closed_set", "top5", min(1.0, 5 * t["closed_set"]["chance"])),
        ("closed-set mean class accuracy", "closed_set", "mean_class", t["closed_set"]["chance"]),
        ("order-only pairs (validation)", "closed_set", "pairs", 0.5),
        ("zero-shot top-1 (held-out)", "zero_shot", "top1", t["zero_shot"]["chance"]),
        ("zero-shot order-only pairs", "zero_shot", "pairs", 0.5),
    ]
    for title, split, key, chance in rows:
        values = []
        for r in (t, m):
            value = r[split][key]
            values.append(value["accuracy"] if isinstance(value, dict) else value)
        lines.append(f"{title:34}{_pct(values[0]):>9}{_pct(values[1]):>9}{_pct(chance):>9}")
    epochs = report["profile_settings"]["training"]["num_train_epochs"]
    lines.append(
        f"training: {report['training'][temporal]['train_runtime_s']:.0f} s ({temporal}), "
        f"{report['training']['meanP']['train_runtime_s']:.0f} s (meanP), {epochs} epochs each"
    )
    pipe = report.get("pipeline")
    if pipe:
        top = ", ".join(f"{item['label']} {100 * item['score']:.0f}%" for item in pipe["top3"])
        verdict = "right" if pipe["top3"] and pipe["top3"][0]["label"] == pipe["truth"] else "wrong"
        lines += ["", f"pipeline on {pipe['video']} (truth: {pipe['truth']}; top-1 {verdict}):", f"  {top}"]
    located = report.get("localization")
    if located:
        lines += [
            "",
            f"localisation ({temporal}) in {located['num_videos']} untrimmed videos of 3-5 seen actions "
            f"(window {located['window']:g} s, stride {located['stride']:g} s, smoothing {located['smoothing']:g} s): "
            f"{located['found']} / {located['num_segments']} true segments found at IoU >= 0.5 "
            f"({_pct(located['recall'])})",
        ]
    lines += ["", "checks:"]
    lines += [f"  [{'PASS' if check['passed'] else 'FAIL'}] {check['text']}" for check in report["checks"]]
    lines += ["", f"outputs in {report['output_dir']}: {', '.join(report['files'])}"]
    lines.append(f"wall time: {report['wall_time_s']:.0f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# The demo


def run_demo(
    output_dir: str | os.PathLike = "demo_output",
    profile: str | DemoProfile = "full",
    seed: int = 0,
    progress: bool = True,
    threads: int | None = None,
) -> dict:
    """Run the demo into ``output_dir`` (replacing what an earlier demo wrote there); returns the report dict.

    ``threads`` (when given) sets torch's CPU thread count for the process: the numbers are reproducible for a given
    thread count and library versions, not across thread counts.
    """
    import torch
    from transformers.utils import logging as hf_logging

    from ..data.datasets import VideoClassificationDataset
    from ..data.synthetic import generate_synthetic_dataset
    from ..hub.model_card import write_model_card

    start = time.perf_counter()
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    hf_logging.set_verbosity_error()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    def step(text: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - start:5.0f} s] {text}", flush=True)

    step("generating the synthetic dataset")
    data_dir = output_dir / "data"
    dataset = generate_synthetic_dataset(data_dir, synthetic_config(profile, seed), num_workers=0, overwrite=True)
    processor = demo_processor(profile)
    train = VideoClassificationDataset.from_list_file(
        dataset.list_file("train"),
        dataset.labels,
        num_frames=profile.num_frames,
        training=False,  # no augmentation: flips and colour jitter would change the classes (left/right, red)
        video_processor=processor.video_processor,
        seed=seed,
    )
    from ..data.in_memory import InMemoryClips

    train_data = InMemoryClips(train, seed, progress, "decoding the training videos")
    training_data = demo_training_data(profile, dataset)

    temporal = profile.temporal_prompt
    results, training, model_dirs, initial_dirs = {}, {}, {}, {}
    for fusion in (temporal, "meanP"):
        step(f"training the {fusion} model ({profile.training['num_train_epochs']} epochs)")
        model_dir = output_dir / f"model_{fusion}"
        initial_dir = output_dir / f"model_{fusion}_initial" if fusion == temporal else None
        model, training[fusion] = train_model(
            profile, fusion, train_data, processor, model_dir, seed, progress, initial_dir, training_data
        )
        if initial_dir is not None:
            initial_dirs[fusion] = initial_dir
        step(f"evaluating the {fusion} model")
        # Under the model folder, where `actionclip card MODEL_DIR` looks for evaluation reports.
        results[fusion] = evaluate_model(model, processor, dataset, model_dir / "eval", fusion, progress)
        model_dirs[fusion] = model_dir

    step("classifying one held-out video with the zero-shot pipeline")
    pipeline_result = classify_with_pipeline(model_dirs[temporal], dataset)
    step("localising actions in untrimmed videos")
    localization_result = localize_untrimmed(model_dirs[temporal], dataset)

    step("writing the model cards and the report")
    for fusion, model_dir in model_dirs.items():
        reports = [
            str(Path(results[fusion][key]["report_dir"]) / "evaluation.json") for key in ("closed_set", "zero_shot")
        ]
        write_model_card(
            model_dir,
            reports,
            model_name=f"actionclip-demo-{fusion}",
            repo_id=str(model_dir.resolve()),  # the demo's models are local folders, not Hub repositories
            summary=f"A small ActionCLIP model ({fusion} visual prompt) trained from scratch on synthetic videos of "
            "coloured shapes by `actionclip demo`; it shows the method, not a useful classifier.",
            synthetic_training_data=True,
            intended_use="Seeing the ActionCLIP method work end to end (training, closed-set and zero-shot "
            "evaluation, order-only pairs) on the synthetic videos it was trained on, and testing the code. "
            + NOT_FOR_REAL_VIDEOS,
        )
    shutil.copyfile(
        Path(results[temporal]["closed_set"]["report_dir"]) / "confusion_matrix.png",
        output_dir / "confusion_matrix.png",
    )

    report = {
        "profile": profile.name,
        "profile_settings": dataclasses.asdict(profile),
        "seed": seed,
        "temporal_prompt": temporal,
        "data": {
            "root": str(data_dir),
            "num_seen_classes": len(dataset.labels),
            "num_zeroshot_classes": len(dataset.zeroshot_labels),
            "num_train": len(dataset.samples["train"]),
            "num_val": len(dataset.samples["val"]),
            "num_zeroshot": len(dataset.samples["zeroshot"]),
            "num_frames": profile.num_frames,
            "image_size": profile.image_size,
            "zeroshot_labels": list(dataset.zeroshot_labels),
        },
        "training": training,
        "results": results,
        "pipeline": pipeline_result,
        "localization": localization_result,
        "output_dir": str(output_dir),
        "files": [
            "data/",
            *(f"{d.name}/ (evaluations in {d.name}/eval/)" for d in model_dirs.values()),
            *(f"{d.name}/ (untrained weights)" for d in initial_dirs.values()),
            "confusion_matrix.png",
            "README.md",
            "report.txt",
            "report.json",
        ],
    }
    report["checks"] = demo_checks(profile, results, temporal)
    report["passed"] = all(check["passed"] for check in report["checks"])
    report["wall_time_s"] = time.perf_counter() - start
    text = format_report(report)
    (output_dir / "report.txt").write_text(text + "\n", encoding="utf-8")
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_output_readme(output_dir, text, model_dirs, initial_dirs, dataset, training_data)
    report["text"] = text
    return report


def write_output_readme(
    output_dir: Path, report_text: str, model_dirs: dict, initial_dirs: dict, dataset, training_data: str
) -> Path:
    """``output_dir/README.md``: what the demo wrote, what its models are (not) for, how to load one from its local
    folder (the code runs as written, on a held-out video) and the report."""
    model_dir = next(iter(model_dirs.values())).resolve()
    path, _ = dataset.samples["zeroshot"][0]
    rows = [
        "| `data/` | the synthetic videos (`train/`, `val/`, `zeroshot/`), their lists (`train.txt`, `val.txt`, "
        "`zeroshot.txt`) and labels (`labels.csv`, `zeroshot_labels.csv`) |",
        *(
            f"| `{d.name}/` | the {fusion} model with its processor, model card (`README.md`) and evaluations "
            "(`eval/`) |"
            for fusion, d in model_dirs.items()
        ),
        *(
            f"| `{d.name}/` | the {fusion} model's weights before training, for `actionclip wise-ft` |"
            for fusion, d in initial_dirs.items()
        ),
        "| `confusion_matrix.png` | the closed-set confusion matrix of the first model |",
        "| `report.txt`, `report.json` | the report below; every figure |",
    ]
    text = "\n".join(
        [
            "# actionclip demo output",
            "",
            "Written by `actionclip demo`. The models were trained on: " + training_data,
            "",
            "| path | what |",
            "| --- | --- |",
            *rows,
            "",
            "## Use a model",
            "",
            "```python",
            "import actionclip  # registers ActionCLIP with transformers' pipeline",
            "from transformers import pipeline",
            "",
            f'classifier = pipeline("zero-shot-video-classification", model={json.dumps(str(model_dir))})',
            f"classifier({json.dumps(str((dataset.root / path).resolve()))}, "
            f"candidate_labels={json.dumps(list(dataset.zeroshot_labels))})",
            "```",
            "",
            "## Report",
            "",
            "```",
            report_text,
            "```",
            "",
        ]
    )
    readme = output_dir / "README.md"
    readme.write_text(text, encoding="utf-8")
    return readme


def classify_with_pipeline(model_dir: Path, dataset) -> dict:
    """The first held-out video through `pipeline("zero-shot-video-classification")` against the held-out labels."""
    from transformers import pipeline

    from ..registration import register_with_transformers

    register_with_transformers()
    path, label = dataset.samples["zeroshot"][0]
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = classifier(str(dataset.root / path), candidate_labels=list(dataset.zeroshot_labels))
    return {"video": path, "truth": dataset.zeroshot_labels[label], "top3": ranked[:3]}


def localize_untrimmed(
    model_dir: Path, dataset, num_videos: int = 10, stride_windows: float = 1.0, smoothing_windows: float = 2.0
) -> dict:
    """Temporal localisation with the trained model: ``num_videos`` synthetic untrimmed videos of 3-5 segments of
    seen actions (:func:`~actionclip.data.synthetic.write_untrimmed_video`), the fraction of true segments found
    at temporal IoU >= 0.5. Windows are one training clip long and aligned with the clips the generator joins (a
    window straddling two joined clips sees the shape jump back, which reads as the opposite motion); scores are
    averaged over neighbouring windows (2 windows) before labels are chosen. ``stride_windows`` and
    ``smoothing_windows`` change those, in windows (``benchmarks/localization_demo.py`` compares them)."""
    import tempfile

    from transformers import pipeline

    from ..apps.localization import localize, segment_recall
    from ..data.synthetic import write_untrimmed_video

    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    config = dataset.config
    window = config.num_frames / config.fps
    found = total = 0
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(num_videos):
            path = Path(folder) / f"untrimmed_{seed}.mp4"
            truth = write_untrimmed_video(path, dataset.labels, config, seed=seed)
            result = localize(
                classifier,
                path,
                list(dataset.labels),
                window=window,
                stride=stride_windows * window,
                smoothing=smoothing_windows * window or None,
            )
            found += round(segment_recall(truth, result.segments) * len(truth))
            total += len(truth)
    return {
        "num_videos": num_videos,
        "num_segments": total,
        "found": found,
        "recall": found / total,
        "window": window,
        "stride": stride_windows * window,
        "smoothing": smoothing_windows * window,
    }


def register(subparsers) -> None:
    from . import add_command

    parser = add_command(
        subparsers,
        "demo",
        "generate synthetic videos, train, evaluate and report, offline",
        "Generate a synthetic dataset, train a temporal and a meanP ActionCLIP from scratch, evaluate "
        "closed-set and zero-shot, classify a video with the pipeline, write model cards and a report.",
    )
    add_demo_arguments(parser).set_defaults(handler=run)


def add_demo_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ._common import int_at_least

    parser.add_argument("--output-dir", default="demo_output", help="where everything is written")
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of the data, the models and the training (>= 0)"
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(0, "0 lets torch choose"),
        default=2,
        help="torch CPU threads (default 2: the same numbers on every machine with the same libraries; 0 lets "
        "torch choose)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, only the report")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when one of the report's checks fails"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the demo from parsed arguments and print the report (its checks say PASS or FAIL); with ``--strict`` the
    exit status is 1 when a check failed."""
    logging.getLogger("actionclip").setLevel(logging.WARNING)
    report = run_demo(args.output_dir, seed=args.seed, progress=not args.quiet, threads=args.threads)
    print(report["text"])
    return 1 if args.strict and not report["passed"] else 0


def main(argv: list[str] | None = None) -> int:
    from . import ArgumentParser

    parser = add_demo_arguments(ArgumentParser(description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


__all__ = [
    "DEMO_TEMPLATES",
    "PROFILES",
    "DemoProfile",
    "add_demo_arguments",
    "demo_checks",
    "format_report",
    "main",
    "run_demo",
    "register",
    "run",
]

if __name__ == "__main__":
    import sys

    sys.exit(main())
