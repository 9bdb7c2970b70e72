"""Small real videos for tests: frames that say which frame they are, written with ``actionclip.data.video_writer``.

Each frame carries its own index as a row of black/white blocks along the top (bit ``b`` of the index in
block ``b``, most significant first), so a decoded frame can be identified after lossy compression with
:func:`frame_index_of`. The rest of the frame is a colour gradient that moves with time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actionclip.data.video_writer import write_video

CODE_BITS = 10  # up to 1024 distinct frame indices


def make_frames(num_frames: int, height: int = 64, width: int = 80, *, seed: int = 0) -> np.ndarray:
    """uint8 ``(num_frames, height, width, 3)`` RGB frames; frame ``t`` encodes ``t % 2**CODE_BITS``."""
    rng = np.random.default_rng(seed)
    base_colour = rng.integers(40, 200, size=3)
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    block_h = max(2, height // 4)
    for t in range(num_frames):
        shift = (3 * t) % max(width, 1)
        frames[t, ..., 0] = (base_colour[0] + 2 * ((xs + shift) % width)) % 256
        frames[t, ..., 1] = (base_colour[1] + 3 * ys) % 256
        frames[t, ..., 2] = (base_colour[2] + 5 * t) % 256
        if width >= CODE_BITS * 2 and height >= 8:
            block_w = width // CODE_BITS
            code = t % (1 << CODE_BITS)
            for bit in range(CODE_BITS):
                on = (code >> (CODE_BITS - 1 - bit)) & 1
                frames[t, :block_h, bit * block_w : (bit + 1) * block_w] = 255 if on else 0
    return frames


def frame_index_of(frame: np.ndarray) -> int:
    """Read back the index a frame from :func:`make_frames` carries (frame shape as written, upright)."""
    height, width = frame.shape[:2]
    block_h = max(2, height // 4)
    block_w = width // CODE_BITS
    code = 0
    for bit in range(CODE_BITS):
        patch = frame[1 : block_h - 1, bit * block_w + 1 : (bit + 1) * block_w - 1].astype(np.float32)
        code = (code << 1) | int(patch.mean() > 127)
    return code


def write_test_video(
    path, num_frames: int = 30, height: int = 64, width: int = 80, *, seed: int = 0, **write_kwargs
) -> Path:
    """Write :func:`make_frames` to ``path`` with :func:`actionclip.data.video_writer.write_video`; returns the path."""
    write_video(path, make_frames(num_frames, height, width, seed=seed), **write_kwargs)
    return Path(path)


def small_synthetic_dataset(
    root: Path,
    *,
    num_frames: int,
    size: tuple[int, int],
    videos_per_class: int = 1,
    zeroshot_videos_per_class: int = 1,
):
    """The synthetic action dataset, small enough for a test: 2 colours x 2 shapes x (left, right, growing,
    shrinking), a quarter of the compositions held out for zero-shot, one validation video per class."""
    from actionclip.data.synthetic import SyntheticActionConfig, generate_synthetic_dataset

    config = SyntheticActionConfig(
        colors=("red", "blue"),
        shapes=("square", "circle"),
        motions=("moving left", "moving right", "growing", "shrinking"),
        num_frames=num_frames,
        size=size,
        videos_per_class=videos_per_class,
        val_videos_per_class=1,
        zeroshot_videos_per_class=zeroshot_videos_per_class,
        zeroshot_fraction=0.25,
    )
    return generate_synthetic_dataset(root, config)
