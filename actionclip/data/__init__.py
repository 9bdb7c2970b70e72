"""Datasets, collators and synthetic data for training and evaluating ActionCLIP.

Modules:
- :mod:`actionclip.data.datasets`: (video, label) datasets, one constructor per source, and the factory by format
  name; each source is read by its own module: class folders (`folder_dataset`), list files and UCF101 / HMDB51 split
  files (`list_dataset`), Kinetics CSVs (`kinetics_csv`), `datasets` tables (`hf_table`), tar shards written and
  streamed (`tar_shards`);
- :mod:`actionclip.data.clip_loader`: what every source shares: one sample -> one item, decoded in DataLoader
  workers, with seeded sampling and augmentation and an option to skip unreadable videos;
- :mod:`actionclip.data.collator`: batches of `pixel_values`, `labels` and tokenized prompts;
- :mod:`actionclip.data.synthetic`: coloured shapes doing actions, written as real H.264 videos.
"""
