"""Time to get 8 TSN-centre frames ready for the transforms (shorter side 256), one thread, per decoder.

Usage: ``python benchmarks/decode.py [--repeats 5] [--cache-dir DIR]``

Generates three H.264 clips once (cached), then times, per clip kind, each decoder that imports:

- ``actionclip``: :func:`actionclip.video_io.sample_and_read` with a TSN sampler, ``shorter_side=256``;
- ``transformers``: ``transformers.video_utils.load_video(backend="pyav")`` with the same indices, then a PIL
  bicubic resize to shorter side 256;
- ``decord``: ``VideoReader(num_threads=1, width, height)`` (it resizes while decoding) + ``get_batch``;
- ``torchcodec``: ``VideoDecoder(seek_mode="exact", num_ffmpeg_threads=1)`` + ``get_frames_at``, then a torch
  bicubic resize.

The process is pinned to one CPU core so that decoders whose thread count cannot be set are single-threaded
too. Each cell is the median of ``--repeats`` runs (after one warm-up run), opening the file every time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actionclip.data.video_writer import write_video  # noqa: E402
from actionclip.sampling import TSNSampler  # noqa: E402
from actionclip.video_io import probe_video, sample_and_read  # noqa: E402

NUM_FRAMES = 8
SHORTER_SIDE = 256
CLIPS = [
    # name, width, height, seconds, gop, fps
    ("320x240 7s gop12", 320, 240, 7, 12, 25),
    ("1280x720 10s gop250", 1280, 720, 10, 250, 25),
    ("640x360 120s gop250", 640, 360, 120, 250, 25),
]


def _scene(width: int, height: int, num_frames: int, seed: int = 0):
    """A textured background panning slowly with two moving objects: compresses like real footage."""
    rng = np.random.default_rng(seed)
    pad = 64
    texture = rng.integers(0, 256, size=(height // 8 + pad, width // 8 + pad, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), dtype=np.uint8))
    ys, xs = np.mgrid[0:height, 0:width]
    gradient = (
        (xs * 255 // max(width - 1, 1))[..., None] * np.array([1, 0, 0])
        + (ys * 255 // max(height - 1, 1))[..., None] * np.array([0, 0, 1])
    ).astype(np.uint16)
    for t in range(num_frames):
        dx, dy = (2 * t) % (pad * 8 - 8), t % (pad * 8 - 8)
        frame = ((texture[dy : dy + height, dx : dx + width].astype(np.uint16) + gradient) // 2).astype(np.uint8)
        cx = int((width - 60) * (0.5 + 0.45 * np.sin(t / 20)))
        cy = int((height - 60) * (0.5 + 0.45 * np.cos(t / 33)))
        frame[cy : cy + 60, cx : cx + 60] = (230, 40, 40)
        if t % 90 < 45:
            frame[height // 3 : height // 3 + 40, (5 * t) % (width - 40) :][:, :40] = (40, 200, 40)
        yield frame


def make_clips(cache_dir: Path) -> list[tuple[str, Path]]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for name, width, height, seconds, gop, fps in CLIPS:
        path = cache_dir / f"bench_{width}x{height}_{seconds}s_gop{gop}.mp4"
        if not path.exists():
            started = time.perf_counter()
            tmp = path.with_suffix(".tmp.mp4")
            write_video(
                tmp, _scene(width, height, seconds * fps), fps=fps, gop_size=gop, options={"preset": "veryfast"}
            )
            tmp.rename(path)
            print(f"# wrote {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        clips.append((name, path))
    return clips


def _shorter_side_size(width: int, height: int) -> tuple[int, int]:
    if width <= height:
        return SHORTER_SIDE, round(height * SHORTER_SIDE / width)
    return round(width * SHORTER_SIDE / height), SHORTER_SIDE


def ours(path: Path) -> np.ndarray:
    return sample_and_read(path, TSNSampler(NUM_FRAMES), shorter_side=SHORTER_SIDE, threads=1).frames


def transformers_pyav(path: Path) -> np.ndarray:
    from PIL import Image
    from transformers.video_utils import load_video

    def indices_fn(metadata, **kwargs):
        return TSNSampler(NUM_FRAMES)(int(metadata.total_num_frames))

    video, _ = load_video(str(path), backend="pyav", sample_indices_fn=indices_fn)
    width, height = _shorter_side_size(video.shape[2], video.shape[1])
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in video])


def decord_reader(path: Path) -> np.ndarray:
    import decord

    info = decord.VideoReader(str(path), num_threads=1)
    width, height = _shorter_side_size(info[0].shape[1], info[0].shape[0])
    del info
    reader = decord.VideoReader(str(path), num_threads=1, width=width, height=height)
    return reader.get_batch(TSNSampler(NUM_FRAMES)(len(reader)).tolist()).asnumpy()


def torchcodec_decoder(path: Path) -> np.ndarray:
    import torch
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NCHW")
    indices = TSNSampler(NUM_FRAMES)(decoder.metadata.num_frames).tolist()
    frames = decoder.get_frames_at(indices).data
    width, height = _shorter_side_size(frames.shape[3], frames.shape[2])
    resized = torch.nn.functional.interpolate(frames.float(), size=(height, width), mode="bicubic", antialias=True)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


DECODERS = [
    ("actionclip", ours, None),
    ("transformers", transformers_pyav, "transformers.video_utils"),
    ("decord", decord_reader, "decord"),
    ("torchcodec", torchcodec_decoder, "torchcodec.decoders"),
]


def _available(module: str | None) -> str | None:
    if module is None:
        return None
    try:
        __import__(module)
        if module.startswith("torchcodec"):
            from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads its FFmpeg libraries)
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    return None


def _time(function, path: Path, repeats: int) -> tuple[float, tuple]:
    shape = function(path).shape  # warm-up (imports, page cache)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times), shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "actionclip_decode_bench")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    clips = make_clips(args.cache_dir)
    skipped = {name: _available(module) for name, _, module in DECODERS}
    decoders = [(name, fn) for name, fn, _ in DECODERS if skipped[name] is None]
    results: dict[tuple[str, str], float] = {}
    for clip_name, path in clips:
        info = probe_video(path)
        print(f"# {clip_name}: {info.num_frames} frames, {path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        for name, fn in decoders:
            seconds, shape = _time(fn, path, args.repeats)
            results[(clip_name, name)] = seconds
            print(f"#   {name:13s} {seconds * 1000:8.1f} ms  {shape}", file=sys.stderr)

    header = f"| clip | {' | '.join(name for name, _ in decoders)} | ours / fastest competitor |"
    print(header)
    print("|" + " --- |" * (len(decoders) + 2))
    for clip_name, _ in clips:
        cells = [f"{results[(clip_name, name)] * 1000:.1f} ms" for name, _ in decoders]
        competitors = [results[(clip_name, name)] for name, _ in decoders if name != "actionclip"]
        ratio = results[(clip_name, "actionclip")] / min(competitors) if competitors else float("nan")
        print(f"| {clip_name} | {' | '.join(cells)} | {ratio:.2f} |")
    for name, reason in skipped.items():
        if reason is not None:
            print(f"\n{name} skipped: {reason}")
    print(
        f"\n8 TSN-centre frames, shorter side {SHORTER_SIDE}, one thread (process pinned to one core), median of "
        f"{args.repeats} runs."
    )


if __name__ == "__main__":
    main()
