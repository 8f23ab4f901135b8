"""Every option of every config group composes, resolves and builds its objects."""

from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from aidpose.builders import build_codec, build_dropper, build_module, build_schedule, plain_config
from aidpose.codecs import MegviiHeatmapCodec, UDPHeatmapCodec
from aidpose.codecs.associative_embedding import AssociativeEmbeddingCodec
from aidpose.training.schedule import Schedule
from tests.helpers import CONF_DIR, compose_config

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF_DIR / g).glob("*.yaml"))]


def test_every_axis_has_a_group():
    expected = {
        "paradigm",
        "backbone",
        "dropper",
        "schedule",
        "dataset",
        "trainer",
        "logger",
        "debug",
        "experiment",
        "optimizer",
        "loader",
        "callbacks",
    }
    assert expected <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_resolves(group, option, tmp_path):
    bottomup = option in ("bottomup", "synthpose_cpu_bottomup") or "higherhrnet" in option
    # the bottom-up CPU default is picked through paradigm=bottomup (experiment=synthpose_cpu_${paradigm}); the
    # official bottom-up test options (test=higherhrnet) are a bottom-up codec's
    picked_by_paradigm = ("experiment=synthpose_cpu_bottomup", "test=higherhrnet")
    extra = ["paradigm=bottomup"] if f"{group}={option}" in picked_by_paradigm else []
    cfg = compose_config([f"{group}={option}", *extra], tmp_path)
    resolved = plain_config(cfg)
    assert resolved["paradigm"]["name"] == ("bottomup" if bottomup else "topdown")
    schedule = build_schedule(cfg)
    assert isinstance(schedule, Schedule) and schedule.scaled_epochs >= 1
    instantiate(cfg.paradigm.augmentation)
    instantiate(cfg.dataset.source)
    instantiate(cfg.optimizer)
    codec = build_codec(cfg)
    expected = AssociativeEmbeddingCodec if bottomup else UDPHeatmapCodec
    if group == "backbone" and option.startswith("rsn"):  # RSN's multi-stage head comes with its targets
        expected = MegviiHeatmapCodec
    assert isinstance(codec, expected) and codec.input_size == tuple(cfg.paradigm.input_size)
    if group == "dropper":
        dropper = build_dropper(cfg)
        assert (dropper is None) == (option == "none")
    if group == "backbone":
        assert cfg.backbone.name == option


def test_defaults_are_the_cpu_synthpose_run(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.dataset.name == "synthpose"
    assert cfg.trainer.accelerator == "cpu"
    assert cfg.dropper is None
    assert build_schedule(cfg).scaled_epochs == 21


def test_design_card_command_composes(tmp_path):
    cfg = compose_config(["backbone=hrnet_w32", "dropper=cutout", "schedule=s2"], tmp_path)
    assert cfg.backbone.name == "hrnet_w32"
    assert cfg.schedule.name == "s2"
    assert build_dropper(cfg) is not None


def test_dropper_parameters_override_from_the_command_line(tmp_path):
    cfg = compose_config(["dropper=cutout", "dropper.p=0.5"], tmp_path)
    assert build_dropper(cfg).p == 0.5


def test_unknown_choice_lists_the_options(tmp_path):
    with pytest.raises(MissingConfigException) as err:
        compose_config(["backbone=resnet1000"], tmp_path)
    assert "hrnet_w32" in str(err.value)


def test_the_codec_is_one_node_and_test_blur_kernel_overrides_its_kernel(tmp_path):
    cfg = compose_config(["debug=fast"], tmp_path)
    assert build_codec(cfg) == UDPHeatmapCodec((64, 96), (16, 24), sigma=1.0, blur_kernel=5)
    cfg = compose_config(["debug=fast", "test.blur_kernel=9"], tmp_path)
    assert build_codec(cfg).blur_kernel == 9


def test_the_paradigm_names_its_module_and_a_heatmap_size_off_the_network_is_a_clear_error(tmp_path):
    cfg = compose_config(["debug=fast"], tmp_path)
    module = build_module(cfg, build_codec(cfg))
    assert type(module).__name__ == cfg.paradigm.module._target_.rsplit(".", 1)[-1]
    assert module.codec.heatmap_size == (16, 24) and module.training  # the size check leaves train mode
    cfg = compose_config(["debug=fast", "paradigm.codec.heatmap_size=[32,48]"], tmp_path)
    message = (
        r"paradigm.codec.heatmap_size=\[32, 48\] does not fit the network: backbone=hrnet_w18_small with its "
        r"head maps paradigm.input_size=\[64, 96\] to \[16, 24\] heatmaps .* Set paradigm.codec.heatmap_size=\[16, 24\]"
    )
    with pytest.raises(ValueError, match=message):
        build_module(cfg, build_codec(cfg))


def test_readme_overrides_compose_and_build(tmp_path):
    """README's examples: the loader group, and a 384×288 input with the codec sized to match."""
    cfg = compose_config(
        ["loader.num_workers=4", "paradigm.input_size=[288,384]", "paradigm.codec.heatmap_size=[72,96]",
         "paradigm.codec.sigma=3", "paradigm.codec.blur_kernel=17"],
        tmp_path,
    )  # fmt: skip
    assert cfg.loader.num_workers == 4
    module = build_module(cfg, build_codec(cfg))
    assert module.codec == UDPHeatmapCodec((288, 384), (72, 96), sigma=3.0, blur_kernel=17)


def test_loader_image_options_reach_the_datasets_and_the_run_config(tmp_path):
    from aidpose.builders import build_datamodule, config_from_checkpoint
    from aidpose.data.image_cache import MemoryImageCache

    cfg = compose_config(["debug=fast", "loader.cache=memory"], tmp_path)
    stored = plain_config(cfg)
    assert stored["loader"]["decode"] == "scaled" and stored["loader"]["cache"] == "memory"
    datamodule = build_datamodule(cfg, build_codec(cfg))
    datamodule.setup("fit")
    assert datamodule.train_dataset.decode == "scaled"
    assert datamodule.val_dataset.decode == "full"  # evaluation decodes in full
    for dataset in (datamodule.train_dataset, datamodule.val_dataset):
        assert isinstance(dataset.image_reader.cache, MemoryImageCache)
    # a checkpoint from before these options: images read as they were then
    for key in ("decode", "cache", "cache_dir", "cache_max_gb"):
        del stored["loader"][key]
    evaluate = compose_config(["ckpt_path=x.ckpt"], tmp_path, config_name="evaluate")
    run = config_from_checkpoint({"aidpose_config": stored}, evaluate, "x.ckpt")
    assert (run.loader.decode, run.loader.cache, run.loader.cache_max_gb) == ("full", "none", None)
    assert run.loader.cache_dir == str(tmp_path / "data" / "decoded_images")
