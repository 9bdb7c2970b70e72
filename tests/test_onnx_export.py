"""ONNX export and the onnxruntime backend: parity with PyTorch for every visual prompt, the pipeline on a real video,
int8 and fp16 exports, and refused exports that leave nothing behind."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tiny_models import random_videos, tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip import ActionCLIPForVideoClassification
from actionclip.commands import main
from actionclip.errors import MissingProcessorError, OnnxExportError, OnnxModelError, PipelineArgumentError
from actionclip.onnx.export import DEFAULT_INT8_TOLERANCE, export_onnx, read_int8_choice
from actionclip.onnx.runtime import ActionCLIPOnnxModel
from actionclip.processing_actionclip import ActionCLIPProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPTS = {
    "meanP": dict(fusion="meanP"),
    "conv1d": dict(fusion="conv1d"),
    "lstm": dict(fusion="lstm"),
    "transf": dict(fusion="transf"),
    "transf_cls": dict(fusion="transf_cls"),
    "shift": dict(fusion="transf", shift=True),
    "joint": dict(fusion="meanP", joint=True),
}
FRAME_COUNTS = (1, 8, 16)
BATCH_SIZES = {1: 1, 8: 3, 16: 2}  # other than the traced batch of 2 too (an LSTM's initial state must follow it)
LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling"]


def saved_model(path, seed: int = 0, **overrides):
    """A tiny model of 16 frames (so 1, 8 and 16 frames fit every prompt) saved with its processor."""
    model = tiny_model(seed=seed, num_frames=16, **overrides).eval()
    with torch.no_grad():  # spread the scale so that scores are far from uniform
        model.logit_scale.fill_(np.log(60.0))
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """prompt name -> (PyTorch model, loaded ONNX model), exported once for the whole module."""
    made = {}

    def get(name):
        if name not in made:
            folder = tmp_path_factory.mktemp(f"onnx_{name}")
            model = saved_model(folder / "model", seed=len(name), **PROMPTS[name])
            made[name] = model, ActionCLIPOnnxModel.from_pretrained(export_onnx(folder / "model", folder / "onnx"))
        return made[name]

    return get


@pytest.fixture(params=list(PROMPTS))
def exported(request, exports):
    """(prompt name, PyTorch model, loaded ONNX model) for every visual prompt."""
    return (request.param, *exports(request.param))


@pytest.fixture(scope="module")
def transf_dirs(tmp_path_factory):
    """A saved transf model and its export written by the `actionclip export` command."""
    folder = tmp_path_factory.mktemp("transf")
    saved_model(folder / "model", seed=3, fusion="transf")
    assert main(["export", str(folder / "model"), str(folder / "onnx")]) == 0
    return folder / "model", folder / "onnx"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=30, seed=1)


def test_video_embeddings_equal_pytorch_for_every_prompt_and_frame_count(exported):
    name, model, onnx_model = exported
    for frames in FRAME_COUNTS:
        pixel_values = random_videos(batch=BATCH_SIZES[frames], frames=frames, seed=frames)
        with torch.no_grad():
            expected = model.get_video_features(pixel_values).pooler_output
        torch.testing.assert_close(onnx_model.video_features(pixel_values), expected, atol=1e-4, rtol=0)


def test_text_embeddings_equal_pytorch_with_padding(exported):
    _, model, onnx_model = exported
    tokens = ActionCLIPProcessor.from_model_config(model.config).tokenizer(
        ["a video of a person juggling balls in the park", "tai chi", "a"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    got = onnx_model.text_features(tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_export_directory_describes_itself(exported, transf_dirs):
    _, onnx_dir = transf_dirs
    metadata = json.loads((onnx_dir / "onnx_export.json").read_text())
    assert metadata["opset"] == 17 and metadata["dtype"] == "fp32" and metadata["quantize"] is None
    assert metadata["graphs"]["frame_encoder"]["takes"] == "frames"
    assert metadata["max_frames"] == 77  # transf: fusion_max_frames position embeddings
    for name in ("config.json", "processor_config.json", "tokenizer.json"):
        assert (onnx_dir / name).is_file()
    for graph in metadata["graphs"].values():
        onnx.checker.check_model(str(onnx_dir / graph["file"]))
    name, _, onnx_model = exported
    expected = "clips" if name in ("shift", "joint") else "frames"
    assert onnx_model.metadata["graphs"]["frame_encoder"]["takes"] == expected


def test_pipeline_on_onnx_equals_the_torch_pipeline_on_a_real_video(transf_dirs, video):
    model_dir, onnx_dir = transf_dirs
    torch_classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")
    onnx_classifier = pipeline("zero-shot-video-classification", model=str(onnx_dir), device="cpu")
    assert isinstance(onnx_classifier.model, ActionCLIPOnnxModel) and onnx_classifier.backend.backend_name == "onnx"
    for options in ({}, {"num_clips": 2, "num_crops": 3}, {"ensemble": "embedding", "logit_scale": 100}):
        expected = torch_classifier(str(video), candidate_labels=LABELS, **options)
        got = onnx_classifier(str(video), candidate_labels=LABELS, **options)
        assert [item["label"] for item in got] == [item["label"] for item in expected]
        assert [item["score"] for item in got] == pytest.approx([item["score"] for item in expected], abs=1e-5)


def test_classify_command_runs_an_export_like_its_model(transf_dirs, video, capsys):
    model_dir, onnx_dir = transf_dirs
    outputs = []
    for model in (model_dir, onnx_dir):
        assert main(["classify", str(video), "--labels", ",".join(LABELS), "--model", str(model), "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out)[0]["predictions"])
    assert [item["label"] for item in outputs[1]] == [item["label"] for item in outputs[0]]
    assert [item["score"] for item in outputs[1]] == pytest.approx([item["score"] for item in outputs[0]], abs=1e-5)


def test_onnx_pipeline_caches_text_embeddings_per_label_set(transf_dirs, video):
    _, onnx_dir = transf_dirs
    classifier = pipeline("zero-shot-video-classification", model=str(onnx_dir), backend="onnx")
    templater = classifier.prepare_labels(LABELS, None)[1]
    first = classifier.text_embeddings(LABELS, templater)
    assert classifier.text_embeddings(LABELS, templater) is first
    assert classifier.text_embeddings(LABELS[:3], templater) is not first


def test_backend_that_does_not_match_the_directory_is_refused(transf_dirs):
    model_dir, onnx_dir = transf_dirs
    with pytest.raises(PipelineArgumentError, match="actionclip export"):
        pipeline("zero-shot-video-classification", model=str(model_dir), backend="onnx")
    with pytest.raises(PipelineArgumentError, match="backend must be one of"):
        pipeline("zero-shot-video-classification", model=str(onnx_dir), backend="tensorrt")


def test_too_many_frames_and_another_image_size_are_refused(exports):
    _, onnx_model = exports("transf_cls")
    with pytest.raises(OnnxModelError, match="at most 16"):
        onnx_model.video_features(random_videos(batch=1, frames=17))
    with pytest.raises(OnnxModelError, match="32x32"):
        onnx_model.video_features(random_videos(batch=1, frames=8, size=64))


def test_int8_quantises_the_frame_encoder_matmuls_and_keeps_the_ranking(tmp_path):
    model = saved_model(tmp_path / "model", fusion="transf")
    export_onnx(tmp_path / "model", tmp_path / "int8", quantize="int8", int8_tolerance=0.5)
    graph = onnx.load(str(tmp_path / "int8" / "frame_encoder.onnx")).graph
    operators = [node.op_type for node in graph.node]
    assert "MatMulInteger" in operators or "DynamicQuantizeMatMul" in operators, operators
    assert not list((tmp_path / "int8").glob("*.float.onnx"))
    int8 = read_int8_choice(tmp_path / "int8")
    # A loose tolerance: every constant-weight MatMul (q, k, v, out, fc1, fc2 of both layers, the projection, and the
    # patch embedding where it is a MatMul) is int8.
    assert int8["float32_matmuls"] == [] and int8["quantized_matmuls"] == len(int8["sensitivity"]) >= 6 * 2 + 1
    assert 0 <= int8["calibration_error"] <= 0.5
    onnx_model = ActionCLIPOnnxModel.from_pretrained(tmp_path / "int8")
    pixel_values = random_videos(batch=4, frames=8)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.get_video_features(pixel_values).pooler_output, dim=-1)
    got = torch.nn.functional.normalize(onnx_model.video_features(pixel_values), dim=-1)
    assert (got * expected).sum(-1).min() > 0.99  # cosine similarity of int8 and float32 embeddings


def test_int8_keeps_the_most_sensitive_matmuls_float32_until_the_tolerance_holds(tmp_path):
    saved_model(tmp_path / "model", fusion="meanP")
    calibration = random_videos(batch=2, frames=4, seed=5)
    with pytest.warns(UserWarning, match="stay float32"):  # no int8 MatMul keeps a tiny model within 1e-12
        export_onnx(
            tmp_path / "model", tmp_path / "int8", quantize="int8", calibration=calibration, int8_tolerance=1e-12
        )
    int8 = read_int8_choice(tmp_path / "int8")
    assert int8["calibration_frames"] == 8
    # Tried with 0, 1, 2, 4, 8 and then all MatMuls float32, most sensitive first; the last is exact.
    tried = {int(count): error for count, error in int8["error_by_float32_count"].items()}
    total = len(int8["sensitivity"])
    assert sorted(tried)[:5] == [0, 1, 2, 4, 8] and max(tried) == total and tried[total] <= 1e-12 < tried[0]
    assert int8["quantized_matmuls"] == 0 and int8["calibration_error"] == tried[total]
    sensitivity = int8["sensitivity"]
    assert int8["float32_matmuls"] == sorted(sensitivity, key=sensitivity.get, reverse=True)
    operators = {node.op_type for node in onnx.load(str(tmp_path / "int8" / "frame_encoder.onnx")).graph.node}
    assert not operators & {"MatMulInteger", "DynamicQuantizeMatMul"}


def test_int8_metadata_counts_the_graphs_quantised_and_float32_matmuls(transf_dirs, tmp_path, capsys):
    """What `actionclip export --quantize int8` prints and `onnx_export.json` records is what the graph holds."""
    model_dir, _ = transf_dirs
    assert main(["export", str(model_dir), str(tmp_path / "int8"), "--quantize", "int8"]) == 0
    int8 = read_int8_choice(tmp_path / "int8")
    graph = onnx.load(str(tmp_path / "int8" / "frame_encoder.onnx")).graph
    constants = {tensor.name for tensor in graph.initializer}
    quantised = [node for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    float32 = [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in constants]
    assert len(quantised) == int8["quantized_matmuls"] and sorted(float32) == sorted(int8["float32_matmuls"])
    total = len(int8["sensitivity"])
    assert f"{len(quantised)} of {total} MatMuls quantised, {len(float32)} kept float32" in capsys.readouterr().out


def test_export_command_calibrates_int8_on_real_videos(transf_dirs, video, tmp_path, capsys):
    model_dir, _ = transf_dirs
    code = main(["export", str(model_dir), str(tmp_path / "int8"), "--quantize", "int8", "--calibration", str(video)])
    assert code == 0
    int8 = read_int8_choice(tmp_path / "int8")
    assert int8["calibration_frames"] == 16 and int8["tolerance"] == DEFAULT_INT8_TOLERANCE  # one 16-frame clip
    assert "MatMuls quantised" in capsys.readouterr().out


def test_fp16_export_runs_the_video_graphs_in_half_precision(tmp_path):
    model = saved_model(tmp_path / "model", fusion="lstm")
    export_onnx(tmp_path / "model", tmp_path / "fp16", dtype="fp16")
    onnx_model = ActionCLIPOnnxModel.from_pretrained(tmp_path / "fp16")
    assert onnx_model.sessions["frame_encoder"].get_inputs()[0].type == "tensor(float16)"
    assert onnx_model.sessions["fusion"].get_inputs()[0].type == "tensor(float16)"
    pixel_values = random_videos(batch=2, frames=8)
    with torch.no_grad():
        expected = model.get_video_features(pixel_values).pooler_output
    torch.testing.assert_close(onnx_model.video_features(pixel_values), expected, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(dtype="fp16", quantize="int8"), "needs dtype='fp32'"),
        (dict(opset=99), "opset 99 is not supported"),
        (dict(opset=9), "opset 9 is not supported"),
        (dict(dtype="bf16"), "dtype 'bf16'"),
        (dict(quantize="int4"), "quantize 'int4'"),
        (dict(quantize="int8", int8_tolerance=0), "int8_tolerance must be"),
        (dict(calibration=np.zeros((2, 3, 64, 64), np.float32)), "only used with quantize='int8'"),
        (dict(quantize="int8", calibration=np.zeros((2, 3, 48, 48), np.float32)), "calibration must be"),
    ],
)
def test_unsupported_combinations_are_refused_before_anything_is_written(transf_dirs, tmp_path, options, message):
    model_dir, _ = transf_dirs
    with pytest.raises(OnnxExportError, match=message):
        export_onnx(model_dir, tmp_path / "out", **options)
    assert list(tmp_path.iterdir()) == []


def test_cli_refusal_is_one_line_with_status_2_and_no_directory(transf_dirs, tmp_path, capsys):
    model_dir, _ = transf_dirs
    out = tmp_path / "out"
    assert main(["export", str(model_dir), str(out), "--dtype", "fp16", "--quantize", "int8"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("actionclip export: error:") and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_non_empty_output_directory_is_kept_unless_overwrite(transf_dirs, tmp_path):
    model_dir, _ = transf_dirs
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OnnxExportError, match="not empty"):
        export_onnx(model_dir, out)
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    export_onnx(model_dir, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "onnx_export.json").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging or retired directory left


def test_models_without_text_encoder_or_processor_are_refused(transf_dirs, tmp_path):
    model_dir, _ = transf_dirs
    model = tiny_model()
    classifier = ActionCLIPForVideoClassification.from_actionclip(
        model, LABELS, ActionCLIPProcessor.from_model_config(model.config).tokenizer
    )
    classifier.save_pretrained(tmp_path / "closed_set")
    with pytest.raises(OnnxExportError, match="only the video-text model"):
        export_onnx(tmp_path / "closed_set", tmp_path / "out")
    model.save_pretrained(tmp_path / "no_processor")
    with pytest.raises(MissingProcessorError):
        export_onnx(tmp_path / "no_processor", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*"))


def test_a_directory_that_is_not_an_export_is_refused_by_the_onnx_loader(transf_dirs):
    model_dir, _ = transf_dirs
    with pytest.raises(OnnxModelError, match="not an ONNX export"):
        ActionCLIPOnnxModel.from_pretrained(model_dir)


def test_the_export_names_its_classes_for_remote_code_without_the_auto_classes_registered(transf_dirs, tmp_path):
    # config.json and the processor's files carry auto_map and their code beside them whether or not this process
    # registered ActionCLIP with the Auto classes; the export itself registers nothing.
    model_dir, _ = transf_dirs
    script = """
import json, os, sys
from actionclip import registration
registration.uninstall()  # no import hook: nothing registers the Auto classes in this process
from actionclip.modeling_actionclip import ActionCLIPModel
from actionclip.onnx.export import export_onnx
from actionclip.processing_actionclip import ActionCLIPProcessor
model_dir, out = sys.argv[1:]
model, processor = ActionCLIPModel.from_pretrained(model_dir), ActionCLIPProcessor.from_pretrained(model_dir)
exports = {"object": export_onnx(model, os.path.join(out, "object"), processor=processor)}
exports["path"] = export_onnx(model_dir, os.path.join(out, "path"))
def read(path):
    return json.loads(path.read_text()).get("auto_map")
print(json.dumps({
    "registered": registration.is_registered(),
    **{how: [read(d / "config.json"), read(d / "processor_config.json"), sorted(p.name for p in d.glob("*.py"))]
       for how, d in exports.items()},
}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", script, str(model_dir), str(tmp_path)], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(result.stdout.strip().splitlines()[-1])
    assert written.pop("registered") is False
    modules = {"configuration_actionclip.py", "processing_actionclip.py", "video_processing_actionclip.py"}
    for how, (config_map, processor_map, code) in written.items():
        assert config_map["AutoConfig"] == "configuration_actionclip.ActionCLIPConfig", how
        assert processor_map == {"AutoProcessor": "processing_actionclip.ActionCLIPProcessor"}, how
        assert modules <= set(code), how
