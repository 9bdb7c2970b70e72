#!/usr/bin/env python
"""Evaluate a saved ActionCLIP model: closed-set accuracy (single- or multi-view) or a zero-shot protocol.

    # closed-set, 4 temporal clips x 3 crops, scores averaged over the 12 views
    python training_scripts/run_eval.py --model runs/k400 --output_dir eval/k400 \\
        --protocol closed_set --dataset_format list --eval_path k400/val.txt --class_names kinetics400 \\
        --num_clips 4 --num_crops 3

    # zero-shot: HMDB51 / UCF101 official splits (mean and std over the three), Kinetics-600 novel subsets,
    # half-class, full-class, base-to-novel; few-shot writes the K-shot training lists (and evaluates
    # --model runs/k{shots} where those models exist)
    python training_scripts/run_eval.py --model runs/k400 --output_dir eval/hmdb \\
        --protocol hmdb51 --split_dir hmdb51/testTrainMulti_7030_splits --video_root hmdb51/videos

Every split gets an evaluation report (per-class table, confused pairs, confusion matrix, evaluation.json) and each
protocol a result.json stating the protocol, templates, views and frames next to the numbers. `actionclip eval`
runs the same program (its arguments: actionclip/commands/eval.py; the program: actionclip/evaluation/program.py).
"""

from actionclip.commands import exit_on_bad_input
from actionclip.commands.eval import main

if __name__ == "__main__":
    exit_on_bad_input(main, "run_eval.py")
