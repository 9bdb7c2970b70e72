"""Live streams: `StreamingClassifier` scores the latest window of a stream as frames arrive.

Frames are sampled on the time grid of :mod:`actionclip.apps.windows` (cell ``k`` is the frame shown at
``(k + 1/2) * window / T`` seconds: the last frame whose timestamp is not after that time), so a file played
through the stream gives the windows, and the scores, of offline localisation with ``stride``. With a
post-network prompt each sampled frame goes through the vision tower once and a ring buffer keeps the last ``T``
frame embeddings; with Shift or Joint it keeps the last ``T`` pre-processed frames and encodes each emitted window
whole. Memory is constant: nothing but the ring buffer and the last frame is kept.

Sources for :meth:`StreamingClassifier.run`: anything PyAV opens (a file, ``rtsp://``, ``http://``, a capture
device with ``format=``); a stream that delivers nothing for ``timeout`` seconds ends with `VideoTimeoutError`.
Frames are taken as the decoder gives them (rotation metadata is not applied, unlike `video_io`), timed from the
first frame's timestamp.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import numpy as np
import torch

from ..errors import PipelineArgumentError, VideoDecodeError, VideoTimeoutError
from .windows import frame_pixel_values, frames_per_window, positive_seconds, uses_cached_frames


class StreamingClassifier:
    """Scores for the latest ``window`` seconds of a stream, every ``stride`` seconds.

    ```python
    >>> stream = StreamingClassifier(classifier, ["juggling", "tai chi"], window=4.0, stride=1.0)
    >>> for result in stream.run("rtsp://camera/stream", timeout=10):
    ...     print(result["end"], result["label"], result["score"])
    ```

    Args:
        pipeline: a `ZeroShotVideoClassificationPipeline` (its model, processor, text cache and scoring).
        candidate_labels: the labels, as for the pipeline.
        window: seconds per window.
        stride: seconds between emitted windows (rounded to a multiple of ``window / num_frames``).
        num_frames, hypothesis_template, logit_scale, ensemble: as for the pipeline.

    Each result: ``{"start", "end", "label", "score", "scores": {label: score}}`` (seconds of stream time).
    """

    def __init__(
        self,
        pipeline,
        candidate_labels,
        *,
        window: float = 4.0,
        stride: float = 1.0,
        num_frames: int | None = None,
        hypothesis_template=None,
        logit_scale: float | None = None,
        ensemble: str | None = None,
    ):
        # Over the pipeline's own defaults (given at construction), as `localize` takes them: the same scores.
        _, params, _ = pipeline.call_options(
            hypothesis_template=hypothesis_template, num_frames=num_frames, logit_scale=logit_scale, ensemble=ensemble
        )
        self.pipeline = pipeline
        self.window = positive_seconds(window, "window")
        self.num_frames = frames_per_window(pipeline, num_frames)
        self.step = self.window / self.num_frames
        self.stride_cells = max(1, int(round(positive_seconds(stride, "stride") / self.step)))
        self.labels, templater, texts = pipeline.prepare_labels(candidate_labels, params.get("hypothesis_template"))
        self.num_templates = templater.num_templates
        self.text_embeds = pipeline.text_embeddings(self.labels, templater, texts)
        self.logit_scale = params.get("logit_scale")
        self.ensemble = params.get("ensemble", "probs")
        self.cached = uses_cached_frames(pipeline.model.config)
        self.frames_encoded = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame starts a new one at time 0."""
        self._buffer: deque = deque(maxlen=self.num_frames)  # per grid cell: frame embedding or pixel values
        self._next_cell = 0
        self._last_frame = None
        self._last_item = None  # the last frame's embedding / pixel values, shared by the cells it covers
        self._last_time = None

    @property
    def buffered(self) -> int:
        """Grid cells held in the ring buffer (at most ``num_frames``)."""
        return len(self._buffer)

    def _item(self, frame) -> torch.Tensor:
        if self._last_item is None:
            pixel_values = frame_pixel_values(self.pipeline, np.asarray(frame)[None])
            if self.cached:
                with torch.no_grad():
                    self._last_item = self.pipeline.model.get_frame_features(pixel_values[None])[0, 0]
                self.frames_encoded += 1
            else:
                self._last_item = pixel_values[0]
        return self._last_item

    def _advance(self, until: float, end: float | None = None) -> list[dict]:
        """Fill grid cells whose time is before ``until`` with the last frame; emit the windows they complete (only
        those ending by ``end`` seconds, when the stream's end is known)."""
        results = []
        while self._last_frame is not None and (self._next_cell + 0.5) * self.step < until:
            self._buffer.append(self._item(self._last_frame))
            self._next_cell += 1
            start_cell = self._next_cell - self.num_frames
            if start_cell >= 0 and start_cell % self.stride_cells == 0:
                if end is None or start_cell * self.step + self.window <= end + 1e-6 * self.step:
                    results.append(self._score(start_cell))
        return results

    def _score(self, start_cell: int) -> dict:
        items = torch.stack(list(self._buffer))[None]
        with torch.no_grad():
            if self.cached:
                video_embeds = self.pipeline.model.fusion(items)
            else:
                video_embeds = self.pipeline.model.get_video_features(items).pooler_output
                self.frames_encoded += self.num_frames
        scores = self.pipeline.score_video_embeddings(
            video_embeds, self.text_embeds, self.num_templates, self.logit_scale, self.ensemble
        )[0].numpy()
        best = int(np.argmax(scores))
        start = start_cell * self.step
        return {
            "start": round(start, 6),
            "end": round(start + self.window, 6),
            "label": self.labels[best],
            "score": float(scores[best]),
            "scores": {label: float(score) for label, score in zip(self.labels, scores)},
        }

    def push(self, frame, timestamp: float) -> list[dict]:
        """Feed one uint8 ``(H, W, 3)`` RGB frame shown from ``timestamp`` seconds; returns the windows it completes
        (usually none or one), oldest first.

        Raises:
            PipelineArgumentError: a timestamp that is not a number or goes back in time.
        """
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float, np.integer, np.floating)):
            raise PipelineArgumentError(f"timestamp must be a number of seconds, got {timestamp!r}")
        timestamp = float(timestamp)
        if self._last_time is not None and not timestamp > self._last_time:
            raise PipelineArgumentError(
                f"timestamps must increase: got {timestamp:g} s after {self._last_time:g} s (call reset() for a new "
                "stream)"
            )
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise PipelineArgumentError(f"a frame must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        results = self._advance(timestamp)
        self._last_frame, self._last_item, self._last_time = frame, None, timestamp
        return results

    def finish(self, end_time: float) -> list[dict]:
        """The stream ended at ``end_time`` seconds (the end of the last frame): the windows still to emit."""
        return self._advance(float(end_time), end=float(end_time))

    def run(
        self, source, *, timeout: float = 10.0, realtime: bool = False, format: str | None = None, options=None
    ) -> Iterator[dict]:
        """Results for a stream PyAV opens (a file, a URL such as ``rtsp://`` / ``http://``, a capture device).

        Args:
            source: what ``av.open`` takes.
            timeout: seconds the opening, and then each wait for data, may take before `VideoTimeoutError`.
            realtime: pace a file as if it were live (sleep until each frame's time).
            format, options: given to ``av.open`` (e.g. ``format="v4l2"`` for a webcam).

        Raises:
            VideoTimeoutError: the source sent nothing for ``timeout`` seconds (a dropped or stalled stream).
            VideoDecodeError: the source cannot be opened or decoded.
        """
        import av

        timeout = positive_seconds(timeout, "timeout")
        options = dict(options or {})
        if isinstance(source, str) and "://" in source:
            options.setdefault("rw_timeout", str(int(timeout * 1e6)))
        self.reset()
        try:
            container = av.open(source, "r", format=format, options=options or None, timeout=(timeout, timeout))
        except av.ExitError:
            raise VideoTimeoutError(source, f"opening took longer than {timeout:g} s") from None
        except (av.FFmpegError, OSError) as error:
            raise VideoDecodeError(source, f"it could not be opened ({type(error).__name__}: {error})") from None
        try:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                raise VideoDecodeError(source, "it has no video stream")
            began = time.monotonic()
            first_pts = None
            last_time, spacing = None, None
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.ExitError:
                    raise VideoTimeoutError(source, f"no data for {timeout:g} s: the stream stalled") from None
                except av.FFmpegError as error:
                    if "timed out" in str(error).lower() or "timeout" in str(error).lower():
                        raise VideoTimeoutError(source, f"no data for {timeout:g} s: the stream stalled") from None
                    raise VideoDecodeError(source, f"decoding failed ({type(error).__name__}: {error})") from None
                if frame.pts is None or frame.time_base is None:
                    seconds = 0.0 if last_time is None else last_time + (spacing or 1 / 25)
                else:
                    first_pts = frame.pts if first_pts is None else first_pts
                    seconds = float((frame.pts - first_pts) * frame.time_base)
                if last_time is not None:
                    if seconds <= last_time:
                        continue  # a repeated or late timestamp: keep time increasing
                    spacing = seconds - last_time
                if realtime:
                    time.sleep(max(0.0, began + seconds - time.monotonic()))
                yield from self.push(frame.to_ndarray(format="rgb24"), seconds)
                last_time = seconds
            if last_time is not None:
                yield from self.finish(last_time + (spacing or 0.0))
        finally:
            container.close()


__all__ = ["StreamingClassifier"]
