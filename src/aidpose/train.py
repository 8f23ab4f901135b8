"""Training entry point: ``python -m aidpose.train [group=option ...] [key=value ...]``.

Writes into the Hydra run folder: ``metrics.json`` (final validation metrics + the run's config
choices), ``last.ckpt`` / ``best.ckpt`` and ``aid_dropped_per_joint.json`` (``conf/callbacks``), the
logger's files and ``.hydra/`` (the resolved config).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from aidpose.runtime import CONFIG_PATH, restored_environ

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: train, return val AP (for sweepers)."""
    with restored_environ():
        return train(cfg).get("AP")


def train(cfg: DictConfig) -> dict[str, float]:
    import pytorch_lightning as pl

    from aidpose.builders import build_codec, build_datamodule, build_dropper, build_module
    from aidpose.runtime import relaunch_ddp_children_with_this_job, run_choices, teardown_process_group
    from aidpose.training.callbacks import AidStatistics, instantiate_group
    from aidpose.training.checkpoints import load_weights_only
    from aidpose.training.dashboards import finish_wandb

    started = time.time()
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.output_dir)
    module = build_module(cfg, build_codec(cfg))
    datamodule = build_datamodule(cfg, module.codec, build_dropper(cfg))
    if cfg.init_weights:
        load_weights_only(module, cfg.init_weights)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        max_epochs=module.schedule.scaled_epochs,
        callbacks=callbacks,
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
            "aid_dropped_kpt_frac": next(
                (c.last_fraction for c in callbacks if isinstance(c, AidStatistics)), None
            ),
        }
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        print_summary(summary)
    if any(isinstance(logger, pl.loggers.WandbLogger) for logger in loggers):
        finish_wandb()  # one W&B run per job of a sweep; prints `wandb sync DIR` when offline
    teardown_process_group()
    return metrics


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
