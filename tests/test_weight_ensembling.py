"""Weight-space ensembling (`actionclip.training.weight_ensembling`, `actionclip wise-ft`) with tiny real models and real
synthetic H.264 clips."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import random_videos, tiny_model
from video_factory import small_synthetic_dataset

from actionclip.errors import IncompatibleModelsError
from actionclip.training.weight_ensembling import parse_alphas, wise_ft

TEMPLATES = ["a video of {}", "{}"]


def test_alpha_zero_and_one_give_the_two_models_weights_bit_for_bit():
    zero_shot, fine_tuned = tiny_model(seed=0), tiny_model(seed=1)
    start, end = zero_shot.state_dict(), fine_tuned.state_dict()
    at_zero, at_one = (
        wise_ft(zero_shot, fine_tuned, 0.0).state_dict(),
        wise_ft(zero_shot, fine_tuned, 1.0).state_dict(),
    )
    assert set(at_zero) == set(start) == set(at_one)
    for name in start:
        assert torch.equal(at_zero[name], start[name]), name
        assert torch.equal(at_one[name], end[name]), name
    half = wise_ft(zero_shot, fine_tuned, 0.5).state_dict()["text_projection.weight"]
    torch.testing.assert_close(half, (start["text_projection.weight"] + end["text_projection.weight"]) / 2)


def test_a_fusion_only_the_fine_tuned_model_has_starts_from_its_identity_so_alpha_zero_is_the_zero_shot_model():
    zero_shot, fine_tuned = tiny_model(seed=0, fusion="meanP"), tiny_model(seed=1, fusion="transf")
    videos = random_videos()
    with torch.no_grad():
        expected = torch.nn.functional.normalize(zero_shot.get_video_features(videos).pooler_output, dim=-1)
        mixed = wise_ft(zero_shot, fine_tuned, 0.0)
        got = torch.nn.functional.normalize(mixed.get_video_features(videos).pooler_output, dim=-1)
    assert mixed.config.fusion == "transf"
    assert all(not t.any() for n, t in mixed.state_dict().items() if n.startswith("fusion."))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    kept = wise_ft(zero_shot, fine_tuned, 0.0, fusion_policy="keep").state_dict()
    for name, tensor in fine_tuned.state_dict().items():
        if name.startswith("fusion."):
            assert torch.equal(kept[name], tensor)


def test_incompatible_models_are_refused_with_a_typed_error():
    with pytest.raises(IncompatibleModelsError, match="shape"):
        wise_ft(tiny_model(projection_dim=32), tiny_model(), 0.5)
    with pytest.raises(IncompatibleModelsError, match="keep"):
        wise_ft(tiny_model(fusion="meanP"), tiny_model(fusion="transf_cls"), 0.5)
    with pytest.raises(IncompatibleModelsError, match="outside the fusion"):
        wise_ft(tiny_model(), tiny_model(joint=True), 0.5)
    with pytest.raises(IncompatibleModelsError, match="lacks"):
        wise_ft(tiny_model(fusion="transf"), tiny_model(fusion="meanP"), 0.5)
    with pytest.raises(IncompatibleModelsError, match="alpha"):
        wise_ft(tiny_model(), tiny_model(), 1.5)


def test_sweeps_are_read_as_lists_or_progressions():
    assert parse_alphas("0,0.1,...,1") == [round(0.1 * i, 10) for i in range(11)]
    assert parse_alphas("1, 0.5,0") == [0.0, 0.5, 1.0]
    for bad in ("0,0.3,...,1", "a,b", "0,2", "0,...,1"):
        with pytest.raises(IncompatibleModelsError):
            parse_alphas(bad)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return small_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), num_frames=8, size=(32, 32))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from actionclip.processing_actionclip import ActionCLIPProcessor

    directories = []
    for seed, fusion in ((0, "meanP"), (1, "transf")):
        model = tiny_model(seed=seed, fusion=fusion, templates=TEMPLATES)
        directory = tmp_path_factory.mktemp(f"model-{fusion}")
        model.save_pretrained(directory)
        ActionCLIPProcessor.from_model_config(model.config).save_pretrained(directory)
        directories.append(directory)
    return directories


def test_sweep_writes_the_chosen_model_table_plot_reports_and_card(synthetic, models, tmp_path, capsys):
    from actionclip.commands import main
    from actionclip.modeling_actionclip import ActionCLIPModel

    out = tmp_path / "wise"
    status = main([
        "wise-ft", str(models[0]), str(models[1]), str(out), "--sweep", "0,0.5,...,1",
        "--base-list", str(synthetic.list_file("val")), "--base-labels", str(synthetic.root / "labels.csv"),
        "--novel-list", str(synthetic.list_file("zeroshot")),
        "--novel-labels", str(synthetic.root / "zeroshot_labels.csv"), "--no-progress",
    ])  # fmt: skip
    assert status == 0
    report = json.loads((out / "wise_ft.json").read_text())
    assert [row["alpha"] for row in report["table"]] == [0.0, 0.5, 1.0]
    best = max(report["table"], key=lambda row: (row["harmonic_mean"], row["base_top1"], -row["alpha"]))
    assert report["chosen_alpha"] == best["alpha"]
    for row in report["table"]:
        base, novel = row["base_top1"], row["novel_top1"]
        assert row["harmonic_mean"] == pytest.approx(0 if base + novel == 0 else 2 * base * novel / (base + novel))
    assert (out / "wise_ft.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "README.md").read_text()
    assert f"alpha = {report['chosen_alpha']}" in card and "| 0.5 |" in card
    for split in ("base", "novel"):
        evaluation = json.loads((out / "evaluation" / split / "evaluation.json").read_text())
        assert evaluation["metrics"]["top1_accuracy"] == pytest.approx(best[f"{split}_top1"])
        assert evaluation["metadata"]["wise_ft_alpha"] == report["chosen_alpha"]
    chosen = ActionCLIPModel.from_pretrained(out)
    expected = wise_ft(ActionCLIPModel.from_pretrained(models[0]), ActionCLIPModel.from_pretrained(models[1]),
                       report["chosen_alpha"])  # fmt: skip
    for name, tensor in expected.state_dict().items():
        assert torch.equal(chosen.state_dict()[name], tensor), name
    assert "<- chosen" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_one_alpha_needs_no_evaluation_and_bad_inputs_exit_2_with_one_line(models, tmp_path, capsys):
    from actionclip.commands import main

    out = tmp_path / "half"
    assert main(["wise-ft", str(models[0]), str(models[1]), str(out), "--alpha", "0.25"]) == 0
    assert json.loads((out / "wise_ft.json").read_text())["chosen_alpha"] == 0.25
    assert "alpha = 0.25" in (out / "README.md").read_text()
    capsys.readouterr()
    assert main(["wise-ft", str(models[0]), str(models[1]), str(out), "--alpha", "0.5"]) == 2  # OUT exists
    assert main(["wise-ft", str(models[1]), str(models[0]), str(tmp_path / "x"), "--alpha", "0.5"]) == 2
    assert main(["wise-ft", str(models[0]), str(models[1]), str(tmp_path / "y"), "--sweep", "0,1"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("actionclip wise-ft: error: ") for line in errors)
    assert "exists" in errors[0] and "lacks" in errors[1] and "--sweep needs" in errors[2]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
