"""Live streams: a file played through `StreamingClassifier` scores as offline localisation; stalls end typed."""

import http.server
import threading

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from video_factory import make_frames, write_test_video

from actionclip.apps.localization import localize
from actionclip.apps.streaming import StreamingClassifier
from actionclip.errors import PipelineArgumentError, VideoTimeoutError
from actionclip.pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline
from actionclip.processing_actionclip import ActionCLIPProcessor

LABELS = ["juggling balls", "playing guitar", "tai chi"]
FPS = 25


def make_pipeline(**config) -> ZeroShotVideoClassificationPipeline:
    model = tiny_model(seed=2, num_frames=8, **config)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(50.0))
    return ZeroShotVideoClassificationPipeline(
        model=model, processor=ActionCLIPProcessor.from_model_config(model.config), device="cpu"
    )


@pytest.fixture(scope="module")
def classifier():
    return make_pipeline(fusion="transf")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("stream") / "clip.mp4", num_frames=75, fps=FPS, seed=5)


def test_a_file_played_through_the_stream_scores_as_offline_windows(classifier, video):
    offline = localize(classifier, video, LABELS, window=1.0, stride=0.25)
    stream = StreamingClassifier(classifier, LABELS, window=1.0, stride=0.25)
    results = list(stream.run(str(video), timeout=5))
    assert [r["start"] for r in results] == [round(float(s), 6) for s in offline.grid.starts]
    scores = np.array([[r["scores"][label] for label in LABELS] for r in results])
    np.testing.assert_allclose(scores, offline.scores, atol=1e-5, rtol=0)
    # One vision-tower pass per sampled frame, as offline.
    assert stream.frames_encoded == offline.frames_encoded


def test_shift_models_encode_each_window_and_still_match_offline(video):
    classifier = make_pipeline(shift=True, fusion="meanP")
    offline = localize(classifier, video, LABELS, window=1.0, stride=0.5)
    results = list(StreamingClassifier(classifier, LABELS, window=1.0, stride=0.5).run(str(video), timeout=5))
    scores = np.array([[r["scores"][label] for label in LABELS] for r in results])
    np.testing.assert_allclose(scores, offline.scores, atol=1e-5, rtol=0)


def test_options_given_to_the_pipeline_hold_for_the_stream_as_offline(video):
    """Scale, ensemble and templates given when the pipeline was made: the stream scores as `localize` does."""
    model = make_pipeline(fusion="transf").model
    processor = ActionCLIPProcessor.from_model_config(model.config)
    tuned = ZeroShotVideoClassificationPipeline(
        model=model,
        processor=processor,
        device="cpu",
        logit_scale=7.0,
        ensemble="embedding",
        hypothesis_template=["a clip of {}", "{} again"],
    )
    offline = localize(tuned, video, LABELS, window=1.0, stride=0.5)
    results = list(StreamingClassifier(tuned, LABELS, window=1.0, stride=0.5).run(str(video), timeout=5))
    scores = np.array([[r["scores"][label] for label in LABELS] for r in results])
    np.testing.assert_allclose(scores, offline.scores, atol=1e-5, rtol=0)
    plain = ZeroShotVideoClassificationPipeline(model=model, processor=processor, device="cpu")
    assert not np.allclose(localize(plain, video, LABELS, window=1.0, stride=0.5).scores, scores, atol=1e-3)


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def test_memory_stays_flat_over_ten_thousand_frames(classifier):
    stream = StreamingClassifier(classifier, LABELS, window=3.2, stride=3.2)  # a frame sampled every 0.4 s
    frame = make_frames(1, 16, 16)[0]
    emitted = 0
    for index in range(10_000):
        emitted += len(stream.push(frame.copy(), index / FPS))
        if index == 2_000:
            after_warm_up = resident_bytes()
        assert stream.buffered <= 8
    grown = resident_bytes() - after_warm_up
    # Cells at (k + 1/2) * 0.4 s before the last frame (399.96 s): 1000 sampled frames, 125 windows of 8.
    assert emitted == 125 and stream.frames_encoded == 1000
    assert grown < 8 * 2**20, f"resident memory grew by {grown} bytes between frames 2,000 and 10,000"


def test_timestamps_must_increase(classifier):
    stream = StreamingClassifier(classifier, LABELS, window=1.0, stride=1.0)
    frame = make_frames(1, 16, 16)[0]
    stream.push(frame, 0.5)
    with pytest.raises(PipelineArgumentError, match="timestamps must increase"):
        stream.push(frame, 0.5)


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """Sends the first part of a streamable video, then nothing (until the test lets it go)."""

    payload = b""
    release = threading.Event()

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(self.payload)
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *args):
        pass


def test_a_stalled_local_stream_ends_with_video_timeout_error(classifier, tmp_path):
    path = write_test_video(tmp_path / "live.ts", num_frames=100, fps=FPS, seed=1)
    _StallingHandler.payload = path.read_bytes()[: path.stat().st_size // 2]
    _StallingHandler.release.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stream = StreamingClassifier(classifier, LABELS, window=1.0, stride=0.5)
        received = []
        with pytest.raises(VideoTimeoutError, match="stalled"):
            for result in stream.run(f"http://127.0.0.1:{server.server_address[1]}/live.ts", timeout=1.5):
                received.append(result)
        assert received, "the part that was sent is scored before the stall"
    finally:
        _StallingHandler.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_command_prints_one_json_line_per_window(classifier, video, tmp_path, capsys):
    import json

    from actionclip.commands import main

    classifier.model.save_pretrained(tmp_path / "model")
    classifier.processor.save_pretrained(tmp_path / "model")
    status = main(
        ["stream", str(video), "--labels", ",".join(LABELS), "--model", str(tmp_path / "model")]
        + ["--window", "1", "--stride", "0.5"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and len(lines) == 5  # 3 s: windows starting at 0, 0.5, ..., 2
    first = json.loads(lines[0])
    assert first["start"] == 0.0 and first["end"] == 1.0 and set(first["scores"]) == set(LABELS)
