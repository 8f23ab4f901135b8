"""Checkpoints: ``last.ckpt`` every epoch, a checkpoint on SIGTERM, safe loading, weights-only starts."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn


class LastCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt``: the state at the end of the last finished epoch, written after every epoch.

    A ``ModelCheckpoint`` without a monitor, saved at the end of every training epoch (after that epoch's
    validation, if any), so it never lags behind like Lightning 2.6's ``save_last=True`` (which copies only
    when a monitored checkpoint improves). Written to ``last.ckpt.partial`` and renamed, so a kill during the
    write leaves the previous ``last.ckpt`` intact. On SIGTERM (what SLURM and most schedulers send before
    stopping a job) it saves the current, mid-epoch state as ``preempted.ckpt``: resume with
    ``ckpt_path=<run folder>/preempted.ckpt``.
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        save_atomically(
            trainer, filepath, lambda path: super(LastCheckpoint, self)._save_checkpoint(trainer, path)
        )
        self._last_checkpoint_saved = filepath

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            path = os.path.join(self.dirpath, "preempted.ckpt")
            save_atomically(trainer, path, trainer.save_checkpoint)
            if trainer.is_global_zero:
                print(f"[aidpose] SIGTERM: saved {path}; resume with ckpt_path={path}", flush=True)


def save_atomically(trainer: pl.Trainer, path: str, save: Any) -> None:
    """``save(tmp_path)`` (every rank: saving is collective), then rank 0 renames the file to ``path``."""
    partial = f"{path}.partial"
    save(partial)
    if trainer.is_global_zero:
        os.replace(partial, path)


def require_checkpoint_file(path: str | Path) -> Path:
    """``path`` as a Path if it is a file, else a clear error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist: pass a checkpoint written by aidpose.train "
            "(<run dir>/last.ckpt or best.ckpt)"
        )
    return path


def load_tensors_only(
    path: str | Path, refusal: Callable[[str], str], allowed_globals: Sequence[Any] = ()
) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` (plus ``allowed_globals``): tensors and plain
    containers only, never pickled code. A file holding other pickled objects is a ``ValueError`` whose message
    is ``refusal(first line of torch's explanation)``."""
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(refusal(first_line)) from None


def read_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint of this project on the CPU, with a clear error when it is not one.

    Loads with ``weights_only=True``: tensors and plain containers only, never pickled code, so an
    untrusted checkpoint cannot run anything.
    """
    path = require_checkpoint_file(path)
    ckpt = load_tensors_only(
        path,
        lambda first_line: (
            f"checkpoint {path} holds pickled Python objects, not only tensors and plain containers "
            f"({first_line}). aidpose loads checkpoints with torch.load(weights_only=True) and never unpickles "
            "code from a file: use a checkpoint written by aidpose.train, or re-save the weights you trust."
        ),
    )
    if "state_dict" not in ckpt:
        raise ValueError(f"checkpoint {path} has no 'state_dict': not a Lightning checkpoint")
    return ckpt


def load_weights_only(module: nn.Module, path: str | Path) -> None:
    """Load a checkpoint's model weights into ``module``; optimizer, scheduler and epoch start fresh."""
    state = read_checkpoint(path)["state_dict"]
    advice = "Use the same backbone/head config as the run that wrote it."
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensors of other shapes
        first = str(err).strip().splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ValueError(f"init_weights={path} does not fit this model ({first}). {advice}") from None
    if missing or unexpected:
        raise ValueError(
            f"init_weights={path} does not fit this model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}). {advice}"
        )
