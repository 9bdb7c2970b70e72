"""Training: the Trainer, its arguments, the training program (`actionclip.training.program`), weight ensembling."""
