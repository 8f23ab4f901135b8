"""Evaluation entry point: ``python -m aidpose.evaluate ckpt_path=PATH [dataset=NAME] [test.KEY=VALUE ...]``.

Rebuilds the model from the checkpoint's stored run config, runs ``trainer.test`` on the val split
(under DDP every rank's predictions are gathered and padding duplicates removed before scoring) and
writes into the Hydra run folder ``results.json`` (COCO keypoint results) and ``metrics.json``. With
``dataset.source.test_file=FILE`` (images only, e.g. COCO test-dev's ``image_info_test-dev2017.json``) it
predicts that file's images instead: ``results.json`` is then the file to submit to the COCO evaluation server,
and no metric is computed (there is no ground truth). With
``test.occlusion=DROPPER`` it re-evaluates under test-time occlusion (:mod:`aidpose.evaluation.occlusion`)
and writes ``occlusion.json`` (AP versus measured occluded area) and ``occlusion.png``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from aidpose.runtime import CONFIG_PATH


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    """Hydra task: evaluate a checkpoint, return its AP (for sweepers)."""
    return evaluate(cfg)["metrics"].get("AP")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    import pytorch_lightning as pl

    from aidpose.builders import build_datamodule, config_from_checkpoint, load_module_from_checkpoint
    from aidpose.data.coco import has_annotations
    from aidpose.data.occlusion import OccludedDataset
    from aidpose.evaluation.api import format_metrics
    from aidpose.evaluation.occlusion import occlusion_droppers, occlusion_rows, write_occlusion_report
    from aidpose.runtime import command_line_keys, relaunch_ddp_children_with_this_job, teardown_distributed
    from aidpose.training.callbacks import OcclusionMeter
    from aidpose.training.checkpoints import read_checkpoint

    started = time.time()
    ckpt_path = str(cfg.ckpt_path)
    ckpt = read_checkpoint(ckpt_path)
    run = config_from_checkpoint(ckpt, cfg, ckpt_path, command_line_keys())
    module = load_module_from_checkpoint(run, ckpt, ckpt_path)
    datamodule = build_datamodule(run, module.codec)
    occlusion_param, droppers = occlusion_droppers(run.test)
    seed = int(run.test.occlusion_seed)
    datamodule.setup("test")
    images_only = not has_annotations(datamodule.val_dataset.coco)
    if images_only and droppers:
        raise ValueError(
            f"test.occlusion={run.test.occlusion} measures AP under occlusion, but {datamodule.val_dataset.ann_file} "
            "lists images only (no annotations): drop test.occlusion or dataset.source.test_file"
        )
    occluded = [
        (level, OccludedDataset(datamodule.val_dataset, dropper, seed)) for level, dropper in droppers
    ]
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
        "ground_truth": not images_only,
        "data": val.summary,
        "num_results": len(module.last_results),
        "test": OmegaConf.to_container(run.test, resolve=True),
        "codec": vars(module.codec),
        "world_size": trainer.world_size,
        "seconds": round(time.time() - started, 1),
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        (run_dir / "results.json").write_text(json.dumps(module.last_results))
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        if images_only:
            print(
                f"\n[aidpose] {val.ann_file} lists images only (no annotations): no metric can be computed without "
                f"ground truth. results.json ({len(module.last_results)} poses on {val.summary.get('images')} "
                "images) is in the COCO results format the evaluation server scores (e.g. COCO test-dev)."
            )
        else:
            print(
                f"\n[aidpose] {run.dataset.name} val, {val.summary.get('instances')} instances, ckpt {ckpt_path}"
            )
            print(format_metrics(metrics))
        print(f"[aidpose] results.json and metrics.json in {run_dir}")
    if occluded:
        rows = occlusion_rows(trainer, module, datamodule, occluded, meter, metrics)
        if trainer.is_global_zero:
            report = {"dropper": run.test.occlusion, "param": occlusion_param, "seed": seed, "rows": rows}
            write_occlusion_report(report, run_dir, ckpt_path)
        summary["occlusion"] = rows
    teardown_distributed(trainer)
    return summary


if __name__ == "__main__":
    main()
