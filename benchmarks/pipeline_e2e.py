"""End to end: video files on disk -> ranked labels, where the time goes, and ours against X-CLIP.

Usage: ``python benchmarks/pipeline_e2e.py [--preset cpu] [--num-labels 50] [--device cpu]``

Writes a few real H.264 files (cached between runs) and a small random-weight ActionCLIP model with its processor
to a directory, loads it with ``pipeline("zero-shot-video-classification")`` and measures:

- the stages of one video, as the pipeline runs them: decode (``video_io.sample_and_read`` with the TSN sampler),
  preprocess (the video processor), text encode (every template x label through the text tower; first call
  vs the pipeline's cached embeddings), video encode (``get_video_features``) and scoring (matmul, template
  ensemble, sorting);
- single-video latency of the whole pipeline call (first call with a new label set, then cached) and videos/s
  over the files;
- the same for X-CLIP (``XCLIPModel`` of the same backbone, random weights) through its own processor
  (``XCLIPProcessor``: VideoMAE image processor + CLIP tokenizer, built offline). X-CLIP has no file decoding
  of its own, so it is given the frames our decoder returns (same frames, same decode time); its forward runs
  its text tower on the label names for every call (its text embeddings depend on the video).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import model_throughput  # noqa: E402

import actionclip  # noqa: E402,F401  (registers the pipeline task)
from actionclip.data.video_writer import write_video  # noqa: E402
from actionclip.processing_actionclip import ActionCLIPProcessor  # noqa: E402
from actionclip.prompts import PromptTemplater  # noqa: E402
from actionclip.sampling import TSNSampler  # noqa: E402
from actionclip.scoring import template_ensemble_probs  # noqa: E402
from actionclip.tokenizer import load_clip_tokenizer  # noqa: E402
from actionclip.video_io import sample_and_read  # noqa: E402

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ---------------------------------------------------------------------------------------------------- fixtures


def _moving_scene(width: int, height: int, num_frames: int, seed: int):
    """Blocky texture drifting under a moving square: compresses like footage, not like noise or flat colour."""
    rng = np.random.default_rng(seed)
    texture = np.kron(rng.integers(0, 256, (height // 8 + 16, width // 8 + 16, 3), dtype=np.uint8), np.ones((8, 8, 1)))
    texture = texture.astype(np.uint8)
    for t in range(num_frames):
        dx, dy = (2 * t) % 128, t % 128
        frame = texture[dy : dy + height, dx : dx + width].copy()
        x = int((width - 40) * (0.5 + 0.45 * np.sin(t / 15 + seed)))
        y = int((height - 40) * (0.5 + 0.45 * np.cos(t / 25 + seed)))
        frame[y : y + 40, x : x + 40] = (220, 50 + 40 * seed % 200, 40)
        yield frame


def make_videos(folder: Path, count: int = 4, width: int = 320, height: int = 240, seconds: int = 10) -> list[Path]:
    """``count`` H.264 clips (25 fps, keyframe every 12 frames, like Kinetics re-encodes), written once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        path = folder / f"clip{seed}_{width}x{height}_{seconds}s.mp4"
        if not path.exists():
            temporary = path.with_suffix(".tmp.mp4")
            write_video(temporary, _moving_scene(width, height, 25 * seconds, seed), fps=25, gop_size=12)
            temporary.rename(path)
        paths.append(path)
    return paths


def save_model(preset: model_throughput.Preset, folder: Path) -> Path:
    """A random-weight ActionCLIP model of ``preset``'s shape and its processor, saved as a model directory."""
    model = model_throughput.build_ours(preset, torch.device("cpu"), seed=0)
    model.save_pretrained(folder)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(folder)
    return folder


def xclip_processor(image_size: int):
    """X-CLIP's processor built offline: its image processor class (VideoMAE) with X-CLIP's released settings
    (CLIP mean/std, shorter side resize then centre crop) at this image size, and CLIP's tokenizer."""
    from transformers import VideoMAEImageProcessor, XCLIPProcessor

    image_processor = VideoMAEImageProcessor(
        size={"shortest_edge": image_size * 256 // 224},
        crop_size={"height": image_size, "width": image_size},
        image_mean=OPENAI_CLIP_MEAN,
        image_std=OPENAI_CLIP_STD,
    )
    return XCLIPProcessor(image_processor=image_processor, tokenizer=load_clip_tokenizer())


# ---------------------------------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device: torch.device):
    """(result, seconds) of one call."""
    _sync(device)
    started = time.perf_counter()
    result = function()
    _sync(device)
    return result, time.perf_counter() - started


def median_time(function, device: torch.device, repeats: int) -> float:
    return statistics.median(timed(function, device)[1] for _ in range(repeats))


def measure(
    preset_name: str = "cpu",
    device: torch.device | str = "cpu",
    num_labels: int = 50,
    num_videos: int = 4,
    repeats: int = 3,
    work_dir: Path | None = None,
    video_seconds: int = 10,
    log=None,
) -> dict:
    """Every number of the section, as a dict (the smoke test checks its structure and finiteness)."""
    from transformers import pipeline
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    device = torch.device(device)
    preset = model_throughput.PRESETS[preset_name]
    work_dir = Path(work_dir or Path(tempfile.gettempdir()) / "actionclip_pipeline_bench")
    started = time.perf_counter()
    videos = make_videos(work_dir / "videos", count=num_videos, seconds=video_seconds)
    model_dir = save_model(preset, Path(tempfile.mkdtemp(prefix="model_", dir=work_dir)))
    if log:
        log(f"# pipeline: fixtures ready in {time.perf_counter() - started:.0f} s")

    labels = model_throughput.label_names(num_labels)
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), device=device)
    model, processor = classifier.model, classifier.processor
    templater = PromptTemplater(list(model.config.templates))
    sampler = TSNSampler(processor.num_frames)
    results: dict = {
        "labels": num_labels,
        "templates": templater.num_templates,
        "videos": len(videos),
        "video seconds": video_seconds,
    }
    # Warm-up (first-call costs of every code path: allocator, kernels, tokenizer) with another label set.
    classifier(str(videos[0]), candidate_labels=model_throughput.label_names(num_labels + 1)[1:])

    # Stages of one video, as the pipeline runs them.
    classifier.clear_text_cache()
    text_embeds, results["text encode (first call)"] = timed(
        lambda: classifier.text_embeddings(labels, templater), device
    )
    results["text encode (cached)"] = median_time(
        lambda: classifier.text_embeddings(labels, templater), device, repeats
    )
    stage_times: dict[str, list[float]] = {"decode": [], "preprocess": [], "video encode": [], "scoring": []}
    for path in videos:
        for _ in range(repeats):
            frames, seconds = timed(lambda path=path: sample_and_read(path, sampler).frames, device)
            stage_times["decode"].append(seconds)
            pixel_values, seconds = timed(
                lambda frames=frames: processor.video_processor([frames], return_tensors="pt")["pixel_values"].to(
                    device
                ),
                device,
            )
            stage_times["preprocess"].append(seconds)
            with torch.no_grad():
                video_embeds, seconds = timed(
                    lambda pv=pixel_values: model.get_video_features(pv).pooler_output, device
                )
            stage_times["video encode"].append(seconds)

            def score(video_embeds=video_embeds):
                with torch.no_grad():
                    embeds = F.normalize(video_embeds, dim=-1)
                    probs = template_ensemble_probs(model.scale() * embeds @ text_embeds.t(), templater.num_templates)
                    return classifier.postprocess({"scores": probs[0].cpu(), "labels": labels})

            stage_times["scoring"].append(timed(score, device)[1])
    results["stages"] = {name: statistics.median(values) for name, values in stage_times.items()}

    # The whole pipeline call.
    classifier.clear_text_cache()
    _, results["ours: first call (new label set)"] = timed(
        lambda: classifier(str(videos[0]), candidate_labels=labels), device
    )
    results["ours: single video (cached labels)"] = statistics.median(
        timed(lambda path=path: classifier(str(path), candidate_labels=labels), device)[1]
        for path in videos
        for _ in range(repeats)
    )
    paths = [str(path) for path in videos]
    for workers in (0, None):
        name = "ours: videos/s (batch {}, {} decode workers)".format(len(paths), "no" if workers == 0 else "default")
        seconds = median_time(
            lambda workers=workers: classifier(
                paths, candidate_labels=labels, batch_size=len(paths), num_workers=workers
            ),
            device,
            repeats,
        )
        results[name] = len(paths) / seconds

    results.update(_measure_xclip(preset, device, labels, videos, sampler, repeats))
    results["wall seconds"] = time.perf_counter() - started
    return results


def _measure_xclip(preset, device: torch.device, labels, videos, sampler, repeats: int) -> dict:
    results: dict = {}
    model = model_throughput.build_xclip(preset, device).eval()
    try:
        processor = xclip_processor(preset.image_size)
        how = "XCLIPProcessor (VideoMAE image processor + CLIP tokenizer)"
    except Exception as error:  # its processor classes moved or went away: fall back to ours, say so
        processor = None
        how = f"our video processor and tokenizer (XCLIPProcessor unusable: {type(error).__name__})"
    ours = ActionCLIPProcessor.from_settings(image_size=preset.image_size, num_frames=preset.num_frames)

    def prepare(clips):
        if processor is not None:
            inputs = processor(videos=[list(clip) for clip in clips], text=labels, return_tensors="pt", padding=True)
        else:
            inputs = ours(videos=list(clips), text=labels, padding=True)
        return {key: value.to(device) for key, value in inputs.items()}

    def classify(paths):
        clips = [sample_and_read(path, sampler).frames for path in paths]
        inputs = prepare(clips)
        with torch.no_grad():
            probs = model(**inputs).logits_per_video.float().softmax(dim=-1).cpu()
        return [sorted(zip(labels, row.tolist()), key=lambda item: -item[1]) for row in probs]

    classify(videos[:1])  # warm-up
    frames = sample_and_read(videos[0], sampler).frames
    inputs, results["X-CLIP: preprocess (its processor, video + labels)"] = timed(lambda: prepare([frames]), device)
    with torch.no_grad():
        _, results["X-CLIP: forward (text + video)"] = timed(lambda: model(**inputs), device)
    results["X-CLIP: single video"] = statistics.median(
        timed(lambda path=path: classify([path]), device)[1] for path in videos for _ in range(repeats)
    )
    seconds = median_time(lambda: classify(videos), device, repeats)
    results[f"X-CLIP: videos/s (batch {len(videos)}, no decode workers)"] = len(videos) / seconds
    results["X-CLIP preprocessing"] = how
    return results


# ---------------------------------------------------------------------------------------------------- report


def format_section(results: dict, preset_name: str, device: torch.device) -> str:
    preset = model_throughput.PRESETS[preset_name]
    stages = results["stages"]
    ms = 1000.0
    lines = [
        f"## End-to-end pipeline (preset `{preset_name}` model, {device.type})",
        "",
        f"{model_throughput.environment_line(device)}",
        f"{results['videos']} H.264 files 320x240, {results['video seconds']} s, 25 fps; {results['labels']} "
        f"Kinetics-400 labels x "
        f"{results['templates']} templates; model: {preset.describe().split('; batch')[0]}; random weights.",
        "",
        "Where the time goes for one video (medians):",
        "",
        "| stage | ms | share of a cached-label call |",
        "| --- | --- | --- |",
    ]
    per_video = sum(stages.values())
    for name in ("decode", "preprocess", "video encode", "scoring"):
        lines.append(f"| {name} | {stages[name] * ms:.1f} | {100 * stages[name] / per_video:.0f}% |")
    call = results["ours: single video (cached labels)"]
    lines.append(f"| sum of the stages | {per_video * ms:.1f} | 100% |")
    lines.append(f"| whole pipeline call, measured on its own | {call * ms:.1f} | {100 * call / per_video:.0f}% |")
    lines += [
        f"| text encode, first call ({results['labels'] * results['templates']} prompts) | "
        f"{results['text encode (first call)'] * ms:.1f} | once per label set |",
        f"| text encode, cached | {results['text encode (cached)'] * ms:.3f} | every call |",
        "",
        "Ours against X-CLIP, same machine, same run:",
        "",
        "| | ours (pipeline) | X-CLIP |",
        "| --- | --- | --- |",
        f"| single-video latency, labels cached | {results['ours: single video (cached labels)'] * ms:.0f} ms | "
        f"{results['X-CLIP: single video'] * ms:.0f} ms (no text cache: text tower every call) |",
        f"| first call with a new label set | {results['ours: first call (new label set)'] * ms:.0f} ms | "
        f"same as every call |",
    ]
    xclip_rate = next(value for key, value in results.items() if key.startswith("X-CLIP: videos/s"))
    for key, value in results.items():
        if key.startswith("ours: videos/s"):
            label = key.split("(", 1)[1].rstrip(")")
            lines.append(
                f"| videos/s ({label}) | {value:.2f} | " + (f"{xclip_rate:.2f} |" if "no decode" in key else "— |")
            )
    lines += [
        "",
        f"- X-CLIP decode: our decoder (X-CLIP has none; same frames and cost); its preprocessing: "
        f"{results['X-CLIP preprocessing']} {results['X-CLIP: preprocess (its processor, video + labels)'] * ms:.0f} "
        f"ms for one video + the labels; its forward (text tower on {results['labels']} labels + video) "
        f"{results['X-CLIP: forward (text + video)'] * ms:.0f} ms.",
        "- Ours scores against every template x label (the paper's ensemble); X-CLIP against one text per label.",
        f"- section wall time {results['wall seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def run_section(preset_name: str = "cpu", device: torch.device | str = "cpu", log=None, **kwargs) -> str:
    device = torch.device(device)
    return format_section(measure(preset_name, device, log=log, **kwargs), preset_name, device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(model_throughput.PRESETS), default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-labels", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    section = run_section(
        args.preset,
        args.device,
        log=lambda message: print(message, file=sys.stderr),
        num_labels=args.num_labels,
        repeats=args.repeats,
    )
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
