"""Checkpoint helpers: weights-only starts and rebuilding a module from a checkpoint's config."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def read_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint of this project on the CPU, with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt:
        raise ValueError(f"checkpoint {path} has no 'state_dict': not a Lightning checkpoint")
    return ckpt


def load_weights_only(module: nn.Module, path: str | Path) -> None:
    """Load a checkpoint's model weights into ``module``; optimizer, scheduler and epoch start fresh."""
    state = read_checkpoint(path)["state_dict"]
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"init_weights={path} does not fit this model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}). Use the same backbone/head config."
        )
