"""Datasets, annotation loading and the per-sample pipelines."""
