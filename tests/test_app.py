"""The web app (`actionclip app`) and its Hub Space folder (`actionclip space`), served for real.

The app runs as a subprocess on 127.0.0.1 with a tiny saved model; a headless Chromium (Debian's, driven by
Playwright) uses the page as a person would, and gradio_client sends concurrent requests. Results are compared with
the pipeline's own output for the same files, computed in this process.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_model
from video_factory import write_test_video

from actionclip.apps.web_app import AppLimits, VideoClassifierApp, label_set_text, parse_labels
from actionclip.errors import AppInputError, InvalidLabelsError, SpaceFolderError

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LABELS = ["juggling balls", "playing guitar", "tai chi", "a red square moving left"]
UPLOAD_LIMIT_MB = 1.0
CONCURRENCY = 2
START_TIMEOUT = 240  # seconds: importing torch, transformers and gradio on a busy 2-core machine
SERVING = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)")
IN_FLIGHT = re.compile(r"in_flight=(\d+) \(limit (\d+)\)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OMP_WAIT_POLICY="PASSIVE",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Server:
    """A subprocess serving an app; its stdout and stderr go to ``log``."""

    def __init__(self, command: list[str], log: Path, cwd: Path | None = None, env: dict | None = None):
        self.log = log
        self._log_file = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env or child_env(), stdout=self._log_file, stderr=subprocess.STDOUT
        )
        self.url = self._wait_until_serving()

    def _wait_until_serving(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = SERVING.search(self.log.read_text())
            if found:
                return found.group(1) + "/"
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the app exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"the app did not start in {START_TIMEOUT} s:\n{self.log.read_text()[-3000:]}")

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from actionclip import ActionCLIPProcessor

    path = tmp_path_factory.mktemp("tiny-model")
    model = tiny_model(seed=3)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Two real H.264 clips written with the project's writer."""
    folder = tmp_path_factory.mktemp("clips")
    return [write_test_video(folder / f"clip{seed}.mp4", num_frames=30, seed=seed) for seed in (0, 1)]


@pytest.fixture(scope="module")
def classifier(model_dir):
    from transformers import pipeline

    import actionclip  # noqa: F401  (registers the task)

    return pipeline("zero-shot-video-classification", model=str(model_dir))


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "actionclip", "app", str(model_dir), "--port", str(free_port())]
    command += ["--max-upload-mb", str(UPLOAD_LIMIT_MB), "--concurrency", str(CONCURRENCY), "--max-queue", "32"]
    running = Server(command, log, cwd=REPO_ROOT)
    yield running
    running.stop()


@pytest.fixture
def page(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium: install Debian's chromium package (make test does so when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def open_app(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#submit", timeout=60_000)


def submit(page, video: Path, labels_text: str) -> None:
    page.locator("#video input[type=file]").set_input_files(str(video))
    page.locator("#labels textarea").fill(labels_text)
    # The upload must have reached the server before the request names it.
    page.wait_for_selector("#video video", timeout=30_000)
    page.click("#submit")


def ranked_labels_on_page(page) -> list[tuple[str, str]]:
    """``(label, percentage text)`` of the result's bars, top first, once the result is shown."""
    page.wait_for_selector("#result .confidence-set", timeout=60_000)
    rows = page.locator("#result .confidence-set")
    return [
        (rows.nth(i).locator("dt").inner_text(), rows.nth(i).locator("dd").inner_text()) for i in range(rows.count())
    ]


def error_message_on_page(page, pattern: str) -> str:
    """The text of the first message box (toast) on the page matching ``pattern``, once one shows."""
    toast = page.locator("[data-testid='toast-body']", has_text=re.compile(pattern)).first
    toast.wait_for(timeout=60_000)
    return " ".join(toast.inner_text().split())


# ---------------------------------------------------------------------------------------------- in the library


def test_labels_box_takes_one_per_line_or_commas():
    assert parse_labels("juggling, tai chi ,playing guitar") == ["juggling", "tai chi", "playing guitar"]
    assert parse_labels("passing, kicking\n\n tai chi \n") == ["passing, kicking", "tai chi"]
    with pytest.raises(InvalidLabelsError, match="labels box is empty"):
        parse_labels(" \n , \n")


def test_ready_label_sets_fill_the_box_one_label_per_line():
    assert len(label_set_text("Kinetics-400").splitlines()) == 400
    ucf = label_set_text("UCF101").splitlines()
    assert len(ucf) == 101 and ucf[0] == "apply eye makeup"
    assert len(label_set_text("HMDB51").splitlines()) == 51


def test_requests_share_one_text_embedding_cache(classifier, clips):
    app = VideoClassifierApp(classifier)
    classifier.clear_text_cache()
    first, strip = app.classify(str(clips[0]), "\n".join(LABELS), top_k=2)
    second, _ = app.classify(str(clips[1]), "\n".join(LABELS), top_k=2)
    assert len(classifier._text_cache) == 1  # the second request reused the first's text embeddings
    assert first == classifier(str(clips[0]), candidate_labels=LABELS, top_k=2)
    assert second == classifier(str(clips[1]), candidate_labels=LABELS, top_k=2)
    assert len(strip) == classifier.processor.num_frames and strip[0][0].dtype == np.uint8


def test_videos_over_the_duration_limit_are_refused(classifier, clips):
    app = VideoClassifierApp(classifier, AppLimits(max_duration_s=0.5))  # the clips last 1.2 s
    with pytest.raises(AppInputError, match=r"lasts 1\.2 s; this app takes videos up to 0\.5 s"):
        app.classify(str(clips[0]), "a, b")


# ---------------------------------------------------------------------------------------------- in a browser


def test_page_ranks_labels_like_the_pipeline(server, page, classifier, clips, tmp_path):
    expected = classifier(str(clips[0]), candidate_labels=LABELS, top_k=5)
    open_app(page, server.url)
    submit(page, clips[0], "\n".join(LABELS))
    shown = ranked_labels_on_page(page)
    assert [label for label, _ in shown] == [prediction["label"] for prediction in expected]
    assert [percent for _, percent in shown] == [f"{round(100 * p['score'])}%" for p in expected]
    strip = page.locator("#frames-strip img")
    assert strip.count() == classifier.processor.num_frames
    strip.last.wait_for()

    from PIL import Image

    screenshot = tmp_path / "app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert pixels.shape[0] > 200 and pixels.std() > 10, "the screenshot is blank"


def test_bad_input_shows_a_message_and_the_server_keeps_serving(server, page, clips, tmp_path):
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are notes, not a video\n" * 20)
    oversized = tmp_path / "huge.mp4"
    oversized.write_bytes(np.random.default_rng(0).bytes(int(1.5 * UPLOAD_LIMIT_MB * 1_000_000)))

    open_app(page, server.url)
    submit(page, not_a_video, "juggling, tai chi")
    # (The browser's own "Video not playable" may show too; ours says what the server found.)
    assert error_message_on_page(page, r"cannot decode video 'notes\.mp4': .*not a readable video")

    open_app(page, server.url)
    submit(page, clips[0], "  \n ")
    assert error_message_on_page(page, "the labels box is empty: enter the actions to rank")

    open_app(page, server.url)
    page.locator("#video input[type=file]").set_input_files(str(oversized))
    assert error_message_on_page(page, r"exceed the maximum allowed size .*huge\.mp4")

    open_app(page, server.url)
    submit(page, clips[1], "juggling, tai chi")
    assert sorted(label for label, _ in ranked_labels_on_page(page)) == ["juggling", "tai chi"]


# ---------------------------------------------------------------------------------------------- many clients


def test_concurrent_requests_match_sequential_ones_within_the_queue_and_flat_memory(server, clips):
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    label_sets = ["\n".join(LABELS), "juggling, tai chi, playing guitar"]
    requests = [(clips[i % 2], label_sets[(i // 2) % 2]) for i in range(20)]

    def ask(video, labels_text):
        return (handle_file(str(video)), labels_text, "the model's templates", 3, 8, 1, 1)

    sequential = {
        (video, text): client.predict(*ask(video, text), api_name="/classify")[0]
        for video, text in dict.fromkeys(requests)
    }
    # Two rounds of 20: the first grows the server once (new worker threads and their malloc arenas, about 45 MiB
    # here), the second must not grow it further.
    rounds = [requests, requests]
    rss = []
    for batch in rounds:
        jobs = [client.submit(*ask(video, text), api_name="/classify") for video, text in batch]
        results = [job.result(timeout=300)[0] for job in jobs]
        rss.append(server.rss_bytes())
        for (video, text), result in zip(batch, results):
            assert result == sequential[(video, text)]

    in_flight = [(int(now), int(limit)) for now, limit in IN_FLIGHT.findall(server.log.read_text())]
    assert len(in_flight) >= len(sequential) + 40  # (the browser tests share the server)
    # The queue ran requests side by side, never more than its limit.
    assert max(now for now, _ in in_flight) == CONCURRENCY and {limit for _, limit in in_flight} == {CONCURRENCY}
    # Memory flat: the second 20 grow the server by less than 40 MiB (allocator noise, gradio's caches).
    assert rss[1] - rss[0] < 40 * 2**20, [f"{value / 2**20:.0f} MiB" for value in rss]


# ---------------------------------------------------------------------------------------------- the Space


def python_without_the_package(folder: Path) -> Path:
    """The interpreter of a new venv in ``folder`` that imports this venv's libraries (torch, transformers, gradio)
    but not actionclip: a ``.pth`` line puts this venv's site-packages on its path, and the ``.pth`` files in there
    (the editable install of actionclip among them) are not processed for a folder added that way."""
    import sysconfig
    import venv

    venv.EnvBuilder(symlinks=True, with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site_packages, "shared-libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_space_folder_passes_the_metadata_check_and_its_app_serves(model_dir, clips, tmp_path):
    from gradio_client import Client, handle_file
    from huggingface_hub import SpaceCard

    from actionclip.commands import main

    out = tmp_path / "space"
    assert main(["space", "my-org/actionclip-tiny", str(out)]) == 0
    assert {"app.py", "requirements.txt", "README.md", "actionclip"} <= {path.name for path in out.iterdir()}

    card = SpaceCard.load(out / "README.md")
    assert (
        card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.models == ["my-org/actionclip-tiny"]
    )
    import gradio

    assert card.data.sdk_version == gradio.__version__

    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in (out / "requirements.txt").read_text().splitlines() if line]
    # What setup.py's install_requires and its app extra name, markers dropped.
    assert {"torch", "transformers", "av", "gradio"} <= {requirement.name for requirement in requirements}
    assert all(requirement.marker is None for requirement in requirements)

    # The folder's app.py with its own copy of the package, serving a local model, in a venv where the package is
    # not installed (and no PYTHONPATH).
    python = python_without_the_package(tmp_path / "venv")
    env = child_env(
        ACTIONCLIP_MODEL=str(model_dir), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(free_port())
    )
    env.pop("PYTHONPATH")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    absent = subprocess.run(
        [python, "-c", "import actionclip"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert absent.returncode == 1 and "No module named 'actionclip'" in absent.stderr, absent.stderr
    space = Server([str(python), "app.py"], tmp_path / "space.log", cwd=out, env=env)
    try:
        result = Client(space.url, verbose=False).predict(
            handle_file(str(clips[0])), "juggling, tai chi", "the model's templates", 2, 8, 1, 1, api_name="/classify"
        )[0]
        assert sorted(confidence["label"] for confidence in result["confidences"]) == ["juggling", "tai chi"]
    finally:
        space.stop()


def test_space_app_imports_the_web_app_from_the_library_not_from_the_command_line(tmp_path):
    from actionclip.commands import main

    out = tmp_path / "space"
    assert main(["space", "my-org/actionclip-tiny", str(out), "--requirement", "actionclip==0.1.0"]) == 0
    tree = ast.parse((out / "app.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "actionclip.apps.web_app" in imported
    assert not [name for name in imported if name.startswith("actionclip.commands")], imported


def test_space_refuses_a_local_path_and_an_existing_folder(model_dir, tmp_path):
    from actionclip.apps.web_app import import_gradio
    from actionclip.hub.space import write_space

    gradio_version = import_gradio().__version__
    with pytest.raises(SpaceFolderError, match="not a Hub model id"):
        write_space(str(model_dir), tmp_path / "space", AppLimits(), gradio_version)
    (tmp_path / "taken").mkdir()
    with pytest.raises(SpaceFolderError, match="exists: pass --overwrite"):
        write_space("my-org/actionclip-tiny", tmp_path / "taken", AppLimits(), gradio_version)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]  # nothing half-written left behind


def test_cli_errors_are_one_line(tmp_path, capsys):
    from actionclip.commands import main

    assert main(["app", str(tmp_path / "no-model")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"actionclip app: error: model {str(tmp_path / 'no-model')!r}: no such directory"
    ]
    assert main(["space", "my-org/actionclip-tiny", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"actionclip space: error: output {str(tmp_path)!r} exists: pass --overwrite to replace it"
    ]
