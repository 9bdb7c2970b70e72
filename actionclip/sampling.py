"""Which frames of a video to use: frame samplers, chosen by name through :func:`get_sampler`.

A sampler is a callable ``sampler(num_video_frames, rng=None) -> numpy.ndarray`` of 0-based int64 frame
indices: 1-D ``(T,)`` for one clip, 2-D ``(views, T)`` for several views (:class:`MultiViewSampler`). Samplers do
not decode anything; :func:`actionclip.video_io.sample_and_read` puts a sampler and the decoder together.

Every sampler here also has ``views(num_video_frames, num_clips) -> (num_clips, T)``: ``num_clips``
deterministic clips spread evenly over the video, used for multi-view evaluation.
"""

from __future__ import annotations

import numpy as np

from .errors import SamplingError, positive_int


def _positive_int(value, name: str) -> int:
    return positive_int(value, name, SamplingError)


def _check_num_video_frames(num_video_frames) -> int:
    if isinstance(num_video_frames, bool) or not isinstance(num_video_frames, (int, np.integer)):
        raise SamplingError(f"num_video_frames must be an integer, got {num_video_frames!r}")
    if num_video_frames < 1:
        raise SamplingError(f"cannot sample frames from a video of {num_video_frames} frames")
    return int(num_video_frames)


def _check_mode(mode: str) -> str:
    if mode not in ("eval", "train"):
        raise SamplingError(f"mode must be 'eval' or 'train', got {mode!r}")
    return mode


class _Sampler:
    """Shared plumbing: the random generator used in training mode."""

    mode = "eval"

    def __init__(self, seed: int | None = None):
        self._rng = np.random.default_rng(seed)

    def _generator(self, rng) -> np.random.Generator:
        if rng is None:
            return self._rng
        if isinstance(rng, np.random.Generator):
            return rng
        if isinstance(rng, (int, np.integer)):
            return np.random.default_rng(int(rng))
        raise SamplingError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")

    def __call__(self, num_video_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        num_video_frames = _check_num_video_frames(num_video_frames)
        if self.mode == "train":
            return self._train(num_video_frames, self._generator(rng))
        return self.views(num_video_frames, 1)[0]

    def _train(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def views(self, num_video_frames: int, num_clips: int) -> np.ndarray:
        raise NotImplementedError


class TSNSampler(_Sampler):
    """Temporal segment sampling (TSN): split the video into ``num_segments`` equal segments, one frame each.

    Evaluation (``mode="eval"``) reproduces the original ActionCLIP's indices exactly. With ``n`` frames and
    ``T`` segments (0-based):

    - ``T == 1``: frame ``n // 2``;
    - ``n <= T`` (video not longer than the clip): frame ``floor(i * n / T)`` for segment ``i``, so every frame
      appears, in order, some repeated;
    - otherwise the centre of segment ``i``: ``floor(i * n / T + (n / T - 1) / 2)``, computed in integers as
      ``(2 i n + n - T) // (2 T)``.

    Training (``mode="train"``): one uniformly random frame inside each segment ``[floor(i n / T),
    floor((i + 1) n / T))``; for ``n < T`` every frame once plus ``T - n`` random repeats, sorted.

    ``views(n, K)`` moves the frame inside each segment to the centre of sub-segment ``k`` of ``K``;
    ``K == 1`` is the evaluation rule above.

    Args:
        num_frames: ``T``, frames per clip (one per segment).
        mode: ``"eval"`` (deterministic) or ``"train"`` (random).
        seed: seed of the sampler's own generator, used when ``__call__`` gets no ``rng``.
    """

    def __init__(self, num_frames: int | None = None, mode: str = "eval", seed: int | None = None):
        super().__init__(seed)
        self.num_frames = _positive_int(num_frames, "num_frames")
        self.mode = _check_mode(mode)

    def __repr__(self) -> str:
        return f"TSNSampler(num_frames={self.num_frames}, mode={self.mode!r})"

    def views(self, num_video_frames: int, num_clips: int) -> np.ndarray:
        n = _check_num_video_frames(num_video_frames)
        num_clips = _positive_int(num_clips, "num_clips")
        segments = self.num_frames
        i = np.arange(segments, dtype=np.int64)
        if num_clips == 1 and segments == 1:
            return np.array([[n // 2]], dtype=np.int64)
        if n <= segments:
            return np.tile(i * n // segments, (num_clips, 1))
        k = np.arange(num_clips, dtype=np.int64)[:, None]
        # centre of sub-segment k of segment i, as a one-frame window: i n/T + (k + 1/2) n/(T K) - 1/2
        numerator = 2 * num_clips * i[None, :] * n + (2 * k + 1) * n - num_clips * segments
        indices = numerator // (2 * num_clips * segments)
        return np.clip(indices, 0, n - 1)

    def _train(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        n, segments = num_video_frames, self.num_frames
        if n < segments:
            extra = rng.integers(0, n, size=segments - n)
            return np.sort(np.concatenate([np.arange(n), extra])).astype(np.int64)
        bounds = np.arange(segments + 1, dtype=np.int64) * n // segments
        return (bounds[:-1] + rng.integers(0, bounds[1:] - bounds[:-1])).astype(np.int64)


class UniformSampler(_Sampler):
    """``num_frames`` frames evenly spaced from the first to the last frame (both included), rounded.

    Index ``i`` is ``round(i * (n - 1) / (T - 1))`` (``T == 1``: the middle frame ``(n - 1) // 2``), so shorter
    videos repeat frames. Training adds a random shift of up to half a step either way to every index.
    ``views(n, K)`` gives clip ``k`` the evenly spaced frames from ``k * step / K`` to ``n - 1 - (K - 1 - k) *
    step / K``.
    """

    def __init__(self, num_frames: int, mode: str = "eval", seed: int | None = None):
        super().__init__(seed)
        self.num_frames = _positive_int(num_frames, "num_frames")
        self.mode = _check_mode(mode)

    def __repr__(self) -> str:
        return f"UniformSampler(num_frames={self.num_frames}, mode={self.mode!r})"

    def _positions(self, n: int, start: float, stop: float) -> np.ndarray:
        if self.num_frames == 1:
            return np.array([(start + stop) / 2.0])
        return np.linspace(start, stop, self.num_frames)

    def views(self, num_video_frames: int, num_clips: int) -> np.ndarray:
        n = _check_num_video_frames(num_video_frames)
        num_clips = _positive_int(num_clips, "num_clips")
        step = (n - 1) / max(self.num_frames - 1, 1)
        shift = step / num_clips if num_clips > 1 else 0.0
        rows = [self._positions(n, k * shift, (n - 1) - (num_clips - 1 - k) * shift) for k in range(num_clips)]
        if self.num_frames == 1 and num_clips == 1:
            rows = [np.array([(n - 1) // 2])]
        return np.clip(np.floor(np.stack(rows) + 0.5), 0, n - 1).astype(np.int64)

    def _train(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        n = num_video_frames
        step = (n - 1) / max(self.num_frames - 1, 1)
        positions = self._positions(n, 0.0, n - 1.0) + rng.uniform(-step / 2, step / 2, size=self.num_frames)
        return np.clip(np.floor(positions + 0.5), 0, n - 1).astype(np.int64)


class DenseSampler(_Sampler):
    """One clip of ``num_frames`` consecutive frames taken every ``stride`` frames (the I3D/SlowFast style).

    The clip spans ``span = (num_frames - 1) * stride + 1`` frames. Evaluation takes the clip in the middle
    (start ``(n - span) // 2``); training starts it uniformly at random in ``[0, n - span]``. When the video is
    shorter than the span the clip starts at 0 and indices past the end are clamped to the last frame
    (repeating it). ``views(n, K)`` spreads ``K`` clip starts evenly over ``[0, n - span]``, rounded.
    """

    def __init__(self, num_frames: int, stride: int = 1, mode: str = "eval", seed: int | None = None):
        super().__init__(seed)
        self.num_frames = _positive_int(num_frames, "num_frames")
        self.stride = _positive_int(stride, "stride")
        self.mode = _check_mode(mode)

    def __repr__(self) -> str:
        return f"DenseSampler(num_frames={self.num_frames}, stride={self.stride}, mode={self.mode!r})"

    @property
    def span(self) -> int:
        return (self.num_frames - 1) * self.stride + 1

    def _clip(self, n: int, start: int) -> np.ndarray:
        return np.minimum(start + np.arange(self.num_frames, dtype=np.int64) * self.stride, n - 1)

    def views(self, num_video_frames: int, num_clips: int) -> np.ndarray:
        n = _check_num_video_frames(num_video_frames)
        num_clips = _positive_int(num_clips, "num_clips")
        room = max(n - self.span, 0)
        if num_clips == 1:
            starts = [room // 2]
        else:
            starts = [int(np.floor(k * room / (num_clips - 1) + 0.5)) for k in range(num_clips)]
        return np.stack([self._clip(n, start) for start in starts])

    def _train(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        room = max(num_video_frames - self.span, 0)
        return self._clip(num_video_frames, int(rng.integers(0, room + 1)))


class MultiViewSampler:
    """Several views of one video for evaluation: ``num_clips`` temporal clips times ``num_crops`` spatial crops.

    Returns int64 ``(num_clips * num_crops, T)``, clip-major: row ``v`` is temporal clip ``v // num_crops``
    (from ``base.views(n, num_clips)``) meant for spatial crop ``v % num_crops``. The sampler only repeats each
    clip's indices ``num_crops`` times; cropping (for 3 crops: left/top, centre, right/bottom along the longer
    side) belongs to the video processor. Scores of the views are averaged with :func:`average_view_scores`.

    Args:
        num_clips: temporal clips per video; at most the video's frame count (or the clip length, for videos
            shorter than a clip), else `SamplingError`.
        base: a sampler with a ``views`` method, or a registry name (then ``base_kwargs`` build it).
        num_crops: 1 or 3.
    """

    def __init__(self, num_clips: int, base="tsn", num_crops: int = 1, **base_kwargs):
        self.num_clips = _positive_int(num_clips, "num_clips")
        if num_crops not in (1, 3):
            raise SamplingError(f"num_crops must be 1 or 3, got {num_crops!r}")
        self.num_crops = num_crops
        if isinstance(base, str):
            base = get_sampler(base, **base_kwargs)
        elif base_kwargs:
            raise SamplingError(f"base_kwargs {sorted(base_kwargs)} given with an already built base sampler")
        if not callable(getattr(base, "views", None)):
            raise SamplingError(f"base sampler {base!r} has no views(num_video_frames, num_clips) method")
        self.base = base

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    def __repr__(self) -> str:
        return f"MultiViewSampler(num_clips={self.num_clips}, base={self.base!r}, num_crops={self.num_crops})"

    def __call__(self, num_video_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        num_video_frames = _check_num_video_frames(num_video_frames)
        # More clips than the video has frames (or a clip has frames, for short videos) only repeat the same frames;
        # an absurd count would otherwise surface later as an output too large to decode.
        clip_length = getattr(self.base, "num_frames", 1)
        if self.num_clips > max(num_video_frames, clip_length):
            raise SamplingError(
                f"num_clips={self.num_clips} is too many clips for a video of {num_video_frames} frames: at most "
                f"{max(num_video_frames, clip_length)} (one per frame, or one per frame of a clip)"
            )
        clips = self.base.views(num_video_frames, self.num_clips)
        return np.repeat(clips, self.num_crops, axis=0)


def average_view_scores(scores, num_views: int):
    """Average the scores of the views of each video.

    Args:
        scores: ``(B * num_views, N)`` torch tensor or numpy array; rows grouped by video, views contiguous:
            row ``b * num_views + v`` is view ``v`` of video ``b`` (the layout of a batch of
            :class:`MultiViewSampler` outputs flattened video by video).
        num_views: views per video.

    Returns:
        ``(B, N)`` of the same type: the mean over each video's views.
    """
    num_views = _positive_int(num_views, "num_views")
    if getattr(scores, "ndim", None) != 2:
        raise SamplingError(f"scores must be 2-D (B * num_views, N), got shape {getattr(scores, 'shape', None)}")
    rows, classes = scores.shape
    if rows % num_views:
        raise SamplingError(f"scores has {rows} rows, not a multiple of num_views={num_views}")
    return scores.reshape(rows // num_views, num_views, classes).mean(1)


SAMPLER_REGISTRY = {
    "tsn": TSNSampler,
    "uniform": UniformSampler,
    "dense": DenseSampler,
    "multiview": MultiViewSampler,
}


def get_sampler(name: str, **kwargs):
    """Build a sampler by registry name (``tsn``, ``uniform``, ``dense``, ``multiview``) with its arguments.

    The clip samplers take the same arguments (``num_frames=``, ``mode=``, ``seed=``; ``dense`` also ``stride=``), so
    ``get_sampler(name, num_frames=8, mode="train")`` builds any of them.
    """
    try:
        cls = SAMPLER_REGISTRY[name]
    except (KeyError, TypeError):
        raise SamplingError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLER_REGISTRY))}") from None
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise SamplingError(f"bad arguments for sampler {name!r}: {error}") from None


__all__ = [
    "SAMPLER_REGISTRY",
    "DenseSampler",
    "MultiViewSampler",
    "SamplingError",
    "TSNSampler",
    "UniformSampler",
    "average_view_scores",
    "get_sampler",
]
