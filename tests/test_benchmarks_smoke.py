"""The benchmark code paths, once each at a tiny size: the table's structure and finite outputs, never timings."""

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import model_throughput  # noqa: E402
import pipeline_e2e  # noqa: E402


def load_runner():
    """benchmarks/run.py under a name no other module has."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("actionclip_benchmark_runner", REPO_ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CPU = torch.device("cpu")
TINY = model_throughput.PRESETS["tiny"]


def table_rows(text: str) -> list[dict[str, str]]:
    """The first markdown table in ``text`` as a list of {column: cell}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").split()) == {"---"}
    rows = []
    for line in lines[2:]:
        if line.startswith("| stage") or line.startswith("| |"):
            break  # the next table
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))))
    return rows


@pytest.fixture(scope="module")
def runner_output():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert load_runner().main(["--preset", "tiny", "--device", "cpu"]) == 0
    return buffer.getvalue()


def test_runner_prints_one_table_with_a_row_per_task_model_and_variant(runner_output):
    rows = table_rows(runner_output)
    expected = [
        (workload.task, workload.model, variant.name)
        for workload in model_throughput.workloads(compile_ours=False)
        for variant in workload.variants
    ]
    assert [(row["task"], row["model"], row["variant"]) for row in rows] == expected
    assert {"ours", "X-CLIP", "X-CLIP text-cached"} <= {row["model"] for row in rows}
    assert {"zero-shot", "train"} == {row["task"] for row in rows}
    for column in ("videos/s", "vs ours eager fp32", "GFLOP/video", "achieved GFLOP/s", "MFU"):
        assert column in rows[0]


def test_every_row_ran_and_counts_positive_finite_throughput_and_flops(runner_output):
    for row in table_rows(runner_output):
        assert "failed" not in row["notes"] and "non-finite" not in row["notes"], row
        for column in ("videos/s", "GFLOP/video", "achieved GFLOP/s"):
            value = float(row[column])
            assert math.isfinite(value) and value > 0, (column, row)
        assert row["MFU"] == "—"  # a CPU reports achieved GFLOP/s instead
        assert row["peak memory (RSS growth)"].startswith("+")


def test_the_baseline_row_of_each_task_is_ours_eager_float32(runner_output):
    for row in table_rows(runner_output):
        if row["model"] == "ours" and row["variant"] == "eager fp32":
            assert row["vs ours eager fp32"] == "1.00x"


@pytest.mark.parametrize(
    "workload", model_throughput.workloads(compile_ours=False), ids=lambda w: f"{w.task}-{w.model}"
)
@pytest.mark.parametrize(
    "variant", [model_throughput.BASELINE, model_throughput.Variant("sdpa bf16", "sdpa", torch.bfloat16)]
)
def test_ours_and_xclip_give_finite_outputs(workload, variant):
    model = workload.build(TINY, CPU)
    model.set_attn_implementation(variant.attn)
    step, _ = workload.make_step(model, model_throughput.make_inputs(TINY, CPU), TINY, variant, CPU, {})
    output = step()
    assert torch.isfinite(output).all()
    if workload.task == "zero-shot":
        assert output.shape == (TINY.batch_size, TINY.num_classes)
        torch.testing.assert_close(output.sum(dim=-1), torch.ones(TINY.batch_size), atol=1e-3, rtol=0)
    else:
        assert output.ndim == 0


def test_xclip_with_cached_text_equals_its_forward():
    model = model_throughput.build_xclip(TINY, CPU).eval()
    inputs = model_throughput.make_inputs(TINY, CPU)
    with torch.no_grad():
        expected = model(
            input_ids=inputs.label_ids, attention_mask=inputs.label_mask, pixel_values=inputs.pixel_values
        ).logits_per_video
        text = model.get_text_features(input_ids=inputs.label_ids, attention_mask=inputs.label_mask)
        text = text.pooler_output
        cached = model_throughput.xclip_logits_with_cached_text(model, inputs.pixel_values, text)
    torch.testing.assert_close(cached, expected, atol=1e-5, rtol=1e-5)


def test_both_models_share_the_backbone_configuration():
    ours = model_throughput.build_ours(TINY, CPU)
    xclip = model_throughput.build_xclip(TINY, CPU)
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size", "image_size"):
        assert getattr(ours.config.vision_config, name) == getattr(xclip.config.vision_config, name)
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads"):
        assert getattr(ours.config.text_config, name) == getattr(xclip.config.text_config, name)
    assert ours.config.projection_dim == xclip.config.projection_dim


COMPILE_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {benchmarks!r})
    import model_throughput as mt
    preset = mt.PRESETS["tiny"]
    model = mt.build_ours(preset, torch.device("cpu")).eval()
    pixel_values = mt.make_inputs(preset, torch.device("cpu")).pixel_values
    # fullgraph: a graph break (.item(), .tolist(), a shape check on tensor values) fails the compile.
    compiled = torch.compile(model.get_video_features, fullgraph=True)
    with torch.inference_mode():
        torch.testing.assert_close(
            compiled(pixel_values).pooler_output, model.get_video_features(pixel_values).pooler_output
        )
    print("compiled ok")
    """
)


def test_get_video_features_compiles_as_one_graph():
    script = COMPILE_SCRIPT.format(benchmarks=str(REPO_ROOT / "benchmarks"))
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("torch.compile took over 60 s on this machine (cold compile cache, busy CPU)")
    if result.returncode != 0 and "compiler" in result.stderr.lower() and "not found" in result.stderr.lower():
        pytest.skip("no C++ compiler for inductor here")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled ok" in result.stdout


def test_pipeline_section_reports_every_stage_and_both_models(tmp_path):
    results = pipeline_e2e.measure(
        "tiny", CPU, num_labels=3, num_videos=2, repeats=1, work_dir=tmp_path, video_seconds=2
    )
    assert set(results["stages"]) == {"decode", "preprocess", "video encode", "scoring"}
    numbers = [value for value in results["stages"].values()] + [
        value for key, value in results.items() if key.startswith(("ours:", "X-CLIP:", "text encode"))
    ]
    assert len(numbers) >= 12 and all(math.isfinite(value) and value > 0 for value in numbers)
    section = pipeline_e2e.format_section(results, "tiny", CPU)
    assert "| decode |" in section and "| single-video latency, labels cached |" in section


def test_the_sequential_path_used_on_gpus_measures_every_variant():
    workload = next(
        w for w in model_throughput.workloads(compile_ours=False) if (w.task, w.model) == ("train", "ours")
    )
    inputs = model_throughput.make_inputs(TINY, CPU)
    rows = model_throughput.run_workload(workload, TINY, CPU, inputs, interleave=False)
    assert [row.variant for row in rows] == [variant.name for variant in workload.variants]
    for row in rows:
        assert row.finite_output and row.seconds > 0 and row.flops_per_step > 0 and row.peak_memory >= 0, row


def test_the_backbones_benchmark_measures_every_family_against_its_own_image_features():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "backbones.py"), "--size", "tiny", "--iters", "1",
         "--warmup", "0", "--rounds", "1", "--frames", "2", "--batch-size", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    from actionclip.backbones import BACKBONE_FAMILIES

    assert [row["family"] for row in rows] == list(BACKBONE_FAMILIES)
    for row in rows:
        speeds = [float(cell) for name, cell in row.items() if name.endswith("frames/s")]
        assert len(speeds) == 2 and all(speed > 0 and math.isfinite(speed) for speed in speeds), row
        # The two paths compute the same embedding: the overhead is measured on equal work.
        assert float(row["max abs diff of the normalised video embedding"]) < 1e-5, row


def test_the_index_scale_benchmark_reports_every_measure_for_both_data_sets(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "index_scale.py"), "--rows", "3000", "--dim", "32",
         "--centres", "16", "--queries", "6", "--sweep", "4,5", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sections = result.stdout.split("### ")[1:]
    assert [section.split(":")[0] for section in sections] == ["mixture", "uniform"]
    for section in sections:
        rows = table_rows(section.split("| nprobe")[0])
        assert [row["measure"].split(" (")[0].split(",")[0] for row in rows] == [
            "build: rows written", "build: total", "first query after opening", "query latency",
            "query latency", "recall@10 against exact search", "peak RSS while searching", "append 1",
        ]  # fmt: skip
        for row in rows:
            value = float(row["value"].split()[0])
            assert math.isfinite(value) and value >= 0, row
        assert 0 < float(rows[5]["value"]) <= 1
        assert "| 4 | 5 |" in section  # the sweep's row
    assert not list(tmp_path.iterdir())  # the indexes are removed unless --keep


@pytest.mark.slow  # two `actionclip eval` runs, one of them under torchrun: about a minute on 2 cores
def test_the_sharded_eval_benchmark_times_one_and_two_processes_on_the_same_scores(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "sharded_eval.py"), "--videos", "3", "--seconds", "1",
         "--preset", "tiny", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows(result.stdout)
    assert [row["run"] for row in rows] == ["1 process", "2 processes"]
    assert all(float(row["seconds"]) > 0 and float(row["videos/s"]) > 0 for row in rows)
    assert "Speed-up of 2 processes over 1:" in result.stdout
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 3
