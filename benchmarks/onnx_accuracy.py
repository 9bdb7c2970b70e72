"""Accuracy of the ONNX exports against PyTorch: top-1 of each on a labelled list of videos, and how often the
ONNX top-1 equals PyTorch's (the int8 goal: the same top-1 for >= 99 % of the videos).

The model is exported twice (fp32, and int8: the frame encoder's MatMuls dynamically quantised, the most sensitive
kept float32 as `actionclip.onnx.export` decides on calibration frames) into a temporary directory. The calibration
frames come from ``--calibration-list`` (one video per class, at most ``--calibration-videos``: the demo's training
list, never the list that is scored), else the export's default random frames. The three pipelines (PyTorch, ONNX fp32, ONNX int8) classify every video with the same
pre-processing and scoring (the pipeline's), so only the backend differs.

    python benchmarks/onnx_accuracy.py --model /work/demo_shared/model_transf \\
        --list /work/demo_shared/data/zeroshot.txt --labels /work/demo_shared/data/zeroshot_labels.csv \\
        --calibration-list /work/demo_shared/data/train.txt

The list has one ``relative/path.mp4 class_id`` per line (paths relative to the list's folder); the labels CSV has
``id,name`` rows (the demo's files).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_list(list_path: Path, labels_path: Path) -> tuple[list[str], list[int], list[str]]:
    """(video paths, class ids, class names) of a demo-style list file and labels CSV."""
    with labels_path.open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["id"]))
    names = [row["name"] for row in rows]
    videos, targets = [], []
    for line in list_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            path, class_id = line.rsplit(maxsplit=1)
            videos.append(str(list_path.parent / path))
            targets.append(int(class_id))
    return videos, targets, names


def calibration_frames(model: str, list_path: Path, limit: int):
    """``pixel_values`` ``(V, T, 3, H, W)`` of up to ``limit`` videos of ``list_path``, one per class, first seen first,
    made by the model's pipeline (the pre-processing the scored videos get)."""
    from transformers import pipeline

    from actionclip.onnx.export import calibration_pixel_values

    chosen, classes = [], set()
    for line in list_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            path, class_id = line.rsplit(maxsplit=1)
            if class_id not in classes and len(chosen) < limit:
                classes.add(class_id)
                chosen.append(str(list_path.parent / path))
    classifier = pipeline("zero-shot-video-classification", model=model, device="cpu")
    return calibration_pixel_values(classifier, chosen)


def top1(classifier, videos: list[str], names: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    results = classifier(videos, candidate_labels=names, batch_size=8, num_workers=0)
    return [result[0]["label"] for result in results], time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an ActionCLIPModel directory with its processor")
    parser.add_argument("--list", required=True, type=Path, help="list file: 'path class_id' per line")
    parser.add_argument("--labels", required=True, type=Path, help="labels CSV: id,name")
    parser.add_argument("--calibration-list", type=Path, help="list file whose videos calibrate the int8 export")
    parser.add_argument("--calibration-videos", type=int, default=8, help="at most this many (one per class)")
    parser.add_argument("--int8-tolerance", type=float, help="the export's int8 tolerance (default its own)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch
    from transformers import pipeline

    import actionclip  # noqa: F401  (registers the task)
    from actionclip.onnx.export import export_onnx, read_int8_choice

    torch.set_num_threads(args.threads)
    videos, targets, names = read_list(args.list, args.labels)
    truth = [names[target] for target in targets]
    figures = {"model": args.model, "videos": len(videos), "classes": len(names), "threads": args.threads}
    predictions = {}
    int8_options = {"quantize": "int8"}
    if args.int8_tolerance is not None:
        int8_options["int8_tolerance"] = args.int8_tolerance
    if args.calibration_list is not None:
        int8_options["calibration"] = calibration_frames(args.model, args.calibration_list, args.calibration_videos)
        figures["calibration frames"] = int(
            int8_options["calibration"].shape[0] * int8_options["calibration"].shape[1]
        )
    with tempfile.TemporaryDirectory() as scratch:
        for name, options in (("onnx fp32", {}), ("onnx int8", int8_options)):
            start = time.perf_counter()
            export_onnx(args.model, Path(scratch) / name.replace(" ", "_"), **options)
            figures[f"export {name} s"] = round(time.perf_counter() - start, 1)
        int8 = read_int8_choice(Path(scratch) / "onnx_int8")
        figures["int8 quantized matmuls"] = int8["quantized_matmuls"]
        figures["int8 float32 matmuls"] = int8["float32_matmuls"]
        figures["int8 calibration error (1 - cos)"] = int8["calibration_error"]
        for name, model in (
            ("pytorch", args.model),
            ("onnx fp32", str(Path(scratch) / "onnx_fp32")),
            ("onnx int8", str(Path(scratch) / "onnx_int8")),
        ):
            classifier = pipeline("zero-shot-video-classification", model=model, device="cpu")
            predictions[name], seconds = top1(classifier, videos, names)
            figures[f"top-1 {name}"] = sum(p == t for p, t in zip(predictions[name], truth)) / len(videos)
            figures[f"seconds {name}"] = round(seconds, 2)
    for name in ("onnx fp32", "onnx int8"):
        same = sum(a == b for a, b in zip(predictions[name], predictions["pytorch"])) / len(videos)
        figures[f"same top-1 as pytorch, {name}"] = same
    print(f"{len(videos)} videos, {len(names)} classes, model {args.model}")
    print(
        f"int8: {figures['int8 quantized matmuls']} MatMuls int8, float32: {figures['int8 float32 matmuls']}, "
        f"calibration error {figures['int8 calibration error (1 - cos)']:.2e}"
    )
    print("| backend | top-1 | same top-1 as PyTorch | classify time (s) |")
    print("| --- | --- | --- | --- |")
    for name in ("pytorch", "onnx fp32", "onnx int8"):
        same = figures.get(f"same top-1 as pytorch, {name}", 1.0)
        print(f"| {name} | {figures[f'top-1 {name}']:.1%} | {same:.1%} | {figures[f'seconds {name}']} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
