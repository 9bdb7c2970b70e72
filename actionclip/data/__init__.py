"""Datasets, collators and synthetic data for training and evaluating ActionCLIP.

Modules:
- :mod:`actionclip.data.datasets`: (video, label) datasets from class folders, list files (videos or the original's
  frame folders), UCF101 / HMDB51 split files, Kinetics CSVs, tar shards and `datasets` tables; decoding runs in
  DataLoader workers, with seeded sampling and augmentation and an option to skip unreadable videos;
- :mod:`actionclip.data.collator`: batches of `pixel_values`, `labels` and tokenized prompts;
- :mod:`actionclip.data.synthetic`: coloured shapes doing actions, written as real H.264 videos.
"""
