"""The device-transform benchmarks run end to end at a tiny size and print their tables (no timing is asserted)."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def table_rows(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_training_step_benchmark_reports_each_feed_against_the_synthetic_step(tmp_path, capsys):
    import training_step

    argv = ["--preset", "tiny", "--workers", "0", "--videos", "2", "--warmup", "1", "--steps", "1"]
    assert training_step.main([*argv, "--cache", str(tmp_path)]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == [
        "synthetic (inputs on the device)",
        "files, device transforms",
        "files, CPU transforms",
    ]
    assert rows[0][3] == "1.00" and all(float(row[2]) > 0 for row in rows)


def test_preprocess_benchmark_reports_host_time_of_both_paths(tmp_path, capsys):
    import device_preprocess

    argv = ["--crop", "32", "--frames", "2", "--batch", "2", "--videos", "1", "--repeats", "1"]
    assert device_preprocess.main([*argv, "--cache", str(tmp_path)]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["evaluation", "training"]
    assert all(float(value) > 0 for row in rows for value in row[1:4])


def test_gpu_decode_benchmark_reports_each_resolution_and_says_why_a_device_is_missing(tmp_path, capsys):
    import gpu_decode

    argv = ["--files", "1", "--repeats", "1", "--frames", "13", "--workdir", str(tmp_path)]
    assert gpu_decode.main(argv) == 0
    output = capsys.readouterr().out
    rows = table_rows(output)
    assert [row[0] for row in rows] == ["320x240", "1280x720", "1920x1080"]
    for row in rows:
        assert all(float(value) > 0 for value in row[1].split(", "))
        assert row[2].startswith("unavailable: hardware decoding on 'cuda' could not start") or float(row[3][:-1]) > 0
    assert "# cuda faster in wall time at:" in output
