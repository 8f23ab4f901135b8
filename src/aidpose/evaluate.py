"""Evaluation entry point: ``python -m aidpose.evaluate ckpt_path=PATH [dataset=NAME] [test.KEY=VALUE ...]``.

Rebuilds the model from the checkpoint's stored run config, runs ``trainer.test`` on the val split
(under DDP every rank's predictions are gathered and padding duplicates removed before scoring) and
writes into the Hydra run folder ``results.json`` (COCO keypoint results) and ``metrics.json``. With
``test.occlusion=DROPPER`` it re-evaluates under test-time occlusion and writes ``occlusion.json`` (AP
versus measured occluded area) and ``occlusion.png``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

import aidpose  # noqa: F401  (sets offline-friendly environment defaults)

TABLE_METRICS = ("AP", "AP50", "AP75", "AR")


@hydra.main(version_base="1.3", config_path="../../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: evaluate a checkpoint, return its AP (for sweepers)."""
    return evaluate(cfg)["metrics"].get("AP")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    import pytorch_lightning as pl
    import torch

    from aidpose.builders import (
        build_datamodule,
        command_line_keys,
        config_from_checkpoint,
        load_module_from_checkpoint,
    )
    from aidpose.data.occlusion import OcclusionMeter
    from aidpose.evaluation.cli import format_table
    from aidpose.train import relaunch_ddp_children_with_this_job
    from aidpose.training.checkpoints import read_checkpoint

    started = time.time()
    ckpt_path = str(cfg.ckpt_path)
    ckpt = read_checkpoint(ckpt_path)
    run = config_from_checkpoint(ckpt, cfg, ckpt_path, command_line_keys())
    module = load_module_from_checkpoint(run, ckpt, ckpt_path)
    datamodule = build_datamodule(run)
    occlusion_param, droppers = occlusion_droppers(run.test)
    run_dir = Path(run.paths.output_dir)
    meter = OcclusionMeter()
    trainer: pl.Trainer = hydra.utils.instantiate(
        run.trainer,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[meter],
        default_root_dir=str(run_dir),
    )
    relaunch_ddp_children_with_this_job()
    # the padding duplicates Lightning warns about here are removed when predictions are gathered
    warnings.filterwarnings("ignore", message="Using `DistributedSampler` with the dataloaders")
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in module.last_metrics.items()}
    val = datamodule.val_dataset
    summary = {
        "metrics": metrics,
        "ckpt_path": ckpt_path,
        "dataset": run.dataset.name,
        "ann_file": val.ann_file,
        "data": val.summary,
        "num_results": len(module.last_results),
        "test": OmegaConf.to_container(run.test, resolve=True),
        "world_size": trainer.world_size,
        "seconds": round(time.time() - started, 1),
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        (run_dir / "results.json").write_text(json.dumps(module.last_results))
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        print(
            f"\n[aidpose] {run.dataset.name} val, {val.summary.get('instances')} instances, ckpt {ckpt_path}"
        )
        print(format_table(metrics))
        print(f"[aidpose] results.json and metrics.json in {run_dir}")
    if droppers:
        seed = int(run.test.occlusion_seed)
        rows = occlusion_rows(trainer, module, datamodule, droppers, seed, meter, metrics)
        if trainer.is_global_zero:
            report = {"dropper": run.test.occlusion, "param": occlusion_param, "seed": seed, "rows": rows}
            write_occlusion_report(report, run_dir, ckpt_path)
        summary["occlusion"] = rows
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # a barrier + explicit teardown avoids gloo's abort at interpreter exit (environment notes)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


def occlusion_droppers(test: DictConfig) -> tuple[str | None, list[tuple[float | None, Any]]]:
    """The dropper argument the levels set and (level, dropper) per level of ``test.occlusion``.

    Without ``test.occlusion_levels`` there is one dropper, the config as is (level None, argument None);
    without ``test.occlusion`` there is none.
    """
    from hydra.utils import instantiate

    from aidpose.builders import dropper_option
    from aidpose.data.occlusion import LEVEL_PARAMS, level_config

    if test.get("occlusion") is None:
        return None, []
    base = dropper_option(str(test.occlusion), "test.occlusion")
    levels = test.occlusion_levels
    if levels is None:
        return None, [(None, instantiate(level_config(base, None)))]
    if not OmegaConf.is_list(levels) or not len(levels):
        raise ValueError(f"test.occlusion_levels={levels} must be a non-empty list, e.g. [0.1,0.2,0.3]")
    param = test.occlusion_param or LEVEL_PARAMS.get(base.get("_target_"))
    return param, [(float(v), instantiate(level_config(base, float(v), param))) for v in levels]


def write_occlusion_report(report: dict[str, Any], run_dir: Path, ckpt_path: str) -> None:
    """occlusion.json, occlusion.png and the printed table."""
    (run_dir / "occlusion.json").write_text(json.dumps(report, indent=2))
    title = f"{report['dropper']}: {Path(ckpt_path).parent.name}/{Path(ckpt_path).name}"
    plot_occlusion_curve(report["rows"], run_dir / "occlusion.png", title)
    print(f"\n[aidpose] AP under test-time occlusion ({report['dropper']}, seed {report['seed']}):")
    print(format_occlusion_table(report["rows"]))
    print(f"[aidpose] occlusion.json and occlusion.png in {run_dir}")


def occlusion_rows(
    trainer: Any,
    module: Any,
    datamodule: Any,
    droppers: list[tuple[float | None, Any]],
    seed: int,
    meter: Any,
    clean_metrics: dict[str, float],
) -> list[dict[str, Any]]:
    """One row per occlusion level (the clean evaluation first): measured occlusion and metrics."""
    from aidpose.data.occlusion import OccludedDataset

    base = datamodule.val_dataset
    rows = [{"level": "clean", "occluded_area": 0.0, "dropped_kpt_frac": 0.0, "metrics": clean_metrics}]
    for level, dropper in droppers:
        datamodule.val_dataset = OccludedDataset(base, dropper, seed)
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in module.last_metrics.items()}
        rows.append({"level": level, **meter.summary, "metrics": metrics})
    datamodule.val_dataset = base
    return rows


def format_occlusion_table(rows: list[dict[str, Any]]) -> str:
    """Text table: level, measured occluded area and dropped keypoints (%), then the main metrics."""
    header = f"{'level':>8}  {'area %':>7}  {'kpts %':>7}  " + "  ".join(f"{k:>6}" for k in TABLE_METRICS)
    lines = [header, "-" * len(header)]
    for row in rows:
        level = level_label(row["level"])
        values = "  ".join(f"{row['metrics'].get(k, float('nan')):6.4f}" for k in TABLE_METRICS)
        lines.append(
            f"{level:>8}  {100 * row['occluded_area']:7.2f}  {100 * row['dropped_kpt_frac']:7.2f}  {values}"
        )
    return "\n".join(lines)


def level_label(level: str | float | None) -> str:
    """ "clean", a level value, or "as is" (the dropper config without levels)."""
    if level is None:
        return "as is"
    return level if isinstance(level, str) else f"{level:g}"


def plot_occlusion_curve(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """AP (and AR) versus measured occluded area (% of crop pixels), one point per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    area = [100 * row["occluded_area"] for row in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for key, style in (("AP", "o-"), ("AR", "s--")):
        ax.plot(area, [row["metrics"].get(key, float("nan")) for row in rows], style, label=key)
    for x, row in zip(area, rows, strict=True):
        point = (x, row["metrics"].get("AP", 0.0))
        ax.annotate(level_label(row["level"]), point, fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("occluded area (% of crop pixels, measured)")
    ax.set_ylabel("OKS AP / AR")
    ax.set_title(title, fontsize=8)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
