"""`actionclip demo`: the offline end-to-end run (synthetic data, two models trained from scratch, evaluation,
pipeline, model card, report)."""

from __future__ import annotations

import dataclasses
import json

import pytest


def test_demo_writes_data_models_reports_card_and_confusion_matrix(tmp_path, capsys):
    """The plumbing, on a one-epoch run of a few videos (its numbers mean nothing)."""
    from actionclip.commands.demo import PROFILES, run_demo

    full = PROFILES["full"]
    data = {**full.data, "videos_per_class": 2, "val_videos_per_class": 1, "zeroshot_videos_per_class": 1}
    profile = dataclasses.replace(full, name="tiny", data=data, training={**full.training, "num_train_epochs": 1})
    report = run_demo(tmp_path, profile, seed=0, progress=False)

    for name in ("model_transf", "model_meanP"):
        for file in ("config.json", "model.safetensors", "processor_config.json", "README.md"):
            assert (tmp_path / name / file).is_file(), f"{name}/{file}"
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "model_transf" / "eval" / "closed_set" / "result.json").is_file()
    assert (tmp_path / "model_meanP" / "eval" / "zero_shot" / "all" / "evaluation.json").is_file()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["data"]["num_seen_classes"] == report["data"]["num_seen_classes"] > 0
    assert [check["name"] for check in saved["checks"]] == [
        "closed_set_far_above_chance",
        "temporal_beats_meanp_on_pairs",
        "meanp_pairs_near_chance",
        "zero_shot_above_chance",
    ]
    assert saved["pipeline"]["truth"] in saved["data"]["zeroshot_labels"]
    text = (tmp_path / "report.txt").read_text()
    assert "chance" in text and "order-only pairs" in text and "checks:" in text
    card = (tmp_path / "model_transf" / "README.md").read_text()
    assert "model-index" in card and "synthetic" in card.lower()
    # `actionclip card MODEL_DIR` finds the demo's evaluations: they lie under the model folder.
    from actionclip.cli import main

    assert main(["card", str(tmp_path / "model_transf"), "--stdout"]) == 0
    assert "model-index" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_shows_what_the_method_claims(tmp_path):
    """The full demo (also run by `.ci/run`): closed-set far above chance, the temporal prompt clearly above meanP on
    order-only pairs, meanP near 50% on them, zero-shot above chance."""
    from actionclip.commands.demo import run_demo

    report = run_demo(tmp_path, "full", seed=0, progress=False, threads=2)
    failed = [check["text"] for check in report["checks"] if not check["passed"]]
    assert not failed, report["text"]


@pytest.mark.parametrize("threads", ["-1", "two"])
def test_demo_rejects_a_bad_thread_count(threads, capsys):
    from actionclip import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--threads", threads])
    assert exit_info.value.code == 2
    assert "--threads" in capsys.readouterr().err
