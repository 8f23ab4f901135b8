"""Build the objects of a run from its composed config (shared by train, evaluate, predict, calibrate)."""

from __future__ import annotations

from functools import partial
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from aidpose.data.keypoints import get_layout
from aidpose.models import PoseNet
from aidpose.training.datamodule import PoseDataModule
from aidpose.training.schedule import Schedule
from aidpose.training.topdown_module import TopDownPoseModule

PARADIGMS = ("topdown",)


def check_paradigm(cfg: DictConfig) -> None:
    if cfg.paradigm.name not in PARADIGMS:
        raise ValueError(f"paradigm={cfg.paradigm.name!r} is not available; choose one of {PARADIGMS}")


def build_dropper(cfg: DictConfig) -> Any | None:
    """The AID dropper of ``cfg.dropper`` (None for ``dropper=none``)."""
    return None if cfg.get("dropper") is None else instantiate(cfg.dropper)


def build_datamodule(cfg: DictConfig, dropper: Any | None = None) -> PoseDataModule:
    """Train/val datasets of ``cfg.dataset`` through the paradigm's sample pipeline."""
    from aidpose.data.topdown import TopDownDataset

    check_paradigm(cfg)
    p, t = cfg.paradigm, cfg.test
    common = {
        "layout": cfg.dataset.layout,
        "input_size": tuple(p.input_size),
        "heatmap_size": tuple(p.heatmap_size),
        "sigma": p.sigma,
        "padding": p.padding,
        "skip_unreadable_images": p.data.skip_unreadable_images,
    }
    train = partial(TopDownDataset, train=True, augmentation=instantiate(p.augmentation), dropper=dropper, **common)
    val = partial(
        TopDownDataset,
        train=False,
        boxes=t.boxes,
        det_file=t.det_file,
        det_score_thr=t.det_score_thr,
        min_box_area=t.min_box_area,
        **common,
    )
    return PoseDataModule(
        source=instantiate(cfg.dataset.source),
        train_dataset=train,
        val_dataset=val,
        batch_size=p.data.batch_size,
        val_batch_size=p.data.val_batch_size,
        num_workers=p.data.num_workers,
        pin_memory=p.data.pin_memory,
        persistent_workers=p.data.persistent_workers,
    )


def build_module(cfg: DictConfig) -> TopDownPoseModule:
    """The LightningModule: backbone + head of ``cfg.backbone``/``cfg.head``, loss, schedule, test options."""
    check_paradigm(cfg)
    p = cfg.paradigm
    layout = get_layout(cfg.dataset.layout)
    net = PoseNet(instantiate(cfg.backbone), instantiate(cfg.head), num_keypoints=layout.num_keypoints)
    module = TopDownPoseModule(
        net=net,
        loss=instantiate(p.loss),
        schedule=build_schedule(cfg),
        optimizer=instantiate(p.optimizer),
        layout=cfg.dataset.layout,
        input_size=tuple(p.input_size),
        heatmap_size=tuple(p.heatmap_size),
        mean=list(p.mean),
        std=list(p.std),
        test=OmegaConf.to_container(cfg.test, resolve=True),
        channels_last=p.channels_last,
    )
    module.run_config = plain_config(cfg)
    return module


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as plain containers (storable in checkpoints), without Hydra's own node."""
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg if k != "hydra"}


def build_schedule(cfg: DictConfig) -> Schedule:
    return instantiate(cfg.schedule, milestones=list(cfg.schedule.milestones))
