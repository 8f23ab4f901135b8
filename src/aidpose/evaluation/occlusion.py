"""Robustness: the same evaluation under test-time occlusion, one AID dropper level after another.

``test.occlusion=DROPPER`` (a ``conf/dropper`` option, applied with ``p=1``) and ``test.occlusion_levels``
(values of its strength argument, or ``test.occlusion_param``) give one evaluation per level on
:class:`~aidpose.data.occlusion.OccludedDataset` crops; the rows (measured occluded area, dropped
keypoints, metrics) go to ``occlusion.json``, ``occlusion.png`` and a printed table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from aidpose.tables import format_table

TABLE_METRICS = ("AP", "AP50", "AP75", "AR")


def occlusion_droppers(test: DictConfig) -> tuple[str | None, list[tuple[float | None, Any]]]:
    """The dropper argument the levels set and (level, dropper) per level of ``test.occlusion``.

    Without ``test.occlusion_levels`` there is one dropper, the config as is (level None, argument None);
    without ``test.occlusion`` there is none.
    """
    from hydra.utils import instantiate

    from aidpose.aid.transforms import declared_strength
    from aidpose.builders import dropper_config
    from aidpose.data.occlusion import level_config

    if test.get("occlusion") is None:
        return None, []
    base = dropper_config(str(test.occlusion), "test.occlusion")
    levels = test.occlusion_levels
    if levels is None:
        return None, [(None, instantiate(level_config(base, None)))]
    if not OmegaConf.is_list(levels) or not len(levels):
        raise ValueError(f"test.occlusion_levels={levels} must be a non-empty list, e.g. [0.1,0.2,0.3]")
    strength = declared_strength(str(base.get("_target_")))
    param = test.occlusion_param or (strength.param if strength else None)
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
    occluded: list[tuple[float | None, Any]],
    meter: Any,
    clean_metrics: dict[str, float],
) -> list[dict[str, Any]]:
    """One row per occlusion level (the clean evaluation first): measured occlusion and metrics of
    ``occluded``, the (level, ``OccludedDataset``) of every level, each tested in place of the val set."""
    base = datamodule.val_dataset
    rows = [{"level": "clean", "occluded_area": 0.0, "dropped_kpt_frac": 0.0, "metrics": clean_metrics}]
    for level, dataset in occluded:
        datamodule.val_dataset = dataset
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in module.last_metrics.items()}
        rows.append({"level": level, **meter.summary, "metrics": metrics})
    datamodule.val_dataset = base
    return rows


def format_occlusion_table(rows: list[dict[str, Any]]) -> str:
    """Text table: level, measured occluded area and dropped keypoints (%), then the main metrics."""
    cells = [
        [
            level_label(row["level"]),
            f"{100 * row['occluded_area']:.2f}",
            f"{100 * row['dropped_kpt_frac']:.2f}",
            *(f"{row['metrics'].get(k, float('nan')):.4f}" for k in TABLE_METRICS),
        ]
        for row in rows
    ]
    header = ["level", "area %", "kpts %", *TABLE_METRICS]
    return format_table(header, cells, ">" * len(header))


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
