"""First use: wrong model kinds, label files, mistyped paths, the processor as remote code, fast start, packaging."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TEXT, VISION, tiny_model
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip import ActionCLIPConfig, ActionCLIPForVideoClassification, ActionCLIPModel, ActionCLIPProcessor
from actionclip.commands import main
from actionclip.data.labels import LABELS_DIR, load_label_names
from actionclip.errors import MissingProcessorError, PipelineArgumentError, WrongModelKindError
from actionclip.tokenizer import load_clip_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = ["juggling balls", "playing guitar", "tai chi"]
TASK = "zero-shot-video-classification"


def run_cli(*args, cwd=None, env=None):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "actionclip", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={key: value for key, value in environment.items() if value is not None},
        timeout=300,
    )


def run_python(script: str, cwd) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=environment, timeout=300
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("first_use_model")
    model = tiny_model(seed=3, fusion="transf")
    with torch.no_grad():
        model.logit_scale.fill_(np.log(30.0))
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_test_video(tmp_path_factory.mktemp("first_use_video") / "clip.mp4", num_frames=16, seed=4))


@pytest.fixture(scope="module")
def closed_set_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("closed_set")
    closed = ActionCLIPForVideoClassification.from_actionclip(tiny_model(seed=5), LABELS, load_clip_tokenizer())
    closed.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(closed.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A plain transformers `CLIPModel` with the tiny towers, saved as a CLIP checkpoint."""
    path = tmp_path_factory.mktemp("plain_clip")
    torch.manual_seed(6)
    config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=64)
    CLIPModel(config).save_pretrained(path)
    return path


def scores(predictions) -> dict[str, float]:
    return {item["label"]: item["score"] for item in predictions}


# ---------------------------------------------------------------------------------------------- 1. closed-set models


def test_classify_refuses_a_closed_set_model_in_one_line(closed_set_dir, video):
    result = run_cli("classify", video, "--labels", "a,b", "--model", closed_set_dir)
    line = assert_one_line_error(result, "closed-set ActionCLIPForVideoClassification", "3 fixed labels")
    assert "ActionCLIPModel" in line and "AutoModelForVideoClassification" in line


def test_zero_shot_pipeline_refuses_a_closed_set_model(closed_set_dir):
    with pytest.raises(WrongModelKindError, match="closed-set ActionCLIPForVideoClassification"):
        pipeline(TASK, model=str(closed_set_dir))


# ---------------------------------------------------------------------------------------------- 2. plain CLIP


def test_pipeline_converts_a_plain_clip_directory_with_a_warning(clip_dir, video):
    with pytest.warns(UserWarning, match="plain image-text model: converted on the fly"):
        classifier = pipeline(TASK, model=str(clip_dir))
    assert type(classifier.model).__name__ == "ActionCLIPModel" and classifier.model.config.fusion == "meanP"
    first = scores(classifier(video, candidate_labels=LABELS))

    # The same as converting by hand with the advice the warning gives.
    model = ActionCLIPModel.from_backbone(str(clip_dir), fusion="meanP").eval()
    by_hand = pipeline(TASK, model=model, processor=ActionCLIPProcessor.from_model_config(model.config))
    assert scores(by_hand(video, candidate_labels=LABELS)) == pytest.approx(first, abs=1e-6)
    with pytest.warns(UserWarning):
        again = pipeline(TASK, model=str(clip_dir))
    assert scores(again(video, candidate_labels=LABELS)) == first  # nothing random: meanP has no weights


def test_classify_on_a_plain_clip_directory_warns_in_one_line(clip_dir, video):
    result = run_cli("classify", video, "--labels", ",".join(LABELS), "--model", clip_dir, "--json")
    assert result.returncode == 0, result.stderr
    warning_lines = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning_lines) == 1 and "plain image-text model" in warning_lines[0], result.stderr
    assert {item["label"] for item in json.loads(result.stdout)[0]["predictions"]} == set(LABELS)


def test_a_clip_processor_is_refused_by_name_and_an_actionclip_processor_works(clip_dir, video):
    clip_processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=load_clip_tokenizer())
    with pytest.warns(UserWarning), pytest.raises(PipelineArgumentError, match="got CLIPProcessor"):
        pipeline(TASK, model=str(clip_dir), processor=clip_processor)
    config = ActionCLIPConfig.from_backbone_config(CLIPConfig.from_pretrained(clip_dir), fusion="meanP")
    with pytest.warns(UserWarning):
        classifier = pipeline(TASK, model=str(clip_dir), processor=ActionCLIPProcessor.from_model_config(config))
    assert {item["label"] for item in classifier(video, candidate_labels=LABELS)} == set(LABELS)


def test_the_missing_processor_advice_works_as_written(tmp_path, video):
    tiny_model(seed=7).save_pretrained(tmp_path)
    with pytest.raises(MissingProcessorError) as error:
        pipeline(TASK, model=str(tmp_path))
    advice = re.search(r"`(ActionCLIPProcessor\.from_model_config\(.*?\)\.save_pretrained\(d\))`", str(error.value))
    assert advice is not None, str(error.value)
    exec(
        advice.group(1),
        {"ActionCLIPProcessor": ActionCLIPProcessor, "ActionCLIPConfig": ActionCLIPConfig, "d": str(tmp_path)},
    )
    classifier = pipeline(TASK, model=str(tmp_path))
    assert len(classifier(video, candidate_labels=LABELS)) == 3


# ---------------------------------------------------------------------------------------------- 3. mistyped paths


def test_a_mistyped_local_model_path_fails_at_once_naming_the_close_match(tmp_path, video):
    (tmp_path / "demo_output" / "model_transf").mkdir(parents=True)
    start = time.monotonic()
    result = run_cli(
        "classify",
        video,
        "--labels",
        "a,b",
        "--model",
        "demo_output/model_tranf",
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": None},
    )
    elapsed = time.monotonic() - start
    assert_one_line_error(
        result, "'demo_output/model_tranf': no such directory", "did you mean 'demo_output/model_transf'"
    )
    # The Hub's retries took about a minute; the check runs before torch is imported (a generous bound, not a goal).
    assert elapsed < 30, elapsed


# ---------------------------------------------------------------------------------------------- 4. label files


@pytest.fixture(scope="module")
def expected_by_label(model_dir, video):
    classifier = pipeline(TASK, model=str(model_dir))
    return scores(classifier(video, candidate_labels=LABELS))


def classify_json(capsys, video, model_dir, *label_args) -> dict[str, float]:
    assert main(["classify", video, *label_args, "--model", str(model_dir), "--json"]) == 0
    return scores(json.loads(capsys.readouterr().out)[0]["predictions"])


@pytest.mark.parametrize(
    "name, text",
    [
        ("labels.csv", "id,name\n2,tai chi\n0,juggling balls\n1,playing guitar\n"),  # ids in any row order
        ("labels.txt", "id,name\n0,juggling balls\n1,playing guitar\n2,tai chi\n"),  # our CSV under another name
        ("labels.txt", "juggling balls\nplaying guitar\n\ntai chi\n"),  # one per line still works
        ("labels.txt", "label\njuggling balls\nplaying guitar\ntai chi\n"),  # a plain file's header is no label
        ("classes.txt", "\n Class \njuggling balls\nplaying guitar\ntai chi\n"),  # in any case, as the CSV's
    ],
)
def test_labels_file_reads_our_csvs_and_plain_lists(tmp_path, capsys, model_dir, video, expected_by_label, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    got = classify_json(capsys, video, model_dir, "--labels-file", str(tmp_path / name))
    assert got == pytest.approx(expected_by_label, abs=1e-6)


def test_labels_file_reads_a_packaged_csv_as_names(capsys, model_dir, video):
    got = classify_json(capsys, video, model_dir, "--labels-file", str(LABELS_DIR / "hmdb51.csv"), "--top-k", "51")
    assert sorted(got) == sorted(load_label_names("hmdb51")) and not any(label.isdigit() for label in got)


def test_label_set_takes_a_packaged_list_by_name(capsys, model_dir, video):
    got = classify_json(capsys, video, model_dir, "--label-set", "ucf101", "--top-k", "3")
    assert len(got) == 3 and set(got) <= set(load_label_names("ucf101"))


def test_an_unknown_label_set_is_one_line_listing_the_names(model_dir, video):
    result = run_cli("classify", video, "--label-set", "kinetics4000", "--model", model_dir)
    assert_one_line_error(result, "'kinetics4000'", "kinetics400", "ucf101", "hmdb51")


def test_label_set_names_are_listed_in_help():
    result = run_cli("classify", "--help")
    assert result.returncode == 0 and "--label-set" in result.stdout
    assert all(name in result.stdout for name in ("kinetics400", "ucf101", "hmdb51"))


def test_classify_eval_and_training_read_label_files_alike(tmp_path, capsys, model_dir, video):
    from actionclip.data.labels import load_label_names as eval_reader
    from actionclip.data.labels import resolve_label_names

    path = tmp_path / "classes.txt"
    path.write_text("id,name\n1,playing guitar\n0,juggling balls\n2,tai chi\n", encoding="utf-8")
    assert eval_reader(path) == resolve_label_names(str(path)) == LABELS  # eval's --class_names, the training script's
    got = classify_json(capsys, video, model_dir, "--labels-file", str(path), "--top-k", "3")
    assert set(got) == set(LABELS)


# ---------------------------------------------------------------------------------------------- 5. remote code


def test_processor_and_pipeline_load_as_remote_code_where_the_package_is_absent(tmp_path, model_dir, video):
    saved = tmp_path / "saved"  # model.save_pretrained + processor.save_pretrained
    model = ActionCLIPModel.from_pretrained(model_dir)
    model.save_pretrained(saved)
    ActionCLIPProcessor.from_pretrained(model_dir).save_pretrained(saved)
    classifier = pipeline(TASK, model=str(model_dir))
    classifier.save_pretrained(tmp_path / "pipe")  # pipeline.save_pretrained
    expected = classifier(video, candidate_labels=LABELS)
    processor_config = json.loads((saved / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_actionclip.ActionCLIPProcessor"
    assert (saved / "processing_actionclip.py").is_file() and (saved / "video_processing_actionclip.py").is_file()

    script = f"""
import json, sys
sys.modules["actionclip"] = None  # the package cannot be imported in this process
from transformers import AutoProcessor, pipeline
for folder in ({str(saved)!r}, {str(tmp_path / "pipe")!r}):
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__name__ == "ActionCLIPProcessor", type(processor)
    assert not type(processor).__module__.startswith("actionclip"), type(processor).__module__
    assert type(processor.video_processor).__name__ == "ActionCLIPVideoProcessor", type(processor.video_processor)
    assert processor.templates == {list(classifier.processor.templates)!r}
    assert processor.num_frames == {classifier.processor.num_frames}
classifier = pipeline("{TASK}", model={str(tmp_path / "pipe")!r}, trust_remote_code=True)
print(json.dumps(classifier({video!r}, candidate_labels={LABELS!r})))
"""
    result = run_python(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert [item["label"] for item in remote] == [item["label"] for item in expected]
    assert scores(remote) == pytest.approx(scores(expected), abs=1e-6)


# ---------------------------------------------------------------------------------------------- 6. fast start


def test_help_and_argument_errors_do_not_import_torch_or_transformers(tmp_path):
    script = """
import sys
from actionclip.commands import main
for argv, status in ((["--help"], 0), (["classify", "x.mp4", "--labels", "a", "--model", "m", "--top-k", "0"], 2)):
    try:
        main(argv)
    except SystemExit as exit_:
        assert exit_.code == status, (argv, exit_.code)
heavy = sorted(name for name in ("torch", "transformers", "numpy", "av") if name in sys.modules)
print("heavy:", heavy)
"""
    result = run_python(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


def test_plain_import_then_pipeline_and_auto_classes_work(tmp_path, model_dir, video, expected_by_label):
    script = f"""
import json, sys
import actionclip
assert "torch" not in sys.modules and "transformers" not in sys.modules, "import actionclip is not lazy"
from transformers import AutoModel, pipeline
classifier = pipeline("{TASK}", model={str(model_dir)!r})
assert type(AutoModel.from_pretrained({str(model_dir)!r})).__name__ == "ActionCLIPModel"
print(json.dumps(classifier({video!r}, candidate_labels={LABELS!r})))
"""
    result = run_python(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert scores(json.loads(result.stdout.strip().splitlines()[-1])) == pytest.approx(expected_by_label, abs=1e-6)


def test_plain_import_loads_no_optional_or_heavy_library(tmp_path):
    script = """
import sys
import actionclip
import actionclip.errors
heavy = sorted(name for name in ("av", "datasets", "evaluate", "peft", "matplotlib", "torch", "transformers")
               if name in sys.modules)
print("heavy:", heavy)
"""
    result = run_python(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


def test_lazy_names_are_the_module_classes_and_unknown_names_raise():
    from actionclip import modeling_actionclip, pipeline_zero_shot_video_classification, sampling
    from actionclip.training import trainer as training

    assert actionclip.ActionCLIPModel is modeling_actionclip.ActionCLIPModel
    pipeline_class = pipeline_zero_shot_video_classification.ZeroShotVideoClassificationPipeline
    assert actionclip.ZeroShotVideoClassificationPipeline is pipeline_class
    assert actionclip.ActionCLIPTrainer is training.ActionCLIPTrainer
    assert actionclip.TSNSampler is sampling.TSNSampler and actionclip.get_sampler is sampling.get_sampler
    assert set(actionclip.__all__) <= set(dir(actionclip))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        actionclip.NoSuchName  # noqa: B018


# ---------------------------------------------------------------------------------------------- 7. outputs


def test_setup_lists_the_data_folders_as_packages_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Package would be ignored" not in output and "actionclip.data.label_lists" not in output, output
    assert (tmp_path / "lib" / "actionclip" / "data" / "label_lists" / "kinetics400.csv").is_file()
    assert (tmp_path / "lib" / "actionclip" / "tokenizer_files" / "vocab.json").is_file()


def test_the_training_progress_bar_has_a_description(tmp_path):
    from transformers.trainer_callback import ProgressCallback, TrainerState

    from actionclip.training.trainer import ActionCLIPTrainer, ActionCLIPTrainingArguments

    args = ActionCLIPTrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        eval_strategy="no",
        save_strategy="no",
        # Explicit: the default follows transformers' logging verbosity, which other tests in the run may lower.
        disable_tqdm=False,
    )
    trainer = ActionCLIPTrainer(model=tiny_model(), args=args, progress_description="training the transf model")
    bars = [callback for callback in trainer.callback_handler.callbacks if isinstance(callback, ProgressCallback)]
    assert len(bars) == 1
    bars[0].on_train_begin(args, TrainerState(max_steps=3), None)
    try:
        assert bars[0].training_bar.desc.startswith("training the transf model")
    finally:
        bars[0].training_bar.close()
