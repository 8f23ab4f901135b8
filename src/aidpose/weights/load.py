"""``aidpose.load_model(PATH)``: the eval-mode LightningModule of any aidpose checkpoint, in Python."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from aidpose.runtime import CONFIG_PATH, PACKAGE_DIR

if TYPE_CHECKING:
    import pytorch_lightning as pl


def default_test_options() -> Path:
    """``conf/test/default.yaml`` of this installation (the checkout's or the wheel's)."""
    conf = PACKAGE_DIR / "conf" if CONFIG_PATH.startswith("pkg://") else Path(CONFIG_PATH)
    return conf / "test" / "default.yaml"


def load_model(path: str | Path, device: str = "cpu") -> pl.LightningModule:
    """The module of an aidpose checkpoint (``aidpose.train``'s ``last.ckpt``/``best.ckpt`` or
    ``aidpose.import_weights``'s output) in eval mode on ``device``: ``module.net``, ``module.codec``,
    ``module.run_config``. ``module(images)`` on a uint8 ``(N, 3, H, W)`` RGB batch gives the head's outputs as
    validation computes them (normalisation included); test options are the checkpoint's, completed by
    ``conf/test/default.yaml``, as ``aidpose.evaluate`` uses them.
    """
    from aidpose.builders import config_from_checkpoint, load_module_from_checkpoint
    from aidpose.training.checkpoints import read_checkpoint

    ckpt = read_checkpoint(path)
    options = OmegaConf.create({"test": OmegaConf.load(default_test_options())})
    run = config_from_checkpoint(ckpt, options, str(path))
    return load_module_from_checkpoint(run, ckpt, str(path)).to(device)
