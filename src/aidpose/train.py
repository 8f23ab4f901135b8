"""Training entry point: ``python -m aidpose.train [group=option ...] [key=value ...]``.

Writes into the Hydra run folder: ``metrics.json`` (final validation metrics, the run's config choices,
seed, overrides and status; written atomically, also when the run fails), ``results.json`` (the final
validation's COCO results), ``last.ckpt`` (every epoch) /
``best.ckpt`` and ``aid_dropped_per_joint.json`` (``conf/callbacks``), the logger's files and ``.hydra/``
(the resolved config). ``schedule=s3`` (bottom-up: ``bottomup_s3``) runs two stages, each in its own folder
(``stage1/``, ``stage2/``, see ``aidpose.training.stages``); the top-level ``metrics.json`` is stage 2's and links
both.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, open_dict

from aidpose.runtime import CONFIG_PATH, restored_environ, write_json

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: train, return val AP (for sweepers)."""
    with restored_environ():
        return train(cfg).get("AP")


def train(cfg: DictConfig) -> dict[str, float]:
    """Run the schedule's stages; ``metrics.json`` says ``finished``, or ``failed``/``interrupted`` and why."""
    from pytorch_lightning.utilities import rank_zero_only

    from aidpose.runtime import job_overrides, run_choices, teardown_distributed
    from aidpose.training.checkpoints import read_checkpoint
    from aidpose.training.stages import plan_stages

    started = time.time()
    run_dir = Path(cfg.paths.output_dir)
    ckpt_stage = read_checkpoint(cfg.ckpt_path).get("aidpose_stage") if cfg.ckpt_path else None
    stages = plan_stages(
        cfg.schedule.get("stages", 1),
        run_dir,
        init_weights=cfg.init_weights,
        ckpt_path=cfg.ckpt_path,
        ckpt_stage=ckpt_stage,
        stage1_ckpt=cfg.schedule.get("stage1_ckpt"),
    )
    header = {"seed": cfg.seed, "overrides": job_overrides(), "choices": run_choices()}
    trainers: list[Any] = []  # the first one launched the DDP child ranks (they run every stage)
    summaries: list[dict[str, Any]] = []
    try:
        for stage in stages:
            summaries.append(train_stage(stage_config(cfg, stage), stage, header, trainers))
    except BaseException as err:
        teardown_distributed(trainers, finished=False)
        if rank_zero_only.rank == 0:
            interrupted = isinstance(err, SystemExit | KeyboardInterrupt)
            write_json(
                run_dir / "metrics.json",
                {
                    **header,
                    "status": "interrupted" if interrupted else "failed",
                    "error": f"{type(err).__name__}: {err}",
                    "max_epochs": build_max_epochs(cfg),
                    "run_dir": str(run_dir),
                    "stages": [str(s.output_dir) for s in stages if s.name],
                },
            )
        raise
    teardown_distributed(trainers, finished=True)
    summary = summaries[-1]
    if len(summaries) > 1 or stages[0].name:
        summary = {
            **summary,
            "run_dir": str(run_dir),
            "seconds": round(time.time() - started, 1),
            "stages": stage_links(stages, cfg.schedule.get("stage1_ckpt")),
        }
        if rank_zero_only.rank == 0:
            write_json(run_dir / "metrics.json", summary)
    if rank_zero_only.rank == 0:
        print_summary(summary)
    return summary["metrics"]


def stage_config(cfg: DictConfig, stage: Any) -> DictConfig:
    """The config of one stage: its run folder, and no dropper in a stage that trains without it."""
    if not stage.name:
        return cfg
    stage_cfg = cfg.copy()
    with open_dict(stage_cfg):
        stage_cfg.paths.output_dir = str(stage.output_dir)
        if not stage.dropper:
            stage_cfg.dropper = None
    return stage_cfg


def stage_links(stages: list[Any], stage1_ckpt: str | None) -> dict[str, dict[str, Any]]:
    """Where each S3 stage's results are: its run folder and metrics.json, or the given stage-1 checkpoint."""
    links = {
        s.name: {"run_dir": str(s.output_dir), "metrics": str(s.output_dir / "metrics.json")} for s in stages
    }
    if "stage1" not in links:
        links = {"stage1": {"ckpt": stage1_ckpt or "resumed inside stage 2"}, **links}
    return links


def build_max_epochs(cfg: DictConfig) -> int | None:
    """The configured number of epochs (per stage), or None when the schedule config itself is broken."""
    from aidpose.builders import build_schedule

    try:
        return build_schedule(cfg).scaled_epochs
    except Exception:  # the run's own error is the one to report
        return None


def train_stage(cfg: DictConfig, stage: Any, header: dict[str, Any], trainers: list[Any]) -> dict[str, Any]:
    """Train one stage in ``stage.output_dir``; write its ``metrics.json`` (rank 0) and return it."""
    import pytorch_lightning as pl

    from aidpose.builders import build_codec, build_datamodule, build_dropper, build_module
    from aidpose.runtime import relaunch_ddp_children_with_this_job
    from aidpose.training.callbacks import AidStatistics, instantiate_group
    from aidpose.training.checkpoints import load_weights_only
    from aidpose.training.dashboards import finish_wandb

    started = time.time()
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(stage.output_dir)
    module = build_module(cfg, build_codec(cfg))
    module.stage = stage.name or None
    datamodule = build_datamodule(cfg, module.codec, build_dropper(cfg))
    if stage.init_weights:
        load_weights_only(module, stage.init_weights)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    max_epochs = module.schedule.scaled_epochs
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
    )
    trainers.append(trainer)
    choices = header["choices"]
    log.info("config choices: %s%s", " ".join(f"{k}={v}" for k, v in sorted(choices.items())),
             f" ({stage.name})" if stage.name else "")  # fmt: skip
    for logger in loggers:
        logger.log_hyperparams({"choices": choices, "config": module.run_config})
    relaunch_ddp_children_with_this_job()
    trainer.fit(module, datamodule=datamodule, ckpt_path=stage.ckpt_path)
    if module.last_metrics_epoch != trainer.current_epoch - 1 or not module.last_metrics:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    skipped = datamodule.unreadable_images_skipped()
    if any(skipped.values()):
        log.warning("unreadable images skipped (loader.skip_unreadable_images=true): %s", skipped)
    summary = {
        "metrics": {k: float(v) for k, v in module.last_metrics.items()},
        **header,
        "status": "finished",
        "epochs": trainer.current_epoch,
        "max_epochs": max_epochs,
        "global_step": trainer.global_step,
        "seconds": round(time.time() - started, 1),
        "run_dir": str(run_dir),
        "last_ckpt": str(run_dir / "last.ckpt"),
        "unreadable_images_skipped": skipped,
        "train_data": datamodule.train_dataset.summary,  # what it trained on (each set's counts in a mix)
        "aid_dropped_kpt_frac": next(
            (c.last_fraction for c in callbacks if isinstance(c, AidStatistics)), None
        ),
    }
    if stage.name:
        summary["stage"] = stage.name
    if trainer.is_global_zero:
        write_json(run_dir / "results.json", module.last_results)
        write_json(run_dir / "metrics.json", summary)
    if any(isinstance(logger, pl.loggers.WandbLogger) for logger in loggers):
        finish_wandb()  # one W&B run per stage and per job of a sweep; prints `wandb sync DIR` when offline
    return summary


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
