"""Damaged videos: every mutation of a real encoded video ends in frames or a typed error, in bounded time.

Two consumers are fuzzed: the decoder (`probe_video`, `sample_and_read`) and the zero-shot pipeline on a tiny
saved model, whose every case ends in a ranking (finite scores summing to 1) or a `VideoDecodeError`.

CI runs a few hundred cases of each; ``ACTIONCLIP_FUZZ_CASES=5000 pytest tests/test_video_fuzz.py`` runs that many
of each (``ACTIONCLIP_FUZZ_SEED`` picks another series). Each case
has a deadline given to the decoder (its own ``timeout``) and checked here; a hang inside FFmpeg that the decoder
could not interrupt is caught by a watchdog that dumps the stack and ends the run.
"""

import faulthandler
import os
import sys
import time
import warnings

import numpy as np
import pytest
from tiny_models import tiny_model
from transformers import pipeline
from video_factory import write_test_video

from actionclip.errors import VideoDecodeError
from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.sampling import TSNSampler
from actionclip.video_io import PartialDecodeWarning, probe_video, sample_and_read

NUM_CASES = int(os.environ.get("ACTIONCLIP_FUZZ_CASES", "600"))
FUZZ_SEED = int(os.environ.get("ACTIONCLIP_FUZZ_SEED", "20240501"))
CASE_TIMEOUT = 2.0  # seconds given to each decoder call
SLACK = 3.0  # what a case may overrun the decoder's deadline by before it counts as a hang
WATCHDOG = 60.0  # a case still running after this long is a hang: dump stacks and stop the process

SOURCES = [
    ("libx264", "mp4", {}),
    ("libx264", "mkv", {}),
    ("hevc", "mp4", {}),
    ("libvpx-vp9", "webm", {}),
    ("libsvtav1", "mkv", {}),
    ("mpeg4", "avi", {}),
    ("libx264", "mp4", {"rotation": 90}),
]


@pytest.fixture(scope="session")
def seed_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_seeds")
    videos = []
    for number, (codec, suffix, extra) in enumerate(SOURCES):
        path = write_test_video(root / f"seed{number}.{suffix}", 30, 32, 64, codec=codec, gop_size=8, **extra)
        videos.append(path.read_bytes())
    return videos


def _bit_flips(data: bytes, rng) -> bytes:
    out = bytearray(data)
    for position in rng.integers(0, len(out), size=int(rng.integers(1, 64))):
        out[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _truncate(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def _header_damage(data: bytes, rng) -> bytes:
    out = bytearray(data)
    span = min(len(out), 512)
    for position in rng.integers(0, span, size=int(rng.integers(1, 16))):
        out[position] = int(rng.integers(0, 256))
    return bytes(out)


def _random_run(data: bytes, rng) -> bytes:
    out = bytearray(data)
    start = int(rng.integers(0, len(out)))
    length = int(rng.integers(1, 2048))
    out[start : start + length] = rng.integers(0, 256, size=len(out[start : start + length]), dtype=np.uint8).tobytes()
    return bytes(out)


def _splice(data: bytes, rng) -> bytes:
    """Repeat or drop a chunk: lengths and offsets inside the container stop matching the data."""
    start = int(rng.integers(0, len(data)))
    length = int(rng.integers(1, 4096))
    if rng.random() < 0.5:
        return data[:start] + data[start : start + length] + data[start:]
    return data[:start] + data[start + length :]


def _random_bytes(data: bytes, rng) -> bytes:
    return rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()


MUTATIONS = [_bit_flips, _truncate, _header_damage, _random_run, _splice, _random_bytes]


def _run_case(data: bytes):
    """The outcome of one damaged input: 'frames', 'error' (typed), or the unexpected exception."""
    try:
        info = probe_video(data, timeout=CASE_TIMEOUT)
        assert info.num_frames >= 1 and info.width >= 1 and info.height >= 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialDecodeWarning)
            decoded = sample_and_read(data, TSNSampler(4), shorter_side=16, timeout=CASE_TIMEOUT)
        assert decoded.frames.dtype == np.uint8 and decoded.frames.shape[:1] == (4,)
        assert min(decoded.frames.shape[1:3]) == 16
        return "frames"
    except VideoDecodeError:
        return "error"


def _fuzz(seed_videos, num_cases: int, seed: int, run_case, outcomes: dict, keep_dir) -> list[str]:
    """Run ``run_case`` on ``num_cases`` mutated seed videos; count outcomes, return the findings.

    The input of each finding is written to ``keep_dir``: the seed videos are not byte-identical from run to run
    (Matroska and WebM carry a random segment UID), so a seed and case number alone may not reproduce it.
    """
    rng = np.random.default_rng(seed)
    slowest = 0.0
    failures = []
    started_all = time.monotonic()
    for case in range(num_cases):
        source = int(rng.integers(len(seed_videos)))
        mutation = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        data = mutation(seed_videos[source], rng)
        faulthandler.dump_traceback_later(WATCHDOG, exit=True, file=sys.stderr)
        started = time.monotonic()
        try:
            outcome = run_case(data)
        except Exception as error:  # anything untyped is a finding: keep going, report all at the end
            outcome = f"{type(error).__name__}: {error}"
        finally:
            faulthandler.cancel_dump_traceback_later()
        elapsed = time.monotonic() - started
        slowest = max(slowest, elapsed)
        if elapsed > 2 * CASE_TIMEOUT + SLACK:
            outcome = f"took {elapsed:.1f} s" if outcome in outcomes else f"{outcome}, took {elapsed:.1f} s"
        if outcome in outcomes:
            outcomes[outcome] += 1
        else:
            kept = keep_dir / f"case{case}.bin"
            kept.write_bytes(data)
            failures.append(f"case {case} ({mutation.__name__} of seed {source}, input in {kept}): {outcome}")
    counts = ", ".join(f"{count} {name}" for name, count in outcomes.items())
    print(
        f"\n{num_cases} fuzz cases in {time.monotonic() - started_all:.1f} s: {counts}, {len(failures)} findings, "
        f"slowest case {slowest:.2f} s"
    )
    return failures


def test_damaged_videos_end_in_frames_or_typed_errors_in_bounded_time(seed_videos, tmp_path):
    outcomes = {"frames": 0, "error": 0}
    failures = _fuzz(seed_videos, NUM_CASES, FUZZ_SEED, _run_case, outcomes, tmp_path)
    assert not failures, "\n".join(failures[:20])
    assert outcomes["frames"] > 0 and outcomes["error"] > 0  # the mutations exercise both outcomes


# -- the zero-shot pipeline ------------------------------------------------------------------------------------

LABELS = ["juggling balls", "playing guitar", "tai chi", "abseiling"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_actionclip")
    model = tiny_model(seed=3)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return pipeline("zero-shot-video-classification", model=str(path), device="cpu")


def _classify_case(classifier, data: bytes) -> str:
    """'result' (a checked ranking) or 'error' (typed) for one damaged input; anything else propagates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialDecodeWarning)
            result = classifier(data, candidate_labels=LABELS, timeout=CASE_TIMEOUT, num_workers=0)
    except VideoDecodeError:
        return "error"
    assert isinstance(result, list) and sorted(item["label"] for item in result) == sorted(LABELS), result
    scores = [item["score"] for item in result]
    assert all(isinstance(score, float) and np.isfinite(score) for score in scores), result
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1.0) < 1e-4, result
    return "result"


def test_damaged_videos_through_the_pipeline_end_in_rankings_or_typed_errors(seed_videos, classifier, tmp_path):
    clean = classifier(seed_videos[0], candidate_labels=LABELS)
    outcomes = {"result": 0, "error": 0}
    # Another series than the decoder's, so that the two tests together see more inputs.
    failures = _fuzz(
        seed_videos, NUM_CASES, FUZZ_SEED + 1, lambda data: _classify_case(classifier, data), outcomes, tmp_path
    )
    assert not failures, "\n".join(failures[:20])
    assert outcomes["result"] > 0 and outcomes["error"] > 0
    # Nothing a damaged input did has left the pipeline (decoder, text cache, model) in another state.
    assert classifier(seed_videos[0], candidate_labels=LABELS) == clean
