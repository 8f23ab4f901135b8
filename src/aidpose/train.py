"""Training entry point: ``python -m aidpose.train [group=option ...] [key=value ...]``.

Writes into the Hydra run folder: ``metrics.json`` (final validation metrics + the run's config
choices), ``last.ckpt`` / ``best.ckpt``, the logger's files and ``.hydra/`` (the resolved config).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

import aidpose  # noqa: F401  (sets offline-friendly environment defaults)

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: train, return val AP (for sweepers)."""
    saved_environ = dict(os.environ)
    try:
        return train(cfg).get("AP")
    finally:
        # DDP sets MASTER_PORT, WORLD_SIZE, ... in this process: the next multirun job must start clean
        os.environ.clear()
        os.environ.update(saved_environ)


def train(cfg: DictConfig) -> dict[str, float]:
    import pytorch_lightning as pl
    import torch

    from aidpose.builders import build_datamodule, build_dropper, build_module
    from aidpose.training.callbacks import build_callbacks, instantiate_loggers
    from aidpose.training.checkpoints import load_weights_only

    started = time.time()
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.output_dir)
    datamodule = build_datamodule(cfg, build_dropper(cfg))
    module = build_module(cfg)
    if cfg.init_weights:
        load_weights_only(module, cfg.init_weights)
    loggers = instantiate_loggers(cfg)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        max_epochs=module.schedule.scaled_epochs,
        callbacks=build_callbacks(run_dir, has_logger=bool(loggers)),
        logger=loggers or False,
        default_root_dir=str(run_dir),
    )
    choices = run_choices()
    log.info("config choices: %s", " ".join(f"{k}={v}" for k, v in sorted(choices.items())))
    for logger in loggers:
        logger.log_hyperparams({"choices": choices, "config": module.run_config})
    relaunch_ddp_children_with_this_job()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    if module.last_metrics_epoch != trainer.current_epoch - 1 or not module.last_metrics:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in module.last_metrics.items()}
    if trainer.is_global_zero:
        summary = {
            "metrics": metrics,
            "choices": choices,
            "epochs": trainer.current_epoch,
            "seconds": round(time.time() - started, 1),
            "run_dir": str(run_dir),
            "last_ckpt": str(run_dir / "last.ckpt"),
            "aid_dropped_kpt_frac": module.last_dropped_kpt_frac,
        }
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        print_summary(summary)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # a barrier + explicit teardown avoids gloo's abort at interpreter exit (environment notes)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics


def run_choices() -> dict[str, Any]:
    """The option each config group used (``hydra.runtime.choices``), without Hydra's own groups."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices)
    return {k: v for k, v in choices.items() if not k.startswith("hydra")}


def relaunch_ddp_children_with_this_job() -> None:
    """Make Lightning's DDP child processes rerun *this* job, not the whole multirun sweep.

    Lightning relaunches ranks > 0 as ``python -m aidpose.train <sys.argv[1:]> hydra.run.dir=<run.dir>``
    (Lightning issue #11300). Under ``-m`` that argv is the whole sweep and ``run.dir`` is not the job's
    folder. Replace argv by this job's own overrides and point ``run.dir`` at the job's output folder.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def print_summary(summary: dict[str, Any]) -> None:
    metrics = summary["metrics"]
    line = "  ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if k in ("AP", "AP50", "AP75", "APM", "APL", "AR")
    )
    vis = "  ".join(f"{k} {metrics[k]:.4f}" for k in ("AP_vis", "AP_invis") if k in metrics)
    print(f"\n[aidpose] final validation ({summary['epochs']} epochs, {summary['seconds']:.0f} s): {line}")
    if vis:
        print(f"[aidpose] {vis}")
    print(f"[aidpose] run folder: {summary['run_dir']}")


if __name__ == "__main__":
    main()
