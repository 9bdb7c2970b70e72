"""Sharing: model cards, Space folders, conversion of released checkpoints."""
