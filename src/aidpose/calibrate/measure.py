"""The initial training loss of a dropper on fixed samples from fixed start weights (``aidpose.calibrate``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig

from aidpose.aid.stats import DroppedKeypointStats


@dataclass(frozen=True)
class Measurement:
    """Initial training loss of one dropper config and the fraction of visible keypoints it dropped."""

    loss: float
    dropped_kpt_frac: float


def sample_seed(seed: int, position: int) -> int:
    """The sample seed of the ``position``-th fixed sample: a function of ``(seed, position)`` only."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


class InitialLoss:
    """The initial training loss of a dropper on fixed samples from fixed start weights.

    Args:
        module: the pose module at its start weights (restored before every measurement).
        make_dataset: ``dropper -> training dataset`` of the paradigm (a fresh dataset per measurement).
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
        from aidpose.data.pipeline import SampleKey

        dataset = self.make_dataset(dropper)
        items = [
            dataset[SampleKey(index, seed=sample_seed(self.seed, position))]
            for position, index in enumerate(self.indices)
        ]
        return [
            dataset.collate(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)
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
                    losses.append(float(module.training_losses(batch)["loss"]))
        else:
            module.train()
            optimizer = module.optimizer_factory(module.parameters(), lr=self.lr)
            for step in range(self.steps):
                batch = batches[step % len(batches)]
                loss = module.training_losses(batch)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
        stats = DroppedKeypointStats.of_items(
            torch.cat([b["visible_count"] for b in batches]).numpy(),
            torch.cat([b["dropped_count"] for b in batches]).numpy(),
        )
        return Measurement(float(np.mean(losses)), float(np.nan_to_num(stats.fraction)))  # none visible: 0


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


def build_probe(cfg: DictConfig) -> tuple[InitialLoss, DictConfig, str]:
    """The loss probe of ``cfg`` (start weights, fixed samples), the run config used and the start's description."""
    import torch

    from aidpose.builders import (
        build_codec,
        build_datamodule,
        build_module,
        config_from_checkpoint,
        load_module_from_checkpoint,
    )
    from aidpose.runtime import command_line_keys
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
        module = build_module(cfg, build_codec(cfg))
        start = f"a fresh initialisation (seed {cfg.seed})"
    datamodule = build_datamodule(run, module.codec)
    datamodule.setup("fit")

    def make_dataset(dropper: Any) -> Any:
        return datamodule.build_train_dataset(dropper=dropper)

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
