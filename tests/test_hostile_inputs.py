"""Hostile and odd inputs: bombs refused by their declared size before memory is allocated (or decoded at the size
the model needs), and clear messages for inputs that are not what they seem.

Memory cases run in a subprocess under an address-space limit (RLIMIT_AS): they must end in a typed error or a
result, never in an untyped MemoryError/RuntimeError or the OOM killer.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import av
import pytest
import torch
import weight_factory
from safetensors.torch import load_file
from tiny_models import tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401
from actionclip.commands import main
from actionclip.data.tar_shards import TarShardVideoDataset, write_tar_shards
from actionclip.errors import (
    InvalidConfigError,
    InvalidTemplateError,
    InvalidWeightsError,
    MissingWeightsError,
    SamplingError,
    VideoDecodeError,
    VideoTooLargeError,
)
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.video_io import MAX_FRAME_PIXELS, probe_video, read_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30

# Every memory case, one after the other in one fresh interpreter (one start-up instead of five): each runs with the
# address space limited to what the process holds plus its budget; its outcome (a result, or the error it raised)
# is printed as JSON.
LIMITED_RUNNER = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    import actionclip, actionclip.commands
    from transformers import pipeline
    from actionclip.data.tar_shards import TarShardVideoDataset

    inputs = json.loads(sys.argv[1])
    outcomes = {}

    def address_space():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    def peak_rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def limited(name, budget, function):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + budget, hard))
        try:
            outcomes[name] = function()
        except BaseException as error:  # what it raised is the outcome the test judges
            outcomes[name] = {"raised": type(error).__name__, "message": str(error)[:2000]}
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    def cli(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = actionclip.commands.main([str(arg) for arg in args])
        return {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()}

    GiB = 1 << 30
    classifier = pipeline("zero-shot-video-classification", model=inputs["model"], device="cpu")
    classifier(inputs["good"], candidate_labels=["a", "b"])  # warm: the growth measured next is the videos'
    before = peak_rss()

    def classify_bomb():
        videos = [inputs["good"], inputs["bomb"], inputs["good"]]
        results = classifier(videos, candidate_labels=["a", "b"], on_error="skip")
        return {"results": [result is not None for result in results], "growth": peak_rss() - before}

    limited("bomb", 3 * GiB, classify_bomb)
    limited("over", 3 * GiB, lambda: cli(
        "classify", inputs["good"], inputs["over"], inputs["good"], "--model", inputs["model"], "--labels", "a,b",
        "--json", "--no-progress"))
    limited("convert", 2 * GiB, lambda: cli("convert", inputs["checkpoint"], inputs["converted"]))

    def read_shards():
        dataset = TarShardVideoDataset(inputs["shards"], ["a", "b"], num_frames=2, image_size=32, skip_bad_samples=True)
        return {"labels": [int(item["labels"]) for item in dataset], "bad": dataset.bad_samples}

    limited("tar", 2 * GiB, read_shards)
    for name, extra in (
        ("labels_dev_zero", ["--labels-file", "/dev/zero"]),
        ("labels_big", ["--labels-file", inputs["big"]]),
        ("templates_big", ["--labels", "a,b", "--templates", inputs["big"]]),
    ):
        limited(name, GiB, lambda: cli("classify", inputs["good"], "--model", inputs["model"], *extra))
    print(json.dumps(outcomes))
    """
)


def flat_h264(path: Path, width: int, height: int) -> Path:
    """One flat H.264 frame of ``width`` x ``height``: a few hundred KB on disk, hundreds of MB decoded."""
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "51"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            output.mux(packet)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    model = tiny_model(seed=3)
    model.save_pretrained(folder / "model")
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(folder / "model")
    return {
        "folder": folder,
        "model": folder / "model",
        "good": write_test_video(folder / "good.mp4", num_frames=20),
        "bomb": flat_h264(folder / "bomb.mp4", 8192, 8192),  # at the pixel limit: decoded, at the model's size
        "over": flat_h264(folder / "over.mp4", 8192, 8208),  # over it: refused before decoding
    }


# ---------------------------------------------------------------------------------------------- decompression bombs


def test_the_bombs_are_small_files_of_huge_frames(files):
    assert files["bomb"].stat().st_size < 1 << 20 and files["over"].stat().st_size < 1 << 20
    info = probe_video(files["bomb"])
    assert (info.width, info.height) == (8192, 8192) and info.width * info.height <= MAX_FRAME_PIXELS


def test_huge_frames_are_scaled_while_decoding_when_asked(files):
    frames = read_frames(files["bomb"], [0, 0], max_shorter_side=64)
    assert frames.shape == (2, 64, 64, 3)
    small = read_frames(files["good"], [0], max_shorter_side=1000)  # smaller frames keep their size
    assert small.shape == (1, 64, 80, 3)
    assert (small == read_frames(files["good"], [0])).all()


def test_frames_over_the_pixel_limit_are_refused_before_decoding(files):
    with pytest.raises(VideoTooLargeError, match="8192x8208 exceeds the limit"):
        probe_video(files["over"])


@pytest.fixture(scope="module")
def limited(files, reference_dir, tmp_path_factory):
    """The outcomes of `LIMITED_RUNNER` on the bombs below."""
    folder = tmp_path_factory.mktemp("bombs")
    # An authors'-format checkpoint whose token embedding is a stride-0 view claiming 100,000,000 rows.
    checkpoint = torch.load(reference_dir / "Transf.pt", map_location="cpu", weights_only=True)
    embedding = checkpoint["model_state_dict"]["token_embedding.weight"]
    checkpoint["model_state_dict"]["token_embedding.weight"] = embedding[:1].expand(100_000_000, embedding.shape[1])
    torch.save(checkpoint, folder / "bomb.pt")
    # A tar shard whose first sample is a sparse 30 GiB member (a hole: no disk space), then a good shard.
    members = folder / "members"
    members.mkdir()
    with open(members / "000000000.mp4", "wb") as handle:
        handle.truncate(30 * GiB)
    (members / "000000000.cls").write_text("0")
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write a sparse member")
    tar = ["tar", "--sparse", "-cf", str(folder / "bad.tar"), "-C", str(members), "000000000.mp4", "000000000.cls"]
    subprocess.run(tar, check=True)
    good_shard = write_tar_shards([(files["good"], 1)], str(folder / "good-{:06d}.tar"))[0]
    with open(folder / "big.txt", "wb") as handle:  # 64 MiB of zeros, sparse
        handle.truncate(64 << 20)
    inputs = {
        "model": str(files["model"]),
        "good": str(files["good"]),
        "bomb": str(files["bomb"]),
        "over": str(files["over"]),
        "checkpoint": str(folder / "bomb.pt"),
        "converted": str(folder / "converted"),
        "shards": [str(folder / "bad.tar"), str(good_shard)],
        "big": str(folder / "big.txt"),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", LIMITED_RUNNER, json.dumps(inputs)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {"inputs": inputs, "folder": folder, **json.loads(result.stdout.strip().splitlines()[-1])}


def test_a_bomb_between_good_videos_classifies_with_under_1_gib_of_growth(limited):
    assert limited["bomb"]["results"] == [True, True, True], limited["bomb"]
    assert limited["bomb"]["growth"] < GiB, limited["bomb"]


def test_classify_with_a_bomb_over_the_limit_gives_the_other_results_and_one_error(limited):
    outcome = limited["over"]
    assert outcome.get("status") == 2, outcome
    assert [row["video"] for row in json.loads(outcome["stdout"])] == [limited["inputs"]["good"]] * 2
    errors = [line for line in outcome["stderr"].splitlines() if "error:" in line]
    assert len(errors) == 2 and "over.mp4" in errors[0] and "exceeds the limit" in errors[0]
    assert "1 of 3 videos could not be classified" in errors[1]


def test_convert_refuses_a_stride_0_tensor_claiming_100_million_rows(limited):
    assert (limited["folder"] / "bomb.pt").stat().st_size < 64 << 20  # 25.6 GB once copied
    outcome = limited["convert"]
    assert outcome.get("status") == 2, outcome
    lines = outcome["stderr"].strip().splitlines()
    assert len(lines) == 1 and "token_embedding.weight" in lines[0] and "stride-0" in lines[0]
    assert not Path(limited["inputs"]["converted"]).exists()


def test_a_sparse_30_gib_tar_member_is_skipped_as_a_bad_sample_unread(limited):
    assert (limited["folder"] / "bad.tar").stat().st_size < 1 << 20
    with tarfile.open(limited["folder"] / "bad.tar") as archive:
        assert archive.getmember("000000000.mp4").size == 30 * GiB
    outcome = limited["tar"]
    assert outcome.get("labels") == [1], outcome
    [(where, reason)] = outcome["bad"]
    assert where.endswith(":000000000") and "declares 32212254720 bytes" in reason


@pytest.mark.parametrize("case", ["labels_dev_zero", "labels_big", "templates_big"])
def test_labels_and_template_files_are_read_with_a_byte_cap(limited, case):
    outcome = limited[case]
    assert outcome.get("status") == 2, outcome
    lines = outcome["stderr"].strip().splitlines()
    expected = "is not a regular file" if case == "labels_dev_zero" else "holds more than 16777216 bytes"
    assert len(lines) == 1 and expected in lines[0], lines


def test_an_oversized_tar_member_without_skipping_is_a_typed_error(tmp_path):
    info = tarfile.TarInfo("000000000.mp4")
    info.size = 30 * GiB
    shard = tmp_path / "crafted.tar"
    with open(shard, "wb") as handle:  # a header declaring 30 GiB, then the archive simply ends
        handle.write(info.tobuf(format=tarfile.GNU_FORMAT))
    dataset = TarShardVideoDataset([str(shard)], ["a"], num_frames=2, image_size=32)
    with pytest.raises(VideoDecodeError):
        list(dataset)


# ---------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "override",
    [
        {"text_config": {"num_hidden_layers": 1_000_000}},
        {"vision_config": {"hidden_size": 1 << 20, "num_attention_heads": 1, "intermediate_size": 1 << 20}},
        {"text_config": {"vocab_size": 10**12}},
        {"fusion_num_layers": 10**7},
    ],
)
def test_absurd_configs_are_refused_at_load(files, tmp_path, override):
    config = json.loads((files["model"] / "config.json").read_text())
    for key, value in override.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    shutil.copytree(files["model"], tmp_path / "model")
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidConfigError, match="parameters"):
        actionclip.ActionCLIPModel.from_pretrained(tmp_path / "model")


def test_info_on_an_absurd_config_answers_at_once(files, tmp_path, capsys):
    shutil.copytree(files["model"], tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 1_000_000
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    assert main(["info", str(tmp_path / "model")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "parameters" in error


# ---------------------------------------------------------------------------------------------- weights


@pytest.fixture(scope="module")
def fusion_names(files):
    return sorted(name for name in load_file(files["model"] / "model.safetensors") if name.startswith("fusion."))


def test_the_pipeline_refuses_weights_that_lack_tensors_naming_them(files, fusion_names, tmp_path):
    partial = weight_factory.without_fusion(files["model"], tmp_path / "partial")
    with pytest.raises(MissingWeightsError, match="model.safetensors.*lacks .*fusion") as caught:
        pipeline("zero-shot-video-classification", model=str(partial), device="cpu")
    assert sorted(caught.value.missing) == fusion_names


def test_from_pretrained_still_loads_weights_that_lack_tensors_and_lists_them(files, fusion_names, tmp_path):
    partial = weight_factory.without_fusion(files["model"], tmp_path / "partial")
    _, info = actionclip.ActionCLIPModel.from_pretrained(partial, output_loading_info=True)
    assert sorted(info["missing_keys"]) == fusion_names
    with pytest.raises(MissingWeightsError):
        actionclip.ActionCLIPModel.from_pretrained(partial, require_all_weights=True)


def test_evaluation_refuses_weights_that_lack_tensors(files, tmp_path):
    from actionclip.model_loading import load_model_and_processor

    partial = weight_factory.without_fusion(files["model"], tmp_path / "partial")
    with pytest.raises(MissingWeightsError, match="fusion"):
        load_model_and_processor(partial)


def test_a_pytorch_model_bin_that_lacks_tensors_is_refused_by_the_pipeline(files, fusion_names, tmp_path):
    shutil.copytree(files["model"], tmp_path / "model")
    state = load_file(tmp_path / "model" / "model.safetensors")
    (tmp_path / "model" / "model.safetensors").unlink()
    torch.save({name: tensor for name, tensor in state.items() if name not in fusion_names},
               tmp_path / "model" / "pytorch_model.bin")  # fmt: skip
    with pytest.raises(MissingWeightsError, match="pytorch_model.bin") as caught:
        pipeline("zero-shot-video-classification", model=str(tmp_path / "model"), device="cpu")
    assert sorted(caught.value.missing) == fusion_names


@pytest.mark.parametrize("damage", ["truncated", "claiming_bytes", "reshaped", "pickled_with_payload"])
def test_the_pipeline_refuses_damaged_weights_with_a_typed_error_naming_the_file(files, tmp_path, damage):
    make = getattr(weight_factory, damage)
    arguments = (tmp_path / "marker",) if damage == "pickled_with_payload" else ()
    model = make(files["model"], tmp_path / "model", *arguments)
    named = f"cannot use weights '{re.escape(str(model))}/(model.safetensors|pytorch_model.bin)'"
    with pytest.raises(InvalidWeightsError, match=named):
        pipeline("zero-shot-video-classification", model=str(model), device="cpu")
    assert not (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------------------------- messages


def test_a_relative_path_with_a_colon_is_opened_as_a_file(files, tmp_path, monkeypatch):
    shutil.copy(files["good"], tmp_path / "rec:2024.mp4")
    monkeypatch.chdir(tmp_path)
    assert probe_video("rec:2024.mp4").num_frames == 20
    assert read_frames("rec:2024.mp4", [3]).shape == (1, 64, 80, 3)


@pytest.fixture
def web_server(tmp_path):
    (tmp_path / "page.html").write_text("<!DOCTYPE html><html><body>" + "<p>not a video</p>" * 200 + "</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_page_over_http_is_reported_as_not_a_video(web_server):
    with pytest.raises(VideoDecodeError, match="not a video .*text/html") as caught:
        probe_video(f"{web_server}/page.html")
    assert "audio" not in str(caught.value)


def test_an_html_file_is_reported_as_not_a_video(tmp_path):
    page = tmp_path / "page.mp4"
    page.write_text("<!DOCTYPE html><html><body>" + "<p>not a video</p>" * 200 + "</body></html>")
    with pytest.raises(VideoDecodeError, match="not a video .*HTML"):
        probe_video(page)


@pytest.mark.parametrize("name, kind", [("photo.jpg", "JPEG"), ("photo.png", "PNG"), ("still.gif", "GIF")])
def test_a_single_image_given_as_a_video_is_refused_as_an_image(files, tmp_path, capsys, name, kind):
    from PIL import Image

    frame = read_frames(files["good"], [5])[0]
    Image.fromarray(frame).save(tmp_path / name)
    for source in (tmp_path / name, (tmp_path / name).read_bytes()):
        with pytest.raises(VideoDecodeError, match=f"single {kind} image, not a video"):
            probe_video(source)
    assert main(["classify", str(tmp_path / name), "--labels", "a,b", "--model", str(files["model"])]) == 2
    error = capsys.readouterr().err
    assert f"'{tmp_path / name}': it is a single {kind} image, not a video" in error


def test_a_fifo_or_a_device_given_to_classify_is_not_a_regular_file(files, tmp_path, capsys):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    for source in (fifo, "/dev/zero"):
        assert main(["classify", str(source), "--labels", "a,b", "--model", str(files["model"])]) == 2
        error = capsys.readouterr().err
        assert "is not a regular file" in error and "no such file" not in error


def test_too_many_clips_for_the_video_is_said_so(files, capsys):
    classifier = pipeline("zero-shot-video-classification", model=str(files["model"]), device="cpu")
    with pytest.raises(SamplingError, match="too many clips for a video of 20 frames"):
        classifier(str(files["good"]), candidate_labels=["a", "b"], num_clips=100000)
    args = ["classify", str(files["good"]), "--labels", "a,b", "--model", str(files["model"]), "--num-clips", "100000"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "too many clips" in error and "good.mp4" in error and "cannot decode" not in error


def test_a_template_given_as_a_file_path_never_echoes_the_file(files, tmp_path):
    secret = tmp_path / "secrets"
    secret.write_text("root:x:0:0:password-hash-123\n")
    classifier = pipeline("zero-shot-video-classification", model=str(files["model"]), device="cpu")
    for path in (str(secret), "/etc/passwd"):
        if not Path(path).is_file():
            continue
        with pytest.raises(InvalidTemplateError) as caught:
            classifier(str(files["good"]), candidate_labels=["a", "b"], hypothesis_template=path)
        first_line = Path(path).read_text().splitlines()[0]
        assert path in str(caught.value) and first_line not in str(caught.value)


def test_a_huge_frame_image_is_refused_from_its_header(tmp_path):
    from PIL import Image

    from actionclip.video_io import read_frame_folder

    # A PNG header claiming 9000 x 9000 pixels (81 million, over the limit); the pixels are never decoded.
    Image.new("1", (9000, 9000)).save(tmp_path / "img_00001.png", optimize=True)
    assert (tmp_path / "img_00001.png").stat().st_size < 1 << 20
    with pytest.raises(VideoTooLargeError, match="img_00001.png"):
        read_frame_folder(tmp_path, [0], template="img_{:05d}.png")
