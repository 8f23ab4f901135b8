"""Dropper calibration: ``python -m aidpose.calibrate dropper=NAME calibrate.target=NAME [overrides]``.

The AID paper's tuning principle, automated: measure the initial training loss under the target dropper,
then search the calibrated dropper's strength (the ``strength`` its class declares) until its initial loss
is within ``calibrate.tolerance`` of the target's (:mod:`~aidpose.calibrate.measure` measures,
:mod:`~aidpose.calibrate.search` searches). Writes into the
Hydra run folder ``calibration.json`` (every trial) and ``dropper_<name>_calibrated.yaml`` (a ready
``conf/dropper/`` option), and prints the table of tried values.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from aidpose.aid.transforms import declared_strength
from aidpose.calibrate.measure import InitialLoss, build_probe, check_options
from aidpose.runtime import CONFIG_PATH

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="calibrate")
def main(cfg: DictConfig) -> None:
    """Hydra task: calibrate ``cfg.dropper`` against ``cfg.calibrate.target``."""
    calibrate(cfg)


def target_setting(target_cfg: dict[str, Any]) -> str:
    """The target's strength argument and value for the table (``as configured`` without a declared strength)."""
    strength = declared_strength(str(target_cfg.get("_target_", "")))
    param = strength.param if strength else None
    return f"{param}={target_cfg[param]}" if param in target_cfg else "as configured"


def calibrate(cfg: DictConfig) -> dict[str, Any]:
    """Measure the target's initial loss, search the dropper's strength, write and print the result."""
    from aidpose.builders import dropper_config
    from aidpose.calibrate.search import (
        changed_arguments,
        complete_dropper_config,
        dropper_at,
        dropper_yaml,
        format_trials,
        match_loss,
        strength_param,
        within_tolerance,
    )
    from aidpose.runtime import run_choices

    started = time.time()
    opts = cfg.calibrate
    check_options(opts)
    name = run_choices().get("dropper", "dropper")
    if cfg.get("dropper") is None:
        raise ValueError(f"dropper={name} drops nothing: choose the dropper to calibrate (e.g. dropper=has)")
    base = OmegaConf.to_container(cfg.dropper, resolve=True)
    spec = strength_param(base, None if opts.range is None else list(opts.range))
    target_name = str(opts.target)
    target_cfg = dropper_config(target_name, "calibrate.target")
    probe, run, start = build_probe(cfg)
    run_dir = Path(cfg.paths.output_dir)
    rows: list[dict[str, Any]] = []

    def measure(label: str, dropper_cfg: dict[str, Any] | None, value: float | None, setting: str) -> float:
        m = probe(dropper_cfg)
        rows.append({"label": label, "value": value, "setting": setting, **asdict(m), "config": dropper_cfg})
        log.info(
            "%s %s: loss %.6g, dropped visible keypoints %.1f%%",
            label,
            setting,
            m.loss,
            100 * m.dropped_kpt_frac,
        )
        return m.loss

    def setting_of(value: float) -> str:
        return f"{spec.param}={dropper_at(base, spec, value)[spec.param]}"

    none_loss = measure("none", None, None, "no dropper")
    target_loss = measure(target_name, target_cfg, None, target_setting(target_cfg))
    if within_tolerance(none_loss, target_loss, opts.tolerance):
        raise ValueError(
            f"calibrate.target={target_name} changes the loss by less than calibrate.tolerance={opts.tolerance} "
            f"({none_loss:.6g} without a dropper, {target_loss:.6g} with it): this measurement cannot tell droppers "
            "apart, so any match would be noise. Start from trained weights (calibrate.checkpoint=PATH) or train "
            "longer (more calibrate.steps and calibrate.batches)."
        )
    result = match_loss(
        lambda v: measure(name, dropper_at(base, spec, v), v, setting_of(v)),
        target_loss,
        spec.low,
        spec.high,
        float(opts.tolerance),
        int(opts.max_iters),
    )
    calibrated = complete_dropper_config(dropper_at(base, spec, result.best.value))
    output = Path(opts.output) if opts.output else run_dir / f"dropper_{name}_calibrated.yaml"
    summary = {
        "dropper": name,
        "target": target_name,
        "param": spec.param,
        "mode": spec.mode,
        "range": [spec.low, spec.high],
        "target_loss": target_loss,
        "none_loss": none_loss,
        "best": {
            "value": result.best.value,
            "loss": result.best.loss,
            "setting": setting_of(result.best.value),
        },
        "converged": result.converged,
        "reason": result.reason,
        "increasing": result.increasing,
        "monotone_violations": result.monotone_violations,
        "tolerance": float(opts.tolerance),
        "measured_on": describe_measurement(run, probe, start),
        "rows": rows,
        "config": calibrated,
        "changed": changed_arguments(calibrated, complete_dropper_config(dropper_config(name, "dropper"))),
        "output": str(output),
        "seconds": round(time.time() - started, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dropper_yaml(calibrated, yaml_comment(summary)))
    (run_dir / "calibration.json").write_text(json.dumps(summary, indent=2))
    print_report(summary, format_trials(rows, target_loss))
    return summary


def describe_measurement(run: DictConfig, probe: InitialLoss, start: str) -> str:
    """One sentence saying what the initial loss was measured on."""
    width, height = run.paradigm.input_size
    how = f"mean training loss of {probe.steps} steps (lr {probe.lr:g})" if probe.steps else "eval-mode loss"
    return (
        f"{how} from {start}; {run.dataset.name} train crops ({probe.num_batches} fixed batches of "
        f"{probe.batch_size}, seed {probe.seed}), backbone {run.backbone.name}, input {width}x{height} (w x h)"
    )


def yaml_comment(summary: dict[str, Any]) -> list[str]:
    """Comment paragraphs of the written dropper config: how it was calibrated and against what."""
    best, name = summary["best"], summary["dropper"]
    gap = 100 * (best["loss"] - summary["target_loss"]) / summary["target_loss"]
    state = "converged" if summary["converged"] else f"NOT converged: {summary['reason']}"
    paragraphs = [
        f"{summary['config']['_target_']} calibrated by `python -m aidpose.calibrate` on {time.strftime('%Y-%m-%d')} "
        f"against dropper={summary['target']}: {best['setting']} gives an initial loss of {best['loss']:.6g} vs "
        f"{summary['target_loss']:.6g} (no dropper: {summary['none_loss']:.6g}); gap {gap:+.2f}%, tolerance "
        f"{100 * summary['tolerance']:g}%, {state}.",
        f"Initial loss: {summary['measured_on']}.",
        f"Use: copy to conf/dropper/{name}_calibrated.yaml and pick it with dropper={name}_calibrated.",
    ]
    return paragraphs


def print_report(summary: dict[str, Any], table: str) -> None:
    """The table of trials, the outcome and how to use the written config."""
    from aidpose.calibrate.search import override_value

    best, name = summary["best"], summary["dropper"]
    print(f"\n[aidpose] calibrating dropper={name} ({summary['param']}) against dropper={summary['target']}")
    print(f"[aidpose] {summary['measured_on']}")
    print(table)
    state = "converged" if summary["converged"] else "NOT converged"
    print(
        f"[aidpose] {state} ({summary['reason']}): best {best['setting']}, loss {best['loss']:.6g} vs target "
        f"{summary['target_loss']:.6g}; {len(summary['rows']) - 2} trials, {summary['seconds']:.0f} s"
    )
    if summary["monotone_violations"]:
        print(
            f"[aidpose] warning: the loss is not monotone in {summary['param']} at {summary['monotone_violations']} "
            "neighbouring trials: the measurement is noisier than the dropper's effect (more calibrate.steps or "
            "calibrate.batches, or a trained calibrate.checkpoint)"
        )
    overrides = " ".join(f"dropper.{k}={override_value(v)}" for k, v in summary["changed"].items())
    print(f"[aidpose] dropper config written to {summary['output']}")
    print(
        f"[aidpose] use it: cp {summary['output']} conf/dropper/{name}_calibrated.yaml; dropper={name}_calibrated"
    )
    print(f"[aidpose]     or: dropper={name} {overrides}")


if __name__ == "__main__":
    main()
