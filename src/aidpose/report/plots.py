"""The report's figures, drawn from ``report.json``'s numbers: training curves (the paper's Figure 2) and
occlusion-robustness curves. One row of panels per family (rows that differ only in the baseline key); one line
per configuration, the band spans the runs' minimum and maximum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aidpose.report.summary import OCCLUSION_METRICS, family, label, of_key

CURVE_PANELS = (("val/AP", "validation AP (%)", 100.0), ("train/loss_epoch", "training loss", 1.0))


def families(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Cells grouped by their configuration without the baseline key, labelled by the keys that vary."""
    key = report["baseline"].split("=", 1)[0]
    shown = [k for k in report["varying"] if not of_key(k, key)]
    groups: dict[str, list[dict[str, Any]]] = {}
    for cell in report["cells"]:
        groups.setdefault(label(family(cell["config"], key), shown), []).append(cell)
    return list(groups.items())


def line_label(cell: dict[str, Any], report: dict[str, Any], n: int) -> str:
    """The configuration's baseline-key items (e.g. ``dropper=cutout``) and the number of runs behind the line."""
    key = report["baseline"].split("=", 1)[0]
    own = [k for k in report["varying"] if of_key(k, key)]
    return f"{label(cell['config'], own) if own else cell['label']} (n={n})"


def plot_curves(report: dict[str, Any], out: Path) -> Path:
    """Validation AP and training loss against epochs done, per configuration; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = families(report)
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.6 * len(rows)), squeeze=False)
    for (title, cells), row_axes in zip(rows, axes, strict=True):
        for (column, ylabel, scale), ax in zip(CURVE_PANELS, row_axes, strict=True):
            for cell in cells:
                curve = cell["curves"].get(column)
                if not curve:
                    continue
                (line,) = ax.plot(curve["epoch"], [scale * v for v in curve["mean"]], marker=".",
                                  label=line_label(cell, report, max(curve["n"])))  # fmt: skip
                band = ([scale * v for v in curve["min"]], [scale * v for v in curve["max"]])
                ax.fill_between(curve["epoch"], *band, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set(xlabel="epochs trained", ylabel=ylabel, title=title)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle("mean over seeds; band: min–max")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_occlusion(report: dict[str, Any], dropper: str, out: Path) -> Path:
    """AP, AP_vis, AP_invis against the measured occluded area under test-time ``dropper``, per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(t, [c for c in cells if dropper in c["occlusion"]]) for t, cells in families(report)]
    rows = [(t, cells) for t, cells in rows if cells]
    fig, axes = plt.subplots(len(rows), len(OCCLUSION_METRICS), figsize=(13, 3.6 * len(rows)), squeeze=False)
    for (title, cells), row_axes in zip(rows, axes, strict=True):
        for metric, ax in zip(OCCLUSION_METRICS, row_axes, strict=True):
            for cell in cells:
                points = cell["occlusion"][dropper]
                area = [100 * p["occluded_area"] for p in points]
                (line,) = ax.plot(area, [100 * p[metric]["mean"] for p in points], marker="o",
                                  label=line_label(cell, report, max(p["n"] for p in points)))  # fmt: skip
                band = ([100 * p[metric]["min"] for p in points], [100 * p[metric]["max"] for p in points])
                ax.fill_between(area, *band, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set(xlabel="occluded area of the crop (%)", ylabel=f"{metric} (%)", title=title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"test-time occlusion: {dropper}; mean over seeds, band: min–max")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
