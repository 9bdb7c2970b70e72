"""The web app (Gradio): upload a video, type any labels, see the ranked labels and the frames the model saw.

The app is a thin layer over one `ZeroShotVideoClassificationPipeline`: every request goes through the same
pipeline object, so the text embeddings of a label set are computed once and reused by later requests (the
pipeline's own cache). Requests pass through Gradio's queue, at most ``AppLimits.concurrency_limit`` at a time (one
model on one device is not oversubscribed) and at most ``AppLimits.max_queue`` waiting; uploads over
``max_upload_mb`` are refused by the server before they reach the model, and videos longer than
``max_duration_s`` are refused after a cheap probe, with a message on the page saying which limit was hit.

Gradio is an optional extra (``pip install 'actionclip[app]'``) and is imported only when an app is built.
``actionclip app MODEL`` serves the app on this machine; the Space folder that
``actionclip space`` writes (`actionclip.hub.space`) serves it on the Hub.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ActionCLIPError, AppInputError, InvalidLabelsError, MissingAppDependencyError
from ..files import replaced_when_done

logger = logging.getLogger(__name__)

# Ready label sets offered in the page, by the name shown -> the packaged list (see `data.labels.load_label_names`).
LABEL_SETS: dict[str, str] = {"Kinetics-400": "kinetics400", "UCF101": "ucf101", "HMDB51": "hmdb51"}
# Template choices shown -> what the pipeline's ``hypothesis_template`` gets (None: the model's own templates).
TEMPLATE_CHOICES: dict[str, str | None] = {
    "the model's templates": None,
    "ActionCLIP's 16 templates": "actionclip16",
    "one template: a video of a person {}.": "single",
}
EXAMPLE_LABEL = "a red square moving left"
EXAMPLE_LABELS = ("a red square moving left", "a red square moving right", "a blue circle moving up")
STRIP_SHORTER_SIDE = 128  # pixels: the frame strip is for looking at, not for the model
FRAME_FILE_MAX_AGE_S = 3600.0  # seconds a frame image of the strip is kept unused


@dataclass(frozen=True)
class AppLimits:
    """What one request may ask of the server.

    Attributes:
        max_upload_mb: largest upload in megabytes (10**6 bytes); larger files are refused by the server.
        max_duration_s: longest video in seconds.
        concurrency_limit: requests classified at the same time; the rest wait in the queue.
        max_queue: requests that may wait; beyond that a request is turned away with "queue is full".
        max_frames: largest frame count a user may choose per view.
        max_clips: largest number of temporal clips (views) a user may choose.
    """

    max_upload_mb: float = 50.0
    max_duration_s: float = 300.0
    concurrency_limit: int = 1
    max_queue: int = 64
    max_frames: int = 32
    max_clips: int = 4

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


def check_gradio_installed() -> None:
    """Raise `MissingAppDependencyError` (saying how to install it) when Gradio is absent, without importing it."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise MissingAppDependencyError("the web app needs Gradio; install it with: pip install 'actionclip[app]'")


def import_gradio():
    """Gradio, or `MissingAppDependencyError` saying how to install it."""
    check_gradio_installed()
    # The app must work offline (a lab machine, a test): no usage reporting unless the user asks for it.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as error:
        raise MissingAppDependencyError(
            f"the web app needs Gradio, which fails to import ({error}); reinstall it: pip install 'actionclip[app]'"
        ) from None
    return gradio


def parse_labels(text: str | None) -> list[str]:
    """The labels typed in the box: one per line, or separated by commas when all are on one line.

    Several lines are taken one label per line, so a label may contain a comma; blank entries are dropped.

    Raises:
        InvalidLabelsError: no label at all.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) == 1:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    if not lines:
        raise InvalidLabelsError(
            "the labels box is empty: enter the actions to rank, one per line or separated by commas"
        )
    return lines


def label_set_text(name: str) -> str:
    """A ready label set, one label per line as put in the box (UCF101's CamelCase split into lower-case words)."""
    from ..data.labels import load_label_names
    from ..prompts import normalize_label

    if name not in LABEL_SETS:
        raise InvalidLabelsError(f"unknown label set {name!r}; the sets are {sorted(LABEL_SETS)}")
    names = load_label_names(LABEL_SETS[name])
    return "\n".join(
        normalize_label(label, split_camel_case=True, underscores_to_spaces=True, lowercase=True, strip=True)
        for label in names
    )


def template_option(choice: str | None) -> str | None:
    """The pipeline's ``hypothesis_template`` for a template choice: a named set, or a template typed by the user."""
    if choice is None or choice == "":
        return None
    if choice in TEMPLATE_CHOICES:
        return TEMPLATE_CHOICES[choice]
    return choice  # the pipeline checks it (exactly one "{}") and says what is wrong


def write_example_clip(directory: str | os.PathLike) -> Path:
    """An H.264 clip of the synthetic action `EXAMPLE_LABEL` (we ship no real clip), written into ``directory``."""
    from ..data.synthetic import SyntheticActionConfig, write_clip

    config = SyntheticActionConfig(size=(128, 128), num_frames=32)
    return write_clip(Path(directory) / "example_red_square_moving_left.mp4", EXAMPLE_LABEL, config, seed=0)


class VideoClassifierApp:
    """Request handling around one pipeline, and the Gradio page that calls it.

    Args:
        classifier: a `ZeroShotVideoClassificationPipeline`, shared by every request.
        limits: the request limits.
        model_name: shown in the page's title.
    """

    def __init__(self, classifier, limits: AppLimits | None = None, model_name: str | None = None):
        self.classifier = classifier
        self.limits = limits or AppLimits()
        self.model_name = model_name or str(getattr(classifier.model, "name_or_path", "") or "ActionCLIP")
        self.default_frames = int(classifier.processor.num_frames or classifier.model.config.num_frames)
        self.frames_dir = Path(tempfile.mkdtemp(prefix="actionclip-app-frames-"))
        self._lock = threading.Lock()
        self._in_flight = 0
        self._served = 0

    # ------------------------------------------------------------------ one request

    def check_video(self, video: str | None):
        """The upload's `VideoInfo` if it is within the limits; typed errors say what is wrong."""
        from ..video_io import probe_video

        if not video:
            raise AppInputError("no video given: upload a video file (or pick the example)")
        size = os.path.getsize(video)
        if size > self.limits.max_upload_bytes:
            raise AppInputError(
                f"the video is {size / 1e6:.1f} MB; this app takes uploads up to {self.limits.max_upload_mb:g} MB"
            )
        info = probe_video(video)
        duration = info.duration if info.duration is not None else info.num_frames / max(info.fps, 1e-6)
        if duration > self.limits.max_duration_s:
            raise AppInputError(
                f"the video lasts {duration:.1f} s; this app takes videos up to {self.limits.max_duration_s:g} s: "
                "trim it first"
            )
        return info

    def classify(
        self,
        video: str | None,
        labels_text: str | None,
        template: str | None = None,
        top_k: int = 5,
        num_frames: int | None = None,
        num_clips: int = 1,
        num_crops: int = 1,
    ) -> tuple[list[dict], list[tuple]]:
        """Rank the labels for the video at path ``video``.

        Returns:
            The pipeline's ranked ``[{"label", "score"}, ...]`` (``top_k`` of them), and the frames of the first
            view as ``(uint8 (H, W, 3) frame, caption)`` pairs, H the shorter side scaled to 128 pixels.

        Raises:
            ActionCLIPError: bad labels, template or options, a file that is not a video, a video over the limits.
        """
        from ..video_io import sample_and_read

        labels = parse_labels(labels_text)
        options = dict(
            hypothesis_template=template_option(template),
            top_k=int(top_k),
            num_frames=int(num_frames or self.default_frames),
            num_clips=int(num_clips),
            num_crops=int(num_crops),
        )
        with self._lock:
            self._in_flight += 1
            in_flight = self._in_flight
        started = time.perf_counter()
        try:
            info = self.check_video(video)
            predictions = self.classifier(video, candidate_labels=labels, **options)
            sampler = self.classifier.video_sampler(options["num_frames"], options["num_clips"], options["num_crops"])
            decoded = sample_and_read(video, sampler, shorter_side=STRIP_SHORTER_SIDE)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._served += 1
                served = self._served
        frames, indices = decoded.frames, decoded.indices
        if frames.ndim == 5:  # views: show the first
            frames, indices = frames[0], indices[0]
        fps = info.fps or 1.0
        strip = [(frame, f"frame {int(index)} ({index / fps:.2f} s)") for frame, index in zip(frames, indices)]
        logger.info(
            "request %d: %d labels, top %s, %.3f s, in_flight=%d (limit %d)",
            served,
            len(labels),
            predictions[0]["label"] if predictions else "-",
            time.perf_counter() - started,
            in_flight,
            self.limits.concurrency_limit,
        )
        return predictions, strip

    # ------------------------------------------------------------------ the page

    def frame_file(self, frame) -> str:
        """A PNG of ``frame`` (uint8 ``(H, W, 3)``) in `frames_dir`, named by its content, written atomically.

        Gradio writes image arrays into its cache under a name made from their bytes, truncating and rewriting the
        file when the same image comes again, so a client fetching the first copy can read an empty file while a
        concurrent request with the same video writes the second. It copies files it is given atomically instead.
        """
        from PIL import Image

        name = hashlib.sha256(frame.tobytes() + str(frame.shape).encode()).hexdigest()[:32] + ".png"
        path = self.frames_dir / name
        if path.exists():
            os.utime(path)  # recently used: not pruned
            return str(path)
        self._prune_frames()
        with replaced_when_done(path, make_parents=False) as staging:
            Image.fromarray(frame).save(staging, format="PNG")
        return str(path)

    def _prune_frames(self) -> None:
        """Forget frame images unused for `FRAME_FILE_MAX_AGE_S` (Gradio has copied them by then)."""
        now = time.time()
        with os.scandir(self.frames_dir) as entries:
            for entry in entries:
                try:
                    if now - entry.stat().st_mtime > FRAME_FILE_MAX_AGE_S:
                        os.unlink(entry.path)
                except FileNotFoundError:  # pruned by a concurrent request
                    pass

    def build(self, example_video: str | os.PathLike | None = None):
        """The Gradio page (a `gradio.Blocks`), its queue set to the limits."""
        gr = import_gradio()

        def handle(video, labels_text, template, top_k, num_frames, num_clips, num_crops):
            try:
                predictions, strip = self.classify(
                    video, labels_text, template, top_k, num_frames, num_clips, num_crops
                )
            except ActionCLIPError as error:
                # A message in the page (and to API clients), not a traceback; the server keeps serving. The
                # upload's name, not the server's temporary path.
                message = str(error).replace(video, Path(video).name) if video else str(error)
                raise gr.Error(
                    message, duration=None, title="Cannot classify this input", print_exception=False
                ) from None
            scores = {prediction["label"]: prediction["score"] for prediction in predictions}
            return scores, [(self.frame_file(frame), caption) for frame, caption in strip]

        limits = self.limits
        with gr.Blocks(title=f"ActionCLIP: {self.model_name}", analytics_enabled=False) as demo:
            gr.Markdown(
                f"# Zero-shot video action recognition\n"
                f"Model: `{self.model_name}`. Upload a video (up to {limits.max_upload_mb:g} MB and "
                f"{limits.max_duration_s:g} s), name the actions to rank, and submit."
            )
            with gr.Row():
                with gr.Column():
                    video = gr.Video(label="video", sources=["upload"], include_audio=True, elem_id="video")
                    labels = gr.Textbox(
                        label="labels (one per line, or separated by commas)",
                        lines=5,
                        max_lines=12,
                        elem_id="labels",
                    )
                    label_set = gr.Dropdown(
                        choices=list(LABEL_SETS), value=None, label="or fill in a ready label set", elem_id="label-set"
                    )
                    template = gr.Dropdown(
                        choices=list(TEMPLATE_CHOICES),
                        value=next(iter(TEMPLATE_CHOICES)),
                        allow_custom_value=True,
                        label="prompt templates (or type one with {} for the label)",
                        elem_id="template",
                    )
                    with gr.Row():
                        top_k = gr.Slider(1, 20, value=5, step=1, label="top-k", elem_id="top-k")
                        num_frames = gr.Slider(
                            1, limits.max_frames, value=self.default_frames, step=1, label="frames", elem_id="frames"
                        )
                    with gr.Row():
                        num_clips = gr.Slider(
                            1, limits.max_clips, value=1, step=1, label="temporal clips (views)", elem_id="clips"
                        )
                        num_crops = gr.Radio([1, 3], value=1, label="spatial crops (views)", elem_id="crops")
                    submit = gr.Button("Classify", variant="primary", elem_id="submit")
                with gr.Column():
                    result = gr.Label(label="ranked labels", elem_id="result")
                    strip = gr.Gallery(
                        label="the frames the model saw (first view)",
                        columns=8,
                        height="auto",
                        object_fit="contain",
                        elem_id="frames-strip",
                    )
            if example_video is not None:
                gr.Examples(
                    examples=[[str(example_video), "\n".join(EXAMPLE_LABELS)]],
                    inputs=[video, labels],
                    label="example (a synthetic clip)",
                    cache_examples=False,
                )
            label_set.change(
                lambda name: label_set_text(name) if name else gr.skip(),
                label_set,
                labels,
                queue=False,
                api_visibility="private",
            )
            submit.click(
                handle,
                inputs=[video, labels, template, top_k, num_frames, num_clips, num_crops],
                outputs=[result, strip],
                api_name="classify",
                concurrency_limit=limits.concurrency_limit,
            )
        demo.queue(max_size=limits.max_queue, default_concurrency_limit=limits.concurrency_limit)
        return demo


def launch_app(
    model,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    limits: AppLimits | None = None,
    device: str | int | None = None,
    example: bool = True,
    block: bool = True,
):
    """Build the app for ``model`` (a pipeline, or a model path or Hub id) and serve it on ``host:port``.

    Returns the running `gradio.Blocks` (when ``block`` is False; otherwise serves until interrupted).
    """
    import_gradio()
    if isinstance(model, (str, os.PathLike)):
        from transformers import pipeline

        model = pipeline("zero-shot-video-classification", model=str(model), device=device)
    limits = limits or AppLimits()
    app = VideoClassifierApp(model, limits)
    example_dir = tempfile.mkdtemp(prefix="actionclip-app-") if example else None
    example_video = write_example_clip(example_dir) if example_dir else None
    demo = app.build(example_video)
    demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=limits.max_upload_bytes,
        allowed_paths=[str(app.frames_dir)] + ([example_dir] if example_dir else []),
        prevent_thread_lock=True,
        show_error=True,
        quiet=True,
    )
    print(f"actionclip app: serving {app.model_name} on http://{host}:{demo.server_port}", flush=True)
    if block:
        demo.block_thread()
    return demo
