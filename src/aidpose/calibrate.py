"""Dropper calibration: ``python -m aidpose.calibrate dropper=NAME calibrate.target=NAME [overrides]``.

The AID paper's tuning principle, automated: measure the initial training loss under the target dropper,
then search the calibrated dropper's strength (``calibrate.search``) until its initial loss is within
``calibrate.tolerance`` of the target's (see :mod:`aidpose.calibration` for the search). Writes into the
Hydra run folder ``calibration.json`` (every trial) and ``dropper_<name>_calibrated.yaml`` (a ready
``conf/dropper/`` option), and prints the table of tried values.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

import aidpose  # noqa: F401  (sets offline-friendly environment defaults)

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="calibrate")
def main(cfg: DictConfig) -> None:
    """Hydra task: calibrate ``cfg.dropper`` against ``cfg.calibrate.target``."""
    calibrate(cfg)


@dataclass(frozen=True)
class Measurement:
    """Initial training loss of one dropper config and the fraction of visible keypoints it dropped."""

    loss: float
    dropped_kpt_frac: float


def sample_seed(seed: int, position: int) -> int:
    """The torch seed of the ``position``-th fixed sample: a function of ``(seed, position)`` only."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


class InitialLoss:
    """The initial training loss of a dropper on fixed samples from fixed start weights.

    Args:
        module: the pose module at its start weights (restored before every measurement).
        make_dataset: ``dropper -> training TopDownDataset`` (a fresh dataset per measurement, so its
            per-process generator starts from the sample's seed).
        indices: the dataset indices of the fixed samples, in batch order.
        seed: base of the per-sample seeds (:func:`sample_seed`): each sample's augmentation and dropper
            draw from a generator seeded by ``(seed, position)``, whatever the dropper drew before.
        steps: optimisation steps (0: eval-mode loss of the start weights over all batches).
        batch_size: samples per batch.
        lr: constant learning rate of the steps.
    """

    def __init__(
        self,
        module: Any,
        make_dataset: Callable[[Any], Any],
        indices: np.ndarray,
        seed: int,
        steps: int,
        batch_size: int,
        lr: float,
    ) -> None:
        self.module = module
        self.start = copy.deepcopy(module.state_dict())
        self.make_dataset = make_dataset
        self.indices = [int(i) for i in indices]
        self.seed = seed
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr

    @property
    def num_batches(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def batches(self, dropper: Any) -> list[dict[str, Any]]:
        """The fixed batches as seen through ``dropper`` (None: no dropper)."""
        import torch
        from torch.utils.data import default_collate

        dataset = self.make_dataset(dropper)
        items = []
        for position, index in enumerate(self.indices):
            torch.manual_seed(sample_seed(self.seed, position))  # the dataset's generator follows this seed
            items.append(dataset[index])
        return [
            default_collate(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)
        ]

    def __call__(self, dropper_cfg: dict[str, Any] | None) -> Measurement:
        import torch
        from hydra.utils import instantiate

        batches = self.batches(None if dropper_cfg is None else instantiate(dropper_cfg))
        module = self.module
        module.load_state_dict(self.start)
        losses = []
        if self.steps == 0:
            module.eval()
            with torch.no_grad():
                for batch in batches:
                    losses.append(
                        float(module.loss(module(batch["image"]), batch["target"], batch["target_weight"]))
                    )
        else:
            module.train()
            optimizer = module.optimizer_factory(module.parameters(), lr=self.lr)
            for step in range(self.steps):
                batch = batches[step % len(batches)]
                loss = module.loss(module(batch["image"]), batch["target"], batch["target_weight"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
        visible = torch.cat([b["visible"] for b in batches])
        dropped = torch.cat([b["dropped"] for b in batches]) & visible
        return Measurement(float(np.mean(losses)), float(dropped.sum()) / max(int(visible.sum()), 1))


def check_options(opts: DictConfig) -> None:
    """Clear errors for calibrate.* values that cannot give a meaningful measurement."""
    for key, minimum in (("steps", 0), ("batches", 1), ("batch_size", 1), ("max_iters", 0)):
        if not isinstance(opts[key], int) or opts[key] < minimum:
            raise ValueError(f"calibrate.{key}={opts[key]!r} must be an integer ≥ {minimum}")
    if not opts.tolerance > 0:
        raise ValueError(f"calibrate.tolerance={opts.tolerance} must be > 0 (relative, e.g. 0.02 for 2%)")
    if opts.checkpoint is None and opts.steps < 2:
        raise ValueError(
            f"calibrate.steps={opts.steps} without calibrate.checkpoint measures the model at initialisation: its "
            "heatmaps are ~0 whatever the input (and step 1's loss is computed before any update), so the loss "
            "cannot see the dropper. Start from trained weights (calibrate.checkpoint=PATH, where calibrate.steps=0 "
            "is allowed) or train from the initialisation (calibrate.steps ≥ 2; it takes hundreds of steps before "
            "a fresh model's loss sees a dropper)."
        )


def target_setting(target_cfg: dict[str, Any], search: DictConfig) -> str:
    """The target's strength argument and value for the table (``as configured`` without a search entry)."""
    name = str(target_cfg.get("_target_", "")).rsplit(".", 1)[-1]
    param = search[name].param if name in search else None
    return f"{param}={target_cfg[param]}" if param in target_cfg else "as configured"


def build_probe(cfg: DictConfig) -> tuple[InitialLoss, DictConfig, str]:
    """The loss probe of ``cfg`` (start weights, fixed samples), the run config used and the start's description."""
    import torch

    from aidpose.builders import (
        build_datamodule,
        build_module,
        command_line_keys,
        config_from_checkpoint,
        load_module_from_checkpoint,
    )
    from aidpose.training.checkpoints import read_checkpoint

    opts = cfg.calibrate
    if opts.checkpoint is not None:
        path = str(opts.checkpoint)
        ckpt = read_checkpoint(path)
        run = config_from_checkpoint(ckpt, cfg, path, command_line_keys())
        module = load_module_from_checkpoint(run, ckpt, path)
        start = f"checkpoint {path}"
    else:
        run = cfg
        torch.manual_seed(cfg.seed)
        module = build_module(cfg)
        start = f"a fresh initialisation (seed {cfg.seed})"
    datamodule = build_datamodule(run)
    datamodule.setup("fit")
    splits = datamodule.splits

    def make_dataset(dropper: Any) -> Any:
        return datamodule.make_train(splits.train_ann, splits.train_images, dropper=dropper)

    needed = opts.batches * opts.batch_size
    available = len(datamodule.train_dataset)
    if needed > available:
        raise ValueError(
            f"calibrate.batches × calibrate.batch_size = {needed} samples, but the {run.dataset.name} train split "
            f"has {available} instances: lower them"
        )
    if opts.steps:  # step t trains on batch t mod batches: batches past the steps would go unused
        needed = min(opts.batches, opts.steps) * opts.batch_size
    indices = np.random.default_rng(cfg.seed).permutation(available)[:needed]
    lr = float(run.schedule.lr if opts.lr is None else opts.lr)
    probe = InitialLoss(
        module, make_dataset, indices, int(cfg.seed), int(opts.steps), int(opts.batch_size), lr
    )
    return probe, run, start


def calibrate(cfg: DictConfig) -> dict[str, Any]:
    """Measure the target's initial loss, search the dropper's strength, write and print the result."""
    from aidpose.builders import dropper_option
    from aidpose.calibration import (
        changed_arguments,
        complete_dropper_config,
        dropper_at,
        dropper_yaml,
        format_table,
        match_loss,
        strength_param,
        within_tolerance,
    )
    from aidpose.train import run_choices

    started = time.time()
    opts = cfg.calibrate
    check_options(opts)
    name = run_choices().get("dropper", "dropper")
    if cfg.get("dropper") is None:
        raise ValueError(f"dropper={name} drops nothing: choose the dropper to calibrate (e.g. dropper=has)")
    base = OmegaConf.to_container(cfg.dropper, resolve=True)
    spec = strength_param(OmegaConf.to_container(opts.search, resolve=True), base, "calibrate.search")
    target_name = str(opts.target)
    target_cfg = dropper_option(target_name, "calibrate.target")
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
    target_loss = measure(target_name, target_cfg, None, target_setting(target_cfg, opts.search))
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
        "changed": changed_arguments(calibrated, complete_dropper_config(dropper_option(name, "dropper"))),
        "output": str(output),
        "seconds": round(time.time() - started, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dropper_yaml(calibrated, yaml_comment(summary)))
    (run_dir / "calibration.json").write_text(json.dumps(summary, indent=2))
    print_report(summary, format_table(rows, target_loss))
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
    from aidpose.calibration import override_value

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
