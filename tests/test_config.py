"""Every option of every config group composes, resolves and builds its objects."""

from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from aidpose.builders import build_dropper, build_schedule, plain_config
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
    }
    assert expected <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    resolved = plain_config(cfg)
    assert resolved["paradigm"]["name"] == "topdown"
    schedule = build_schedule(cfg)
    assert isinstance(schedule, Schedule) and schedule.scaled_epochs >= 1
    instantiate(cfg.paradigm.augmentation)
    instantiate(cfg.dataset.source)
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
