"""Model cards: metadata and model-index from evaluation JSONs, checked offline with huggingface_hub."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from actionclip import commands as cli
from actionclip.errors import ModelCardError, ModelConfigNotFoundError
from actionclip.evaluation.reports import write_evaluation_report
from actionclip.hub.model_card import TEMPLATE_PATH, check_model_card, generate_model_card, write_model_card

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "model_type": "actionclip",
    "num_frames": 8,
    "joint": False,
    "shift": True,
    "fusion": "transf",
    "templates": ["a photo of action {}", "{}, an action", "A video of {}"],
    "projection_dim": 512,
    "vision_config": {"hidden_size": 768, "num_hidden_layers": 12, "patch_size": 32, "image_size": 224},
    "text_config": {"hidden_size": 512, "num_hidden_layers": 12, "vocab_size": 49408},
}


@pytest.fixture(autouse=True)
def _offline(no_network):
    """Everything here must work on a machine without internet: any connection attempt fails the test."""


def write_config(folder: Path, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**CONFIG, **overrides}))
    return folder


@pytest.fixture(scope="module")
def eval_dirs(tmp_path_factory):
    """Two real evaluation reports: zero-shot on a 5-class dataset and closed-set on a 12-class one."""
    rng = np.random.default_rng(0)
    dirs = []
    for name, num_classes, metadata in [
        ("zs", 5, {"dataset": "UCF101", "dataset_type": "ucf101", "dataset_config": "split1", "split": "test"}),
        ("closed", 12, {"dataset": "HMDB51", "split": "test", "protocol": "closed-set"}),
    ]:
        labels = rng.integers(0, num_classes, 60)
        scores = rng.normal(size=(60, num_classes))
        scores[np.arange(60), labels] += 1.5
        metadata = {"protocol": "zero-shot", "views": "1x1", "frames": 8, "templates": 16, **metadata}
        folder = tmp_path_factory.mktemp(name)
        write_evaluation_report(folder, scores, labels, [f"c{i}" for i in range(num_classes)], metadata)
        dirs.append(folder)
    return dirs


@pytest.fixture
def model_dir(tmp_path):
    return write_config(tmp_path / "actionclip-vit-b32-8f")


def card_metadata(card: ModelCard) -> dict:
    """The YAML block of the card's text, parsed independently of huggingface_hub."""
    text = str(card)
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_model_index_matches_the_evaluation_json_exactly(model_dir, eval_dirs):
    card = generate_model_card(model_dir, eval_dirs, base_model="openai/clip-vit-base-patch32")
    results = card_metadata(card)["model-index"][0]["results"]
    assert len(results) == 2
    for result, folder in zip(results, eval_dirs):
        report = json.loads((folder / "evaluation.json").read_text())
        metrics = {m["type"]: m["value"] for m in result["metrics"]}
        assert metrics == {
            "accuracy": report["metrics"]["top1_accuracy"],
            "top-5-accuracy": report["metrics"]["top5_accuracy"],
            "mean-class-accuracy": report["metrics"]["mean_class_accuracy"],
        }
        assert result["task"]["type"] == "video-classification"
        assert result["dataset"]["name"] == report["metadata"]["dataset"]
        assert result["dataset"]["split"] == report["metadata"]["split"]
        assert result["dataset"]["args"] == {
            key: report["metadata"][key] for key in ("protocol", "views", "frames", "templates")
        }
    assert results[0]["dataset"]["type"] == "ucf101" and results[0]["dataset"]["config"] == "split1"
    assert results[1]["dataset"]["type"] == "hmdb51" and "config" not in results[1]["dataset"]
    assert results[0]["task"]["name"] == "Zero-Shot Video Classification"
    assert results[1]["task"]["name"] == "Video Classification"


def test_model_index_survives_huggingface_hub_round_trips(model_dir, eval_dirs):
    card = generate_model_card(model_dir, eval_dirs)
    model_index = card_metadata(card)["model-index"]
    name, results = model_index_to_eval_results(model_index)
    assert name == "actionclip-vit-b32-8f"
    assert eval_results_to_model_index(name, results) == model_index
    reparsed = ModelCard(str(card))
    assert reparsed.data.to_dict() == card.data.to_dict()
    check_model_card(card)


def test_card_metadata_names_library_pipeline_tags_and_base_model(model_dir, eval_dirs):
    metadata = card_metadata(generate_model_card(model_dir, eval_dirs, base_model="openai/clip-vit-base-patch32"))
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "video-classification"
    assert metadata["base_model"] == "openai/clip-vit-base-patch32"
    assert {"actionclip", "video", "action-recognition", "clip", "zero-shot-video-classification"} <= set(
        metadata["tags"]
    )


def test_card_body_describes_the_configuration_and_results(model_dir, eval_dirs):
    text = generate_model_card(model_dir, eval_dirs).text
    assert "| frames per video | 8 |" in text
    assert "| in-network prompt (temporal shift) | yes |" in text
    assert "| post-network prompt (fusion) | `transf` |" in text
    assert "| text prompt templates | 3 |" in text
    assert "- `{}, an action`" in text
    assert "| vision tower | 12 layers, width 768, patch 32, 224 px input |" in text
    report = json.loads((eval_dirs[0] / "evaluation.json").read_text())
    top1 = f"{100 * report['metrics']['top1_accuracy']:.1f}%"
    assert f"| UCF101 | test | zero-shot | 1x1 | 8 | 16 | 60 | 5 | {top1} |" in text
    for section in ("## Intended use", "## Limitations", "## Citation"):
        assert section in text


def test_a_one_layer_tower_is_one_layer(tmp_path):
    folder = write_config(tmp_path / "m", text_config={"hidden_size": 64, "num_hidden_layers": 1})
    text = generate_model_card(folder, []).text
    assert "| text tower | 1 layer, width 64 |" in text and "1 layers" not in text


def test_card_command_searches_eval_folders_with_their_subfolders(model_dir, eval_dirs, tmp_path, capsys):
    folder = tmp_path / "evals"  # the layout of an evaluation run: one subfolder per protocol and split
    for source in eval_dirs:
        target = folder / source.name / "split1"
        target.mkdir(parents=True)
        (target / "evaluation.json").write_text((source / "evaluation.json").read_text())
    assert cli.main(["card", str(model_dir), "--eval", str(folder)]) == 0
    assert "2 evaluation report(s)" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert cli.main(["card", str(model_dir), "--eval", str(tmp_path / "empty"), "--stdout"]) == 2
    err = capsys.readouterr().err
    assert "holds no evaluation.json (searched subfolders)" in err and err.count("\n") == 1


def test_synthetic_training_is_stated_under_limitations(model_dir):
    text = generate_model_card(model_dir, synthetic_training_data=True).text
    limitations = text.split("## Limitations")[1]
    assert "trained on synthetic videos" in limitations
    assert "trained on synthetic videos" not in generate_model_card(model_dir).text


def test_synthetic_evaluation_data_is_stated_under_limitations(model_dir, tmp_path):
    report = write_evaluation_report(
        tmp_path / "ev", np.eye(3), [0, 1, 2], ["a", "b", "c"], {"dataset": "Synthetic shapes"}
    )
    limitations = generate_model_card(model_dir, [report]).text.split("## Limitations")[1]
    assert "measured on synthetic videos" in limitations


def test_card_without_results_has_no_model_index(model_dir):
    card = generate_model_card(model_dir)
    assert "model-index" not in card_metadata(card)
    assert "No evaluation results were given" in card.text
    check_model_card(card)


def test_write_model_card_writes_a_readme_that_loads_back(model_dir, eval_dirs):
    path = write_model_card(model_dir, eval_dirs, base_model="openai/clip-vit-base-patch32")
    assert path == model_dir / "README.md"
    loaded = ModelCard.load(path)
    assert (
        loaded.data.to_dict()
        == generate_model_card(model_dir, eval_dirs, "openai/clip-vit-base-patch32").data.to_dict()
    )


def test_two_reports_for_the_same_dataset_and_split_are_refused(model_dir, eval_dirs):
    # The Hub would merge them under the first report's protocol.
    with pytest.raises(ValueError, match="both describe UCF101"):
        generate_model_card(model_dir, [eval_dirs[0], eval_dirs[0]])


def test_check_model_card_rejects_a_broken_model_index(model_dir, eval_dirs):
    text = str(generate_model_card(model_dir, eval_dirs))
    broken = text.replace("    - type: accuracy\n      value:", "    - type: accuracy\n      score:", 1)
    assert broken != text
    with pytest.raises(ValueError, match="does not parse"):
        check_model_card(broken)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model_type": "clip"}, "model_type 'clip', expected 'actionclip'"),
        ({"fusion": "attention"}, "fusion 'attention'"),
        ({"num_frames": 0}, "num_frames as a positive integer"),
        ({"templates": "a video of {}"}, "templates as a list of strings"),
        ({"shift": "yes"}, "shift as true or false"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(tmp_path, overrides, message):
    with pytest.raises(ModelCardError, match=message):
        generate_model_card(write_config(tmp_path / "m", **overrides))


def test_missing_config_is_reported(tmp_path):
    with pytest.raises(ModelConfigNotFoundError, match="no config.json"):
        generate_model_card(tmp_path)


def test_base_model_must_be_a_hub_id(model_dir):
    with pytest.raises(ValueError, match="base_model must be a Hub model id"):
        generate_model_card(model_dir, base_model="/checkpoints/clip.pt")


def test_report_without_dataset_name_is_rejected(model_dir, tmp_path):
    report = write_evaluation_report(tmp_path / "ev", np.eye(3), [0, 1, 2], ["a", "b", "c"], {"split": "test"})
    with pytest.raises(ValueError, match=r"no metadata\['dataset'\]"):
        generate_model_card(model_dir, [report])


def test_repository_template_is_the_packaged_template():
    assert (REPO_ROOT / "model_cards" / "TEMPLATE.md").read_text() == TEMPLATE_PATH.read_text()


# ---------------------------------------------------------------------------------------------- actionclip card


def test_card_command_finds_the_reports_under_the_model_folder(model_dir, eval_dirs, capsys):
    for folder in eval_dirs:
        target = model_dir / "eval" / folder.name
        target.mkdir(parents=True)
        (target / "evaluation.json").write_text((folder / "evaluation.json").read_text())

    assert cli.main(["card", str(model_dir), "--base-model", "openai/clip-vit-base-patch32"]) == 0

    metadata = card_metadata(ModelCard.load(model_dir / "README.md"))
    assert metadata["base_model"] == "openai/clip-vit-base-patch32"
    expected = generate_model_card(model_dir, sorted((model_dir / "eval").rglob("evaluation.json")))
    assert metadata["model-index"] == card_metadata(expected)["model-index"]
    metrics = sum(len(result["metrics"]) for result in metadata["model-index"][0]["results"])
    assert f"2 evaluation report(s), {metrics} model-index metric(s)" in capsys.readouterr().out
    json_top1 = {json.loads((f / "evaluation.json").read_text())["metrics"]["top1_accuracy"] for f in eval_dirs}
    card_top1 = {
        result["metrics"][0]["value"]
        for result in metadata["model-index"][0]["results"]
        if result["metrics"][0]["type"] == "accuracy"
    }
    assert json_top1 <= card_top1


def test_card_command_takes_explicit_reports_and_prints_to_stdout(model_dir, eval_dirs, capsys):
    assert cli.main(["card", str(model_dir), "--eval", str(eval_dirs[0]), "--stdout", "--name", "my-model"]) == 0

    text = capsys.readouterr().out
    assert not (model_dir / "README.md").exists()
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["model-index"][0]["name"] == "my-model"
    assert {r["dataset"]["name"] for r in metadata["model-index"][0]["results"]} == {"UCF101"}


def test_card_command_keeps_an_existing_readme_unless_told(model_dir, capsys):
    readme = model_dir / "README.md"
    readme.write_text("my own notes")

    assert cli.main(["card", str(model_dir), "--no-eval"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert readme.read_text() == "my own notes"

    assert cli.main(["card", str(model_dir), "--no-eval", "--overwrite"]) == 0
    assert "model-index" not in card_metadata(ModelCard.load(readme))


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda tmp: [str(tmp / "missing")], "no such directory"),
        (lambda tmp: [str(tmp)], "no config.json"),
        (lambda tmp: [str(write_config(tmp / "m", fusion="gru"))], "fusion 'gru'"),
        (lambda tmp: [str(write_config(tmp / "m")), "--eval", str(tmp / "nothing")], "evaluation report not found"),
        (lambda tmp: [str(write_config(tmp / "m")), "--base-model", "/ckpt/clip.pt"], "must be a Hub model id"),
        (lambda tmp: [str(write_config(tmp / "m")), "--template", str(tmp / "t.md")], "no such file"),
    ],
)
def test_card_command_reports_bad_input_in_one_line(tmp_path, capsys, make_args, message):
    assert cli.main(["card", *make_args(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actionclip card: error:") and message in err and err.count("\n") == 1
