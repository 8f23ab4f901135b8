"""Build the objects of a run from its composed config (shared by train, evaluate, predict, calibrate)."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from functools import partial
from typing import Any

import pytorch_lightning as pl
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from aidpose.codecs.base import TEST_OPTIONS, KeypointCodec
from aidpose.data.image_cache import ImageCacheSettings
from aidpose.data.keypoints import get_layout
from aidpose.models import PoseNet
from aidpose.training.datamodule import PoseDataModule
from aidpose.training.schedule import Schedule


def build_dropper(cfg: DictConfig) -> Any | None:
    """The AID dropper of ``cfg.dropper`` (None for ``dropper=none``)."""
    return None if cfg.get("dropper") is None else instantiate(cfg.dropper)


def dropper_config(name: str, field: str) -> dict[str, Any]:
    """The dropper config ``conf/dropper/<name>.yaml`` (the running app's config search path), for a dropper
    named by another option (``test.occlusion``, ``calibrate.target``); ``field`` names it in errors."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    try:
        node = compose(config_name=f"dropper/{name}").get("dropper")
    except MissingConfigException:
        options = GlobalHydra.instance().config_loader().get_group_options("dropper")
        raise ValueError(f"{field}={name!r} is not a dropper config; choose one of {options}") from None
    if node is None:
        raise ValueError(f"{field}={name!r} drops nothing: choose a dropper (e.g. cutout)")
    return OmegaConf.to_container(node, resolve=True)


def build_codec(cfg: DictConfig) -> KeypointCodec:
    """The paradigm's codec (``paradigm.codec``); every decoding option of ``test`` that is set (not null)
    replaces its codec argument (:data:`aidpose.codecs.base.TEST_OPTIONS`, e.g. ``test.flip`` →
    ``flip_test``), and one the codec does not have is an error naming the option and the paradigm."""
    codec_class = get_class(cfg.paradigm.codec._target_)
    arguments = inspect.signature(codec_class).parameters
    overrides: dict[str, Any] = {}
    for key, argument in TEST_OPTIONS.items():
        value = cfg.test.get(key)
        if value is None:
            continue
        if argument not in arguments:
            raise ValueError(
                f"test.{key}={value} is not an option of paradigm={cfg.paradigm.name}: its codec "
                f"{codec_class.__name__} has no {argument!r}. Drop test.{key} (options of this codec: "
                f"{', '.join(f'test.{k}' for k, a in TEST_OPTIONS.items() if a in arguments)})"
            )
        overrides[argument] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return instantiate(cfg.paradigm.codec, **overrides)


def build_datamodule(cfg: DictConfig, codec: KeypointCodec, dropper: Any | None = None) -> PoseDataModule:
    """Train/val datasets of ``cfg.dataset`` through the paradigm's dataset class (``paradigm.dataset``;
    validation through ``paradigm.val_dataset`` when the paradigm names one, e.g. bottom-up whole images).
    ``loader.decode`` applies to training (evaluation decodes in full); ``loader.cache*`` to both."""
    p, loader = cfg.paradigm, cfg.loader
    make = instantiate(p.dataset)
    make_val = instantiate(p.val_dataset) if p.get("val_dataset") is not None else make
    common = {
        "layout": cfg.dataset.layout,
        "codec": codec,
        "skip_unreadable_images": loader.skip_unreadable_images,
        "cache": ImageCacheSettings(loader.cache, loader.cache_dir, loader.cache_max_gb, loader.num_workers),
    }
    augmentation = instantiate(p.augmentation) if p.get("augmentation") is not None else None
    train = partial(
        make, train=True, augmentation=augmentation, dropper=dropper, decode=loader.decode, **common
    )
    val = partial(make_val, train=False, **{key: cfg.test[key] for key in p.val_test_options}, **common)
    return PoseDataModule(
        source=instantiate(cfg.dataset.source),
        train_dataset=train,
        val_dataset=val,
        batch_size=loader.batch_size,
        val_batch_size=loader.val_batch_size,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        persistent_workers=loader.persistent_workers,
        seed=cfg.seed,
    )


def build_module(cfg: DictConfig, codec: KeypointCodec) -> pl.LightningModule:
    """The paradigm's LightningModule (``paradigm.module``) on backbone + head, with loss, schedule, optimizer.

    The head is built with the codec's output channels, and the network's output sizes for the codec's input
    size are measured once here: a codec whose heatmap sizes do not match is an error naming the options to
    change.
    """
    p = cfg.paradigm
    layout = get_layout(cfg.dataset.layout)
    head = p.head if p.get("head") is not None else cfg.head  # a paradigm may name its own head (bottom-up)
    net = PoseNet(instantiate(cfg.backbone), instantiate(head), codec.output_channels(layout.num_keypoints))
    codec.check_output_size(net.output_sizes(codec.input_size), f"backbone={cfg.backbone.name} with its head")
    module = instantiate(p.module)(
        net=net,
        loss=instantiate(p.loss),
        schedule=build_schedule(cfg),
        optimizer=instantiate(cfg.optimizer),
        layout=cfg.dataset.layout,
        codec=codec,
        test=OmegaConf.to_container(cfg.test, resolve=True),
    )
    module.run_config = plain_config(cfg)
    return module


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as plain containers (storable in checkpoints), without Hydra's own node."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "hydra"
    }


def build_schedule(cfg: DictConfig) -> Schedule:
    return instantiate(cfg.schedule, milestones=list(cfg.schedule.milestones))


def skip_backbone_weights(backbone: DictConfig) -> None:
    """No pretrained or local start weights for a backbone whose weights come from elsewhere (a checkpoint, an
    imported file): ``pretrained`` false and ``weights`` null where the backbone config has them (timm backbones;
    RSN has neither)."""
    for key, value in (("pretrained", False), ("weights", None)):
        if key in backbone:
            backbone[key] = value


def _plain_node(cfg: DictConfig, key: str) -> DictConfig:
    """A flag-free copy of ``cfg[key]`` whose interpolations resolve against the config it is put in."""
    return OmegaConf.create(OmegaConf.to_container(cfg[key], resolve=False))


LOADER_BEFORE_IMAGE_OPTIONS = {
    "decode": "full",
    "cache": "none",
    "cache_dir": "${paths.data_dir}/decoded_images",
    "cache_max_gb": None,
}
"""How images were read before ``loader.decode`` and ``loader.cache*`` (conf/loader/default.yaml) existed."""


def config_from_checkpoint(
    ckpt: dict[str, Any], cfg: DictConfig, ckpt_path: str, given: Collection[str] = ()
) -> DictConfig:
    """The run config to rebuild a checkpoint's model with and evaluate it under ``cfg``'s options.

    Model and paradigm (backbone, head, input/heatmap size, normalisation) come from the config stored in
    the checkpoint (``aidpose_config``); the backbone loads no pretrained weights (the checkpoint has them).
    From ``cfg`` (an evaluate/predict config): ``paths``, ``trainer`` and ``task_name`` when it has them,
    ``dataset`` unless null (null: the checkpoint's dataset), ``num_workers``/``batch_size`` unless null
    (they set ``loader.num_workers``/``loader.val_batch_size``). Test options: the checkpoint's own
    (they belong to its experiment, e.g. the blur kernel of its heatmap sigma), completed by ``cfg.test``
    for keys the checkpoint lacks, overridden by the ``test.*`` keys in ``given`` (set on the command
    line; a ``test=NAME`` group choice takes all of ``cfg.test``). ``test.dataset`` (which metric)
    follows the evaluated dataset unless given.
    """
    stored = ckpt.get("aidpose_config")
    if not isinstance(stored, dict):
        raise ValueError(
            f"checkpoint {ckpt_path} has no 'aidpose_config' (the run config aidpose.train stores): it was "
            "not written by aidpose.train, so its model cannot be rebuilt. Use a last.ckpt/best.ckpt of a run."
        )
    run = OmegaConf.create(stored)
    for key in ("paths", "trainer", "task_name"):
        if key in cfg:
            run[key] = _plain_node(cfg, key) if OmegaConf.is_config(cfg[key]) else cfg[key]
    if cfg.get("dataset") is not None:
        if cfg.dataset.layout != run.dataset.layout:
            raise ValueError(
                f"checkpoint {ckpt_path} predicts {run.dataset.layout!r} keypoints, dataset="
                f"{cfg.dataset.name} has {cfg.dataset.layout!r} keypoints: evaluate on a dataset of its layout"
            )
        run.dataset = _plain_node(cfg, "dataset")
    if "backbone" in run:
        skip_backbone_weights(run.backbone)
    run.dropper = None
    for key, value in LOADER_BEFORE_IMAGE_OPTIONS.items():  # a checkpoint written before these options
        run.loader.setdefault(key, value)
    if cfg.get("num_workers") is not None:
        run.loader.num_workers = cfg.num_workers
    if cfg.get("batch_size") is not None:
        run.loader.val_batch_size = cfg.batch_size
    cli_test = _plain_node(cfg, "test")
    if "test" in given:
        run.test = cli_test
    else:
        stored_test = {k: v for k, v in stored.get("test", {}).items() if k != "dataset"}
        run.test = OmegaConf.merge(cli_test, stored_test)
        for key in {k.split(".")[1] for k in given if k.startswith("test.")}:
            if key in cli_test:
                run.test[key] = cli_test[key]
    return run


def load_module_from_checkpoint(run: DictConfig, ckpt: dict[str, Any], ckpt_path: str) -> pl.LightningModule:
    """The module of ``run`` (see :func:`config_from_checkpoint`) with the checkpoint's weights, in eval mode;
    its codec is ``module.codec``."""
    module = build_module(run, build_codec(run))
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {ckpt_path}: its weights do not fit the model of its stored config ({err})"
        ) from err
    return module.eval()
