"""Sharded runs (`actionclip.sharding`): ``actionclip eval`` / ``classify`` under ``torchrun`` and ``accelerate
launch`` with two CPU processes (Gloo), and on two torchrun "nodes", give what one process gives, each video once and
in order; an unreadable video is reported and the others finish; a run whose rank is killed redoes only the
unfinished videos."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_model_dir
from video_factory import write_test_video

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TORCHRUN, ACCELERATE = BIN / "torchrun", BIN / "accelerate"
LABELS = ["running", "jumping", "swimming"]

pytestmark = pytest.mark.skipif(
    not (TORCHRUN.exists() and ACCELERATE.exists()), reason="torchrun and accelerate are not installed beside python"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model_dir(
        tmp_path_factory.mktemp("model"), seed=5, logit_scale=40.0, num_frames=4, fusion_num_layers=1,
        templates=["a video of {}", "{}"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Five real videos and, third, a file that is no video."""
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for index in range(6):
        path = folder / f"clip{index}.mp4"
        if index == 2:
            path.write_bytes(b"this is not a video container " * 8)
        else:
            write_test_video(path, num_frames=12, height=40, width=48, seed=index)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launcher_command(launcher: str) -> list[str]:
    if launcher == "torchrun":
        return [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "actionclip"]
    return [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        "-m", "actionclip",
    ]  # fmt: skip


def launcher_env(tmp_path: Path) -> dict:
    return {
        **os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }  # fmt: skip


def start(launcher: str, args, tmp_path: Path) -> subprocess.Popen:
    """The launcher with two processes, in a session of its own (a hung run is killed with all its workers)."""
    return subprocess.Popen(
        [*launcher_command(launcher), *map(str, args)], cwd=REPO_ROOT, env=launcher_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"the launcher did not finish in {timeout} s:\n{err[-5000:]}") from None


def run_in_this_process(argv: list) -> tuple[int, str, str]:
    """`actionclip ARGS` as one process (no launcher): status, stdout, stderr."""
    from actionclip.commands import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


def classify_args(videos, model_dir, work_dir) -> list:
    return ["classify", *videos, "--labels", ",".join(LABELS), "--model", model_dir, "--json", "--no-progress",
            "--work-dir", work_dir]  # fmt: skip


def assert_same_predictions(rows: list, expected: list) -> None:
    assert len(rows) == len(expected)
    for row, reference in zip(rows, expected):
        assert [p["label"] for p in row["predictions"]] == [p["label"] for p in reference["predictions"]]
        scores = [p["score"] for p in row["predictions"]]
        np.testing.assert_allclose(scores, [p["score"] for p in reference["predictions"]], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def classified_in_one_process(model_dir, videos, tmp_path_factory):
    status, out, err = run_in_this_process(classify_args(videos, model_dir, tmp_path_factory.mktemp("work")))
    assert status == 2, err  # the file that is no video
    return json.loads(out), err


def test_classify_under_accelerate_prints_what_one_process_prints_once_with_the_unreadable_video_reported(
    model_dir, videos, classified_in_one_process, tmp_path
):
    """(Under torchrun: the last test.)"""
    expected, expected_err = classified_in_one_process
    out, err = finish(start("accelerate", classify_args(videos, model_dir, tmp_path / "work"), tmp_path))
    rows = json.loads(out)  # one JSON document: only the main process printed
    assert [row["video"] for row in rows] == [str(path) for index, path in enumerate(videos) if index != 2]
    assert_same_predictions(rows, expected)
    failure = next(line for line in expected_err.splitlines() if str(videos[2]) in line)
    assert err.count(failure) == 1, err[-3000:]
    assert "1 of 6 videos could not be classified" in err
    assert not (tmp_path / "work").exists()  # the main process removed the finished results with the output


def eval_args(model_dir, list_file, labels_file, output_dir) -> list:
    return ["eval", "--model", model_dir, "--output-dir", output_dir, "--eval-path", list_file, "--class-names",
            labels_file, "--batch-size", 2, "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def eval_inputs(videos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_inputs")
    (folder / "list.txt").write_text("".join(f"{path} {index % 3}\n" for index, path in enumerate(videos)))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder / "list.txt", folder / "labels.txt"


@pytest.fixture(scope="module")
def evaluated_in_one_process(model_dir, eval_inputs, tmp_path_factory):
    output = tmp_path_factory.mktemp("eval_one")
    status, out, err = run_in_this_process(eval_args(model_dir, *eval_inputs, output))
    assert status == 2, err
    return output, out


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_eval_under_a_launcher_writes_the_reports_of_one_process_once(
    launcher, model_dir, videos, eval_inputs, evaluated_in_one_process, tmp_path
):
    expected_dir, expected_out = evaluated_in_one_process
    output = tmp_path / "eval"
    out, err = finish(start(launcher, eval_args(model_dir, *eval_inputs, output), tmp_path))
    assert out == expected_out, err[-3000:]  # the summary, printed by the main process only
    test_dir, reference_dir = output / "closed_set" / "test", expected_dir / "closed_set" / "test"
    np.testing.assert_allclose(np.load(test_dir / "scores.npy"), np.load(reference_dir / "scores.npy"), atol=1e-6)
    np.testing.assert_array_equal(np.load(test_dir / "labels.npy"), np.load(reference_dir / "labels.npy"))
    report = json.loads((test_dir / "evaluation.json").read_text())
    assert report["num_videos"] == 5  # each readable video once: no padding duplicates
    assert list(report["metadata"]["failed_videos"]) == [str(videos[2])]
    summary = json.loads((output / "summary.json").read_text())
    assert list(summary["closed_set"]["failed_videos"]) == [str(videos[2])]
    assert err.count(f"cannot decode video '{videos[2]}'") == 1, err[-3000:]
    assert not (output / ".unfinished").exists()


class HeldVideos(http.server.SimpleHTTPRequestHandler):
    """Serves the test's videos; a request for ``/held/NAME`` waits until the test releases it."""

    released = threading.Event()
    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.startswith("/held/"):
            type(self).released.wait(timeout=120)
            self.path = self.path[len("/held") :]
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def video_server(videos):
    handler = lambda *args, **kwargs: HeldVideos(*args, directory=str(videos[0].parent), **kwargs)  # noqa: E731
    HeldVideos.released.clear()
    HeldVideos.requests.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    HeldVideos.released.set()
    server.shutdown()
    server.server_close()


def rank_process(launcher_pid: int, rank: int) -> int | None:
    """The process id of the launcher's worker of ``rank`` (not its decoding workers, which share its
    environment)."""

    def parent(pid: int) -> int:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("PPid:"):
                    return int(line.split()[1])
        return 0

    def has_rank(pid: int) -> bool:
        with contextlib.suppress(OSError):
            return f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return False

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        ancestor = parent(pid)
        ancestors = []
        while ancestor > 1:
            ancestors.append(ancestor)
            ancestor = parent(ancestor)
        if launcher_pid in ancestors and has_rank(pid) and not has_rank(parent(pid)):
            return pid
    return None


def test_classify_under_torchrun_killed_in_the_middle_redoes_only_the_unfinished_videos(
    model_dir, videos, classified_in_one_process, video_server, tmp_path
):
    """Rank 1 gets the second, fourth and sixth videos: it finishes the second, then waits for the fourth, which
    the test's server holds back, while rank 0 finishes its three (the third is no video); then rank 1 is killed."""
    inputs = [str(path) for path in videos]
    inputs[3] = f"{video_server}/held/{videos[3].name}"
    work = tmp_path / "work"
    args = classify_args(inputs, model_dir, work)
    process = start("torchrun", args, tmp_path)
    deadline = time.monotonic() + 180
    while len(list(work.glob("*/*.npz"))) < 4:
        assert process.poll() is None and time.monotonic() < deadline, finish(process)[1][-3000:]
        time.sleep(0.1)
    finished = {path.name: path.stat().st_mtime_ns for path in work.glob("*/*.npz")}
    os.kill(rank_process(process.pid, rank=1), signal.SIGKILL)
    out, err = finish(process)
    assert process.returncode != 0 and out == ""  # nothing printed: the main process never had every result
    assert {path.name: path.stat().st_mtime_ns for path in work.glob("*/*.npz")} == finished

    HeldVideos.released.set()
    HeldVideos.requests.clear()
    out, err = finish(start("torchrun", args, tmp_path))
    assert "resuming: 4 of 6 videos finished earlier" in err, err[-3000:]
    assert HeldVideos.requests == [f"/held/{videos[3].name}"]  # the held video, fetched once more
    rows = json.loads(out)
    assert [row["video"] for row in rows] == [video for index, video in enumerate(inputs) if index != 2]
    expected, expected_err = classified_in_one_process
    assert_same_predictions(rows, expected)
    failure = next(line for line in expected_err.splitlines() if str(videos[2]) in line)
    assert err.count(failure) == 1, err[-3000:]  # read back from the first run's finished results
    assert not work.exists()


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_index_under_a_launcher_commits_what_one_process_indexes(launcher, model_dir, videos, tmp_path):
    """Each process embeds its share of the folder's files; the main process alone commits them."""
    from actionclip.apps.search import VideoIndex

    args = ["index", videos[0].parent, "--model", model_dir, "--segment", "0.25s"]
    status, _, err = run_in_this_process([*args, "--out", tmp_path / "one.index"])
    assert status == 0, err
    out, err = finish(start(launcher, [*args, "--out", tmp_path / "two.index"], tmp_path))
    assert out.count("two.index: 5 of 6 files") == 1, err[-3000:]  # printed once, by the main process
    assert err.count(f"{videos[2].name}: left out of the index") == 1, err[-3000:]
    one, two = VideoIndex.open(tmp_path / "one.index"), VideoIndex.open(tmp_path / "two.index")
    assert two.files == one.files and len(two.files) == 5
    assert two.paths == one.paths and len(one.paths) > len(one.files)  # each file's segments once, in order
    np.testing.assert_array_equal(two.spans, one.spans)
    np.testing.assert_allclose(two.embeddings.astype(np.float32), one.embeddings.astype(np.float32), atol=2e-3)
    assert not (tmp_path / "two.index.unfinished").exists()


def test_classify_on_two_nodes_of_one_process_each_prints_what_one_process_prints(
    model_dir, videos, classified_in_one_process, tmp_path
):
    """Multi-node through the same launcher: two torchrun agents (``--nnodes 2``, static rendezvous on this machine),
    as two machines would start them; node 0 holds global rank 0 and alone prints."""
    port, work = free_port(), tmp_path / "work"
    nodes = [
        subprocess.Popen(
            [
                str(TORCHRUN),
                "--nnodes",
                "2",
                "--node_rank",
                str(rank),
                "--nproc_per_node",
                "1",
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                "-m",
                "actionclip",
                *map(str, classify_args(videos, model_dir, work)),
            ],
            cwd=REPO_ROOT,
            env=launcher_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    (out0, err0), (out1, err1) = finish(nodes[0]), finish(nodes[1])
    expected, expected_err = classified_in_one_process
    assert out1 == "" and nodes[1].returncode == 0, err1[-3000:]  # node 1's worker finished its share
    assert nodes[0].returncode != 0, err0[-3000:]  # the main process's exit 2: one file is no video
    assert_same_predictions(json.loads(out0), expected)
    failure = next(line for line in expected_err.splitlines() if str(videos[2]) in line)
    assert (err0 + err1).count(failure) == 1, (err0 + err1)[-3000:]
    assert not work.exists()


def test_classify_where_the_work_folder_cannot_be_written_warns_once_and_prints_every_result(
    model_dir, videos, classified_in_one_process, tmp_path
):
    """A read-only cache (here: a folder under a plain file) costs only the resuming, never the results."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    status, out, err = run_in_this_process(classify_args(videos, model_dir, blocker / "work"))
    assert status == 2  # the file that is no video
    assert_same_predictions(json.loads(out), classified_in_one_process[0])
    assert err.count("warning: cannot keep the finished videos in") == 1, err
    assert blocker.read_text() == "a file"
