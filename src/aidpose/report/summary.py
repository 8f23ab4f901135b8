"""Group runs by configuration, aggregate over seeds, compare with the baseline row, render Markdown."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aidpose.report.runs import TECHNICAL_KEYS, Run

TABLE_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AP_vis", "AP_invis")
OCCLUSION_METRICS = ("AP", "AP_vis", "AP_invis")
FIT_KEYS = ("train_AP", "val_AP", "gap", "train_loss", "val_loss")


def group_runs(runs: Iterable[Run]) -> dict[tuple[tuple[str, str], ...], list[Run]]:
    """Runs by configuration (runs that differ only by seed share one), in first-seen order."""
    cells: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        cells.setdefault(tuple(run.config.items()), []).append(run)
    return cells


def baseline_config(
    config: dict[str, str], baseline: tuple[str, str], available: Iterable[dict[str, str]] = ()
) -> dict[str, str] | None:
    """The configuration this one is compared with; None for a baseline row itself.

    Among the ``available`` rows with ``key=value`` and otherwise the same configuration, the one that shares the
    most of this row's sub-keys of ``key`` (``schedule=s1 schedule.scale=0.2`` → ``schedule=s2
    schedule.scale=0.2``). Without such a row, the nominal one: ``key=value``, the key's sub-keys dropped
    (``dropper=cutout dropper.p=0.5 schedule=s2`` → ``dropper=none schedule=s2``).
    """
    key, value = baseline
    if config.get(key) == value:
        return None
    own = family(config, key)
    matches = [c for c in available if c.get(key) == value and family(c, key) == own]
    if matches:
        return max(
            matches,
            key=lambda c: sum(1 if config.get(k) == v else -1 for k, v in c.items() if of_key(k, key)),
        )
    return dict(sorted({**own, key: value}.items()))


def of_key(name: str, key: str) -> bool:
    """``name`` is ``key`` or one of its sub-keys (``dropper``, ``dropper.p``)."""
    return name == key or name.startswith(f"{key}.")


def family(config: dict[str, str], baseline_key: str) -> dict[str, str]:
    """The configuration without the baseline key and its sub-keys: rows compared with each other."""
    return {k: v for k, v in config.items() if not of_key(k, baseline_key)}


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def metric_stats(values: Sequence[float]) -> dict[str, Any]:
    """Mean/std over seeds; undefined (None) if any run has no ground truth for it (pycocotools' -1)."""
    if not values or any(v < 0 for v in values):
        return {"mean": None, "std": None, "values": list(values)}
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": list(values)}


def difference_se(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """Standard error of the difference of two rows' means, ``sqrt(s_a²/n_a + s_b²/n_b)`` (Welch); None unless
    both rows have a sample std (two or more runs)."""
    if a["std"] is None or b["std"] is None:
        return None
    return math.sqrt(a["std"] ** 2 / len(a["values"]) + b["std"] ** 2 / len(b["values"]))


def format_stat(
    mean: float | None,
    std: float | None,
    delta: float | None = None,
    delta_se: float | None = None,
    scale: float = 100,
    digits: int = 1,
) -> str:
    """``23.2 ± 0.4 (+1.1 ± 0.3)``: the values times ``scale`` (a fraction in, points out) with ``digits``
    decimals; ``n/a`` if undefined."""
    if mean is None:
        return "n/a"
    text = f"{scale * mean:.{digits}f}" + ("" if std is None else f" ± {scale * std:.{digits}f}")
    if delta is None:
        return text
    se = "" if delta_se is None else f" ± {scale * delta_se:.{digits}f}"
    return f"{text} ({scale * delta:+.{digits}f}{se})"


def varying_keys(configs: Sequence[dict[str, str]]) -> list[str]:
    """Keys whose value is not the same in every configuration."""
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({c.get(k) for c in configs}) > 1]


def label(config: dict[str, str], keys: Sequence[str]) -> str:
    return " ".join(f"{k}={config.get(k, '(default)')}" for k in keys) or "all runs"


def curve_stats(curves: Sequence[dict[int, float]]) -> dict[str, list[float]]:
    """Mean, min and max over runs at every epoch any run logged (``n`` = runs with a value there)."""
    epochs = sorted({e for c in curves for e in c})
    values = [[c[e] for c in curves if e in c] for e in epochs]
    return {
        "epoch": epochs,
        "mean": [statistics.fmean(v) for v in values],
        "min": [min(v) for v in values],
        "max": [max(v) for v in values],
        "n": [len(v) for v in values],
    }


def occlusion_stats(reports: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per occlusion level: mean measured occluded area and mean/min/max of each metric over runs."""
    levels: dict[str, list[dict[str, Any]]] = {}
    for rows in reports:
        for row in rows:
            levels.setdefault(str(row["level"]), []).append(row)
    out = []
    for level, rows in levels.items():
        entry: dict[str, Any] = {
            "level": level,
            "n": len(rows),
            "occluded_area": statistics.fmean(r["occluded_area"] for r in rows),
        }
        for metric in OCCLUSION_METRICS:
            values = [r["metrics"][metric] for r in rows]
            entry[metric] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
        out.append(entry)
    return sorted(out, key=lambda e: e["occluded_area"])


def dropped_stats(shares: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per joint, the mean over runs of the share the dropper hid; {} when no run hid anything."""
    joints = [j for j in (shares[0] if shares else {}) if all(j in s for s in shares)]
    means = {j: statistics.fmean(s[j] for s in shares) for j in joints}
    return means if any(means.values()) else {}


def fit_stats(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """How closely the runs fit their training data: final AP on the training images (``train_set_eval.json``)
    against validation AP, their gap, and the last epoch's training loss against the last validation loss.
    Only the entries every run has; {} when no run has any."""

    def last(curve: dict[int, float]) -> float | None:
        return curve[max(curve)] if curve else None

    per_run = []
    for r in runs:
        entry = {
            "train_loss": last(r.curves.get("train/loss_epoch", {})),
            "val_loss": last(r.curves.get("val/loss", {})),
        }
        if "AP" in r.train_set and "AP" in r.metrics:
            entry |= {
                "train_AP": r.train_set["AP"],
                "val_AP": r.metrics["AP"],
                "gap": r.train_set["AP"] - r.metrics["AP"],
            }
        per_run.append(entry)
    keys = [k for k in FIT_KEYS if per_run and all(e.get(k) is not None for e in per_run)]
    return {k: metric_stats([e[k] for e in per_run]) for k in keys}


def build_report(
    runs: Sequence[Run],
    metrics: Sequence[str] = TABLE_METRICS,
    baseline: tuple[str, str] = ("dropper", "none"),
    sources: Sequence[Path] = (),
    ignored: Sequence[str] = TECHNICAL_KEYS,
) -> dict[str, Any]:
    """The numbers of the report (``report.json``): one cell per configuration, unfinished runs apart."""
    finished = [r for r in runs if r.problem is None]
    # from finished runs: a run that never wrote metrics.json may know only its overrides, not its choices
    configs = [r.config for r in finished]
    common = {k: v for k, v in (configs[0].items() if configs else ()) if all(c.get(k) == v for c in configs)}
    shown = varying_keys(configs)
    by_config = group_runs(finished)
    cells = []
    for key, cell_runs in sorted(by_config.items(), key=lambda kv: row_order(dict(kv[0]), baseline)):
        config = dict(key)
        compared = baseline_config(config, baseline, (dict(k) for k in by_config))
        compared_runs = by_config.get(tuple(compared.items())) if compared is not None else None
        stats = {m: metric_stats([r.metrics.get(m, -1.0) for r in cell_runs]) for m in metrics}
        for m, s in stats.items():
            reference = metric_stats([r.metrics.get(m, -1.0) for r in compared_runs or []])
            both = s["mean"] is not None and reference["mean"] is not None
            s["delta"] = s["mean"] - reference["mean"] if both else None
            s["delta_se"] = difference_se(s, reference) if both else None
        columns = sorted({c for r in cell_runs for c in r.curves})
        test_droppers = sorted({d for r in cell_runs for d in r.occlusion})
        cells.append(
            {
                "label": label(config, shown),
                "config": config,
                "n": len(cell_runs),
                "seeds": [r.seed for r in cell_runs],
                "runs": [str(r.path) for r in cell_runs],
                "baseline": None if compared is None else label(compared, shown),
                "baseline_found": compared_runs is not None,
                "metrics": stats,
                "curves": {
                    c: curve_stats([r.curves[c] for r in cell_runs if c in r.curves]) for c in columns
                },
                "occlusion": {
                    d: occlusion_stats([r.occlusion[d] for r in cell_runs if d in r.occlusion])
                    for d in test_droppers
                },
                "dropped": dropped_stats([r.dropped for r in cell_runs]),
                "fit": fit_stats(cell_runs),
            }
        )
    return {
        "sources": [str(s) for s in sources],
        "grouping": "configuration = every config group's option + key=value overrides, without the seed and "
        "technical keys; runs of one configuration (differing only by seed) form one row",
        "ignored_keys": list(ignored),
        "common": common,
        "varying": shown,
        "baseline": "=".join(baseline),
        "metrics": list(metrics),
        "cells": cells,
        "unfinished": [
            {"run": str(r.path), "configuration": label(r.config, shown), "seed": r.seed, "reason": r.problem}
            for r in runs
            if r.problem is not None
        ],
    }


def row_order(config: dict[str, str], baseline: tuple[str, str]) -> tuple[Any, ...]:
    """Rows of one family together, its baseline row first."""
    key, value = baseline
    return (sorted(family(config, key).items()), config.get(key) != value, sorted(config.items()))


def dropped_table(cells: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines: per joint (rows), the share each dropper row hid in training (no lines without one)."""
    if not cells:
        return []
    joints = list(cells[0]["dropped"])
    lines = [
        "",
        "## Keypoints hidden by the training dropper",
        "",
        "Share of each joint's labelled keypoints inside a dropped region of the training input, mean over "
        "epochs and seeds (percent).",
        "",
        "| joint | " + " | ".join(c["label"] for c in cells) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for joint in joints:
        lines.append(
            f"| {joint} | " + " | ".join(f"{100 * c['dropped'].get(joint, 0):.1f}" for c in cells) + " |"
        )
    return lines


def fit_table(cells: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines: per row, AP on the training images against validation AP and the losses (no lines
    without a row evaluated on its training images)."""
    if not cells:
        return []
    lines = [
        "",
        "## Fit to the training set",
        "",
        "Final checkpoint evaluated like validation on the run's own training images (`train_set_eval.json`) "
        "against validation; gap = train AP − val AP (points); losses: last training epoch and last validation "
        "(×1000). Mean ± std over the row's runs.",
        "",
        "| configuration | n | train AP | val AP | gap | train loss | val loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        fit = cell["fit"]
        aps = [format_stat(fit[k]["mean"], fit[k]["std"]) for k in ("train_AP", "val_AP", "gap")]
        losses = [
            format_stat(fit[k]["mean"], fit[k]["std"], scale=1000, digits=3) if k in fit else "n/a"
            for k in ("train_loss", "val_loss")
        ]
        lines.append(f"| {cell['label']} | {cell['n']} | " + " | ".join(aps + losses) + " |")
    return lines


def markdown(report: dict[str, Any], figures: Sequence[str] = ()) -> str:
    """The report as Markdown: settings, the table (paper layout), figures, unfinished runs."""
    metrics = report["metrics"]
    cells = report["cells"]
    n_runs = sum(c["n"] for c in cells)
    lines = [
        f"# Results: {n_runs} finished runs in {len(cells)} configurations",
        "",
        f"Runs from: {', '.join(f'`{s}`' for s in report['sources'])}.",
        f"Rows: {report['grouping']}.",
        f"Common to every row: `{label(report['common'], list(report['common']))}`.",
        "Values: percent, mean ± sample std over the row's runs (seeds); in parentheses the difference in points "
        f"to the same configuration with `{report['baseline']}` ± its standard error, sqrt(s²/n + s_b²/n_b) "
        "(shown when both rows have two or more runs).",
        "",
        "| configuration | n | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for cell in cells:
        values = [
            format_stat(s["mean"], s["std"], s["delta"], s["delta_se"])
            for s in (cell["metrics"][m] for m in metrics)
        ]
        lines.append(f"| {cell['label']} | {cell['n']} | " + " | ".join(values) + " |")
    missing = [c for c in cells if c["baseline"] is not None and not c["baseline_found"]]
    if missing:
        lines += [
            "",
            "No baseline row for: " + "; ".join(f"{c['label']} (needs {c['baseline']})" for c in missing),
        ]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    lines += fit_table([c for c in cells if "gap" in c["fit"]])
    lines += dropped_table([c for c in cells if c["dropped"]])
    unfinished = report["unfinished"]
    lines += ["", f"## Unfinished or failed runs ({len(unfinished)}, not in the table)", ""]
    if unfinished:
        lines += ["| run | configuration | seed | reason |", "|---|---|---|---|"]
        lines += [
            f"| `{u['run']}` | {u['configuration']} | {u['seed']} | {u['reason']} |" for u in unfinished
        ]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
