#!/usr/bin/env bash
# The prepared GPU check (issues 7 and 13): one run on one H100 / H200, installs nothing; at most 23 minutes (the sum
# of its parts' time limits), so a device session of 15 minutes runs it in two calls (PARTS below).
#
#   bash benchmarks/gpu_check.sh            # from the repository root (or anywhere: it cds there)
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh
#
# Prints, in order: the environment; the model table in the issue's configuration (ViT-B/16, 224 px, 8 frames,
# batch 32, 400 classes x 16 templates) with the torch.compile variant and a count of synchronising CUDA calls
# per step; ours with the joint prompt (1576-token sequences: the SDPA case), zero-shot only; the end-to-end
# pipeline on the GPU; then issue 13d's: host ms per video of the CPU transforms against the uint8 hand-off +
# device transforms, a training step fed from files against the synthetic-input step, and the pipeline's fast path
# (patch embedding conv vs matmul, warmed single-video latency, float32 / bf16 weights / compiled), the input
# engine from files, and NVDEC against CPU decoding per resolution. Each part has its own time limit, so a slow
# part cannot starve the others; a part that fails prints why and the script goes on. Exit status: that of the main table.
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1

echo "== environment"
date -u +%Y-%m-%dT%H:%M:%SZ
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | head -3
"$PY" - <<'EOF'
import importlib, sys
import torch, transformers
print(f"python {sys.version.split()[0]}  torch {torch.__version__}  transformers {transformers.__version__}  "
      f"cuda {torch.version.cuda}  device {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NONE'}")
for name in ("av", "psutil", "triton"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as error:
        print(f"{name}: not importable ({type(error).__name__})")
if not torch.cuda.is_available():
    sys.exit("no CUDA device: this script is for a GPU machine")
EOF
[ $? -eq 0 ] || exit 2

# PARTS: which parts to run, by name (default all): model joint pipeline preprocess training fastpath engine decode.
# e.g. PARTS="model joint pipeline" bash benchmarks/gpu_check.sh, then PARTS="preprocess training fastpath engine decode".
PARTS="${PARTS:-all}"
want() { [ "$PARTS" = all ] || [[ " $PARTS " == *" $1 "* ]]; }
status=0

if want model; then
    echo
    echo "== model throughput, preset h200 (+ compile, + sync count)"
    timeout 380 "$PY" benchmarks/run.py --preset h200 --compile --check-syncs
    status=$?
    [ $status -eq 124 ] && echo "(model table timed out after 380 s)"
fi

if want joint; then
    echo
    echo "== ours with the joint prompt, zero-shot (eager vs SDPA on 8 x 197 = 1576-token sequences)"
    timeout 75 "$PY" benchmarks/run.py --preset h200 --joint --tasks zero-shot --models ours --iters 5 \
        || echo "(joint run failed or timed out)"
fi

if want pipeline; then
    echo
    echo "== end-to-end pipeline on the GPU (small model; decoding stays on the CPU)"
    timeout 90 "$PY" benchmarks/run.py --skip-model --with-pipeline --device cuda \
        || echo "(pipeline run failed or timed out)"
fi

if want preprocess; then
    echo
    echo "== issue 13d: host ms/video of today's CPU transforms vs uint8 hand-off + device transforms (224 px, 8 frames)"
    timeout 60 "$PY" benchmarks/device_preprocess.py --device cuda --crop 224 --frames 8 --batch 32 --threads 1 \
        || echo "(device preprocess run failed or timed out)"
fi

if want training; then
    echo
    echo "== issue 13d: training step fed from files (16 workers) vs synthetic inputs, ViT-B/16, batch 32"
    timeout 200 "$PY" benchmarks/training_step.py --preset h200 --device cuda --workers 16 --videos 16 \
        --warmup 3 --steps 10 || echo "(training step run failed or timed out)"
fi

if want fastpath; then
    echo
    echo "== issue 13d: pipeline fast path, ViT-B/16: patch-embedding conv vs matmul, warmed single-video latency"
    timeout 240 "$PY" benchmarks/fast_path.py --preset h200 --device cuda --compile --labels 400 \
        || echo "(fast path run failed or timed out)"
fi

if want engine; then
    echo
    echo "== issue 13e: input engine, pipeline from files vs model only, ViT-B/16 bf16, 16 decoding processes"
    timeout 240 "$PY" benchmarks/input_engine.py --preset h200 \
        || echo "(input engine run failed or timed out)"
fi

if want decode; then
    echo
    echo "== issue 13: decoding with NVDEC (hwaccel cuda) vs the CPU, 320x240 / 720p / 1080p H.264"
    timeout 120 "$PY" benchmarks/gpu_decode.py --hwaccel cuda --files 4 \
        || echo "(GPU decoding run failed or timed out)"
fi

exit $status
