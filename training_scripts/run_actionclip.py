#!/usr/bin/env python
"""Fine-tune ActionCLIP (video-text matching) with `transformers.Trainer`.

    python training_scripts/run_actionclip.py training_scripts/configs/k400_vitb32_8f.json \\
        --train_path /data/k400/train.csv --eval_path /data/k400/val.csv --video_root /data/k400/videos

A JSON argument file may come first; arguments after it override its values. Runs unchanged under `torchrun` and
`accelerate launch` (DDP, FSDP and DeepSpeed through the Trainer's options); see training_scripts/README.md.
`actionclip train` runs the same program (its arguments: actionclip/commands/train.py; the program:
actionclip/training/program.py, where its functions are: `run_training`, `build_model`, `build_datasets`, ...).
"""

from actionclip.commands import exit_on_bad_input
from actionclip.commands.train import main

if __name__ == "__main__":
    exit_on_bad_input(main, "run_actionclip.py")
