"""Weights & Biases dashboards: the logger built from the run's config, and image panels of the run.

``logger=wandb`` builds :func:`wandb_logger` (project, group, run name and tags from the config; offline when no
API key is set); :class:`WandbImagePanels` (``conf/callbacks``) logs validation images with ground truth and
predictions and training samples after the dropper (the AID paper's Figure 3), for every paradigm; :func:`finish_wandb` closes the run at
the end of training and prints the ``wandb sync`` command of an offline run.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np
import pytorch_lightning as pl

from aidpose.data.coco import is_labelled_person
from aidpose.data.pipeline import SampleDataset
from aidpose.drawing import draw_keypoints, draw_poses
from aidpose.inference import filter_boxes
from aidpose.training.pose_module import PoseModule

WANDB_HOST = "https://api.wandb.ai"


def has_wandb_api_key(environ: Mapping[str, str], netrc_file: Path | None = None) -> bool:
    """Whether W&B can log in: ``WANDB_API_KEY`` is set, or the netrc file has an entry for the W&B host.

    The host is ``WANDB_BASE_URL``'s (default api.wandb.ai); the netrc file is ``NETRC`` or ``~/.netrc``
    unless given. An unreadable or malformed netrc file counts as no key.
    """
    if environ.get("WANDB_API_KEY"):
        return True
    path = netrc_file or Path(environ.get("NETRC", Path.home() / ".netrc"))
    host = urlparse(environ.get("WANDB_BASE_URL", WANDB_HOST)).hostname or ""
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def sweep_group(output_dir: str | Path, multirun: bool, experiment: str) -> str:
    """The W&B group of a run: its sweep folder's name under ``-m`` (jobs are ``<sweep dir>/<job>``), else the
    experiment's name."""
    return Path(output_dir).parent.name if multirun else experiment


def wandb_logger(
    project: str,
    name: str,
    tags: Sequence[str],
    save_dir: str,
    experiment: str,
    group: str | None = None,
    offline: bool | None = None,
    log_model: bool = False,
) -> pl.loggers.WandbLogger:
    """A ``WandbLogger`` named and tagged from the config.

    Args:
        project: W&B project.
        name: run name (e.g. backbone-dropper-schedule-seed).
        tags: run tags (backbone, dropper, schedule, dataset, seed).
        save_dir: the run folder (W&B writes ``wandb/`` in it).
        experiment: the experiment option, the group of a single run.
        group: W&B group; None: the sweep folder's name under ``-m``, else ``experiment``.
        offline: None: offline exactly when no API key is set (:func:`has_wandb_api_key`).
        log_model: upload checkpoints as W&B artifacts.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if group is None:
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        group = sweep_group(save_dir, multirun, experiment)
    if offline is None:
        offline = not has_wandb_api_key(os.environ)
    return pl.loggers.WandbLogger(
        project=project,
        name=name,
        group=group,
        tags=list(tags),
        save_dir=save_dir,
        offline=offline,
        log_model=log_model,
    )


def finish_wandb() -> str | None:
    """Finish this process's W&B run (jobs of a sweep must not share one); return ``wandb sync DIR`` if offline."""
    import wandb

    run = wandb.run
    if run is None:
        return None
    command = f"wandb sync {Path(run.dir).parent}" if run.offline else None
    run.finish()
    if command:
        print(f"[aidpose] W&B ran offline; upload it with: {command}")
    return command


class WandbImagePanels(pl.Callback):
    """Image panels on W&B every ``every_n_epochs`` epochs (at the first validation after them); inert without a
    ``WandbLogger``. The same for every paradigm, through the module's ``predict_people`` and the datasets' sample
    pipeline (rank 0 only):

    ``panels/val``: ``num_val`` fixed validation images (evenly spaced over the set), the whole image with its
    ground truth | the prediction (``aidpose.drawing.draw_poses``; a module that needs boxes gets the labelled
    people's boxes). ``panels/train_dropped``: ``num_train`` fixed training samples after augmentation and the
    dropper, drawn as ``scripts/show_droppers.py`` does (green kept, red X dropped, yellow ring occluded in the
    image): the AID paper's Figure 3.
    """

    def __init__(self, every_n_epochs: int = 5, num_val: int = 4, num_train: int = 4, score_thr: float = 0.2):
        if every_n_epochs < 1 or num_val < 0 or num_train < 0:
            raise ValueError(
                f"WandbImagePanels: every_n_epochs={every_n_epochs} must be ≥ 1, num_val={num_val} and "
                f"num_train={num_train} ≥ 0"
            )
        self.every_n_epochs = every_n_epochs
        self.num_val = num_val
        self.num_train = num_train
        self.score_thr = score_thr
        self.last_epoch: int | None = None

    @staticmethod
    def wandb_loggers(trainer: pl.Trainer) -> list[pl.loggers.WandbLogger]:
        return [lg for lg in trainer.loggers if isinstance(lg, pl.loggers.WandbLogger)]

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = self.wandb_loggers(trainer)
        if not loggers or trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        if self.last_epoch is not None and epoch - self.last_epoch < self.every_n_epochs:
            return
        self.last_epoch = epoch
        panels = {}
        datamodule = trainer.datamodule
        if self.num_val and getattr(datamodule, "val_dataset", None) is not None:
            panels["panels/val"] = self.val_panel(datamodule.val_dataset, pl_module)
        if self.num_train and getattr(datamodule, "train_dataset", None) is not None:
            panels["panels/train_dropped"] = self.train_panel(datamodule.train_dataset)
        for key, (images, captions) in panels.items():
            for logger in loggers:
                logger.log_image(key=key, images=images, caption=captions, step=trainer.global_step)

    @staticmethod
    def fixed_indices(count: int, length: int) -> list[int]:
        return sorted({int(i) for i in np.linspace(0, length - 1, min(count, length))})

    def val_panel(self, dataset: Any, pl_module: PoseModule) -> tuple[list[np.ndarray], list[str]]:
        """Whole validation images: ground truth | prediction (``predict_people``, as validation decodes)."""
        coco = dataset.coco
        image_ids = sorted(coco.imgs)
        tiles, captions = [], []
        for i in self.fixed_indices(self.num_val, len(image_ids)):
            info = coco.imgs[image_ids[i]]
            image = cv2.imread(os.path.join(dataset.image_dir, info["file_name"]), cv2.IMREAD_COLOR)
            if image is None:
                continue  # not drawn; validation reads (and counts or refuses) the same file
            people = [a for a in coco.imgToAnns.get(image_ids[i], []) if is_labelled_person(a)]
            labels = np.array([a["keypoints"] for a in people], dtype=np.float64)
            labels = labels.reshape(len(people), pl_module.layout.num_keypoints, 3)
            truth = np.concatenate([labels[..., :2], labels[..., 2:] > 0], axis=-1)
            boxes, _, _ = filter_boxes(
                np.array([a["bbox"] for a in people]), np.ones(len(people)), (info["width"], info["height"])
            )
            boxes = np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1)
            was_training = pl_module.training
            pl_module.eval()
            [found] = pl_module.predict_people([image], [boxes] if pl_module.needs_boxes else None)
            pl_module.train(was_training)
            pair = [
                draw_poses(image, truth, pl_module.layout, 0.5),
                draw_poses(image, found.keypoints, pl_module.layout, self.score_thr),
            ]
            tiles.append(cv2.cvtColor(np.hstack(pair), cv2.COLOR_BGR2RGB))
            captions.append(f"image {image_ids[i]}: ground truth | prediction")
        return tiles, captions

    def train_panel(self, dataset: SampleDataset) -> tuple[list[np.ndarray], list[str]]:
        """Training samples after augmentation and the dropper, dropped keypoints marked (Figure 3)."""
        tiles, captions = [], []
        for i in self.fixed_indices(self.num_train, len(dataset)):
            sample = dataset.sample(i)
            visible = sample.visible
            visibility = np.where(visible, 2, np.minimum(sample.visibility, 1))
            tiles.append(
                draw_keypoints(
                    sample.image,
                    sample.keypoints.reshape(-1, 2),
                    visibility.reshape(-1),
                    sample.dropped.reshape(-1),
                )
            )
            hidden = int((sample.dropped & visible).sum())
            captions.append(f"sample {i}: {hidden}/{int(visible.sum())} visible keypoints dropped")
        return tiles, captions
