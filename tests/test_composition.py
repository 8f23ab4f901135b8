"""Every paradigm composes with every dataset, debug option and logger and builds its data source, codec,
loggers and callbacks; one training step (with validation and the W&B panels) runs for each paradigm × dataset
on tiny data: the COCO fixture, a hand-built CrowdPose folder and a tiny SynthPose. Every other top-down codec
and every RSN backbone builds under debug=fast with the outputs its codec decodes, and trains a step."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from aidpose.builders import build_codec, build_module
from aidpose.codecs.base import KeypointCodec
from aidpose.training.callbacks import instantiate_group
from tests.conftest import AIC_MINI
from tests.helpers import CONF_DIR, compose_config, write_crowdpose


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


PARADIGMS, DATASETS, LOGGERS = options("paradigm"), options("dataset"), options("logger")
COMBINATIONS = list(itertools.product(PARADIGMS, DATASETS, [None, "fast"], LOGGERS))


@pytest.mark.parametrize(
    ("paradigm", "dataset", "debug", "logger"),
    COMBINATIONS,
    ids=[f"{p}-{d}-{g or 'nodebug'}-{lg}" for p, d, g, lg in COMBINATIONS],
)
def test_every_combination_composes_and_builds(paradigm, dataset, debug, logger, tmp_path):
    debug_option = [f"debug={debug}"] if debug else []
    cfg = compose_config(
        [f"paradigm={paradigm}", f"dataset={dataset}", f"logger={logger}", *debug_option], tmp_path
    )
    assert cfg.paradigm.name == paradigm and cfg.dataset.name == dataset
    assert instantiate(cfg.dataset.source).prepare  # the source takes every key the config gives it
    codec = build_codec(cfg)
    assert isinstance(codec, KeypointCodec) and codec.input_size == tuple(cfg.paradigm.input_size)
    assert all(isinstance(c, pl.Callback) for c in instantiate_group(cfg.callbacks))
    assert all(isinstance(lg, pl.loggers.Logger) for lg in instantiate_group(cfg.get("logger")))


def test_synthpose_sizes_follow_the_paradigm_and_debug(tmp_path):
    bottomup = compose_config(["paradigm=bottomup"], tmp_path).dataset.source
    assert (bottomup.preset, bottomup.num_val) == (
        "crowd",
        200,
    )  # conf/dataset_paradigm/synthpose_bottomup.yaml
    topdown = compose_config([], tmp_path).dataset.source
    assert (topdown.preset, topdown.num_val) == ("default", 500)
    tiny = compose_config(["paradigm=bottomup", "debug=fast"], tmp_path).dataset.source
    assert (tiny.preset, tiny.num_train, tiny.num_val) == ("crowd", 12, 6)  # debug's sizes win


def test_decoding_options_reach_the_codec_or_name_the_option_and_paradigm(tmp_path):
    cfg = compose_config(["paradigm=bottomup", "test.blur_kernel=11", "test.flip=false"], tmp_path)
    codec = build_codec(cfg)
    assert (codec.blur_kernel, codec.flip_test) == (11, False)
    cfg = compose_config(["test.blur_kernel=9", "test.flip=false"], tmp_path)
    assert (build_codec(cfg).blur_kernel, build_codec(cfg).flip_test) == (9, False)
    cfg = compose_config(["test.scales=[1,2]"], tmp_path)
    with pytest.raises(ValueError, match=r"test\.scales=\[1, 2\] is not an option of paradigm=topdown"):
        build_codec(cfg)


# option → (overrides, the codec's class, outputs of the head: count × channels of 17 COCO keypoints)
CODEC_OPTIONS = {
    "udp_combined": (["paradigm/codec=udp_combined"], "UDPCombinedCodec", (1, 51)),
    "rsn18": (["backbone=rsn18"], "MegviiHeatmapCodec", (4, 17)),
    "rsn50": (["backbone=rsn50"], "MegviiHeatmapCodec", (4, 17)),
    "rsn50_x2": (["backbone=rsn50_x2"], "MegviiHeatmapCodec", (8, 17)),
    "rsn50_x3": (["backbone=rsn50_x3"], "MegviiHeatmapCodec", (12, 17)),
}
# RSN at a fraction of its width and depth: the same stages, units, outputs and targets in a second
TINY_RSN = ["backbone.unit_channels=16", "backbone.num_blocks=[1,1,1,1]", "backbone.num_steps=2"]


@pytest.mark.parametrize("option", sorted(CODEC_OPTIONS))
def test_each_codec_and_rsn_backbone_builds_under_debug_fast(option, tmp_path):
    overrides, codec_class, (count, channels) = CODEC_OPTIONS[option]
    tiny = TINY_RSN if option.startswith("rsn") else []
    cfg = compose_config(["dataset=coco", "debug=fast", *overrides, *tiny], tmp_path)
    codec = build_codec(cfg)
    assert type(codec).__name__ == codec_class and codec.heatmap_size == (16, 24)  # debug=fast's sizes
    module = build_module(cfg, codec).eval()
    with torch.no_grad():
        outputs = module(torch.zeros(2, 3, 96, 64, dtype=torch.uint8))
    shapes = [tuple(o.shape) for o in (outputs if isinstance(outputs, list) else [outputs])]
    assert shapes == [(2, channels, 24, 16)] * count
    if codec_class == "MegviiHeatmapCodec":  # the loss has one setting per output; mmpose's levels per stage
        assert len(cfg.paradigm.loss.loss_weights) == len(cfg.paradigm.loss.ohkm) == count
        assert list(codec.level_indices) == {4: [0, 1, 2, 3], 8: [0, 1, 2, 3, 1, 2, 3, 4],
                                             12: [0, 1, 2, 3, 0, 1, 2, 3, 1, 2, 3, 4]}[count]  # fmt: skip


STEPS = list(itertools.product(PARADIGMS, DATASETS))


@pytest.mark.slow
@pytest.mark.parametrize(("paradigm", "dataset"), STEPS, ids=[f"{p}-{d}" for p, d in STEPS])
def test_one_training_step_with_validation_and_panels(paradigm, dataset, coco_mini, tmp_path, monkeypatch):
    from aidpose.train import train

    panels: dict[str, int] = {}

    def log_image(self, key, images, **kwargs):
        panels[key] = len(images)

    monkeypatch.setattr(pl.loggers.WandbLogger, "log_image", log_image)
    coco = [
        f"dataset.source.root={coco_mini}", "dataset.source.train_ann=test_coco.json",
        "dataset.source.val_ann=test_coco.json", "dataset.source.train_images=.", "dataset.source.val_images=.",
    ]  # fmt: skip
    aic = ["aic_train.json", "../coco_mini"]
    data = {
        "coco": coco,
        "aic": [f"dataset.source.root={AIC_MINI}", f"dataset.source.train_ann={aic[0]}",
                f"dataset.source.val_ann={aic[0]}", f"dataset.source.train_images={aic[1]}",
                f"dataset.source.val_images={aic[1]}"],
        "coco_aic": [*coco, f"dataset.source.extra.aic.root={AIC_MINI}", f"dataset.source.extra.aic.train_ann={aic[0]}",
                     f"dataset.source.extra.aic.train_images={aic[1]}"],
        "crowdpose": [],
        "synthpose": [],
    }[dataset]  # fmt: skip
    cfg = compose_config(
        [f"paradigm={paradigm}", f"dataset={dataset}", "debug=fast", "logger=wandb", "trainer.limit_train_batches=1",
         "trainer.limit_val_batches=1", "callbacks.wandb_panels.num_val=1", "callbacks.wandb_panels.num_train=2",
         "dropper=cutout", "loader.batch_size=2", "loader.val_batch_size=1", *data],  # CrowdPose: 2 training images
        tmp_path,
    )  # fmt: skip
    if dataset == "crowdpose":
        write_crowdpose(Path(cfg.paths.data_dir) / "crowdpose")
    metrics = train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert summary["status"] == "finished" and summary["global_step"] == 1 and "AP" in metrics
    assert panels == {"panels/val": 1, "panels/train_dropped": 2}


@pytest.mark.slow
@pytest.mark.parametrize("option", ["udp_combined", "rsn50_x2"])
def test_debug_fast_training_run_of_a_codec_option(option, tmp_path):
    from aidpose import load_model
    from aidpose.train import train

    overrides, _, _ = CODEC_OPTIONS[option]
    tiny = TINY_RSN if option.startswith("rsn") else []
    cfg = compose_config(
        ["debug=fast", "logger=none", "trainer.limit_val_batches=1", *overrides, *tiny], tmp_path
    )
    metrics = train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert summary["status"] == "finished" and summary["global_step"] == 2 and "AP" in metrics
    # its checkpoint rebuilds the same model and codec (RSN's config has no pretrained/weights keys to reset)
    module = load_model(Path(cfg.paths.output_dir) / "last.ckpt")
    assert type(module.codec).__name__ == CODEC_OPTIONS[option][1]
    with torch.no_grad():
        outputs = module(torch.zeros(1, 3, 96, 64, dtype=torch.uint8))
    assert len(outputs if isinstance(outputs, list) else [outputs]) == CODEC_OPTIONS[option][2][0]
