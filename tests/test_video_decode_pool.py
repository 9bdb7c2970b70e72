"""Decoding in worker processes (`video_decode_pool`): results in order, typed errors, dead and stuck workers, clips
lent from shared memory, and the pipeline fed by the pool, on real encoded videos."""

import dataclasses
import gc
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
import torch
from test_video_clips import reference_clip, write_videos
from tiny_models import save_tiny_model_dir
from transformers import pipeline

import actionclip  # noqa: F401  (registers the task)
from actionclip.errors import (
    DecodeWorkerDiedError,
    InvalidSplitFileError,
    VideoDecodeError,
    VideoInputError,
    VideoTimeoutError,
)
from actionclip.scoring import template_ensemble_probs
from actionclip.video_clips import ClipSpec, read_clip
from actionclip.video_decode_pool import LENT_PER_WORKER, SLOT_BYTES, DecodePool

LABELS = ["juggling balls", "playing guitar", "tai chi"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return write_videos(tmp_path_factory.mktemp("engine_videos"), 50)


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return str(path)


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


# ---------------------------------------------------------------------- errors


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
                holders = pool.worker_pids(holding=stuck)
                if holders:
                    os.kill(holders[0], signal.SIGKILL)
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
    # a time (about 800 faults a 224-px clip); `video_decode_pool.keep_freed_memory` makes it keep and reuse it.
    big = dataclasses.replace(spec, size={"shortest_edge": 224}, crop=(224, 224))

    def faults(pid: int) -> int:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])

    pool = DecodePool(1)
    iterator = pool.imap((videos[i % len(videos)], big, None) for i in range(60))
    for _ in range(20):  # warm: the decoder's and the allocator's first blocks
        next(iterator)
    (pid,) = pool.worker_pids()
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


# ---------------------------------------------------------------------- remote code


def test_the_pool_travels_with_the_pipeline_and_the_commands_process_policy_stays_home():
    """What `pipeline.save_pretrained` copies beside the weights (the modules the pipeline imports, as transformers
    finds them): the clips and the pool, with the workers' memory policy, but not `process_policy`, which only our
    own commands apply."""
    from transformers.dynamic_module_utils import get_relative_import_files

    import actionclip.pipeline_zero_shot_video_classification as pipeline_module

    copied = {os.path.basename(path) for path in get_relative_import_files(pipeline_module.__file__)}
    assert {"video_clips.py", "video_decode_pool.py", "video_processing_actionclip.py"} <= copied
    assert "process_policy.py" not in copied
