"""Callbacks and loggers of a training run."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint


def build_callbacks(run_dir: Path, has_logger: bool) -> list[pl.Callback]:
    """``best.ckpt`` (by val/AP) and ``last.ckpt`` in the run folder; LR monitor when a logger exists."""
    callbacks: list[pl.Callback] = [
        ModelCheckpoint(
            dirpath=run_dir,
            filename="best",
            monitor="val/AP",
            mode="max",
            save_last=True,
            auto_insert_metric_name=False,
        )
    ]
    if has_logger:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    return callbacks


def instantiate_loggers(cfg: DictConfig) -> list[pl.loggers.Logger]:
    """One logger per entry of ``cfg.logger`` (csv, wandb, tensorboard; ``logger=none`` for none)."""
    if not cfg.get("logger"):
        return []
    return [instantiate(c) for c in cfg.logger.values() if c is not None]
