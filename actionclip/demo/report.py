"""What the demo reports: its claims as pass/fail checks, the printed report, and the output folder's README."""

from __future__ import annotations

import json
from pathlib import Path

from .profiles import DemoProfile


def _pct(value) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def _measured(profile: DemoProfile, column: int) -> str:
    """``"; chosen from 6 single runs, where distillation minus plain fine-tuning was +14.1, ... points"``: the runs
    a distillation margin was chosen from (``column`` 0: novel, 1: base)."""
    if not profile.distill_measured:
        return ""
    values = ", ".join(f"{100 * row[column]:+.1f}" for row in profile.distill_measured)
    return (
        f"; chosen from {len(profile.distill_measured)} single runs, where distillation minus plain fine-tuning was "
        f"{values} points"
    )


def demo_checks(
    profile: DemoProfile, results: dict, temporal: str, pretraining: dict | None = None, retention: dict | None = None
) -> list[dict]:
    """The demo's claims as pass/fail checks with the numbers behind them."""
    t, m = results[temporal], results["meanP"]
    chance = t["closed_set"]["chance"]
    t_pair, m_pair = t["closed_set"]["pairs"]["accuracy"], m["closed_set"]["pairs"]["accuracy"]
    zs, zs_chance = t["zero_shot"]["top1"], t["zero_shot"]["chance"]
    checks = [
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
    if pretraining is not None:
        held, chance = pretraining["held_out_top1"], pretraining["chance"]
        checks.append(
            {
                "name": "miniature_zero_shot_far_above_chance",
                "passed": held >= profile.miniature_factor * chance,
                "text": f"the pretrained miniature's zero-shot top-1 on held-out combinations far above chance: "
                f"{_pct(held).strip()} >= {profile.miniature_factor:g} x {_pct(chance).strip()}",
            }
        )
    if retention is not None and "distilled" in retention["rows"]:
        plain, distilled = retention["rows"]["fine_tuned"], retention["rows"]["distilled"]
        checks += [
            {
                "name": "distillation_keeps_novel",
                "gating": profile.distill_checks_gate,
                "passed": distilled["novel"] - plain["novel"] >= profile.distill_novel_margin,
                "text": f"distillation keeps more of the novel classes than plain fine-tuning: "
                f"{_pct(distilled['novel']).strip()} vs {_pct(plain['novel']).strip()} (margin >= "
                f"{100 * profile.distill_novel_margin:g} points{_measured(profile, 0)})",
            },
            {
                "name": "distillation_keeps_base",
                "gating": profile.distill_checks_gate,
                "passed": plain["base"] - distilled["base"] <= profile.distill_base_tolerance,
                "text": f"distillation costs little on the base classes: {_pct(distilled['base']).strip()} vs "
                f"{_pct(plain['base']).strip()} (at most {100 * profile.distill_base_tolerance:g} points lower"
                f"{_measured(profile, 1)})",
            },
        ]
    return checks


def format_retention(pretraining: dict, retention: dict) -> list[str]:
    """The pretrained miniature's line and the retention table (base, novel, harmonic mean per way of
    fine-tuning)."""
    data = retention["data"]
    kinds = list(dict.fromkeys(retention["data"]["novelty"].values()))
    counts = {kind: list(data["novelty"].values()).count(kind) for kind in kinds}
    lines = [
        f"pretrained miniature (a CLIP folder): {pretraining['steps']} contrastive steps on {pretraining['num_images']} "
        f"captioned images ({pretraining['num_captions']} distinct captions), {pretraining['runtime_s']:.0f} s; "
        f"zero-shot top-1 on held-out combinations ({', '.join(pretraining['held_out'])}) "
        f"{_pct(pretraining['held_out_top1']).strip()} against all {pretraining['num_classes']} names (chance "
        f"{_pct(pretraining['chance']).strip()}; seen combinations {_pct(pretraining['seen_top1']).strip()})",
        "",
        f"retention: ActionCLIP from the miniature, fine-tuned on {len(data['base_labels'])} base classes "
        f"({data['num_train']} videos); {len(data['novel_labels'])} novel classes ("
        + ", ".join(f"{counts[kind]} new in {'appearance and motion' if kind == 'both' else kind}" for kind in kinds)
        + f"), scored zero-shot on {data['num_novel']} videos against the novel labels; base on "
        f"{data['num_base_val']} validation videos against the base labels",
        f"fine-tuned {len(retention['runs']['seeds'])} times (seeds "
        f"{', '.join(str(seed) for seed in retention['runs']['seeds'])}): each row is the mean over the runs",
        f"{'':34}{'base':>8}{'novel':>8}{'HM':>8}   novel by what is new: "
        + " / ".join("appearance+motion" if kind == "both" else kind for kind in kinds),
    ]
    from .retention import RETENTION_ROWS

    for key, title in RETENTION_ROWS:
        row = retention["rows"].get(key)
        if row is None:
            lines.append(f"{title:34}{'(not run)':>24}")
            continue
        if "alpha" in row:
            title = title.replace("best alpha", f"alpha {row['alpha']:g}")
        by_kind = " / ".join(_pct(row["novel_by_kind"].get(kind)).strip() for kind in kinds)
        lines.append(
            f"{title:34}{_pct(row['base']):>8}{_pct(row['novel']):>8}{_pct(row['harmonic_mean']):>8}   {by_kind}"
        )
    best_novel = max(
        (key for key, _ in RETENTION_ROWS if key in retention["rows"]), key=lambda k: retention["rows"][k]["novel"]
    )
    best_hm = max(
        (key for key, _ in RETENTION_ROWS if key in retention["rows"]),
        key=lambda k: retention["rows"][k]["harmonic_mean"],
    )
    titles = dict(RETENTION_ROWS)
    runs = retention["runs"]
    if "distilled" in runs:
        for part in ("novel", "base"):
            leads = [d[part] - p[part] for p, d in zip(runs["fine_tuned"], runs["distilled"], strict=True)]
            lines.append(
                f"distillation minus plain fine-tuning on {part}, run by run: "
                + ", ".join(f"{100 * lead:+.1f}" for lead in leads)
                + " points"
            )
    lines.append(
        f"best on novel: {titles[best_novel]}; best harmonic mean: {titles[best_hm]} (WiSE-FT's alpha is chosen on "
        "these same videos, so its rows are optimistic)"
    )
    return lines


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
    if report.get("retention"):
        lines += ["", *format_retention(report["pretraining"], report["retention"])]
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
    lines += [
        f"  [{'PASS' if check['passed'] else 'FAIL'}{'' if check.get('gating', True) else ', info'}] {check['text']}"
        for check in report["checks"]
    ]
    lines += ["", f"outputs in {report['output_dir']}: {', '.join(report['files'])}"]
    lines.append(f"wall time: {report['wall_time_s']:.0f} s")
    return "\n".join(lines)


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
