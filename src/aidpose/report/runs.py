"""Read training run folders: configuration, seed, final metrics, per-epoch curves, occlusion rows, status.

A run folder (written by ``python -m aidpose.train``, or a copy of its small files) holds:

- ``metrics.json``: final validation ``metrics``, config ``choices``, ``epochs``; optionally ``overrides``,
  ``seed``, ``max_epochs``, ``status``/``error`` (read when present, else taken from the files below);
- ``.hydra/overrides.yaml`` and ``.hydra/config.yaml`` (``.hydra/hydra.yaml`` for the choices of a run that
  never wrote ``metrics.json``);
- per-epoch logs: ``metrics.csv`` at the top, else Lightning's ``csv/version_*/metrics.csv`` (S3: in ``stage2/``);
- optionally ``occlusion.json`` (``aidpose.evaluate test.occlusion=...``) in the folder or one sub-folder;
- optionally ``aid_dropped_per_joint.json``: per epoch, the share of each joint's labelled keypoints the dropper
  hid in the training crops (S3: stage 2's);
- optionally ``train_set_eval.json``: ``aidpose.evaluate``'s ``metrics.json`` of the final checkpoint scored on the
  run's own training images (the overfitting gap).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# overrides that change how a run is launched or logged, not what it trains (the seed is kept apart);
# schedule.stage1_ckpt is the path of the stage 1 that S3 would otherwise train itself (one per seed)
TECHNICAL_KEYS = (
    "seed", "hydra", "paths", "logger", "ckpt_path", "trainer.enable_progress_bar", "schedule.stage1_ckpt",
)  # fmt: skip
CURVE_PREFIXES = ("val/", "train/loss_epoch")


@dataclass(frozen=True)
class Run:
    """One training run: its configuration (the grouping key, seed excluded) and what it produced."""

    path: Path
    config: dict[str, str]
    seed: str | None
    metrics: dict[str, float]
    problem: str | None = None  # why the run is not a finished one (None: finished)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # column → {epochs done: value}
    occlusion: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # test-time dropper → rows
    dropped: dict[str, float] = field(default_factory=dict)  # joint → share hidden by the dropper, epoch mean
    train_set: dict[str, float] = field(
        default_factory=dict
    )  # final checkpoint's metrics on its training images


def find_run_dirs(path: Path) -> list[Path]:
    """``path`` if it is a run folder, else every run folder below it (not inside another run, not ``report/``)."""
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is not a folder: give run folders or a folder of runs (a multirun sweep)"
        )
    if is_run_dir(path):
        return [path]
    found: list[Path] = []
    for child in sorted(path.iterdir(), key=lambda p: natural_key(p.name)):
        if child.is_dir() and not child.name.startswith(".") and child.name != "report":
            found += find_run_dirs(child)
    return found


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file() or (path / ".hydra").is_dir()


def natural_key(name: str) -> tuple[int, int, str]:
    """Job folders 0, 1, …, 10 (and versions) in numeric order, before named ones."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def is_technical(key: str, extra: Iterable[str] = ()) -> bool:
    return any(key == t or key.startswith((f"{t}.", f"{t}/")) for t in (*TECHNICAL_KEYS, *extra))


def config_key(overrides: list[str], choices: dict[str, Any], ignore: Iterable[str] = ()) -> dict[str, str]:
    """The configuration of a run: every config group's option plus the ``key=value`` overrides.

    Group overrides (``dropper=cutout``) are already in ``choices``, so a run that took a default and one that
    named it are the same configuration. The seed and technical keys (``TECHNICAL_KEYS`` and ``ignore``) are
    left out, so runs that differ only by seed share a key.
    """
    config = {group: str(option) for group, option in choices.items() if option is not None}
    for item in overrides:
        name, _, value = item.lstrip("+").partition("=")
        if name not in choices:
            config[name] = value
    return {k: config[k] for k in sorted(config) if not is_technical(k, ignore)}


def run_problem(summary: dict[str, Any] | None, expected_epochs: int | None) -> str | None:
    """Why a run cannot be averaged (no metrics.json, an error or unfinished status, too few epochs), or None."""
    if summary is None:
        return "no metrics.json (failed, killed or still running)"
    status = summary.get("status")
    if status not in (None, "finished") or summary.get("error"):
        return f"status {status or 'error'}: {summary.get('error') or 'not finished'}"
    if not summary.get("metrics"):
        return "metrics.json has no metrics"
    epochs = summary.get("epochs")
    if expected_epochs is not None and (epochs is None or epochs < expected_epochs):
        return f"{epochs} of {expected_epochs} epochs trained"
    return None


def read_epoch_curves(rows: Iterable[dict[str, str]]) -> dict[str, dict[int, float]]:
    """Per-epoch values of the ``val/*`` and ``train/loss_epoch`` columns of Lightning CSV rows.

    The x value is the number of epochs done: Lightning's 0-based ``epoch`` + 1, except for a validation run after
    training (``trainer.validate``), logged with ``epoch`` = epochs done already. Later rows win (a resumed run).
    """
    rows = [r for r in rows if r.get("epoch")]
    trained = [int(r["epoch"]) + 1 for r in rows if r.get("train/loss_epoch")]
    done = max(trained, default=None)
    curves: dict[str, dict[int, float]] = {}
    for row in rows:
        epoch = int(row["epoch"]) + 1
        x = epoch if done is None else min(epoch, done)
        for column, value in row.items():
            if value and column.startswith(CURVE_PREFIXES):
                curves.setdefault(column, {})[x] = float(value)
    return {column: dict(sorted(points.items())) for column, points in curves.items()}


def last_stage(path: Path) -> Path:
    """The folder of a run's last stage: ``stage2/`` in an S3 run folder, else the run folder itself."""
    return path / "stage2" if (path / "stage2").is_dir() else path


def csv_logs(path: Path) -> list[Path]:
    """The run's per-epoch CSV logs, oldest first (an S3 run's: its last stage's, ``stage2/``)."""
    if (path / "metrics.csv").is_file():
        return [path / "metrics.csv"]
    return sorted(
        last_stage(path).glob("csv/version_*/metrics.csv"),
        key=lambda p: natural_key(p.parent.name.removeprefix("version_")),
    )


def occlusion_reports(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of ``occlusion.json`` in the run folder or its sub-folders, by test-time dropper."""
    reports = {}
    for file in [path / "occlusion.json", *sorted(path.glob("*/occlusion.json"))]:
        if file.is_file():
            report = json.loads(file.read_text())
            reports[str(report.get("dropper", file.parent.name))] = report["rows"]
    return reports


def dropped_shares(path: Path) -> dict[str, float]:
    """Mean over epochs of each joint's share hidden by the training dropper ({} without the file)."""
    file = last_stage(path) / "aid_dropped_per_joint.json"
    epochs = json.loads(file.read_text()) if file.is_file() else []
    joints = [k for k in (epochs[0] if epochs else {}) if k != "epoch"]
    return {j: sum(e[j] for e in epochs) / len(epochs) for j in joints}


def expected_epochs(summary: dict[str, Any] | None, config: dict[str, Any]) -> int | None:
    """Configured number of epochs: ``max_epochs`` in metrics.json, else the schedule of ``.hydra/config.yaml``."""
    if summary and summary.get("max_epochs") is not None:
        return int(summary["max_epochs"])
    schedule = config.get("schedule")
    if not isinstance(schedule, dict) or "_target_" not in schedule:
        return None
    from hydra.utils import instantiate

    return getattr(instantiate(schedule), "scaled_epochs", None)


def read_yaml(file: Path) -> Any:
    return yaml.safe_load(file.read_text()) if file.is_file() else None


def hydra_choices(hydra_dir: Path) -> dict[str, Any]:
    """``hydra.runtime.choices`` from ``.hydra/hydra.yaml`` (for runs that wrote no metrics.json)."""
    hydra_cfg = (read_yaml(hydra_dir / "hydra.yaml") or {}).get("hydra", {})
    return hydra_cfg.get("runtime", {}).get("choices", {})


def read_run(path: Path, ignore: Iterable[str] = ()) -> Run:
    """Everything the report needs from one run folder (see the module docstring for the layout)."""
    summary = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").is_file() else None
    known = summary or {}
    hydra_dir = path / ".hydra"
    overrides = known["overrides"] if "overrides" in known else read_yaml(hydra_dir / "overrides.yaml") or []
    choices = known["choices"] if "choices" in known else hydra_choices(hydra_dir)
    config_yaml = read_yaml(hydra_dir / "config.yaml") or {}
    seeds = [o.split("=", 1)[1] for o in overrides if o.startswith("seed=")]
    seed = known["seed"] if "seed" in known else seeds[-1] if seeds else config_yaml.get("seed")
    rows: list[dict[str, str]] = []
    for log in csv_logs(path):
        with log.open(newline="") as f:
            rows += list(csv.DictReader(f))
    return Run(
        path=path,
        config=config_key(overrides, choices, ignore),
        seed=None if seed is None else str(seed),
        metrics=known.get("metrics") or {},
        problem=run_problem(summary, expected_epochs(summary, config_yaml)),
        curves=read_epoch_curves(rows),
        occlusion=occlusion_reports(path),
        dropped=dropped_shares(path),
        train_set=train_set_metrics(path),
    )


def train_set_metrics(path: Path) -> dict[str, float]:
    """Metrics of ``train_set_eval.json`` ({} without the file)."""
    file = path / "train_set_eval.json"
    return json.loads(file.read_text())["metrics"] if file.is_file() else {}
