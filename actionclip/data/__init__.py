"""Datasets, collators and synthetic data for training and evaluating ActionCLIP.

Modules: :mod:`actionclip.data.synthetic` (coloured shapes doing actions, written as real H.264 videos).
"""
