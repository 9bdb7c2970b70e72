"""Training: the Trainer, its arguments, weight ensembling."""
