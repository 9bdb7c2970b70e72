"""A label set of any size: prompts are encoded in chunks, so memory does not grow with the number of labels."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from video_factory import write_test_video

from actionclip.processing_actionclip import ActionCLIPProcessor
from actionclip.tokenizer import load_clip_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]

MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    import actionclip  # noqa: F401
    from transformers import pipeline

    def rss_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    model_dir, video, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    classifier = pipeline("zero-shot-video-classification", model=model_dir, device="cpu")
    classifier(video, candidate_labels=["warm up", "the model"])
    before = rss_kib()
    labels = [f"action number {i}" for i in range(count)]
    started = time.perf_counter()
    result = classifier(video, candidate_labels=labels, top_k=3)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"growth_mib": (peak - before) / 1024, "seconds": seconds, "top": result}))
    """
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_actionclip")
    model = tiny_model(seed=3)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.mark.slow  # 160,000 prompts through the tiny text tower: about a minute on 2 busy cores
def test_ten_thousand_labels_grow_memory_by_less_than_2_gb(model_dir, tmp_path):
    video = write_test_video(tmp_path / "clip.mp4", num_frames=16)
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(model_dir), str(video), "10000"],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(measured["top"]) == 3
    assert measured["growth_mib"] < 2048, measured


def test_chunked_label_encoding_equals_encoding_all_prompts_at_once():
    model = tiny_model(seed=5).eval()
    tokenizer = load_clip_tokenizer()
    labels = [f"label {i}" for i in range(7)]
    templates = ["a video of {}", "{}, an action", "a person is {}"]
    with torch.no_grad():
        chunked = model.encode_label_set(labels, tokenizer, templates, batch_size=4)
        prompts = [template.format(label) for template in templates for label in labels]
        batch = tokenizer(prompts, padding=True, return_tensors="pt")
        whole = torch.nn.functional.normalize(
            model.get_text_features(batch["input_ids"], batch["attention_mask"]).pooler_output, dim=-1
        )
    assert chunked.shape == (21, whole.shape[1])
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=0, atol=1e-5)
